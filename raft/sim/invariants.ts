/**
 * Incremental checks of Raft's safety properties over a simulated run (paper §5.2-§5.4,
 * Figure 3; thesis §3.6 and §6.4 for linearizable reads).
 *
 * The cluster reports observations (roles, persisted appends, commits, applies, snapshot
 * installs, reads) as they happen; each one is checked against global registries in time
 * proportional to the observation, never by rescanning every log at every step:
 *   - Election Safety: a registry term -> leader.
 *   - Log Matching: a registry (index, term) -> (entry, term at index-1), filled from every
 *     persisted append. If every entry agrees on its content and its predecessor's term,
 *     equal (index, term) implies equal prefixes, by induction on the index (§5.3).
 *   - Leader Completeness: a leader's log is checked against all entries committed in
 *     earlier terms once, when it first persists as leader, then each newly committed entry
 *     is checked against the leaders of later terms already in office (§5.4.3).
 *   - State Machine Safety: a registry index -> committed term, applied entry and the hash
 *     of the applied prefix; every node's commit, apply and snapshot install must agree.
 *   - Commit monotonicity: per node, in memory and in what was persisted (across restarts).
 *   - Read linearizability: a ReadIndex read must observe every write acknowledged to a
 *     client before the read was issued (real-time order in sim time).
 *
 * The registries grow with the log of one run (at most a few entries per step, so bounded by
 * the run's step count); a checker lives for one run. Pending reads are bounded explicitly.
 *
 * This module owns only the registries. It must never reach into a core or a network, and
 * never catch its own violations: it throws InvariantViolation and the runner reports it.
 */
import type { Entry, NodeId } from '../messages.js';

export type InvariantName =
  | 'ElectionSafety'
  | 'LogMatching'
  | 'LeaderCompleteness'
  | 'StateMachineSafety'
  | 'CommitMonotonicity'
  | 'ReadLinearizability'
  | 'Liveness';

