import { expect } from 'chai';
import type { ChunkReader, FamilyContext, StateFamily } from './family.js';
import { KeyStore } from './keys/store.js';
import { StateMachine, type Result } from './state-machine.js';

/**
 * A family that counts: each lease is a deadline; advanceTime expires due ones and wakes
 * their waiter; onTermStart pushes every deadline to at least now + 1000.
 */
class LeaseFamily implements StateFamily {
  readonly snapshotSection = 9;
  deadlines: number[] = [];
  termStarts = 0;
  constructor(private readonly context: FamilyContext) {}
  capture(): ChunkReader {
    const bytes = Buffer.from(JSON.stringify({ d: this.deadlines, t: this.termStarts }));
    let sent = false;
    return {
      next: () => {
        if (sent) return null;
        sent = true;
        return bytes;
      },
    };
  }
  restore(data: Buffer): void {
    const parsed =
      data.length === 0 ? { d: [], t: 0 } : (JSON.parse(data.toString()) as { d: number[]; t: number });
    this.deadlines = parsed.d;
    this.termStarts = parsed.t;
  }
  nextDeadlineMs(): number {
    return Math.min(Infinity, ...this.deadlines);
  }
  advanceTime(nowMs: number): void {
    for (const d of this.deadlines.filter((x) => x <= nowMs))
      this.context.wake(`lease-${d}`, { type: 'integer', value: d });
    this.deadlines = this.deadlines.filter((x) => x > nowMs);
  }
  onTermStart(nowMs: number): void {
    this.termStarts++;
    this.deadlines = this.deadlines.map((d) => Math.max(d, nowMs + 1000));
  }
}

class TestMachine extends StateMachine {
  readonly leases = new LeaseFamily(this.familyContext);
  override readonly families: readonly StateFamily[] = [this.leases];
}

const tick = { type: 'sys.tick' } as const;

describe('StateMachine families', () => {
  it('advances a family when an entry at or past its deadline applies, and wakes its waiters', () => {
    const sm = new TestMachine();
    const woken: [string, Result][] = [];
    sm.onWakeUp((id, result) => woken.push([id, result]));
    sm.leases.deadlines = [500, 900];
    expect(sm.nextDeadlineMs()).to.equal(500);
    sm.apply({ index: 1, timeMs: 499, op: tick });
    expect(woken).to.deep.equal([]);
    sm.apply({ index: 2, timeMs: 500, op: tick });
    expect(woken).to.deep.equal([['lease-500', { type: 'integer', value: 500 }]]);
    expect(sm.nextDeadlineMs()).to.equal(900);
  });

  it('tells the families of a new term before judging any deadline by the new leader clock', () => {
    const sm = new TestMachine();
    const woken: string[] = [];
    sm.onWakeUp((id) => woken.push(id));
    sm.leases.deadlines = [500];
    sm.apply({ index: 1, timeMs: 100, term: 1, op: tick });
    expect(sm.leases.termStarts).to.equal(1);
    // Term 2's first entry comes long after the lease's deadline: renewed, not expired.
    sm.apply({ index: 2, timeMs: 5_000, term: 2, op: tick });
    expect(sm.leases.termStarts).to.equal(2);
    expect(woken).to.deep.equal([]);
    expect(sm.leases.deadlines).to.deep.equal([6_000]);
    sm.apply({ index: 3, timeMs: 5_100, term: 2, op: tick });
    expect(sm.leases.termStarts).to.equal(2);
  });

  it('snapshots every family in its own section, and a restored machine has the same bytes', () => {
    const sm = new TestMachine();
    sm.apply({
      index: 1,
      timeMs: 10,
      term: 3,
      op: {
        type: 'keys.set',
        key: Buffer.from('k'),
        value: Buffer.from('v'),
        condition: 'always',
        expire: 'none',
        expireMs: 0,
        get: false,
      },
    });
    sm.leases.deadlines = [42, 43];
    const bytes = sm.snapshot();
    const restored = new TestMachine();
    restored.restore(bytes);
    expect(restored.leases.deadlines).to.deep.equal([42, 43]);
    expect(restored.keys.get(Buffer.from('k'), 10)?.toString()).to.equal('v');
    expect(restored.snapshot().equals(bytes)).to.equal(true);
    // The term is part of the state: term 3 again is not a new term.
    restored.apply({ index: 2, timeMs: 11, term: 3, op: tick });
    expect(restored.leases.termStarts).to.equal(1);
  });

  it('refuses a snapshot with a section it does not know, naming it', () => {
    const bytes = new TestMachine().snapshot();
    expect(() => new StateMachine().restore(bytes)).to.throw(/unknown section 9/);
  });

  it('still restores a version 1 snapshot (keyspace only)', () => {
    const v1 = Buffer.concat([Buffer.alloc(21), new KeyStore().snapshot()]);
    v1.writeUInt32BE(0x43434e53, 0);
    v1.writeUInt8(1, 4);
    v1.writeDoubleBE(7, 5);
    v1.writeDoubleBE(1234, 13);
    const sm = new TestMachine();
    sm.leases.deadlines = [5];
    sm.restore(v1);
    expect(sm.lastAppliedIndex).to.equal(7);
    expect(sm.lastTimeMs).to.equal(1234);
    expect(sm.leases.deadlines).to.deep.equal([]);
  });

  it('reports the earliest key expiry as a deadline, and a tick reclaims due keys', () => {
    const sm = new StateMachine();
    for (let i = 1; i <= 50; i++) {
      sm.apply({
        index: i,
        timeMs: 1_000,
        op: {
          type: 'keys.set',
          key: Buffer.from(`k${i}`),
          value: Buffer.from('v'),
          condition: 'always',
          expire: 'ttl',
          expireMs: 100 + i,
          get: false,
        },
      });
    }
    expect(sm.nextDeadlineMs()).to.equal(1_101);
    expect(sm.keys.size).to.equal(50);
    sm.apply({ index: 51, timeMs: 2_000, op: tick });
    expect(sm.keys.size).to.equal(0);
    expect(sm.nextDeadlineMs()).to.equal(Infinity);
  });
});
