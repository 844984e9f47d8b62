/**
 * The Raft log as the core sees it (modeled on etcd-io/raft `log.go` + `log_unstable.go`):
 * a stable prefix in Storage (persisted by the driver) followed by an unstable suffix (entries
 * and possibly a snapshot the core has accepted but the driver has not yet persisted), with
 * the commit and applied indexes.
 *
 * Raft §5.3 (log replication, Log Matching), §5.4.1 (up-to-date check), Figure 2.
 * Owns: the unstable suffix, `committed`, `applied`. Must never: write to Storage (the
 * driver does, from Ready.entries), lower `committed` (except via the tests-only bug flag in
 * the core), or import I/O, timers or commands.
 *
 * Invariants: applied <= applying <= committed <= lastIndex; unstable entries start at `offset` and
 * continue without gaps after the stable log or the unstable snapshot.
 */
import assert from 'node:assert/strict';
import { CompactedError } from './errors.js';
import { entrySize } from './messages.js';
import type { Entry, Snapshot } from './messages.js';
import type { Storage } from './storage.js';

/** Term returned by RaftLog.term for an index not in the log (compacted or beyond the end). */
export const NO_TERM = -1;

export class RaftLog {
  /** Unstable snapshot: accepted from the leader, not yet persisted. */
  unstableSnapshot: Snapshot | null = null;
  /** Unstable entries; unstableEntries[i] has index offset + i. */
  private unstableEntries: Entry[] = [];
  private offset: number;
  /**
   * Last unstable index already handed out to be persisted (in a Ready the driver has not yet
   * acknowledged; etcd's `offsetInProgress`); offset - 1 when none. Entries above it are new.
   */
  private inProgress: number;
  /** The unstable snapshot was handed out and is not yet acknowledged. */
  snapshotInProgress = false;
  /** Highest committed index handed out to be applied (applied <= applying <= committed). */
  applying: number;
  /** Highest index known to be committed (Figure 2: commitIndex). */
  committed: number;
  /** Highest index the application has applied (Figure 2: lastApplied). */
  applied: number;

