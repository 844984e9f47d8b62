/**
 * CLUSTER SHARDS: the shards (one here: the Raft group) with their slot ranges and nodes, in
 * Redis 7's shape.
 *
 * Format:
 *   CLUSTER SHARDS
 *
 * Reply:
 *   Array of shards, each a map (flat array in RESP2) `slots` -> [0, 16383] and `nodes` -> an
 *   array of maps with id, port, ip, endpoint, role (master for the leader, replica for the
 *   others), replication-offset (the leader's match index for the member; the last log index
 *   for the leader; 0 when unknown, on a follower) and health (online; failed when this node
 *   has no live peer link to it; loading for a learner still catching up). While no leader
 *   is known the answering node is named master, as in CLUSTER SLOTS.
 */
import { array, bulk, integer, map, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import type { MemberInfo } from '../../server/cluster-view.js';
import { SLOT_COUNT } from './slot.js';
import { clusterNodeId, requireCluster, topology } from './topology.js';

function health(m: MemberInfo): string {
  if (!m.reachable) return 'failed';
  return m.voter ? 'online' : 'loading';
}

function nodeMap(m: MemberInfo, role: 'master' | 'replica', offset: number): Reply {
  return map([
    [bulk('id'), bulk(clusterNodeId(m.id))],
    [bulk('port'), integer(m.port)],
    [bulk('ip'), bulk(m.host)],
    [bulk('endpoint'), bulk(m.host)],
    [bulk('role'), bulk(role)],
    [bulk('replication-offset'), integer(offset)],
    [bulk('health'), bulk(health(m))],
  ]);
}

export const clusterShards: CommandSpec = {
  name: 'cluster|shards',
  arity: 2,
  flags: ['loading', 'stale'],
  aclCategories: ['@slow'],
  keys: NO_KEYS,
  tips: ['nondeterministic_output'],
  docs: {
    summary: 'Returns the mapping of cluster slots to shards.',
    since: '7.0.0',
    group: 'server',
    complexity: 'O(N) where N is the total number of cluster nodes',
    format: 'CLUSTER SHARDS',
    reply:
      'Array of shard maps (`slots` -> [0, 16383], `nodes` -> maps of id, port, ip, endpoint, role, replication-offset, health); one shard whose master is the leader (the answering node while no leader is known).',
  },
  handler: {
    kind: 'local',
    run(ctx): Reply {
      const cluster = requireCluster(ctx);
      const t = topology(cluster);
      if (t.master === null) return array([]);
      const lastIndex = t.master.self ? cluster.raftInfo().lastIndex : (t.master.matchIndex ?? 0);
      const nodes = [
        nodeMap(t.master, 'master', lastIndex),
        ...t.replicas.map((m) => nodeMap(m, 'replica', m.matchIndex ?? 0)),
      ];
      return array([
        map([
          [bulk('slots'), array([integer(0), integer(SLOT_COUNT - 1)])],
          [bulk('nodes'), array(nodes)],
        ]),
      ]);
    },
  },
};
