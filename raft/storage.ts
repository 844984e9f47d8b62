/**
 * Raft stable storage: the read interface the pure core uses (modeled on etcd-io/raft
 * `storage.go`) and an in-memory implementation for tests, the simulation and the benchmark.
 *
 * Owns: the persisted log suffix after the latest snapshot, the HardState and that snapshot.
 * The core only READS a Storage; the driver WRITES it while handling a Ready (persist hard
 * state, snapshot and entries before sending messages: Raft Figure 2, "persistent state ... updated
 * on stable storage before responding to RPCs"). Reads are synchronous; the write side
 * (WritableStorage) stages synchronously and makes durable with the async sync().
 * Must never: import I/O, timers or commands; hold a reference to the core.
 */
import assert from 'node:assert/strict';
import { CompactedError, SnapshotOutOfDateError, UnavailableError } from './errors.js';
import { emptySnapshot, entrySize } from './messages.js';
import type { ConfState, Entry, HardState, NodeId, Snapshot } from './messages.js';

export interface Storage {
  /** The HardState and the membership to start from (the snapshot's ConfState). */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), at most `maxBytes` of them by `entrySize` but always at least one.
   * Throws CompactedError if lo <= snapshot index, UnavailableError if hi > lastIndex + 1.
   * The returned array is the caller's; the entries themselves are shared and immutable.
   */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /** Term of the entry at index; the snapshot index is allowed. Throws CompactedError / UnavailableError. */
  term(index: number): number;
  /** First index still in the log: snapshot index + 1. */
  firstIndex(): number;
  /** Last index in the log (the snapshot index when the log is empty). */
  lastIndex(): number;
  /** The latest snapshot (the empty one at index 0 for a fresh log). */
  snapshot(): Snapshot;
}

/**
 * The write side of stable storage, used by the driver while it handles a Ready and
 * implemented by MemoryStorage and FileStorage. Writes are STAGED: the read methods above see
 * them at once (the core reads its own unsynced entries), but they are durable only once a
 * later `sync()` resolves. The driver calls `sync()` once per Ready, before it sends messages,
 * votes or counts itself toward commit (Raft Figure 2). A failed write or sync makes a durable
 * implementation fail-stop: every later write throws a StorageError.
 */
export interface WritableStorage extends Storage {
  /** Staged; entries contiguous and ascending; a conflicting stored suffix is truncated first (§5.3). */
  append(entries: readonly Entry[]): void;
  /** Staged. */
  setHardState(hs: HardState): void;
  /** Staged; replaces the whole log with the snapshot. Throws SnapshotOutOfDateError if not newer. */
  applySnapshot(s: Snapshot): void;
  /** The membership in force at the applied index (for restarts); cleared by a newer snapshot. */
  setConfState(cs: ConfState): void;
  /** Records a snapshot the application took at an applied `index`; keeps the log. */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot;
  /**
   * Optional: makes the data of a coming createSnapshot(index, confState, data) durable ahead
   * of it, outside sync() (so a large snapshot written by sync() does not hold back the group
   * commits queued behind it). Nothing refers to it until createSnapshot is synced. Rejects on
   * a write error without failing the storage (the snapshot is just not taken).
   */
  prepareSnapshot?(index: number, confState: ConfState, data: Uint8Array): Promise<void>;
  /** Drops entries <= index (index <= snapshot index). */
  compact(index: number): void;
  /** Makes everything staged so far durable (one group commit); concurrent calls coalesce. */
  sync(): Promise<void>;
  /** Syncs nothing more; releases files. No call is allowed after it. */
  close(): Promise<void>;
}

/**
 * Storage in memory. As in etcd, the log is kept from a compaction point: `ents[i]` has index
 * compactIndex + 1 + i, and `compactTerm` is the term at compactIndex. `createSnapshot` records
 * a snapshot but keeps the log (slow followers can still catch up from entries); `compact`
 * then drops entries up to the snapshot index. Appends at the end push in place, so a long run
 * of appends costs O(entries). Bounded by the driver, which compacts after snapshots.
 */
export class MemoryStorage implements WritableStorage {
  private hardState: HardState = { term: 0, vote: null, commit: 0 };
  private snap: Snapshot;
  private ents: Entry[] = [];
  private compactIndex = 0;
  private compactTerm = 0;
  private confState: ConfState | null = null;

