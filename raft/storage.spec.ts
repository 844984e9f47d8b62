import { expect } from 'chai';
import { CompactedError, SnapshotOutOfDateError, UnavailableError } from './errors.js';
import { EntryType, entrySize } from './messages.js';
import type { Entry } from './messages.js';
import { MemoryStorage } from './storage.js';

function ents(from: number, to: number, term: number, bytes = 0): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++)
    out.push({ index: i, term, type: EntryType.Normal, data: new Uint8Array(bytes) });
  return out;
}

describe('MemoryStorage', () => {
  it('starts empty with the initial membership and the empty snapshot', () => {
    const s = new MemoryStorage({ voters: ['a', 'b'], learners: ['c'] });
    expect(s.firstIndex()).to.equal(1);
    expect(s.lastIndex()).to.equal(0);
    expect(s.term(0)).to.equal(0);
    expect(s.initialState().confState).to.deep.equal({ voters: ['a', 'b'], learners: ['c'] });
    expect(s.initialState().hardState).to.deep.equal({ term: 0, vote: null, commit: 0 });
    expect(s.snapshot().metadata.index).to.equal(0);
  });

  it('appends, and replaces a conflicting suffix', () => {
    const s = new MemoryStorage();
    s.append(ents(1, 5, 1));
    expect(s.lastIndex()).to.equal(5);
    s.append(ents(4, 6, 2));
    expect(s.lastIndex()).to.equal(6);
    expect([3, 4, 5, 6].map((i) => s.term(i))).to.deep.equal([1, 2, 2, 2]);
    s.append(ents(2, 2, 3));
    expect(s.lastIndex()).to.equal(2);
    expect(s.term(2)).to.equal(3);
  });

  it('refuses a gap after the last index', () => {
    const s = new MemoryStorage();
    s.append(ents(1, 2, 1));
    expect(() => s.append(ents(4, 4, 1))).to.throw(/gap/);
  });

  it('reads ranges with a byte limit, always at least one entry', () => {
    const s = new MemoryStorage();
    s.append(ents(1, 10, 1, 100));
    const size = entrySize(s.entries(1, 2)[0]!);
    expect(s.entries(2, 8).map((e) => e.index)).to.deep.equal([2, 3, 4, 5, 6, 7]);
    expect(s.entries(2, 8, size * 3).map((e) => e.index)).to.deep.equal([2, 3, 4]);
    expect(s.entries(2, 8, 1).map((e) => e.index)).to.deep.equal([2]);
    expect(() => s.entries(2, 12)).to.throw(UnavailableError);
    expect(() => s.term(11)).to.throw(UnavailableError);
  });

  it('snapshots keep the log until compact, then reads below it fail with CompactedError', () => {
    const s = new MemoryStorage({ voters: ['a'] });
    s.append(ents(1, 10, 2));
    const snap = s.createSnapshot(6, { voters: ['a', 'b'], learners: [] }, new Uint8Array([7]));
    expect(snap.metadata).to.deep.equal({
      index: 6,
      term: 2,
      confState: { voters: ['a', 'b'], learners: [] },
    });
    expect(s.firstIndex()).to.equal(1);
    expect(s.entries(1, 3)).to.have.length(2);
    s.compact(4);
    expect(s.firstIndex()).to.equal(5);
    expect(s.term(4)).to.equal(2);
    expect(() => s.term(3)).to.throw(CompactedError);
    expect(() => s.entries(4, 6)).to.throw(CompactedError);
    expect(s.entries(5, 11).map((e) => e.index)).to.deep.equal([5, 6, 7, 8, 9, 10]);
    expect(() => s.compact(8)).to.throw(/beyond snapshot/);
    expect(() => s.createSnapshot(5, { voters: [], learners: [] }, new Uint8Array(0))).to.throw(
      SnapshotOutOfDateError,
    );
    // Appending entries already compacted skips them.
    s.append(ents(3, 12, 2));
    expect(s.lastIndex()).to.equal(12);
    expect(s.firstIndex()).to.equal(5);
  });

  it('applySnapshot replaces the log and the membership', () => {
    const s = new MemoryStorage({ voters: ['a'] });
    s.append(ents(1, 3, 1));
    s.applySnapshot({
      metadata: { index: 20, term: 4, confState: { voters: ['x'], learners: [] } },
      data: new Uint8Array(0),
    });
    expect(s.firstIndex()).to.equal(21);
    expect(s.lastIndex()).to.equal(20);
    expect(s.term(20)).to.equal(4);
    expect(s.initialState().confState.voters).to.deep.equal(['x']);
    expect(() =>
      s.applySnapshot({
        metadata: { index: 20, term: 4, confState: { voters: [], learners: [] } },
        data: new Uint8Array(0),
      }),
    ).to.throw(SnapshotOutOfDateError);
    s.append(ents(21, 22, 4));
    expect(s.lastIndex()).to.equal(22);
  });

  it('setConfState overrides the membership reported to a restarting core', () => {
    const s = new MemoryStorage({ voters: ['a'] });
    s.setConfState({ voters: ['a', 'b'], learners: ['c'] });
    expect(s.initialState().confState).to.deep.equal({ voters: ['a', 'b'], learners: ['c'] });
  });
});
