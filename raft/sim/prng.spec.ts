/**
 * Tests for the seeded PRNG: the reference xoshiro128** sequence, determinism per seed,
 * independence of nearby seeds and forks, and the ranges of the derived helpers.
 */
import { expect } from 'chai';
import { Prng } from './prng.js';

describe('raft/sim/prng', () => {
  it('matches the xoshiro128** reference output for state {1,2,3,4}', () => {
    const prng = Prng.fromState(1, 2, 3, 4);
    const out = [prng.nextUint32(), prng.nextUint32(), prng.nextUint32()];
    // Worked by hand from the reference C code (prng.c, Blackman & Vigna).
    expect(out).to.deep.equal([11520, 0, 5927040]);
  });

  it('gives the same sequence for the same seed and different ones for nearby seeds', () => {
    const draw = (seed: number): number[] => {
      const prng = new Prng(seed);
      return Array.from({ length: 8 }, () => prng.nextUint32());
    };
    expect(draw(42)).to.deep.equal(draw(42));
    expect(draw(42)).to.not.deep.equal(draw(43));
    expect(draw(0)).to.not.deep.equal(draw(2 ** 32));
  });

  it('keeps float, int, range and chance in range and roughly uniform', () => {
    const prng = new Prng(7);
    const buckets = new Array<number>(10).fill(0);
    const n = 100_000;
    let min = 1;
    let max = 0;
    for (let i = 0; i < n; i++) {
      const f = prng.float();
      min = Math.min(min, f);
      max = Math.max(max, f);
      const k = prng.int(10);
      buckets[k] = (buckets[k] ?? 0) + 1;
    }
    expect(min).to.be.at.least(0);
    expect(max).to.be.below(1);
    for (const count of buckets) expect(count).to.be.within(n / 10 - 600, n / 10 + 600);
    for (let i = 0; i < 1000; i++) expect(prng.range(3, 5)).to.be.within(3, 5);
    let hits = 0;
    for (let i = 0; i < 10_000; i++) if (prng.chance(0.25)) hits++;
    expect(hits).to.be.within(2300, 2700);
  });

  it('shuffles to a permutation and forks independent streams deterministically', () => {
    const prng = new Prng(99);
    const shuffled = prng.shuffle([1, 2, 3, 4, 5, 6, 7, 8]);
    expect([...shuffled].sort((x, y) => x - y)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    const a = new Prng(5).fork();
    const b = new Prng(5).fork();
    const parent = new Prng(5);
    expect(a.nextUint32()).to.equal(b.nextUint32());
    expect(parent.nextUint32()).to.not.equal(new Prng(5).fork().nextUint32());
  });

  it('rejects bad arguments', () => {
    const prng = new Prng(1);
    expect(() => prng.int(0)).to.throw(RangeError);
    expect(() => prng.pick([])).to.throw(RangeError);
    expect(() => new Prng(1.5)).to.throw(RangeError);
    expect(() => Prng.fromState(0, 0, 0, 0)).to.throw(RangeError);
  });
});