  /** `peers`: the initial membership of a fresh cluster (stored as the index-0 snapshot's ConfState). */
  constructor(peers?: { voters: readonly NodeId[]; learners?: readonly NodeId[] }) {
    this.snap = emptySnapshot({ voters: [...(peers?.voters ?? [])], learners: [...(peers?.learners ?? [])] });
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.confState ?? this.snap.metadata.confState };
  }

  /**
   * Records the membership in force at the applied index (what `applyConfChange` returned), so
   * a restart that passes `applied` starts from it; cleared by a newer snapshot.
   */
  setConfState(cs: ConfState): void {
    this.confState = { voters: [...cs.voters], learners: [...cs.learners] };
  }

  entries(lo: number, hi: number, maxBytes: number = Infinity): Entry[] {
    const offset = this.compactIndex;
    if (lo <= offset) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1);
    if (lo >= hi) return [];
    const start = lo - offset - 1;
    let end = hi - offset - 1;
    if (maxBytes !== Infinity) {
      let size = 0;
      for (let i = start; i < end; i++) {
        size += entrySize(this.ents[i]!);
        if (size > maxBytes && i > start) {
          end = i;
          break;
        }
      }
    }
    return this.ents.slice(start, end);
  }

  term(index: number): number {
    const offset = this.compactIndex;
    if (index < offset) throw new CompactedError(index);
    if (index === offset) return this.compactTerm;
    const e = this.ents[index - offset - 1];
    if (e === undefined) throw new UnavailableError(index);
    return e.term;
  }

  /** First index still in the log: the compaction point + 1 (snapshot index + 1 after compact). */
  firstIndex(): number {
    return this.compactIndex + 1;
  }

  lastIndex(): number {
    return this.compactIndex + this.ents.length;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** The HardState last stored (for tests and restarts). */
  getHardState(): HardState {
    return this.hardState;
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  /**
   * Appends entries (contiguous, ascending). Entries already compacted are skipped; any
   * stored suffix from the first new index on is replaced (a new leader's log wins, Raft §5.3).
   * A gap after lastIndex is a broken invariant.
   */
  append(entries: readonly Entry[]): void {
    const n = entries.length;
    if (n === 0) return;
    const offset = this.compactIndex;
    let from = 0;
    const first = entries[0]!.index;
    if (first <= offset) {
      from = offset + 1 - first;
      if (from >= n) return;
    }
    const start = entries[from]!.index;
    // Per append: the message is built only on failure.
    if (start > this.lastIndex() + 1)
      assert.fail(`raft storage: gap, appending ${start} after ${this.lastIndex()}`);
    const keep = start - offset - 1;
    if (keep < this.ents.length) this.ents.length = keep;
    for (let i = from; i < n; i++) this.ents.push(entries[i]!);
  }

  /**
   * Replaces the whole log with a snapshot received from the leader (Ready.snapshot).
   * Throws SnapshotOutOfDateError if it is not newer than the snapshot held.
   */
  applySnapshot(s: Snapshot): void {
    if (s.metadata.index <= this.snap.metadata.index) throw new SnapshotOutOfDateError(s.metadata.index);
    this.snap = s;
    this.confState = null;
    this.ents = [];
    this.compactIndex = s.metadata.index;
    this.compactTerm = s.metadata.term;
  }

  /**
   * Records a snapshot the application took at `index`, which it has applied (so index <=
   * commit <= lastIndex), with the membership in force there. Keeps the log: call `compact`
   * to drop it. Throws SnapshotOutOfDateError if not newer than the snapshot held.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) throw new SnapshotOutOfDateError(index);
    assert.ok(
      index <= this.lastIndex(),
      `raft storage: snapshot ${index} beyond last index ${this.lastIndex()}`,
    );
    this.snap = {
      metadata: {
        index,
        term: this.term(index),
        confState: { voters: [...confState.voters], learners: [...confState.learners] },
      },
      data,
    };
    return this.snap;
  }

  /**
   * Drops entries <= index. The index must be covered by the snapshot (index <= snapshot
   * index), so the log always continues a snapshot a lagging follower can be sent. Compacting
   * at or below the current compaction point is a no-op.
   */
  compact(index: number): void {
    if (index <= this.compactIndex) return;
    assert.ok(
      index <= this.snap.metadata.index,
      `raft storage: compact ${index} beyond snapshot ${this.snap.metadata.index}`,
    );
    const term = this.term(index);
    this.ents = this.ents.slice(index - this.compactIndex);
    this.compactIndex = index;
    this.compactTerm = term;
  }

  /** Nothing to make durable in memory: resolves at once. */
  sync(): Promise<void> {
    return Promise.resolve();
  }

  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
