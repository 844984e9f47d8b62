/**
 * Typed operating errors of the Raft layer (house style, error kind 2). They are thrown to the
 * caller of the core or of a Storage and turned into client replies only in `server/errors.ts`.
 *
 * This module owns only error classes. It must never import I/O or commands. Broken invariants
 * are not errors: the core asserts them with `node:assert` and crashes (kind 3).
 */
import type { NodeId } from './messages.js';

/** Storage: the requested index precedes the first index still held (it is in a snapshot). */
export class CompactedError extends Error {
  override readonly name = 'CompactedError';
  constructor(readonly index: number) {
    super(`raft: index ${index} is compacted`);
  }
}

/** Storage: the requested index is beyond the last index held. */
export class UnavailableError extends Error {
  override readonly name = 'UnavailableError';
  constructor(readonly index: number) {
    super(`raft: index ${index} is unavailable`);
  }
}

/** Storage: a snapshot older than the one already held was offered. */
export class SnapshotOutOfDateError extends Error {
  override readonly name = 'SnapshotOutOfDateError';
  constructor(readonly index: number) {
    super(`raft: snapshot at ${index} is older than the one held`);
  }
}

/** Core: the operation needs the leader; `leader` is the best known hint (null if none). */
export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
  constructor(readonly leader: NodeId | null) {
    super(
      leader === null ? 'raft: not the leader, no leader known' : `raft: not the leader, leader is ${leader}`,
    );
  }
}

/**
 * Core: the leader refused the proposal without appending it: a leadership transfer is in
 * progress (thesis §3.10), a membership change is already pending (§4.1), the uncommitted-bytes
 * bound is reached, or the leader was removed from the configuration. Safe to retry later.
 */
export class ProposalDroppedError extends Error {
  override readonly name = 'ProposalDroppedError';
  constructor(readonly reason: string) {
    super(`raft: proposal dropped: ${reason}`);
  }
}

/**
 * Driver: the proposal was appended by this node as leader, but leadership was lost before the
 * node saw it commit (it stepped down, or a different entry took its index). The entry may
 * still commit under a later leader: the OUTCOME IS UNKNOWN. Retry only idempotent writes.
 */
export class LeadershipLostError extends Error {
  override readonly name = 'LeadershipLostError';
  constructor(
    readonly index: number,
    readonly leader: NodeId | null,
  ) {
    super(`raft: leadership lost before entry ${index} was applied, outcome unknown`);
  }
}

/** Driver: the proposal was not applied within `timeoutMs`. The outcome is unknown. */
export class ProposalTimeoutError extends Error {
  override readonly name = 'ProposalTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`raft: proposal not applied within ${timeoutMs} ms, outcome unknown`);
  }
}

/** Driver: a linearizable read barrier (ReadIndex) was not confirmed within `timeoutMs`. Safe to retry. */
export class ReadTimeoutError extends Error {
  override readonly name = 'ReadTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`raft: read index not confirmed within ${timeoutMs} ms`);
  }
}

/** Driver: the node was stopped (or failed) while the operation was pending. Outcome unknown for writes. */
export class NodeStoppedError extends Error {
  override readonly name = 'NodeStoppedError';
  constructor(readonly reason: string) {
    super(`raft: node stopped: ${reason}`);
  }
}

/**
 * Core: this node's log ends before entries it has acknowledged (a disk lost its fsynced tail,
 * or the data directory was replaced under the same id). Its acknowledgements counted toward
 * commits, so it must not rejoin as if nothing happened: it must stop, and be wiped and re-added
 * (a new member that acknowledged nothing). Found two ways: on start, when the stored commit
 * index is beyond the stored log; at run time, when a leader's heartbeat carries a commit index
 * beyond the log (a leader sends at most what this node acknowledged: `min(match, commit)`).
 * Not detectable: a loss that no stored commit covers and no leader of the current term has
 * seen acknowledged (a new leader starts with match 0 and repairs the log as for a lagging node).
 */
export class LostEntriesError extends Error {
  override readonly name = 'LostEntriesError';
  constructor(
    /** First missing index (the log's last index + 1). */
    readonly first: number,
    /** Highest index known to have been acknowledged (or committed) by this node. */
    readonly last: number,
    /** Who says so: the stored hard state, or the leader whose heartbeat revealed it. */
    readonly source:
      | { readonly kind: 'stored-commit' }
      | { readonly kind: 'leader'; readonly leader: NodeId; readonly term: number },
  ) {
    super(
      `lost acknowledged entries ${first}..${last}: this node's log is behind what it acknowledged; ` +
        'wipe its data directory and re-add it to the cluster (docs/operations.md#replace-a-node)',
    );
  }

  /** What revealed the loss, for logs: `the stored commit index` or `leader n1 (term 7)`. */
  get revealedBy(): string {
    return this.source.kind === 'stored-commit'
      ? 'the stored commit index'
      : `the commit index in a heartbeat of leader ${this.source.leader} (term ${this.source.term})`;
  }
}
