import { expect } from 'chai';
import fc from 'fast-check';
import { entriesArb } from '../arbitraries.js';
import { StateMachine, type Entry, type Result } from '../state-machine.js';
import { KeyStore } from './store.js';

/**
 * The naive model: a Map of live values with absolute expiries, expired entries dropped on
 * every look. No heap, no lazy reclamation, no in-place updates: the obvious semantics.
 */
class Model {
  private readonly map = new Map<string, { value: Buffer; at: number }>();
  /** The cache's home (commands/cache/store.ts), a separate namespace from the keyspace. */
  private readonly cache = new Map<string, { value: Buffer; at: number }>();
  private readonly policies = new Map<string, string>();
  private cachePolicy = 'invalidate';
  private clock = 0;

  private live(k: string, now: number): { value: Buffer; at: number } | undefined {
    const e = this.map.get(k);
    if (e !== undefined && e.at !== 0 && e.at <= now) {
      this.map.delete(k);
      return undefined;
    }
    return e;
  }

  apply(entry: Entry): Result {
    this.clock = Math.max(this.clock, entry.timeMs);
    const now = this.clock;
    const op = entry.op;
    switch (op.type) {
      case 'keys.set': {
        const k = op.key.toString('latin1');
        const cur = this.live(k, now);
        const previous = op.get && cur !== undefined ? cur.value : null;
        if ((op.condition === 'nx' && cur) || (op.condition === 'xx' && !cur)) {
          return { type: 'set', written: false, previous };
        }
        const at =
          op.expire === 'ttl'
            ? now + op.expireMs
            : op.expire === 'at'
              ? op.expireMs
              : op.expire === 'keep'
                ? (cur?.at ?? 0)
                : 0;
        if (at !== 0 && at <= now) this.map.delete(k);
        else this.map.set(k, { value: Buffer.from(op.value), at });
        return { type: 'set', written: true, previous };
      }
      case 'keys.del': {
        let n = 0;
        for (const key of op.keys) {
          const k = key.toString('latin1');
          if (this.live(k, now)) n++;
          this.map.delete(k);
        }
        return { type: 'integer', value: n };
      }
      case 'keys.incrby': {
        const k = op.key.toString('latin1');
        const cur = this.live(k, now);
        const text = cur?.value.toString('latin1') ?? '0';
        if (
          !/^-?(0|[1-9][0-9]*)$/.test(text) ||
          text === '-0' ||
          BigInt(text) >= 2n ** 63n ||
          BigInt(text) < -(2n ** 63n)
        ) {
          return { type: 'error', message: 'ERR value is not an integer or out of range' };
        }
        const next = BigInt(text) + op.delta;
        if (next >= 2n ** 63n || next < -(2n ** 63n))
          return { type: 'error', message: 'ERR increment or decrement would overflow' };
        this.map.set(k, { value: Buffer.from(String(next)), at: cur?.at ?? 0 });
        return { type: 'integer', value: next };
      }
      case 'keys.mset':
        for (const [key, value] of op.pairs) this.map.set(key.toString('latin1'), { value, at: 0 });
        return { type: 'ok' };
      case 'keys.flushall':
        this.map.clear();
        return { type: 'ok' };
      case 'keys.getdel': {
        const k = op.key.toString('latin1');
        const cur = this.live(k, now);
        this.map.delete(k);
        return { type: 'value', value: cur?.value ?? null };
      }
      case 'keys.expire': {
        const k = op.key.toString('latin1');
        const cur = this.live(k, now);
        if (cur === undefined) return { type: 'integer', value: 0 };
        const at = op.mode === 'ttl' ? now + op.ms : op.ms;
        const c = op.condition;
        const ok =
          c === 'always' ||
          (c === 'nx' && cur.at === 0) ||
          (c === 'xx' && cur.at !== 0) ||
          (c === 'gt' && cur.at !== 0 && at > cur.at) ||
          (c === 'lt' && (cur.at === 0 || at < cur.at));
        if (!ok) return { type: 'integer', value: 0 };
        if (at <= now) this.map.delete(k);
        else cur.at = at;
        return { type: 'integer', value: 1 };
      }
      case 'keys.persist': {
        const cur = this.live(op.key.toString('latin1'), now);
        if (cur === undefined || cur.at === 0) return { type: 'integer', value: 0 };
        cur.at = 0;
        return { type: 'integer', value: 1 };
      }
      case 'cache.set': {
        const k = op.key.toString('latin1');
        this.cache.set(k, { value: op.value, at: op.ttlMs > 0 ? now + op.ttlMs : Infinity });
        const policy = op.policy === 'default' ? (this.policies.get(k) ?? this.cachePolicy) : op.policy;
        return { type: 'tree', value: [entry.index, policy] };
      }
      case 'cache.del': {
        const k = op.key.toString('latin1');
        const cur = this.cache.get(k);
        this.cache.delete(k);
        const live = cur !== undefined && cur.at > now;
        return { type: 'tree', value: [entry.index, this.policies.get(k) ?? this.cachePolicy, live ? 1 : 0] };
      }
      case 'cache.policy': {
        if (op.key === null) {
          if (op.policy === 'default')
            return { type: 'error', message: 'ERR the cluster-wide policy must be INVALIDATE or UPDATE' };
          this.cachePolicy = op.policy;
        } else if (op.policy === 'default') this.policies.delete(op.key.toString('latin1'));
        else this.policies.set(op.key.toString('latin1'), op.policy);
        return { type: 'ok' };
      }
      case 'cache.flushall':
        this.map.clear();
        this.cache.clear();
        return { type: 'tree', value: [entry.index] };
      case 'cache.lease':
        return { type: 'ok' };
      case 'sys.tick':
        return { type: 'ok' };
      // The keyspace model is not driven with lock operations (commands/locks/store.spec.ts).
      case 'lock.acquire':
      case 'lock.release':
      case 'lock.renew':
      case 'lock.cancel':
      case 'lock.force-release':
      case 'lock.fenced':
      case 'queues.push':
      case 'queues.pop':
      case 'queues.ack':
      case 'queues.nack':
      case 'queues.touch':
      case 'queues.cancel':
      case 'queues.config':
      case 'queues.replay':
        throw new Error(`not a keyspace operation: ${op.type}`);
      default: {
        const unknown: never = op;
        throw new Error(`unknown op ${JSON.stringify(unknown)}`);
      }
    }
  }

