/**
 * Tests for the invariant checker on hand-made histories: each check accepts a legal history
 * and throws the matching InvariantViolation on a history that breaks it.
 */
import { expect } from 'chai';
import { EntryType } from '../messages.js';
import type { Entry } from '../messages.js';
import { InvariantChecker, InvariantViolation } from './invariants.js';
import type { InvariantName, LogView } from './invariants.js';

/** A log held in an array, with an optional snapshot at `snapshotIndex`. */
class ArrayLog implements LogView {
  constructor(
    public entries: Entry[],
    public snapshotIndex = 0,
    public snapshotTerm = 0,
  ) {}
  firstIndex(): number {
    return this.snapshotIndex + 1;
  }
  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }
  term(index: number): number {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    const e = this.entries[index - this.snapshotIndex - 1];
    if (e === undefined) throw new RangeError(`no entry ${index}`);
    return e.term;
  }
}

function entry(index: number, term: number, payload = `w${index}.${term}`): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(payload) };
}

function log(...terms: number[]): ArrayLog {
  return new ArrayLog(terms.map((t, i) => entry(i + 1, t)));
}

function expectViolation(invariant: InvariantName, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(InvariantViolation);
    expect((err as InvariantViolation).invariant).to.equal(invariant);
    return;
  }
  expect.fail(`expected a ${invariant} violation`);
}

