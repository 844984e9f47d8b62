import { expect } from 'chai';
import fc from 'fast-check';
import { StateMachine, type Operation, type Result } from '../state-machine.js';
import { LOCK_NAMES, OWNERS, lockOperationArb } from './arbitraries.js';
import type { LockMode, LockOperation } from './operations.js';
import { LockStore } from './store.js';

/**
 * The naive model: arrays scanned in full, time processed one event at a time (always the
 * earliest), and the wait-for graph rebuilt from scratch and searched breadth first for every
 * request. No heap, no indexes, no incremental anything: the obvious semantics.
 */
interface MHold {
  owner: string;
  mode: LockMode;
  token: number;
  ttl: number;
  exp: number;
}
interface MWaiter {
  owner: string;
  mode: LockMode;
  ttl: number;
  id: string;
  deadline: number;
}
interface MLock {
  holders: MHold[];
  waiters: MWaiter[];
  last: number;
}

const conflicts = (a: LockMode, b: LockMode): boolean => a === 'exclusive' || b === 'exclusive';

class Model {
  locks = new Map<string, MLock>();
  retired = new Map<string, number>();
  token = 0;
  wakes: [string, unknown][] = [];
  counters = { grants: 0, expiries: 0, deadlocks: 0, timeouts: 0, forced: 0 };

  private rec(name: string): MLock {
    let r = this.locks.get(name);
    if (r === undefined) {
      r = { holders: [], waiters: [], last: this.retired.get(name) ?? 0 };
      this.retired.delete(name);
      this.locks.set(name, r);
    }
    return r;
  }

  private tidy(name: string): void {
    const r = this.locks.get(name);
    if (r !== undefined && r.holders.length === 0 && r.waiters.length === 0) {
      this.locks.delete(name);
      if (r.last > 0) this.retired.set(name, r.last);
    }
  }

  private fits(r: MLock, owner: string, mode: LockMode): boolean {
    return r.holders.every((h) => h.owner === owner || !conflicts(mode, h.mode));
  }

  private grant(name: string, owner: string, mode: LockMode, ttl: number, now: number): number {
    const r = this.rec(name);
    const token = ++this.token;
    r.last = token;
    this.counters.grants++;
    const h = r.holders.find((x) => x.owner === owner);
    if (h !== undefined) Object.assign(h, { mode, token, ttl, exp: now + ttl });
    else r.holders.push({ owner, mode, token, ttl, exp: now + ttl });
    return token;
  }

  private serve(name: string, now: number): void {
    const r = this.locks.get(name);
    if (r === undefined) return;
    while (r.waiters.length > 0) {
      const w = r.waiters[0]!;
      const h = r.holders.find((x) => x.owner === w.owner);
      if (h !== undefined && (h.mode === 'exclusive' || w.mode === 'shared')) {
        r.waiters.shift();
        h.exp = Math.max(h.exp, now + w.ttl);
        this.wakes.push([w.id, h.token]);
        continue;
      }
      if (!this.fits(r, w.owner, w.mode)) break;
      r.waiters.shift();
      this.wakes.push([w.id, this.grant(name, w.owner, w.mode, w.ttl, now)]);
    }
  }

  edges(): [string, string][] {
    const out: [string, string][] = [];
    for (const r of this.locks.values())
      r.waiters.forEach((w, i) => {
        for (const h of r.holders)
          if (h.owner !== w.owner && conflicts(w.mode, h.mode)) out.push([w.owner, h.owner]);
        for (const a of r.waiters.slice(0, i))
          if (a.owner !== w.owner && conflicts(w.mode, a.mode)) out.push([w.owner, a.owner]);
      });
    return out;
  }

  reaches(from: string, to: string): boolean {
    const edges = this.edges();
    const seen = new Set<string>();
    let frontier = edges.filter(([f]) => f === from).map(([, t]) => t);
    while (frontier.length > 0) {
      if (frontier.includes(to)) return true;
      for (const f of frontier) seen.add(f);
      frontier = edges.filter(([f, t]) => frontier.includes(f) && !seen.has(t)).map(([, t]) => t);
    }
    return false;
  }

