/**
 * RAFT.SNAPSHOT: takes a snapshot of this node's state machine now and compacts its log up to
 * it (normally done every --snapshot-entries entries). Runs on any node: snapshots are local.
 *
 * Format:
 *   RAFT.SNAPSHOT
 *
 * Reply:
 *   Integer: the log index the snapshot covers, once it is durable.
 */
import { integer, type Reply } from '../reply.js';
import { NO_KEYS, type CommandSpec } from '../spec.js';
import { requireCluster } from './topology.js';

export const raftSnapshot: CommandSpec = {
  name: 'raft.snapshot',
  arity: 1,
  flags: ['admin', 'noscript'],
  aclCategories: ['@admin', '@slow', '@dangerous'],
  keys: NO_KEYS,
  docs: {
    summary: "Takes a snapshot of this node's state now and compacts its log.",
    since: '0.1.0',
    group: 'server',
    complexity: 'O(N) where N is the size of the state',
    format: 'RAFT.SNAPSHOT',
    reply: 'Integer: the log index the snapshot covers, once it is durable.',
  },
  handler: {
    kind: 'local',
    async run(ctx): Promise<Reply> {
      return integer(await requireCluster(ctx).snapshotNow());
    },
  },
};