describe('raft/sim/invariants', () => {
  it('Election Safety: one leader per term, the same leader may report again', () => {
    const c = new InvariantChecker();
    c.observeRole('a', 1, true);
    c.observeRole('a', 1, true);
    c.observeRole('b', 2, true);
    c.observeRole('c', 1, false);
    expect(c.counts.leaders).to.equal(2);
    expectViolation('ElectionSafety', () => c.observeRole('c', 2, true));
  });

  it('Log Matching: same (index, term) needs the same entry and the same predecessor term', () => {
    const c = new InvariantChecker();
    const a = log(1, 1, 2);
    c.observeAppend('a', a.entries, a);
    const b = log(1, 1);
    c.observeAppend('b', b.entries, b);
    const b2 = log(1, 1, 2);
    c.observeAppend('b', [entry(3, 2)], b2);
    // Same index and term, different payload.
    const bad = new ArrayLog([entry(1, 1), entry(2, 1, 'other')]);
    expectViolation('LogMatching', () => c.observeAppend('c', [entry(2, 1, 'other')], bad));
    // Same entry at (3, 2) but after a different term at index 2: a prefix mismatch.
    const c2 = new InvariantChecker();
    const x = log(1, 1, 2);
    c2.observeAppend('x', x.entries, x);
    const y = new ArrayLog([entry(1, 1), entry(2, 3), entry(3, 2)]);
    expectViolation('LogMatching', () => c2.observeAppend('y', [entry(3, 2)], y));
  });

  it('Log Matching: an append right after a snapshot is checked against the snapshot term', () => {
    const c = new InvariantChecker();
    const a = log(1, 1, 2, 2);
    c.observeAppend('a', a.entries, a);
    const b = new ArrayLog([entry(4, 2)], 3, 2);
    c.observeAppend('b', [entry(4, 2)], b);
    const bad = new ArrayLog([entry(4, 2)], 3, 1);
    expectViolation('LogMatching', () => c.observeAppend('c', [entry(4, 2)], bad));
  });

  it('commits: agreement across nodes, monotonic in memory, persisted and across restart', () => {
    const c = new InvariantChecker();
    const a = log(1, 1, 2);
    c.observePersistedCommit('a', 2, 1, a);
    c.observePersistedCommit('a', 3, 2, a);
    expect(c.committedIndex).to.equal(3);
    const b = log(1, 3);
    expectViolation('StateMachineSafety', () => c.observePersistedCommit('b', 2, 3, b));

    const m = new InvariantChecker();
    m.observeCommitIndex('a', 5);
    m.observeCommitIndex('a', 5);
    expectViolation('CommitMonotonicity', () => m.observeCommitIndex('a', 4));
    const p = new InvariantChecker();
    p.observePersistedCommit('a', 3, 2, a);
    expectViolation('CommitMonotonicity', () => p.observePersistedCommit('a', 2, 2, a));
    const r = new InvariantChecker();
    r.observePersistedCommit('a', 3, 2, a);
    r.observeCommitIndex('a', 3);
    r.observeRestart('a', 3, 0, 0);
    r.observeCommitIndex('a', 3);
    expectViolation('CommitMonotonicity', () => r.observeRestart('a', 1, 0, 0));
  });

  it('Leader Completeness: checked when a leader takes office and on each later commit', () => {
    const c = new InvariantChecker();
    const a = log(1, 1, 2);
    c.observePersistedCommit('a', 3, 2, a);
    // A leader of term 3 with all three entries passes; one missing entry 3 fails.
    c.observeRole('b', 3, true);
    c.observeLeaderLog('b', 3, log(1, 1, 2, 3));
    c.observeRole('c', 4, true);
    expectViolation('LeaderCompleteness', () => c.observeLeaderLog('c', 4, log(1, 1)));
    // Entries committed in the leader's own term or later are not required at election.
    const d = new InvariantChecker();
    d.observePersistedCommit('a', 3, 5, a);
    d.observeRole('b', 5, true);
    d.observeLeaderLog('b', 5, log(1, 1));
    // A commit in an earlier term observed after a later leader took office is checked too.
    const e = new InvariantChecker();
    e.observeRole('b', 4, true);
    e.observeLeaderLog('b', 4, log(1, 1));
    expectViolation('LeaderCompleteness', () => e.observePersistedCommit('a', 3, 2, a));
    // Compacted entries are covered by the leader's snapshot.
    const f = new InvariantChecker();
    f.observePersistedCommit('a', 3, 2, a);
    f.observeRole('b', 3, true);
    f.observeLeaderLog('b', 3, new ArrayLog([entry(4, 3)], 3, 2));
  });

  it('State Machine Safety: same entry at each index, contiguous applies, snapshot states agree', () => {
    const c = new InvariantChecker();
    const h1 = c.observeApply('a', entry(1, 1));
    const h2 = c.observeApply('a', entry(2, 1));
    expect(c.observeApply('b', entry(1, 1))).to.equal(h1);
    expectViolation('StateMachineSafety', () => c.observeApply('b', entry(2, 2)));
    expectViolation('StateMachineSafety', () => c.observeApply('c', entry(2, 1)));
    c.observeSnapshotInstall('d', 2, h2);
    expect(c.appliedIndex('d')).to.equal(2);
    expectViolation('StateMachineSafety', () => c.observeSnapshotInstall('e', 2, h1));
    const d = new InvariantChecker();
    d.observePersistedCommit('a', 1, 1, log(1));
    expectViolation('StateMachineSafety', () => d.observeApply('b', entry(1, 2)));
  });

  it('reads: a read issued after a write was acknowledged must see it', () => {
    const c = new InvariantChecker();
    c.observeReadIssued('r1', 'a', 0);
    c.observeWriteAcked(5);
    c.observeReadServed('r1', 'a', 3); // began before the ack: may miss it
    c.observeReadIssued('r2', 'b', 1);
    c.observeReadServed('r2', 'b', 5);
    c.observeReadIssued('r3', 'c', 2);
    expect(c.pendingReads).to.equal(1);
    expectViolation('ReadLinearizability', () => c.observeReadServed('r3', 'c', 4));
    expect(c.counts.readsServed).to.equal(3);
    const bounded = new InvariantChecker({ maxPendingReads: 2 });
    for (let i = 0; i < 10; i++) bounded.observeReadIssued(`r${i}`, 'a', i);
    expect(bounded.pendingReads).to.equal(2);
    bounded.dropReads((node) => node === 'a');
    expect(bounded.pendingReads).to.equal(0);
  });
});
