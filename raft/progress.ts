/**
 * The leader's view of each peer (modeled on etcd-io/raft `tracker/`): match and next index
 * (Figure 2: matchIndex[], nextIndex[]), the flow-control state (probe / replicate /
 * snapshot, etcd's design of pipelined AppendEntries, thesis §10.2.1), a bounded ring of
 * in-flight App messages, and the membership (voters and learners, thesis §4.2.1).
 *
 * Owns: per-peer replication progress and the configuration in force. Must never: send
 * messages or touch the log (the core decides), grow without bound (inflights are a ring of
 * maxInflightMsgs), count learners toward quorum, or import I/O.
 */
import assert from 'node:assert/strict';
import type { ConfState, NodeId } from './messages.js';
import { majorityCommitIndex, voteResult } from './quorum.js';
import type { VoteResult } from './quorum.js';

export enum ProgressState {
  /** One App per heartbeat interval until the follower's match is found. */
  Probe = 'probe',
  /** Optimistic pipelining: next advances on send, up to maxInflightMsgs unacknowledged. */
  Replicate = 'replicate',
  /** A snapshot was sent; wait for the follower to acknowledge it. */
  Snapshot = 'snapshot',
}

/** A ring buffer of the last index of each in-flight App message (bounded by capacity). */
export class Inflights {
  private readonly buffer: Float64Array;
  private start = 0;
  count = 0;

  constructor(readonly capacity: number) {
    assert.ok(capacity >= 1, 'raft: maxInflightMsgs must be >= 1');
    this.buffer = new Float64Array(capacity);
  }

  full(): boolean {
    return this.count === this.capacity;
  }

  add(lastIndex: number): void {
    assert.ok(!this.full(), 'raft: inflights overflow');
    this.buffer[(this.start + this.count) % this.capacity] = lastIndex;
    this.count++;
  }

  /** Frees every in-flight message whose last index is <= index (acknowledged). */
  freeLE(index: number): void {
    while (this.count > 0 && this.buffer[this.start]! <= index) {
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  /** Frees the oldest one (a heartbeat answered while full: one of them was probably lost). */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this.count--;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state = ProgressState.Probe;
  /** Probe: an App was sent this heartbeat interval; wait for a response or the next heartbeat. */
  probeSent = false;
  /** Snapshot: the index of the snapshot sent. */
  pendingSnapshot = 0;
  /** Ticks spent in Snapshot state (the snapshot is re-sent after an election timeout). */
  snapshotTicks = 0;
  /** Heard from this peer since the last CheckQuorum round (§6.2 / thesis §9.6 checkQuorum). */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(
    next: number,
    maxInflight: number,
    public isLearner: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** An AppResp acknowledged index n. Returns false if it was stale. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < n + 1) this.next = n + 1;
    return updated;
  }

  /** Replicate: an App with entries up to n was sent. */
  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * An App whose prevIndex was `rejected` was refused; `matchHint` is the leader's computed
   * candidate for the follower's last matching index. Returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // Stale if it concerns an index already matched.
      if (rejected <= this.match) return false;
      // Probe from the follower's hint (its last plausible match), never below match + 1.
      this.next = Math.max(this.match + 1, Math.min(rejected, matchHint + 1));
      return true;
    }
    // Probe (or Snapshot): only the rejection of the App we last sent is meaningful.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), 1);
    this.probeSent = false;
    return true;
  }

  /** May the leader send an App with entries now? */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
      default: {
        const never: never = this.state;
        return never;
      }
    }
  }
}

/** The configuration in force plus everyone's Progress and the votes of the current election. */
export class ProgressTracker {
  voters: NodeId[] = [];
  learners: NodeId[] = [];
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();

  constructor(private readonly maxInflight: number) {}

  /** Replaces the membership; keeps existing progress, creates new entries at `next`. */
  setConfig(cs: ConfState, next: number): void {
    this.voters = [...cs.voters];
    this.learners = [...cs.learners];
    const keep = new Set<NodeId>([...this.voters, ...this.learners]);
    for (const id of [...this.progress.keys()]) if (!keep.has(id)) this.progress.delete(id);
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (pr === undefined) this.progress.set(id, new Progress(next, this.maxInflight, false));
      else pr.isLearner = false;
    }
    for (const id of this.learners) {
      const pr = this.progress.get(id);
      if (pr === undefined) this.progress.set(id, new Progress(next, this.maxInflight, true));
      else pr.isLearner = true;
    }
  }

  confState(): ConfState {
    return { voters: [...this.voters], learners: [...this.learners] };
  }

  isVoter(id: NodeId): boolean {
    return this.voters.includes(id);
  }

  isLearner(id: NodeId): boolean {
    return this.learners.includes(id);
  }

  /** Resets every peer's progress (a new leader: next = lastIndex + 1, match = 0). */
  resetAll(next: number): void {
    for (const [id, pr] of this.progress) {
      this.progress.set(id, new Progress(next, this.maxInflight, pr.isLearner));
    }
  }

  /** The index replicated on a majority of voters. */
  committed(): number {
    return majorityCommitIndex(this.voters, (id) => this.progress.get(id)?.match);
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Records a vote (the first one from each voter counts) and returns the tally. */
  recordVote(id: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.voters, this.votes);
  }

  /**
   * CheckQuorum: did a majority of voters (counting `self`) talk to us since the last round?
   * Resets recentActive for the next round.
   */
  quorumActive(self: NodeId): boolean {
    let active = 0;
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (pr === undefined) continue;
      if (id === self || pr.recentActive) active++;
    }
    for (const [id, pr] of this.progress) pr.recentActive = id === self;
    return active >= Math.floor(this.voters.length / 2) + 1;
  }
}
