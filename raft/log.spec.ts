import { expect } from 'chai';
import { NO_TERM, RaftLog } from './log.js';
import { EntryType } from './messages.js';
import type { Entry } from './messages.js';
import { MemoryStorage } from './storage.js';

function e(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(0) };
}
function terms(log: RaftLog): number[] {
  const out: number[] = [];
  for (let i = log.firstIndex(); i <= log.lastIndex(); i++) out.push(log.term(i));
  return out;
}

/** A log with terms[i] at index i+1, the first `stable` of them in storage. */
function makeLog(termsByIndex: number[], stable = termsByIndex.length): RaftLog {
  const storage = new MemoryStorage();
  storage.append(termsByIndex.slice(0, stable).map((t, i) => e(i + 1, t)));
  const log = new RaftLog(storage);
  log.append(termsByIndex.slice(stable).map((t, i) => e(stable + i + 1, t)));
  return log;
}

describe('RaftLog', () => {
  it('reads terms across the stable and unstable parts', () => {
    const log = makeLog([1, 1, 2, 3, 3], 2);
    expect(terms(log)).to.deep.equal([1, 1, 2, 3, 3]);
    expect(log.term(0)).to.equal(0);
    expect(log.term(6)).to.equal(NO_TERM);
    expect(log.lastTerm()).to.equal(3);
    expect(log.slice(1, 6)!.map((x) => x.index)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(log.slice(2, 4)!.map((x) => x.index)).to.deep.equal([2, 3]);
  });

  it('maybeAppend: rejects on prev mismatch, truncates conflicts, keeps matching entries (Figure 2)', () => {
    const log = makeLog([1, 1, 2, 2], 3);
    expect(log.maybeAppend(4, 3, 0, [e(5, 3)])).to.equal(-1);
    expect(log.maybeAppend(6, 2, 0, [])).to.equal(-1);
    // Entries already present: nothing truncated, even with a shorter message (stale/reordered App).
    expect(log.maybeAppend(1, 1, 0, [e(2, 1)])).to.equal(2);
    expect(terms(log)).to.deep.equal([1, 1, 2, 2]);
    // Conflict at 3 (term 2 vs 3): truncate from 3 and append.
    expect(log.maybeAppend(2, 1, 3, [e(3, 3), e(4, 3), e(5, 3)])).to.equal(5);
    expect(terms(log)).to.deep.equal([1, 1, 3, 3, 3]);
    expect(log.committed).to.equal(3);
    // Commit is min(leaderCommit, last new entry).
    expect(log.maybeAppend(3, 3, 10, [])).to.equal(3);
    expect(log.committed).to.equal(3);
    expect(log.maybeAppend(5, 3, 10, [])).to.equal(5);
    expect(log.committed).to.equal(5);
  });

  it('never truncates committed entries', () => {
    const log = makeLog([1, 1, 1]);
    log.commitTo(2);
    expect(() => log.maybeAppend(1, 1, 0, [e(2, 2)])).to.throw(/conflict/);
  });

  it('findConflictByTerm skips whole terms for fast backtracking', () => {
    const log = makeLog([1, 1, 2, 2, 2, 5, 5]);
    expect(log.findConflictByTerm(7, 4)).to.equal(5);
    expect(log.findConflictByTerm(7, 5)).to.equal(7);
    expect(log.findConflictByTerm(4, 1)).to.equal(2);
    expect(log.findConflictByTerm(20, 0)).to.equal(0);
  });

  it('maybeCommit only commits an entry of the given term (§5.4.2)', () => {
    const log = makeLog([1, 2, 2]);
    expect(log.maybeCommit(3, 3)).to.equal(false);
    expect(log.committed).to.equal(0);
    expect(log.maybeCommit(3, 2)).to.equal(true);
    expect(log.committed).to.equal(3);
    expect(log.maybeCommit(2, 2)).to.equal(false);
    expect(log.committed).to.equal(3);
  });

  it('isUpToDate compares last term, then length (§5.4.1)', () => {
    const log = makeLog([1, 2, 2]);
    expect(log.isUpToDate(3, 2)).to.equal(true);
    expect(log.isUpToDate(2, 2)).to.equal(false);
    expect(log.isUpToDate(1, 3)).to.equal(true);
    expect(log.isUpToDate(9, 1)).to.equal(false);
  });

  it('stableTo drops persisted entries only if the term still matches', () => {
    const storage = new MemoryStorage();
    const log = new RaftLog(storage);
    log.append([e(1, 1), e(2, 1), e(3, 1)]);
    expect(log.unstable()).to.have.length(3);
    log.stableTo(2, 9);
    expect(log.unstable()).to.have.length(3);
    storage.append(log.unstable().slice(0, 2));
    log.stableTo(2, 1);
    expect(log.unstable().map((x) => x.index)).to.deep.equal([3]);
    expect(terms(log)).to.deep.equal([1, 1, 1]);
  });

  it('nextCommitted respects applied, commit and the byte limit', () => {
    const log = makeLog([1, 1, 1, 1, 1]);
    log.commitTo(4);
    expect(log.nextCommitted(Infinity).map((x) => x.index)).to.deep.equal([1, 2, 3, 4]);
    expect(log.nextCommitted(1).map((x) => x.index)).to.deep.equal([1]);
    log.appliedTo(2);
    expect(log.nextCommitted(Infinity).map((x) => x.index)).to.deep.equal([3, 4]);
    expect(log.hasNextCommitted()).to.equal(true);
    log.appliedTo(4);
    expect(log.hasNextCommitted()).to.equal(false);
  });

  it('restore replaces the log with a snapshot', () => {
    const log = makeLog([1, 1, 1]);
    log.restore({
      metadata: { index: 10, term: 3, confState: { voters: ['a'], learners: [] } },
      data: new Uint8Array(0),
    });
    expect(log.firstIndex()).to.equal(11);
    expect(log.lastIndex()).to.equal(10);
    expect(log.term(10)).to.equal(3);
    expect(log.term(3)).to.equal(NO_TERM);
    expect(log.committed).to.equal(10);
    expect(log.slice(3, 5)).to.equal(null);
    expect(log.maybeAppend(10, 3, 11, [e(11, 3)])).to.equal(11);
    expect(log.committed).to.equal(11);
  });
});