  termStart(now: number): void {
    for (const r of this.locks.values()) for (const h of r.holders) h.exp = Math.max(h.exp, now + h.ttl);
  }

  advance(now: number): void {
    for (;;) {
      // The earliest due event; at the same instant holds before waits, then by lock and key.
      let best: { at: number; kind: 0 | 1; name: string; key: string } | null = null;
      for (const [name, r] of this.locks) {
        const cands = [
          ...r.holders
            .filter((h) => h.exp <= now)
            .map((h) => ({ at: h.exp, kind: 0 as const, name, key: h.owner })),
          ...r.waiters
            .filter((w) => w.deadline <= now)
            .map((w) => ({ at: w.deadline, kind: 1 as const, name, key: w.id })),
        ];
        for (const c of cands)
          if (
            best === null ||
            c.at < best.at ||
            (c.at === best.at &&
              (c.kind < best.kind ||
                (c.kind === best.kind && (c.name < best.name || (c.name === best.name && c.key < best.key)))))
          )
            best = c;
      }
      if (best === null) return;
      const r = this.locks.get(best.name)!;
      if (best.kind === 0) {
        r.holders = r.holders.filter((h) => h.owner !== best.key);
        this.counters.expiries++;
      } else {
        r.waiters = r.waiters.filter((w) => w.id !== best.key);
        this.counters.timeouts++;
        this.wakes.push([best.key, null]);
      }
      this.serve(best.name, now);
      this.tidy(best.name);
    }
  }

  apply(op: LockOperation, now: number): unknown {
    switch (op.type) {
      case 'lock.acquire': {
        const name = op.name.toString('latin1');
        const owner = op.owner.toString('latin1');
        const r = this.rec(name);
        const h = r.holders.find((x) => x.owner === owner);
        if (h !== undefined && (h.mode === 'exclusive' || op.mode === 'shared')) {
          h.exp = Math.max(h.exp, now + op.ttlMs);
          return h.token;
        }
        if ((h !== undefined || r.waiters.length === 0) && this.fits(r, owner, op.mode))
          return this.grant(name, owner, op.mode, op.ttlMs, now);
        if (op.waitMs === 0) {
          this.tidy(name);
          return null;
        }
        if ([...this.locks.values()].some((l) => l.waiters.some((w) => w.id === op.waiterId)))
          return { error: 'ERR waiter id already in use' };
        const w: MWaiter = {
          owner,
          mode: op.mode,
          ttl: op.ttlMs,
          id: op.waiterId,
          deadline: now + op.waitMs,
        };
        const same = r.waiters.findIndex((x) => x.owner === owner && x.mode === op.mode);
        if (same >= 0) {
          this.wakes.push([r.waiters[same]!.id, { error: 'superseded' }]);
          r.waiters[same] = w;
          return 'blocked';
        }
        let at = r.waiters.length;
        if (h !== undefined) {
          at = 0;
          while (at < r.waiters.length && r.holders.some((x) => x.owner === r.waiters[at]!.owner)) at++;
        }
        r.waiters.splice(at, 0, w);
        if (this.reaches(owner, owner)) {
          r.waiters = r.waiters.filter((x) => x !== w);
          this.counters.deadlocks++;
          this.tidy(name);
          return { error: 'DEADLOCK' };
        }
        return 'blocked';
      }
      case 'lock.release': {
        const name = op.name.toString('latin1');
        const r = this.locks.get(name);
        const owner = op.owner.toString('latin1');
        if (r === undefined || !r.holders.some((h) => h.owner === owner)) return 0n;
        r.holders = r.holders.filter((h) => h.owner !== owner);
        this.serve(name, now);
        this.tidy(name);
        return 1n;
      }
      case 'lock.renew': {
        const h = this.locks
          .get(op.name.toString('latin1'))
          ?.holders.find((x) => x.owner === op.owner.toString('latin1'));
        if (h === undefined) return { error: 'LOCKLOST' };
        if (op.ttlMs > 0) h.ttl = op.ttlMs;
        h.exp = now + h.ttl;
        return h.token;
      }
      case 'lock.cancel': {
        const name = op.name.toString('latin1');
        const r = this.locks.get(name);
        if (r === undefined || !r.waiters.some((w) => w.id === op.waiterId)) return 0n;
        r.waiters = r.waiters.filter((w) => w.id !== op.waiterId);
        this.serve(name, now);
        this.tidy(name);
        return 1n;
      }
      case 'lock.force-release': {
        const name = op.name.toString('latin1');
        const r = this.locks.get(name);
        if (r === undefined) return 0n;
        const owner = op.owner?.toString('latin1');
        const n = r.holders.filter((h) => owner === undefined || h.owner === owner).length;
        r.holders = r.holders.filter((h) => owner !== undefined && h.owner !== owner);
        this.counters.forced += n;
        this.serve(name, now);
        this.tidy(name);
        return BigInt(n);
      }
      case 'lock.fenced': {
        const name = op.name.toString('latin1');
        const current = this.locks.get(name)?.last ?? this.retired.get(name) ?? 0;
        if (op.token > this.token || op.token < 1) return { error: 'FENCED' };
        if (op.token < current) return { error: 'FENCED' };
        return 'inner';
      }
      default: {
        const unknown: never = op;
        throw new Error(`unknown ${JSON.stringify(unknown)}`);
      }
    }
  }

