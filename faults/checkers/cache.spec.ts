/**
 * The cache family's checker on hand-made histories: the coherence rule itself comes from
 * commands/cache/coherence-check.ts (tested there); here, that the family's operations reach it
 * with the right outcomes (a failed CSET is no write, an unknown one may be read later, an
 * unknown CGET says nothing), and the two checks added on top: a read of a write invoked after
 * the read completed, and nodes disagreeing at the end.
 */
import { expect } from 'chai';
import type { Outcome } from '../history.js';
import { checkCache, type CacheOp } from './cache.js';

let nextId = 0;
const cset = (
  value: string,
  a: number,
  b: number | undefined,
  result: Outcome = 'ok',
  key = 'k',
): CacheOp => ({
  id: nextId++,
  process: 0,
  node: 'n1',
  kind: 'cset',
  key,
  value,
  result,
  invokeMs: a,
  ...(b !== undefined ? { completeMs: b } : {}),
});
const cget = (
  output: string | null,
  a: number,
  b: number | undefined,
  result: Outcome = 'ok',
  node = 'n2',
  final = false,
): CacheOp => ({
  id: nextId++,
  process: 1,
  node,
  kind: 'cget',
  key: 'k',
  result,
  invokeMs: a,
  ...(b !== undefined ? { completeMs: b } : {}),
  ...(result === 'ok' ? { output } : {}),
  ...(final ? { final } : {}),
});

describe('faults/checkers: cache (coherence-check.ts on the family history)', () => {
  it('accepts reads of the latest completed write, of a write in flight, and of an unknown write', () => {
    const v = checkCache([
      cset('a', 0, 10),
      cget('a', 11, 12),
      cset('b', 20, 40),
      cget('a', 25, 26), // b in flight: a is still fine
      cget('b', 30, 31), // and so is b
      cset('c', 50, undefined, 'unknown'),
      cget('c', 60, 61),
      cget('z', 70, undefined, 'unknown'), // says nothing
      cget('c', 100, 101, 'ok', 'n1', true),
      cget('c', 100, 102, 'ok', 'n2', true),
    ]);
    expect(v.valid, JSON.stringify(v)).to.equal(true);
    expect(v.writes).to.deep.equal({ ok: 2, unknown: 1, fail: 0 });
    expect(v.finalReads).to.equal(2);
  });

  it('catches a stale read (older than a write completed before it began), on any node', () => {
    const v = checkCache([cset('a', 0, 10), cset('b', 20, 30), cget('a', 40, 41, 'ok', 'n3')]);
    expect(v.valid).to.equal(false);
    expect(v.staleReadCount).to.equal(1);
    expect(v.staleReads[0]).to.match(/returned a/);
    // nil after a completed write is stale too.
    expect(checkCache([cset('a', 0, 10), cget(null, 20, 21)]).staleReadCount).to.equal(1);
  });

  it('catches a read of a write that certainly failed', () => {
    expect(checkCache([cset('a', 0, 10), cset('b', 20, 30, 'fail'), cget('b', 40, 41)]).valid).to.equal(
      false,
    );
  });

  it('catches a read of a write invoked after the read completed', () => {
    const v = checkCache([cget('b', 0, 5), cset('b', 10, 20)]);
    expect(v.valid).to.equal(false);
    expect(v.futureReads).to.have.length(1);
  });

  it('catches nodes disagreeing at the end', () => {
    const v = checkCache([
      cset('a', 0, 10, 'unknown'),
      cset('b', 5, 15, 'unknown'),
      cget('a', 100, 101, 'ok', 'n1', true),
      cget('b', 100, 101, 'ok', 'n2', true),
    ]);
    expect(v.staleReadCount).to.equal(0);
    expect(v.disagreements).to.have.length(1);
    expect(v.valid).to.equal(false);
  });
});
