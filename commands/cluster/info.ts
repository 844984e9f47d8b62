/**
 * CLUSTER INFO: the cluster's state in Redis Cluster's `field:value` text.
 *
 * Format:
 *   CLUSTER INFO
 *
 * Reply:
 *   Bulk string (verbatim in RESP3), CRLF-separated: cluster_state (ok while a leader is known,
 *   fail otherwise), cluster_slots_assigned (16384), cluster_slots_ok / cluster_slots_fail
 *   (16384 / 0 with a leader, 0 / 16384 without), cluster_slots_pfail (0), cluster_known_nodes
 *   (members, learners included), cluster_size (1 with a leader, else 0), cluster_current_epoch
 *   and cluster_my_epoch (the Raft term), total_cluster_links_buffer_limit_exceeded (0). Gossip
 *   message counters are left out: Concord does not gossip.
 */
import { verbatim, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import type { ClusterView } from '../../server/cluster-view.js';
import { SLOT_COUNT } from './slot.js';
import { requireCluster, topology } from './topology.js';

/** CLUSTER INFO's lines (without line ends). */
export function clusterInfoLines(cluster: ClusterView): string[] {
  const t = topology(cluster);
  const term = cluster.raftInfo().term;
  const ok = t.leaderKnown;
  return [
    `cluster_state:${ok ? 'ok' : 'fail'}`,
    `cluster_slots_assigned:${SLOT_COUNT}`,
    `cluster_slots_ok:${ok ? SLOT_COUNT : 0}`,
    'cluster_slots_pfail:0',
    `cluster_slots_fail:${ok ? 0 : SLOT_COUNT}`,
    `cluster_known_nodes:${t.members.length}`,
    `cluster_size:${ok ? 1 : 0}`,
    `cluster_current_epoch:${term}`,
    `cluster_my_epoch:${term}`,
    'total_cluster_links_buffer_limit_exceeded:0',
  ];
}

export const clusterInfo: CommandSpec = {
  name: 'cluster|info',
  arity: 2,
  flags: ['loading', 'stale'],
  aclCategories: ['@slow'],
  keys: NO_KEYS,
  tips: ['nondeterministic_output'],
  docs: {
    summary: 'Returns information about the state of a node.',
    since: '3.0.0',
    group: 'server',
    complexity: 'O(1)',
    format: 'CLUSTER INFO',
    reply:
      'Bulk string (verbatim in RESP3) of `field:value` lines: cluster_state ok only while a leader is known, 16384 slots assigned, cluster_known_nodes, cluster_size, epochs = the Raft term.',
  },
  handler: {
    kind: 'local',
    run(ctx): Reply {
      return verbatim(
        clusterInfoLines(requireCluster(ctx))
          .map((l) => l + '\r\n')
          .join(''),
      );
    },
  },
};
