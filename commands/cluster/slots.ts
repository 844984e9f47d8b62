/**
 * CLUSTER SLOTS: the slot ranges and the nodes serving them, the table ioredis `Cluster`,
 * node-redis `createCluster` and other cluster clients route by. Concord has one range,
 * 0-16383, served by the Raft leader as master with every other member as a replica, so
 * cluster clients send every command to the leader.
 *
 * Format:
 *   CLUSTER SLOTS
 *
 * Reply:
 *   Array of ranges, exactly Redis 7's shape: `[start, end, [host, port, node-id, {}], replica
 *   entries...]` (the fourth element of each node is an empty map, an empty array in RESP2).
 *   One range 0-16383. While no leader is known the answering node names itself master (it
 *   is alive and serves by waiting for a leader; see topology.ts), so cluster clients keep a
 *   live node and find the leader at their next refresh.
 */
import { array, bulk, integer, map, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import type { MemberInfo } from '../../server/cluster-view.js';
import { SLOT_COUNT } from './slot.js';
import { clusterNodeId, requireCluster, topology } from './topology.js';

function nodeEntry(m: MemberInfo): Reply {
  return array([bulk(m.host), integer(m.port), bulk(clusterNodeId(m.id)), map([])]);
}

export const clusterSlots: CommandSpec = {
  name: 'cluster|slots',
  arity: 2,
  flags: ['loading', 'stale'],
  aclCategories: ['@slow'],
  keys: NO_KEYS,
  tips: ['nondeterministic_output'],
  docs: {
    summary: 'Returns the mapping of cluster slots to nodes.',
    since: '3.0.0',
    group: 'server',
    complexity: 'O(N) where N is the total number of Cluster nodes',
    format: 'CLUSTER SLOTS',
    reply:
      'Array of `[start, end, [host, port, node-id, {}], replicas...]`: one range 0-16383 whose master is the Raft leader and whose replicas are the other members; while no leader is known, the answering node is named master.',
  },
  handler: {
    kind: 'local',
    run(ctx): Reply {
      const t = topology(requireCluster(ctx));
      if (t.master === null) return array([]);
      return array([
        array([integer(0), integer(SLOT_COUNT - 1), nodeEntry(t.master), ...t.replicas.map(nodeEntry)]),
      ]);
    },
  },
};