  view(): unknown {
    const out: Record<string, unknown> = {};
    for (const [name, r] of [...this.locks].sort(([a], [b]) => (a < b ? -1 : 1)))
      out[name] = {
        holders: r.holders.map((h) => [h.owner, h.mode, h.token, h.exp]),
        waiters: r.waiters.map((w) => [w.owner, w.mode, w.id, w.deadline]),
        last: r.last,
      };
    return out;
  }
}

/** The store's result in the model's terms (errors by their prefix, the inner op's as 'inner'). */
function norm(result: Result, op: Operation): unknown {
  if (op.type === 'lock.fenced')
    return result.type === 'error' && result.message.startsWith('FENCED ') ? { error: 'FENCED' } : 'inner';
  if (result.type === 'error') {
    const prefix = result.message.split(' ')[0]!;
    return { error: prefix === 'ERR' ? result.message : prefix };
  }
  if (result.type === 'blocked') return 'blocked';
  if (result.type === 'integer') return BigInt(result.value);
  if (result.type === 'tree') return result.value;
  return result;
}

function storeView(sm: StateMachine, now: number): unknown {
  const out: Record<string, unknown> = {};
  for (const name of LOCK_NAMES) {
    const v = sm.locks.view(Buffer.from(name), now);
    if (v === null) continue;
    out[name] = {
      holders: v.holders.map((h) => [h.owner.toString('latin1'), h.mode, h.token, h.ttlLeftMs + now]),
      waiters: v.waiters.map((w, i) => [
        w.owner.toString('latin1'),
        w.mode,
        waiterIds(sm, name)[i],
        w.waitLeftMs + now,
      ]),
      last: v.lastToken,
    };
  }
  return out;
}

/** Waiter ids of a lock in queue order, read from the canonical snapshot bytes. */
function waiterIds(sm: StateMachine, name: string): string[] {
  const s = JSON.parse(sm.locks.serialize().toString()) as {
    locks: [string, number, unknown[], [string, number, number, string, number][]][];
  };
  return s.locks.find((l) => l[0] === name)?.[3].map((w) => w[3]) ?? [];
}

interface Step {
  op: LockOperation;
  stepMs: number;
  newTerm: boolean;
}

const stepsArb = (maxLength: number): fc.Arbitrary<Step[]> =>
  fc.array(
    fc.record({
      op: lockOperationArb,
      stepMs: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 2_500 })),
      newTerm: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    }),
    { maxLength },
  );

/** Makes waiter ids unique in a run (as the node registries do), keeping cancels pointing at earlier ones. */
function withUniqueIds(steps: Step[]): Step[] {
  let n = 0;
  return steps.map((s) => {
    if (s.op.type === 'lock.acquire' && s.op.waiterId !== '')
      return { ...s, op: { ...s.op, waiterId: `n1.${n++}` } };
    if (s.op.type === 'lock.cancel')
      return { ...s, op: { ...s.op, waiterId: `n1.${Number(s.op.waiterId.slice(3)) % Math.max(1, n)}` } };
    return s;
  });
}