  cacheView(now: number): Map<string, string> {
    const t = Math.max(this.clock, now);
    const out = new Map<string, string>();
    for (const [k, e] of this.cache) if (e.at > t) out.set(k, `${e.value.toString('hex')}@${e.at}`);
    return out;
  }

  view(now: number): Map<string, string> {
    const t = Math.max(this.clock, now);
    const out = new Map<string, string>();
    for (const [k, e] of this.map)
      if (e.at === 0 || e.at > t) out.set(k, `${e.value.toString('hex')}@${e.at}`);
    return out;
  }
}

function view(sm: StateMachine, keys: Iterable<string>, now: number): Map<string, string> {
  const t = sm.readTime(now);
  const out = new Map<string, string>();
  for (const k of keys) {
    const key = Buffer.from(k, 'latin1');
    const e = sm.keys.peek(key, t);
    if (e !== undefined) out.set(k, `${e.value.toString('hex')}@${e.expireAtMs}`);
  }
  return out;
}

function cacheView(sm: StateMachine, keys: Iterable<string>, now: number): Map<string, string> {
  const t = sm.readTime(now);
  const out = new Map<string, string>();
  for (const k of keys) {
    const e = sm.cache.peek(Buffer.from(k, 'latin1'), t);
    if (e !== null) out.set(k, `${e.value.toString('hex')}@${e.expireAtMs}`);
  }
  return out;
}

