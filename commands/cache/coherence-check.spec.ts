import { expect } from 'chai';
import { findStaleReads, type HistoryOp } from './coherence-check.js';

const w = (key: string, value: string, start: number, end: number, ok = true): HistoryOp => ({
  kind: 'w',
  key,
  value,
  start,
  end,
  ok,
});
const r = (key: string, value: string | null, start: number, end: number): HistoryOp => ({
  kind: 'r',
  key,
  value,
  start,
  end,
  ok: true,
});

describe('coherence checker (no CGET older than a completed CSET)', () => {
  it('accepts the newest completed value, and a value of a write still in flight', () => {
    expect(findStaleReads([w('k', 'a', 0, 1), w('k', 'b', 2, 3), r('k', 'b', 4, 5)])).to.deep.equal([]);
    expect(findStaleReads([w('k', 'a', 0, 1), w('k', 'b', 2, 9), r('k', 'a', 4, 5)])).to.deep.equal([]);
    // Overlapping writes have no real-time order: either value may be read.
    expect(findStaleReads([w('k', 'a', 0, 5), w('k', 'b', 1, 3), r('k', 'a', 6, 7)])).to.deep.equal([]);
  });

  it('flags a value older than a write completed before the read began', () => {
    expect(findStaleReads([w('k', 'a', 0, 1), w('k', 'b', 2, 3), r('k', 'a', 4, 5)])).to.have.length(1);
  });

  it('flags nil after a completed write, and a value never written', () => {
    expect(findStaleReads([w('k', 'a', 0, 1), r('k', null, 2, 3)])).to.have.length(1);
    expect(findStaleReads([w('k', 'a', 0, 1), r('k', 'zzz', 2, 3)])).to.have.length(1);
  });

  it('never uses a write of unknown outcome as a witness, nor judges a read of one', () => {
    expect(findStaleReads([w('k', 'a', 0, 1), w('k', 'b', 2, 3, false), r('k', 'a', 4, 5)])).to.deep.equal(
      [],
    );
    expect(findStaleReads([w('k', 'a', 0, 1, false), w('k', 'b', 2, 3), r('k', 'a', 4, 5)])).to.deep.equal(
      [],
    );
  });
});