export class InvariantViolation extends Error {
  constructor(
    readonly invariant: InvariantName,
    detail: string,
  ) {
    super(`${invariant}: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

/** Read access to a node's persisted log (MemoryStorage fits). */
export interface LogView {
  /** First index still held (snapshot index + 1). */
  firstIndex(): number;
  lastIndex(): number;
  /** Term at `index`, for firstIndex() - 1 <= index <= lastIndex(). */
  term(index: number): number;
}

/** A stable identity for an entry's content and term, used to compare across nodes. */
export function entryKey(e: Entry): string {
  return `${e.term}/${e.type}/${bytesKey(e.data)}`;
}

function bytesKey(data: Uint8Array): string {
  if (data.length === 0) return '';
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
}

/** FNV-1a over a string, 32 bits. */
export function hashString(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The hash of the applied prefix after applying `key` on top of `prevHash`. */
export function chainHash(prevHash: number, key: string): number {
  return hashString(key, (prevHash ^ 0x9e3779b9) >>> 0);
}

interface LogRecord {
  readonly key: string;
  /** Term of the entry at index - 1, when the appending node still had it (not compacted). */
  prevTerm: number | undefined;
  readonly node: NodeId;
}

interface CommitRecord {
  readonly term: number;
  /** The term of the node that first reported the commit (the leader that committed it). */
  readonly commitTerm: number;
  readonly node: NodeId;
}

interface ApplyRecord {
  readonly key: string;
  readonly hash: number;
  readonly node: NodeId;
}

interface LeaderInOffice {
  readonly term: number;
  readonly log: LogView;
}

interface PendingRead {
  readonly node: NodeId;
  /** Highest index acknowledged to a client when the read was issued. */
  readonly required: number;
  readonly issuedAt: number;
}

export interface CheckerLimits {
  /** Bound on reads awaiting an answer; the oldest are forgotten beyond it. */
  maxPendingReads: number;
  /** Checks switched off, so a spec can show another check catches the same fault. */
  disabled?: readonly InvariantName[];
}

export class InvariantChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly logRecords = new Map<number, Map<number, LogRecord>>();
  private readonly committed: (CommitRecord | undefined)[] = [];
  private readonly applied: (ApplyRecord | undefined)[] = [];
  /** Highest commit index a node's current incarnation has reported. */
  private readonly memoryCommit = new Map<NodeId, number>();
  /** Highest commit index a node has persisted in any incarnation. */
  private readonly persistedCommit = new Map<NodeId, number>();
  /** Highest commit index registered (committed[] is filled up to here, with gaps). */
  private maxCommitted = 0;
  /** Leaders that passed the full Leader Completeness check, by node. */
  private readonly leaders = new Map<NodeId, LeaderInOffice>();
  /** Per node: the last applied index and hash of the applied prefix. */
  private readonly machines = new Map<NodeId, { index: number; hash: number }>();
  private readonly reads = new Map<string, PendingRead>();
  private maxAcked = 0;
  /** Counters, for reports and for specs that check the checker saw something. */
  readonly counts = { leaders: 0, commits: 0, applies: 0, snapshots: 0, readsServed: 0, acked: 0 };

  private readonly checkLeaderCompleteness: boolean;

  constructor(private readonly limits: CheckerLimits = { maxPendingReads: 1024 }) {
    const disabled = new Set(limits.disabled ?? []);
    for (const name of disabled) {
      if (name !== 'LeaderCompleteness')
        throw new RangeError(`only LeaderCompleteness can be disabled, not ${name}`);
    }
    this.checkLeaderCompleteness = !disabled.has('LeaderCompleteness');
  }

  // ---- Election Safety (§5.2) ----------------------------------------------------------

  /** A node reports its role; call after every step for every node that may have changed. */
  observeRole(node: NodeId, term: number, isLeader: boolean): void {
    if (!isLeader) {
      const office = this.leaders.get(node);
      if (office !== undefined) this.leaders.delete(node);
      return;
    }
    const other = this.leaderOfTerm.get(term);
    if (other === undefined) {
      this.leaderOfTerm.set(term, node);
      this.counts.leaders++;
    } else if (other !== node) {
      throw new InvariantViolation('ElectionSafety', `two leaders in term ${term}: ${other} and ${node}`);
    }
    const office = this.leaders.get(node);
    if (office !== undefined && office.term !== term) this.leaders.delete(node);
  }

  // ---- Leader Completeness (§5.4.1, §5.4.3) ----------------------------------------------

  /**
   * A leader has persisted its log: the first time per term, its log must hold every entry
   * committed in an earlier term; from then on it is checked incrementally on each commit.
   */
  observeLeaderLog(node: NodeId, term: number, log: LogView): void {
    const office = this.leaders.get(node);
    if (office !== undefined && office.term === term) return;
    if (!this.checkLeaderCompleteness) return;
    const snapshotIndex = log.firstIndex() - 1;
    for (let i = snapshotIndex + 1; i <= this.maxCommitted; i++) {
      const rec = this.committed[i];
      if (rec === undefined || rec.commitTerm >= term) continue;
      this.expectLeaderHas(node, term, log, i, rec);
    }
    this.leaders.set(node, { term, log });
  }

  private expectLeaderHas(node: NodeId, term: number, log: LogView, index: number, rec: CommitRecord): void {
    if (index < log.firstIndex()) return; // compacted into a snapshot of applied (committed) state
    const have = index <= log.lastIndex() ? log.term(index) : undefined;
    if (have !== rec.term) {
      throw new InvariantViolation(
        'LeaderCompleteness',
        `leader ${node} of term ${term} lacks entry ${index} (term ${rec.term}) committed by ` +
          `${rec.node} in term ${rec.commitTerm}; it has ${have === undefined ? 'nothing' : `term ${have}`}`,
      );
    }
  }

  // ---- Log Matching (§5.3) ----------------------------------------------------------------

  /** A node persisted `entries` (contiguous); `log` is its log after the append. */
  observeAppend(node: NodeId, entries: readonly Entry[], log: LogView): void {
    if (entries.length === 0) return;
    const first = entries[0] as Entry;
    let prevTerm: number | undefined;
    if (first.index - 1 >= log.firstIndex() - 1) prevTerm = first.index === 1 ? 0 : log.term(first.index - 1);
    for (const e of entries) {
      this.recordEntry(node, e.index, e.term, entryKey(e), prevTerm);
      prevTerm = e.term;
    }
  }

  private recordEntry(
    node: NodeId,
    index: number,
    term: number,
    key: string,
    prevTerm: number | undefined,
  ): void {
    let byTerm = this.logRecords.get(index);
    if (byTerm === undefined) {
      byTerm = new Map();
      this.logRecords.set(index, byTerm);
    }
    const rec = byTerm.get(term);
    if (rec === undefined) {
      byTerm.set(term, { key, prevTerm, node });
      return;
    }
    if (rec.key !== key) {
      throw new InvariantViolation(
        'LogMatching',
        `entry ${index} of term ${term} differs: ${rec.node} has ${show(rec.key)}, ${node} has ${show(key)}`,
      );
    }
    if (prevTerm === undefined) return;
    if (rec.prevTerm === undefined) {
      rec.prevTerm = prevTerm;
    } else if (rec.prevTerm !== prevTerm) {
      throw new InvariantViolation(
        'LogMatching',
        `entry ${index} of term ${term} follows term ${rec.prevTerm} on ${rec.node} but term ${prevTerm} on ${node}`,
      );
    }
  }

  // ---- commits: monotonicity and agreement -----------------------------------------------

  /** The commit index a node's core reports in memory (status().commit), after any step. */
  observeCommitIndex(node: NodeId, commit: number): void {
    const prev = this.memoryCommit.get(node) ?? 0;
    if (commit < prev) {
      throw new InvariantViolation(
        'CommitMonotonicity',
        `${node} commit went back from ${prev} to ${commit}`,
      );
    }
    if (commit > prev) this.memoryCommit.set(node, commit);
  }

  /**
   * A node persisted hard state with `commit` while in `term`; `log` holds the entries up to
   * commit (the Ready persisted them first). Registers newly committed entries.
   */
  observePersistedCommit(node: NodeId, commit: number, term: number, log: LogView): void {
    const prev = this.persistedCommit.get(node) ?? 0;
    if (commit < prev) {
      throw new InvariantViolation('CommitMonotonicity', `${node} persisted commit ${commit} after ${prev}`);
    }
    if (commit === prev) return;
    this.persistedCommit.set(node, commit);
    const from = Math.max(prev + 1, log.firstIndex());
    if (commit > log.lastIndex()) {
      throw new InvariantViolation(
        'StateMachineSafety',
        `${node} persisted commit ${commit} beyond its persisted log (last ${log.lastIndex()})`,
      );
    }
    for (let i = from; i <= commit; i++) this.registerCommit(node, i, log.term(i), term);
  }

  private registerCommit(node: NodeId, index: number, entryTerm: number, nodeTerm: number): void {
    const rec = this.committed[index];
    if (rec !== undefined) {
      if (rec.term !== entryTerm) {
        throw new InvariantViolation(
          'StateMachineSafety',
          `index ${index} committed with term ${rec.term} on ${rec.node} and term ${entryTerm} on ${node}`,
        );
      }
      return;
    }
    const fresh: CommitRecord = { term: entryTerm, commitTerm: nodeTerm, node };
    this.committed[index] = fresh;
    this.counts.commits++;
    if (index > this.maxCommitted) this.maxCommitted = index;
    for (const [leader, office] of this.leaders) {
      if (office.term > nodeTerm) this.expectLeaderHas(leader, office.term, office.log, index, fresh);
    }
  }

  /**
   * A node restarted from its persisted state: its in-memory commit restarts from what it
   * persisted, and must not be below it.
   */
  observeRestart(node: NodeId, restoredCommit: number, snapshotIndex: number, snapshotHash: number): void {
    const persisted = this.persistedCommit.get(node) ?? 0;
    if (restoredCommit < persisted) {
      throw new InvariantViolation(
        'CommitMonotonicity',
        `${node} restarted with commit ${restoredCommit} below its persisted ${persisted}`,
      );
    }
    this.memoryCommit.set(node, restoredCommit);
    this.leaders.delete(node);
    this.machines.delete(node);
    this.observeSnapshotInstall(node, snapshotIndex, snapshotHash);
  }

  // ---- State Machine Safety (§5.4.3) ------------------------------------------------------

  /** A node applied `entry` to its state machine; returns the hash of its applied prefix. */
  observeApply(node: NodeId, entry: Entry): number {
    const machine = this.machines.get(node) ?? { index: 0, hash: 0 };
    if (entry.index !== machine.index + 1) {
      throw new InvariantViolation(
        'StateMachineSafety',
        `${node} applied index ${entry.index} right after ${machine.index}`,
      );
    }
    const committed = this.committed[entry.index];
    if (committed !== undefined && committed.term !== entry.term) {
      throw new InvariantViolation(
        'StateMachineSafety',
        `${node} applied index ${entry.index} of term ${entry.term}, committed with term ${committed.term} on ${committed.node}`,
      );
    }
    const key = entryKey(entry);
    const hash = chainHash(machine.hash, key);
    const rec = this.applied[entry.index];
    if (rec === undefined) {
      this.applied[entry.index] = { key, hash, node };
    } else if (rec.key !== key || rec.hash !== hash) {
      throw new InvariantViolation(
        'StateMachineSafety',
        `index ${entry.index}: ${rec.node} applied ${show(rec.key)}, ${node} applied ${show(key)}` +
          (rec.key === key ? ' on a different prefix' : ''),
      );
    }
    this.counts.applies++;
    this.machines.set(node, { index: entry.index, hash });
    return hash;
  }

  /** A node replaced its state machine with a snapshot at `index` whose prefix hash is `hash`. */
  observeSnapshotInstall(node: NodeId, index: number, hash: number): void {
    if (index > 0) {
      const rec = this.applied[index];
      if (rec !== undefined && rec.hash !== hash) {
        throw new InvariantViolation(
          'StateMachineSafety',
          `${node} installed a snapshot at ${index} whose state differs from what ${rec.node} applied`,
        );
      }
      this.counts.snapshots++;
    }
    this.machines.set(node, { index, hash });
  }

  /** The applied index of a node as the checker saw it. */
  appliedIndex(node: NodeId): number {
    return this.machines.get(node)?.index ?? 0;
  }

  // ---- linearizable reads (thesis §6.4) -----------------------------------------------------

  /** A write at `index` was acknowledged to its client (applied on the node that proposed it). */
  observeWriteAcked(index: number): void {
    this.counts.acked++;
    if (index > this.maxAcked) this.maxAcked = index;
  }

  /** A client issued a read with a unique `context` at `node`, at sim time `now`. */
  observeReadIssued(context: string, node: NodeId, now: number): void {
    if (this.reads.size >= this.limits.maxPendingReads) {
      const oldest = this.reads.keys().next();
      if (oldest.done !== true) this.reads.delete(oldest.value);
    }
    this.reads.set(context, { node, required: this.maxAcked, issuedAt: now });
  }

  /** The read is served at `node` from a state machine that has applied `appliedIndex`. */
  observeReadServed(context: string, node: NodeId, appliedIndex: number): void {
    const read = this.reads.get(context);
    if (read === undefined) return; // forgotten (bounded) or a duplicate answer
    this.reads.delete(context);
    if (read.node !== node) {
      throw new InvariantViolation(
        'ReadLinearizability',
        `read ${show(context)} issued at ${read.node} served at ${node}`,
      );
    }
    this.counts.readsServed++;
    if (appliedIndex < read.required) {
      throw new InvariantViolation(
        'ReadLinearizability',
        `read ${show(context)} issued at ${node} at t=${read.issuedAt} after write ${read.required} was ` +
          `acknowledged, served at applied index ${appliedIndex}: stale read`,
      );
    }
  }

  /** Forgets reads that will never be answered (their node crashed, or they timed out). */
  dropReads(predicate: (node: NodeId, issuedAt: number) => boolean): void {
    for (const [context, read] of this.reads)
      if (predicate(read.node, read.issuedAt)) this.reads.delete(context);
  }

  get pendingReads(): number {
    return this.reads.size;
  }

  /** The highest index known committed by any node. */
  get committedIndex(): number {
    return this.maxCommitted;
  }
}

function show(key: string): string {
  return JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}...` : key);
}
