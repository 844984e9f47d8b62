import { expect } from 'chai';
import fc from 'fast-check';
import { entriesArb } from './arbitraries.js';
import { StateMachine, type Entry, type Result } from './state-machine.js';

function applyAll(sm: StateMachine, entries: readonly Entry[]): Result[] {
  return entries.map((e) => sm.apply(e));
}

const key = (k: string) => Buffer.from(k);

describe('StateMachine', () => {
  it('is deterministic: the same entries give the same results and snapshot bytes', () => {
    fc.assert(
      fc.property(entriesArb(60), (entries) => {
        const a = new StateMachine();
        const b = new StateMachine();
        expect(applyAll(a, entries)).to.deep.equal(applyAll(b, entries));
        expect(a.snapshot().equals(b.snapshot())).to.equal(true);
      }),
      { numRuns: 300 },
    );
  });

  it('restoring a snapshot mid-way and replaying the rest ends in the same state', () => {
    fc.assert(
      fc.property(entriesArb(60), fc.nat(), (entries, cut) => {
        const split = entries.length === 0 ? 0 : cut % (entries.length + 1);
        const full = new StateMachine();
        const fullResults = applyAll(full, entries);
        const first = new StateMachine();
        applyAll(first, entries.slice(0, split));
        const restored = new StateMachine();
        restored.restore(first.snapshot());
        expect(restored.lastAppliedIndex).to.equal(split);
        expect(restored.snapshot().equals(first.snapshot())).to.equal(true);
        expect(applyAll(restored, entries.slice(split))).to.deep.equal(fullResults.slice(split));
        expect(restored.snapshot().equals(full.snapshot())).to.equal(true);
      }),
      { numRuns: 300 },
    );
  });

  it('a captured snapshot read in chunks later equals the snapshot at capture time', () => {
    fc.assert(
      fc.property(entriesArb(60), fc.nat(), fc.integer({ min: 1, max: 64 }), (entries, cut, chunkBytes) => {
        const split = entries.length === 0 ? 0 : cut % (entries.length + 1);
        const sm = new StateMachine();
        applyAll(sm, entries.slice(0, split));
        const expected = sm.snapshot();
        const capture = sm.captureSnapshot();
        expect(capture.index).to.equal(split);
        // Writes after the capture must not show in it.
        applyAll(sm, entries.slice(split));
        const chunks: Buffer[] = [];
        for (let c = capture.next(chunkBytes); c !== null; c = capture.next(chunkBytes)) {
          expect(c.length).to.be.greaterThan(0);
          chunks.push(c);
        }
        expect(Buffer.concat(chunks).equals(expected)).to.equal(true);
      }),
      { numRuns: 200 },
    );
  });

  it('reads do not change state', () => {
    fc.assert(
      fc.property(
        entriesArb(40),
        fc.array(fc.integer({ min: 0, max: 100_000 }), { maxLength: 10 }),
        (entries, readTimes) => {
          const plain = new StateMachine();
          applyAll(plain, entries);
          const read = new StateMachine();
          for (const e of entries) {
            read.apply(e);
            for (const t of readTimes) {
              const now = read.readTime(t);
              read.keys.get(key('a'), now);
              read.keys.exists([key('b'), key('c')], now);
              void read.keys.size;
              read.snapshot();
            }
          }
          expect(read.snapshot().equals(plain.snapshot())).to.equal(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('decides expiry from entry time only, and never lets time go back', () => {
    const sm = new StateMachine();
    sm.apply({
      index: 1,
      timeMs: 1000,
      op: {
        type: 'keys.set',
        key: key('k'),
        value: key('v'),
        condition: 'always',
        expire: 'ttl',
        expireMs: 500,
        get: false,
      },
    });
    expect(sm.keys.get(key('k'), sm.readTime(1499))?.toString()).to.equal('v');
    expect(sm.keys.get(key('k'), sm.readTime(1500))).to.equal(null);
    // A later entry stamped earlier (a new leader's slower clock) does not move time back.
    sm.apply({ index: 2, timeMs: 1600, op: { type: 'keys.del', keys: [key('none')] } });
    sm.apply({
      index: 3,
      timeMs: 1200,
      op: {
        type: 'keys.set',
        key: key('k'),
        value: key('w'),
        condition: 'xx',
        expire: 'none',
        expireMs: 0,
        get: false,
      },
    });
    expect(sm.lastTimeMs).to.equal(1600);
    expect(sm.keys.get(key('k'), sm.readTime(0))).to.equal(null);
    expect(sm.readTime(0)).to.equal(1600);
  });

  it('reclaims expired keys deterministically as entries are applied, a bounded number per entry', () => {
    const sm = new StateMachine();
    let index = 0;
    for (let i = 0; i < 100; i++) {
      sm.apply({
        index: ++index,
        timeMs: 1000,
        op: {
          type: 'keys.set',
          key: key(`k${i}`),
          value: key('v'),
          condition: 'always',
          expire: 'ttl',
          expireMs: 10 + (i % 7),
          get: false,
        },
      });
    }
    sm.apply({
      index: ++index,
      timeMs: 1000,
      op: {
        type: 'keys.set',
        key: key('keep'),
        value: key('v'),
        condition: 'always',
        expire: 'none',
        expireMs: 0,
        get: false,
      },
    });
    expect(sm.keys.size).to.equal(101);
    expect(sm.keys.expires).to.equal(100);
    const sizes: number[] = [];
    for (let i = 0; i < 8; i++) {
      sm.apply({ index: ++index, timeMs: 2000, op: { type: 'keys.del', keys: [key('absent')] } });
      sizes.push(sm.keys.size);
    }
    expect(sizes).to.deep.equal([85, 69, 53, 37, 21, 5, 1, 1]);
    expect(sm.keys.expires).to.equal(0);
  });

  it('keeps the expiry index bounded when keys are overwritten many times', () => {
    const sm = new StateMachine();
    for (let i = 1; i <= 20_000; i++) {
      sm.apply({
        index: i,
        timeMs: 1000,
        op: {
          type: 'keys.set',
          key: key('hot'),
          value: key('v'),
          condition: 'always',
          expire: 'ttl',
          expireMs: 1_000_000 + i,
          get: false,
        },
      });
    }
    const heapLength = (sm.keys as unknown as { heap: unknown[] }).heap.length;
    expect(heapLength).to.be.below(2 * sm.keys.expires + 1025);
    expect(sm.keys.get(key('hot'), 1_000_000)?.toString()).to.equal('v');
  });

  it('crashes on an entry out of order (a broken invariant)', () => {
    const sm = new StateMachine();
    expect(() => sm.apply({ index: 2, timeMs: 0, op: { type: 'keys.flushall' } })).to.throw(/out of order/);
  });

  it('refuses a malformed snapshot', () => {
    const sm = new StateMachine();
    expect(() => sm.restore(Buffer.from('garbage'))).to.throw();
    const good = new StateMachine();
    good.apply({ index: 1, timeMs: 5, op: { type: 'keys.mset', pairs: [[key('a'), key('1')]] } });
    const snap = good.snapshot();
    expect(() => sm.restore(snap.subarray(0, snap.length - 1))).to.throw(/truncated/);
    expect(() => sm.restore(Buffer.concat([snap, Buffer.from([0])]))).to.throw(/trailing/);
    sm.restore(snap);
    expect(sm.keys.get(key('a'), 5)?.toString()).to.equal('1');
  });
});
