/**
 * fast-check generators of operations and entries, for the state machine and codec specs.
 * Keys come from a small pool so operations collide; times mostly advance but sometimes go
 * back (a new leader's clock may be behind), which the state machine must absorb.
 */
import fc from 'fast-check';
import type { Entry, Operation } from './state-machine.js';

const KEY_POOL = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((k) => Buffer.from(k));

export const keyArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...KEY_POOL) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 6 }).map((a) => Buffer.from(a)) },
);

export const valueArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a)),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((n) => Buffer.from(String(n))),
  fc.integer({ min: -1000, max: 1000 }).map((n) => Buffer.from(String(n))),
);

export const operationArb: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        key: keyArb,
        value: valueArb,
        condition: fc.constantFrom('always' as const, 'nx' as const, 'xx' as const),
        expire: fc.constantFrom('none' as const, 'ttl' as const, 'at' as const, 'keep' as const),
        ttlMs: fc.integer({ min: 1, max: 5_000 }),
        atMs: fc.integer({ min: 1, max: 20_000 }),
        get: fc.boolean(),
      })
      .map(({ key, value, condition, expire, ttlMs, atMs, get }): Operation => ({
        type: 'keys.set',
        key,
        value,
        condition,
        expire,
        expireMs: expire === 'ttl' ? ttlMs : expire === 'at' ? atMs : 0,
        get,
      })),
  },
  {
    weight: 2,
    arbitrary: fc
      .array(keyArb, { minLength: 1, maxLength: 4 })
      .map((keys): Operation => ({ type: 'keys.del', keys })),
  },
  {
    weight: 3,
    arbitrary: fc
      .record({
        key: keyArb,
        delta: fc.oneof(
          fc.bigInt({ min: -100n, max: 100n }),
          fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        ),
      })
      .map(({ key, delta }): Operation => ({ type: 'keys.incrby', key, delta })),
  },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.tuple(keyArb, valueArb), { minLength: 1, maxLength: 4 })
      .map((pairs): Operation => ({ type: 'keys.mset', pairs })),
  },
  { weight: 1, arbitrary: fc.constant<Operation>({ type: 'keys.flushall' }) },
  { weight: 1, arbitrary: keyArb.map((key): Operation => ({ type: 'keys.getdel', key })) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        key: keyArb,
        mode: fc.constantFrom('ttl' as const, 'at' as const),
        ms: fc.integer({ min: -2_000, max: 20_000 }),
        condition: fc.constantFrom(
          'always' as const,
          'nx' as const,
          'xx' as const,
          'gt' as const,
          'lt' as const,
        ),
      })
      .map(({ key, mode, ms, condition }): Operation => ({ type: 'keys.expire', key, mode, ms, condition })),
  },
  { weight: 1, arbitrary: keyArb.map((key): Operation => ({ type: 'keys.persist', key })) },
  { weight: 1, arbitrary: fc.constant<Operation>({ type: 'sys.tick' }) },
  {
    weight: 3,
    arbitrary: fc
      .record({
        key: keyArb,
        value: valueArb,
        ttlMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5_000 })),
        policy: fc.constantFrom('default' as const, 'invalidate' as const, 'update' as const),
      })
      .map(({ key, value, ttlMs, policy }): Operation => ({ type: 'cache.set', key, value, ttlMs, policy })),
  },
  { weight: 1, arbitrary: keyArb.map((key): Operation => ({ type: 'cache.del', key })) },
  {
    weight: 1,
    arbitrary: fc
      .record({
        key: fc.option(keyArb, { nil: null }),
        policy: fc.constantFrom('default' as const, 'invalidate' as const, 'update' as const),
      })
      .map(({ key, policy }): Operation => ({ type: 'cache.policy', key, policy })),
  },
  { weight: 1, arbitrary: fc.constant<Operation>({ type: 'cache.flushall' }) },
  {
    weight: 1,
    arbitrary: fc
      .option(fc.integer({ min: 10, max: 600_000 }), { nil: null })
      .map((leaseMs): Operation => ({ type: 'cache.lease', leaseMs })),
  },
);

/** Entries with consecutive indexes from 1 and times starting near `startMs`. */
export function entriesArb(maxLength: number, startMs = 10_000): fc.Arbitrary<Entry[]> {
  return fc
    .array(fc.tuple(operationArb, fc.integer({ min: -500, max: 2_000 })), { maxLength })
    .map((items) => {
      let t = startMs;
      return items.map(([op, step], i) => {
        t = Math.max(0, t + step);
        return { index: i + 1, timeMs: t, op };
      });
    });
}