describe('LockStore against a naive model', () => {
  it('gives the same results, wake-ups, holders, waiters and tokens after every entry', () => {
    fc.assert(
      fc.property(stepsArb(120), fc.integer({ min: 0, max: 119 }), (raw, restoreAt) => {
        const steps = withUniqueIds(raw);
        let sm = new StateMachine();
        const woken: [string, unknown][] = [];
        const listen = (m: StateMachine): void =>
          m.onWakeUp((id, r) =>
            woken.push([id, r.type === 'tree' ? r.value : r.type === 'error' ? { error: 'superseded' } : r]),
          );
        listen(sm);
        const model = new Model();
        let now = 1_000_000;
        let term = 1;
        for (const [i, s] of steps.entries()) {
          now += s.stepMs;
          if (s.newTerm) term++;
          const entry = { index: sm.lastAppliedIndex + 1, timeMs: now, term, op: s.op };
          if (s.newTerm) model.termStart(now);
          model.advance(now);
          const expected = model.apply(s.op, now);
          const got = norm(sm.apply(entry), s.op);
          expect(got, `step ${i} ${s.op.type}`).to.deep.equal(expected);
          expect(woken, `wake-ups after step ${i}`).to.deep.equal(model.wakes);
          expect(storeView(sm, now), `state after step ${i}`).to.deep.equal(model.view());
          // The wait-for graph stays acyclic: the deadlock check is complete.
          for (const o of OWNERS) expect(model.reaches(o, o), `cycle through ${o}`).to.equal(false);
          const f = sm.locks.figures();
          expect([f.grants, f.expiries, f.deadlocks, f.waitTimeouts, f.forcedReleases]).to.deep.equal(
            Object.values(model.counters),
          );
          for (const name of LOCK_NAMES)
            expect(sm.locks.currentToken(name)).to.equal(
              model.locks.get(name)?.last ?? model.retired.get(name) ?? 0,
            );
          if (i === restoreAt) {
            // A node that restores this snapshot must behave byte-identically from here on.
            const bytes = sm.snapshot();
            const restored = new StateMachine();
            restored.restore(bytes);
            expect(restored.snapshot().equals(bytes)).to.equal(true);
            sm = restored;
            listen(sm);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('LockStore', () => {
  const acquire = (name: string, owner: string, mode: LockMode, waitMs = 0, waiterId = ''): Operation => ({
    type: 'lock.acquire',
    name: Buffer.from(name),
    owner: Buffer.from(owner),
    mode,
    ttlMs: 10_000,
    waitMs,
    waiterId,
  });
  const run = (): {
    sm: StateMachine;
    apply: (op: Operation, atMs?: number) => Result;
    woken: [string, Result][];
  } => {
    const sm = new StateMachine();
    const woken: [string, Result][] = [];
    sm.onWakeUp((id, r) => woken.push([id, r]));
    let t = 1_000;
    return {
      sm,
      woken,
      apply: (op, atMs) => sm.apply({ index: sm.lastAppliedIndex + 1, timeMs: (t = atMs ?? t + 1), op }),
    };
  };

  it('refuses the request that closes a two-owner cycle, naming it, and queues nothing', () => {
    const { sm, apply } = run();
    apply(acquire('x', 'a', 'exclusive'));
    apply(acquire('y', 'b', 'exclusive'));
    expect(apply(acquire('y', 'a', 'exclusive', 5_000, 'w1')).type).to.equal('blocked');
    expect(apply(acquire('x', 'b', 'exclusive', 5_000, 'w2'))).to.deep.equal({
      type: 'error',
      message: 'DEADLOCK b -> a -> b on locks x, y',
    });
    expect(sm.locks.view(Buffer.from('x'), 0)?.waiters).to.deep.equal([]);
    expect(sm.locks.figures().deadlocks).to.equal(1);
    expect(sm.locks.waitsFor(Buffer.from('a')).map((e) => [e.from, e.lock, e.to, e.as])).to.deep.equal([
      ['a', 'y', 'b', 'holder'],
    ]);
  });

  it('refuses the request that closes a three-owner cycle', () => {
    const { apply } = run();
    apply(acquire('x', 'a', 'exclusive'));
    apply(acquire('y', 'b', 'exclusive'));
    apply(acquire('z', 'c', 'exclusive'));
    expect(apply(acquire('y', 'a', 'exclusive', 5_000, 'w1')).type).to.equal('blocked');
    expect(apply(acquire('z', 'b', 'shared', 5_000, 'w2')).type).to.equal('blocked');
    expect(apply(acquire('x', 'c', 'shared', 5_000, 'w3'))).to.deep.equal({
      type: 'error',
      message: 'DEADLOCK c -> a -> b -> c on locks x, y, z',
    });
  });

  it('refuses the second of two sharers that both upgrade, and grants the first when the other leaves', () => {
    const { apply, woken } = run();
    const t1 = apply(acquire('x', 'a', 'shared'));
    const t2 = apply(acquire('x', 'b', 'shared'));
    expect([t1, t2]).to.deep.equal([
      { type: 'tree', value: 1 },
      { type: 'tree', value: 2 },
    ]);
    expect(apply(acquire('x', 'a', 'exclusive', 5_000, 'wa')).type).to.equal('blocked');
    expect(apply(acquire('x', 'b', 'exclusive', 5_000, 'wb'))).to.deep.equal({
      type: 'error',
      message: 'DEADLOCK b -> a -> b on locks x, x',
    });
    apply({ type: 'lock.release', name: Buffer.from('x'), owner: Buffer.from('b') });
    expect(woken).to.deep.equal([['wa', { type: 'tree', value: 3 }]]);
  });

  it('finds a cycle through a waiter ahead in a queue, not only through holders', () => {
    const { apply } = run();
    apply(acquire('x', 'a', 'shared'));
    apply(acquire('y', 'b', 'exclusive'));
    // c waits for y (held by b); a shared request by b on x queues behind c's exclusive wait on x.
    expect(apply(acquire('x', 'c', 'exclusive', 5_000, 'w1')).type).to.equal('blocked');
    expect(apply(acquire('x', 'b', 'shared', 5_000, 'w2')).type).to.equal('blocked');
    // a waits for y held by b; b waits for c (ahead on x); c waits for a (holder of x): cycle.
    expect(apply(acquire('y', 'a', 'exclusive', 5_000, 'w3'))).to.deep.include({ type: 'error' });
  });

  it('grants consecutive shared waiters together and keeps a shared request behind a waiting exclusive one', () => {
    const { apply, woken, sm } = run();
    apply(acquire('x', 'w', 'exclusive'));
    apply(acquire('x', 'r1', 'shared', 5_000, 'i1'));
    apply(acquire('x', 'r2', 'shared', 5_000, 'i2'));
    apply(acquire('x', 'x1', 'exclusive', 5_000, 'i3'));
    apply(acquire('x', 'r3', 'shared', 5_000, 'i4'));
    apply({ type: 'lock.release', name: Buffer.from('x'), owner: Buffer.from('w') });
    expect(woken.map(([id]) => id)).to.deep.equal(['i1', 'i2']);
    expect(sm.locks.view(Buffer.from('x'), 0)?.waiters.map((w) => w.owner.toString())).to.deep.equal([
      'x1',
      'r3',
    ]);
  });

  it('lets a resent LOCK take over its own queue place; the superseded request is answered with an error', () => {
    const { apply, woken, sm } = run();
    apply(acquire('x', 'h', 'exclusive'));
    apply(acquire('x', 'a', 'exclusive', 5_000, 'first'));
    apply(acquire('x', 'b', 'exclusive', 5_000, 'b1'));
    expect(apply(acquire('x', 'a', 'exclusive', 5_000, 'resent')).type).to.equal('blocked');
    expect(woken).to.deep.equal([
      [
        'first',
        { type: 'error', message: 'ERR superseded by a newer LOCK of the same owner on the same lock' },
      ],
    ]);
    expect(sm.locks.view(Buffer.from('x'), 0)?.waiters.map((w) => w.owner.toString())).to.deep.equal([
      'a',
      'b',
    ]);
    apply({ type: 'lock.release', name: Buffer.from('x'), owner: Buffer.from('h') });
    expect(woken[1]).to.deep.equal(['resent', { type: 'tree', value: 2 }]);
  });

  it('expires a lease at its deadline and hands the lock to the next waiter in the same apply', () => {
    const { apply, woken, sm } = run();
    apply({ ...acquire('x', 'a', 'exclusive'), ttlMs: 100 } as Operation, 1_000);
    apply(acquire('x', 'b', 'exclusive', 5_000, 'wb'), 1_010);
    expect(sm.nextDeadlineMs()).to.equal(1_100);
    apply({ type: 'sys.tick' }, 1_099);
    expect(woken).to.deep.equal([]);
    apply({ type: 'sys.tick' }, 1_100);
    expect(woken).to.deep.equal([['wb', { type: 'tree', value: 2 }]]);
    expect(
      apply({ type: 'lock.renew', name: Buffer.from('x'), owner: Buffer.from('a'), ttlMs: 0 }),
    ).to.deep.include({
      type: 'error',
    });
  });

  it('renews every lease on a new term instead of expiring it by the new leader clock', () => {
    const sm = new StateMachine();
    sm.apply({
      index: 1,
      timeMs: 1_000,
      term: 1,
      op: { ...acquire('x', 'a', 'exclusive'), ttlMs: 100 } as Operation,
    });
    sm.apply({ index: 2, timeMs: 9_000, term: 2, op: { type: 'sys.tick' } });
    const v = sm.locks.view(Buffer.from('x'), 9_000);
    expect(v?.holders.map((h) => h.ttlLeftMs)).to.deep.equal([100]);
  });

  it('fences a wrapped write: applies it with the current token, refuses an older one, even after the lock is dropped', () => {
    const { apply, sm } = run();
    const set = (v: string): Operation => ({
      type: 'keys.set',
      key: Buffer.from('k'),
      value: Buffer.from(v),
      condition: 'always',
      expire: 'none',
      expireMs: 0,
      get: false,
    });
    const fence = (token: number, v: string): Operation => ({
      type: 'lock.fenced',
      name: Buffer.from('x'),
      token,
      op: set(v),
    });
    apply(acquire('x', 'a', 'exclusive'));
    expect(apply(fence(1, 'one')).type).to.equal('set');
    apply({ type: 'lock.release', name: Buffer.from('x'), owner: Buffer.from('a') });
    apply(acquire('x', 'b', 'exclusive'));
    expect(apply(fence(1, 'stale'))).to.deep.equal({
      type: 'error',
      message: "FENCED token 1 is older than lock 'x' current token 2",
    });
    apply({ type: 'lock.release', name: Buffer.from('x'), owner: Buffer.from('b') });
    expect(sm.locks.view(Buffer.from('x'), 0)).to.equal(null);
    expect(apply(fence(1, 'stale')).type).to.equal('error');
    expect(apply(fence(2, 'two')).type).to.equal('set');
    expect(apply(fence(99, 'never'))).to.deep.equal({
      type: 'error',
      message: 'FENCED token 99 was never issued',
    });
    expect(sm.keys.get(Buffer.from('k'), 0)?.toString()).to.equal('two');
  });

  it('keeps a bounded map of dropped locks, folding the oldest into a floor that still refuses old tokens', () => {
    const store = new LockStore({ wake: () => undefined });
    const n = 100_000 + 5;
    for (let i = 0; i < n; i++) {
      const name = Buffer.from(`l${i}`);
      store.apply(
        {
          type: 'lock.acquire',
          name,
          owner: Buffer.from('o'),
          mode: 'exclusive',
          ttlMs: 10,
          waitMs: 0,
          waiterId: '',
        },
        1,
      );
      store.apply({ type: 'lock.release', name, owner: Buffer.from('o') }, 1);
    }
    expect(store.figures().retired).to.equal(100_000);
    expect(store.figures().locks).to.equal(0);
    // l0..l4 were evicted: judged by the floor (token 5), so tokens 1..4 are refused there.
    expect(store.checkFence(Buffer.from('l0'), 1)?.type).to.equal('error');
    expect(store.checkFence(Buffer.from('l10'), 11)).to.equal(null);
    expect(store.checkFence(Buffer.from('l10'), 10)?.type).to.equal('error');
  });
});