/** Results as comparable values (integers as bigint). */
function norm(r: Result): unknown {
  return r.type === 'integer' ? { type: 'integer', value: BigInt(r.value) } : r;
}

describe('KeyStore and CacheStore against a naive model', () => {
  it('gives the same results and the same live keys, values and expiries after every entry', () => {
    fc.assert(
      fc.property(entriesArb(80), fc.integer({ min: 0, max: 30_000 }), (entries, probeMs) => {
        const sm = new StateMachine();
        const model = new Model();
        const seen = new Set<string>();
        for (const e of entries) {
          expect(norm(sm.apply(e)), JSON.stringify(e.op.type)).to.deep.equal(norm(model.apply(e)));
          const op = e.op;
          if ('key' in op && op.key !== null) seen.add(op.key.toString('latin1'));
          if (op.type === 'keys.del') for (const k of op.keys) seen.add(k.toString('latin1'));
          if (op.type === 'keys.mset') for (const [k] of op.pairs) seen.add(k.toString('latin1'));
          const expected = model.view(e.timeMs);
          expect(view(sm, seen, e.timeMs)).to.deep.equal(expected);
          expect(cacheView(sm, seen, e.timeMs)).to.deep.equal(model.cacheView(e.timeMs));
        }
        // And at an arbitrary later read time.
        expect(view(sm, seen, probeMs)).to.deep.equal(model.view(probeMs));
        // The expiry count matches the keys that carry one (reclaimed or not yet).
        expect(sm.keys.expires).to.be.at.most(sm.keys.size);
      }),
      { numRuns: 400 },
    );
  });
});

describe('KeyStore expiry reclamation is a function of the keyspace, not of its history', () => {
  it('a store restored from a snapshot reclaims the same keys at every sweep as the store that wrote it', () => {
    const a = new KeyStore();
    const key = (i: number): Buffer => Buffer.from(`k${String(i).padStart(4, '0')}`);
    // 2,000 keys given an expiry at 1,000 ms, then moved to 1,500 ms: under the old lazy heap
    // the writer kept 2,000 stale marks at 1,000 that a restored store never had, so a bounded
    // sweep reclaimed fewer keys on the writer (DBSIZE differed between replicas).
    for (let i = 0; i < 2000; i++) a.mset([[key(i), Buffer.from('v')]]);
    for (let i = 0; i < 2000; i++) a.expire(key(i), 1000, 'always', 0);
    for (let i = 0; i < 2000; i++) a.expire(key(i), 1500 + (i % 7), 'always', 0);
    for (let i = 2000; i < 2300; i++) {
      a.mset([[key(i), Buffer.from('w')]]);
      a.expire(key(i), 1200 + (i % 5), 'always', 0);
    }
    a.del([key(5), key(2005)], 0);
    const b = KeyStore.restore(a.snapshot());
    expect(b.size).to.equal(a.size);
    for (const now of [1100, 1210, 1210, 1505, 1505, 1510, 1600, 1600]) {
      a.sweepExpired(now, 100);
      b.sweepExpired(now, 100);
      expect(b.size, `after a sweep at ${now}`).to.equal(a.size);
      expect(b.nextExpiryMs()).to.equal(a.nextExpiryMs());
      expect(Buffer.compare(sortedSnapshot(a), sortedSnapshot(b))).to.equal(0);
    }
    expect(a.size, 'every expired key reclaimed after enough sweeps').to.be.lessThan(2298);
  });
});

/** The live keys and expiries in key order (a snapshot's own order is the map's insertion order). */
function sortedSnapshot(s: KeyStore): Buffer {
  const r = KeyStore.restore(s.snapshot());
  const lines: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    const k = Buffer.from(`k${String(i).padStart(4, '0')}`);
    const e = r.peek(k, 0);
    if (e !== undefined) lines.push(`${k.toString()}=${e.value.toString()}@${e.expireAtMs}`);
  }
  return Buffer.from(lines.join('\n'));
}
