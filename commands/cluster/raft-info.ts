/**
 * RAFT.INFO and the `raft` section of INFO: this node's Raft state in Redis INFO's text format
 * (RedisRaft's RAFT.INFO is the model). Only figures the ClusterView really has: the log's
 * size is given in entries (the view has no byte count); fsync latency as last/p50/p99/max
 * over the view's recent window (no mean).
 *
 * Format:
 *   RAFT.INFO
 *
 * Reply:
 *   Bulk string (verbatim in RESP3): "# Raft" then `field:value` lines, CRLF-separated:
 *   raft_node_id, raft_role (leader, follower, candidate, pre-candidate), raft_current_term,
 *   raft_leader_id (empty while none), raft_commit_index, raft_applied_index,
 *   raft_log_first_index, raft_log_last_index, raft_log_entries, raft_snapshot_last_index,
 *   raft_voters, raft_learners (comma-separated ids), raft_num_nodes, raft_pending_proposals,
 *   raft_pending_reads, raft_fsync_count, raft_fsync_last_ms / _p50_ms / _p99_ms / _max_ms
 *   (once a sync happened), the command executor's queues (server/raft-executor.ts: a command
 *   stuck on this node shows here while Raft looks healthy): executor_handoff_idle (0|1),
 *   executor_writes_in_flight, executor_oldest_write_ms (0 when none),
 *   executor_read_group_pending, executor_forward_queued, executor_forward_batches_in_flight,
 *   executor_time_waiters, executor_time_in_flight (0|1), then one `raft_nodeN:` line per
 *   other member: id, addr (host:port@peerport), voter (yes|no), match_index and lag (the
 *   leader's view; only on the leader), reachable (yes|no).
 */
import type { ClusterView, MemberInfo } from '../../server/cluster-view.js';
import { verbatim, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import { formatAddress, requireCluster } from './topology.js';

function ms(value: number): string {
  return value.toFixed(3);
}

/** The `raft` INFO section's lines (no header, no line ends). */
export function raftInfoLines(cluster: ClusterView): string[] {
  const info = cluster.raftInfo();
  const entries = info.lastIndex >= info.firstIndex ? info.lastIndex - info.firstIndex + 1 : 0;
  const lines = [
    `raft_node_id:${info.id}`,
    `raft_role:${info.role}`,
    `raft_current_term:${info.term}`,
    `raft_leader_id:${info.leader ?? ''}`,
    `raft_commit_index:${info.commitIndex}`,
    `raft_applied_index:${info.appliedIndex}`,
    `raft_log_first_index:${info.firstIndex}`,
    `raft_log_last_index:${info.lastIndex}`,
    `raft_log_entries:${entries}`,
    `raft_snapshot_last_index:${info.snapshotIndex}`,
    `raft_voters:${info.voters.join(',')}`,
    `raft_learners:${info.learners.join(',')}`,
    `raft_num_nodes:${info.voters.length + info.learners.length}`,
    `raft_pending_proposals:${info.pendingProposals}`,
    `raft_pending_reads:${info.pendingReads}`,
    `raft_fsync_count:${info.fsync.count}`,
  ];
  const f = info.fsync;
  if (f.lastMs !== null) lines.push(`raft_fsync_last_ms:${ms(f.lastMs)}`);
  if (f.p50Ms !== null) lines.push(`raft_fsync_p50_ms:${ms(f.p50Ms)}`);
  if (f.p99Ms !== null) lines.push(`raft_fsync_p99_ms:${ms(f.p99Ms)}`);
  if (f.maxMs !== null) lines.push(`raft_fsync_max_ms:${ms(f.maxMs)}`);
  const e = info.executor;
  lines.push(
    `executor_handoff_idle:${e.handOffIdle ? 1 : 0}`,
    `executor_writes_in_flight:${e.writesInFlight}`,
    `executor_oldest_write_ms:${e.oldestWriteMs ?? 0}`,
    `executor_read_group_pending:${e.readGroupPending}`,
    `executor_forward_queued:${e.forwardQueued}`,
    `executor_forward_batches_in_flight:${e.forwardBatchesInFlight}`,
    `executor_time_waiters:${e.timeWaiters}`,
    `executor_time_in_flight:${e.timeInFlight ? 1 : 0}`,
  );
  const members = new Map<string, MemberInfo>(cluster.members().map((m) => [m.id, m]));
  info.peers.forEach((peer, i) => {
    const m = members.get(peer.id);
    const fields = [`id=${peer.id}`];
    if (m !== undefined) fields.push(`addr=${formatAddress(m)}`, `voter=${m.voter ? 'yes' : 'no'}`);
    if (peer.matchIndex !== null) fields.push(`match_index=${peer.matchIndex}`);
    if (peer.lag !== null) fields.push(`lag=${peer.lag}`);
    fields.push(`reachable=${peer.reachable ? 'yes' : 'no'}`);
    lines.push(`raft_node${i}:${fields.join(',')}`);
  });
  return lines;
}

export const raftInfo: CommandSpec = {
  name: 'raft.info',
  arity: 1,
  flags: ['admin', 'loading', 'stale'],
  aclCategories: ['@admin', '@slow', '@dangerous'],
  keys: NO_KEYS,
  tips: ['nondeterministic_output'],
  docs: {
    summary: "Returns this node's Raft state (the same text as INFO raft).",
    since: '0.1.0',
    group: 'server',
    complexity: 'O(N) where N is the number of members',
    format: 'RAFT.INFO',
    reply:
      'Bulk string (verbatim in RESP3): "# Raft" and `field:value` lines: role, term, leader, commit/applied index, log first/last index and entries, snapshot index, voters, learners, fsync count and latency, the command executor queues (executor_*), one `raft_nodeN:` line per peer (addr, voter, match_index, lag, reachable).',
  },
  handler: {
    kind: 'local',
    run(ctx): Reply {
      const lines = raftInfoLines(requireCluster(ctx));
      return verbatim('# Raft\r\n' + lines.map((l) => l + '\r\n').join(''));
    },
  },
};