  constructor(readonly storage: Storage) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.offset = last + 1;
    this.inProgress = last;
    this.committed = first - 1;
    this.applied = first - 1;
    this.applying = first - 1;
  }

  firstIndex(): number {
    if (this.unstableSnapshot !== null) return this.unstableSnapshot.metadata.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    const n = this.unstableEntries.length;
    if (n > 0) return this.offset + n - 1;
    if (this.unstableSnapshot !== null) return this.unstableSnapshot.metadata.index;
    return this.storage.lastIndex();
  }

  /** Last index of the stable (driver-acknowledged) log: entries above it are not yet persisted. */
  stableLastIndex(): number {
    if (this.unstableEntries.length > 0) return this.offset - 1;
    if (this.unstableSnapshot !== null) return 0;
    return this.storage.lastIndex();
  }

  /** Term of the entry at index (the index just before firstIndex allowed), or NO_TERM if unknown. */
  term(index: number): number {
    if (index >= this.offset) {
      const e = this.unstableEntries[index - this.offset];
      return e === undefined ? NO_TERM : e.term;
    }
    const snap = this.unstableSnapshot;
    if (snap !== null) {
      return index === snap.metadata.index ? snap.metadata.term : NO_TERM;
    }
    const dummy = this.storage.firstIndex() - 1;
    if (index < dummy || index > this.storage.lastIndex()) return NO_TERM;
    return this.storage.term(index);
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert.ok(t !== NO_TERM, 'raft log: no term for last index');
    return t;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Follower side of AppendEntries (Figure 2 receiver rules 2-5): if the entry at prevIndex has
   * prevTerm, truncate any conflicting suffix, append the new entries and advance commit to
   * min(leaderCommit, index of last new entry). Returns the last new index, or -1 on mismatch.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, ents: readonly Entry[]): number {
    if (!this.matchTerm(prevIndex, prevTerm)) return -1;
    const lastNew = prevIndex + ents.length;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      assert.ok(
        conflict > this.committed,
        `raft log: conflict at ${conflict} <= committed ${this.committed}`,
      );
      this.appendFrom(ents, conflict - ents[0]!.index);
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /** Leader side: appends entries after lastIndex. Returns the new last index. */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    assert.ok(ents[0]!.index - 1 >= this.committed, 'raft log: append below committed');
    this.appendFrom(ents, 0);
    return this.lastIndex();
  }

  /** Leader fast path: one entry at lastIndex + 1 (no array allocation). */
  appendOne(e: Entry): void {
    const n = this.unstableEntries.length;
    if (n > 0 || this.unstableSnapshot !== null || e.index === this.offset) {
      assert.equal(e.index, this.offset + n, 'raft log: appendOne out of order');
      this.unstableEntries.push(e);
    } else {
      this.appendFrom([e], 0);
    }
  }

  /** Truncates the unstable suffix at ents[from].index and appends ents[from..]. */
  private appendFrom(ents: readonly Entry[], from: number): void {
    const after = ents[from]!.index;
    const n = this.unstableEntries.length;
    if (after === this.offset + n) {
      // The common case: a direct continuation.
    } else if (after <= this.offset) {
      // Replaces the unstable entries entirely (and hides the stable ones from `after` on).
      this.offset = after;
      this.unstableEntries = [];
      this.inProgress = after - 1;
    } else {
      this.unstableEntries.length = after - this.offset;
      // Entries handed out from `after` on were replaced: the new ones must be handed out too.
      if (this.inProgress >= after) this.inProgress = after - 1;
    }
    for (let i = from; i < ents.length; i++) this.unstableEntries.push(ents[i]!);
  }

  /**
   * The index of the first entry whose term differs from ours (or that we lack), 0 if all
   * match. Entries must be contiguous.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking (etcd `findConflictByTerm`): the largest index <= index whose term is
   * <= term. A leader whose entry at `index` has `term` can skip every follower entry above it.
   * Stops at the first index whose term is unknown (compacted).
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    for (; i > 0; i--) {
      const t = this.term(i);
      if (t === NO_TERM || t <= term) return i;
    }
    return 0;
  }

  commitTo(index: number): void {
    if (index > this.committed) {
      if (index > this.lastIndex())
        assert.fail(`raft log: commit ${index} beyond last index ${this.lastIndex()}`);
      this.committed = index;
    }
  }

  /** Sets committed without the monotonicity check: ONLY for the commitRegression bug flag. */
  forceCommit(index: number): void {
    this.committed = Math.min(index, this.lastIndex());
  }

  /**
   * Leader commit rule (Raft §5.4.2, Figure 8): commit up to `index` only if the entry there is
   * of the leader's current term. `ignoreTerm` is the commitOldTermEntries bug flag.
   */
  maybeCommit(index: number, term: number, ignoreTerm = false): boolean {
    if (index > this.committed && (ignoreTerm || this.term(index) === term)) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  /** The application applied entries up to index (handed out when they were committed). */
  appliedTo(index: number): void {
    if (index > this.lastIndex())
      assert.fail(`raft log: applied ${index} beyond last index ${this.lastIndex()}`);
    if (index > this.applied) this.applied = index;
    if (this.applied > this.applying) this.applying = this.applied;
  }

  /** A snapshot at `index` was installed: everything up to it counts as applied. */
  appliedSnapshot(index: number): void {
    if (index > this.applied) this.applied = index;
    if (index > this.applying) this.applying = index;
  }

  /**
   * Entries in [lo, hi), at most maxBytes (but at least one). Returns null if lo is compacted.
   * The array is fresh; the entries are shared and immutable.
   */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] | null {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) return null;
    if (hi > this.lastIndex() + 1)
      assert.fail(`raft log: slice [${lo}, ${hi}) beyond last ${this.lastIndex()}`);
    let out: Entry[];
    if (lo < this.offset) {
      const stableHi = Math.min(hi, this.offset);
      try {
        out = this.storage.entries(lo, stableHi, maxBytes);
      } catch (err) {
        if (err instanceof CompactedError) return null;
        throw err;
      }
      if (out.length < stableHi - lo || hi <= this.offset) return out;
      // Continue with unstable entries while the size budget lasts.
      let size = 0;
      if (maxBytes !== Infinity) for (const e of out) size += entrySize(e);
      for (let i = 0; i < hi - this.offset; i++) {
        const e = this.unstableEntries[i]!;
        if (maxBytes !== Infinity) {
          size += entrySize(e);
          if (size > maxBytes) break;
        }
        out.push(e);
      }
      return out;
    }
    const start = lo - this.offset;
    let end = hi - this.offset;
    if (maxBytes !== Infinity) {
      let size = 0;
      for (let i = start; i < end; i++) {
        size += entrySize(this.unstableEntries[i]!);
        if (size > maxBytes && i > start) {
          end = i;
          break;
        }
      }
    }
    return this.unstableEntries.slice(start, end);
  }

  /** Entries from lo to the end, at most maxBytes (at least one); null if lo is compacted. */
  entriesFrom(lo: number, maxBytes: number): Entry[] | null {
    const last = this.lastIndex();
    if (lo > last) return [];
    return this.slice(lo, last + 1, maxBytes);
  }

  /** The unstable entries not yet handed out, for Ready.entries (a fresh array). */
  unstable(): Entry[] {
    const from = this.inProgress + 1 - this.offset;
    return from <= 0 ? this.unstableEntries.slice() : this.unstableEntries.slice(from);
  }

  /** Are there unstable entries not yet handed out? */
  hasUnstable(): boolean {
    return this.offset + this.unstableEntries.length - 1 > this.inProgress;
  }

  /** The unstable snapshot, if it was not handed out yet. */
  newSnapshot(): Snapshot | null {
    return this.snapshotInProgress ? null : this.unstableSnapshot;
  }

  /** Everything unstable now was handed out in a Ready (see `unstable`, `newSnapshot`). */
  acceptUnstable(): void {
    this.inProgress = this.offset + this.unstableEntries.length - 1;
    if (this.unstableSnapshot !== null) this.snapshotInProgress = true;
  }

  /** Committed entries not yet handed out to be applied, at most maxBytes (at least one). */
  nextCommitted(maxBytes: number): Entry[] {
    const lo = Math.max(this.applying + 1, this.firstIndex());
    const hi = this.committed + 1;
    if (lo >= hi) return [];
    const out = this.slice(lo, hi, maxBytes);
    if (out === null) assert.fail(`raft log: committed entries from ${lo} are compacted`);
    return out;
  }

  hasNextCommitted(): boolean {
    return this.committed > Math.max(this.applying, this.firstIndex() - 1);
  }

  /** The driver persisted entries up to (index, term): drop them from the unstable suffix. */
  stableTo(index: number, term: number): void {
    if (index < this.offset) return;
    const e = this.unstableEntries[index - this.offset];
    if (e === undefined || e.term !== term) return;
    const drop = index + 1 - this.offset;
    if (drop === this.unstableEntries.length) this.unstableEntries = [];
    else this.unstableEntries = this.unstableEntries.slice(drop);
    this.offset = index + 1;
    if (this.inProgress < index) this.inProgress = index;
  }

  /** The driver persisted the unstable snapshot at index. */
  stableSnapTo(index: number): void {
    if (this.unstableSnapshot !== null && this.unstableSnapshot.metadata.index === index) {
      this.unstableSnapshot = null;
      this.snapshotInProgress = false;
    }
  }

  /** Replaces the log with a snapshot from the leader (Figure 13, InstallSnapshot). */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.offset = s.metadata.index + 1;
    this.inProgress = s.metadata.index;
    this.unstableEntries = [];
    this.unstableSnapshot = s;
    this.snapshotInProgress = false;
  }

  /** The latest snapshot: the unstable one, else the stored one. */
  snapshot(): Snapshot {
    return this.unstableSnapshot ?? this.storage.snapshot();
  }
}
