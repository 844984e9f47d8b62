/**
 * CLUSTER NODES: the cluster configuration as this node sees it, one line per member in Redis
 * Cluster's format:
 *   `<id> <host:port@peerPort> <flags> <master> <ping-sent> <pong-recv> <config-epoch>
 *    <link-state> [<slot range>]`
 *
 * Format:
 *   CLUSTER NODES
 *
 * Reply:
 *   Bulk string (verbatim in RESP3), one LF-terminated line per member: id is the SHA-1 of the
 *   member id; flags `myself` on the answering node, `master` for the leader (owning 0-16383),
 *   `slave` for the other members, `fail?` for a member this node has no live peer link to;
 *   master is the leader's id for replicas and `-` for the leader; ping-sent and pong-recv are
 *   0 (Concord keeps no gossip timestamps); config-epoch is the current Raft term; link-state is
 *   connected or disconnected. While no leader is known the answering node is shown as the
 *   master, as in CLUSTER SLOTS.
 */
import { verbatim, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import type { ClusterView, MemberInfo } from '../../server/cluster-view.js';
import { SLOT_COUNT } from './slot.js';
import { clusterNodeId, formatAddress, requireCluster, topology } from './topology.js';

function line(
  m: MemberInfo,
  role: 'master' | 'slave',
  masterId: string,
  epoch: number,
  slots: string,
): string {
  const flags = [m.self ? 'myself' : null, role, m.reachable ? null : 'fail?'].filter((f) => f !== null);
  const link = m.reachable ? 'connected' : 'disconnected';
  const fields = [
    clusterNodeId(m.id),
    formatAddress(m),
    flags.join(','),
    masterId,
    '0',
    '0',
    String(epoch),
    link,
  ];
  if (slots !== '') fields.push(slots);
  return fields.join(' ') + '\n';
}

/** The CLUSTER NODES text of a cluster view (exported for INFO-style reuse and specs). */
export function clusterNodesText(cluster: ClusterView): string {
  const t = topology(cluster);
  const epoch = cluster.raftInfo().term;
  // Only before this node has an address in the membership: nobody owns the slots.
  if (t.master === null) return t.members.map((m) => line(m, 'master', '-', epoch, '')).join('');
  const master = t.master;
  const masterId = clusterNodeId(master.id);
  return t.members
    .map((m) =>
      m === master
        ? line(m, 'master', '-', epoch, `0-${SLOT_COUNT - 1}`)
        : line(m, 'slave', masterId, epoch, ''),
    )
    .join('');
}

export const clusterNodes: CommandSpec = {
  name: 'cluster|nodes',
  arity: 2,
  flags: ['loading', 'stale'],
  aclCategories: ['@slow'],
  keys: NO_KEYS,
  tips: ['nondeterministic_output'],
  docs: {
    summary: 'Returns the cluster configuration for a node.',
    since: '3.0.0',
    group: 'server',
    complexity: 'O(N) where N is the total number of Cluster nodes',
    format: 'CLUSTER NODES',
    reply:
      'Bulk string (verbatim in RESP3): one line per member, `<id> <host:port@peerPort> <flags> <master> 0 0 <term> <link-state> [0-16383]`; the leader is the master owning every slot, the other members are its replicas (`slave`).',
  },
  handler: {
    kind: 'local',
    run(ctx): Reply {
      return verbatim(clusterNodesText(requireCluster(ctx)));
    },
  },
};
