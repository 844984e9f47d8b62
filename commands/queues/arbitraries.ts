/**
 * fast-check generators of queue operations and entries (store.spec.ts, codec.spec.ts). Queue
 * names, ids and deliveries come from small pools so operations collide: receipts hit current,
 * superseded and unknown deliveries; times advance in steps that cross leases and delays.
 */
import fc from 'fast-check';
import type { Entry, Operation } from '../state-machine.js';
import type { QueueOperation } from './operations.js';
import { deadLetterName } from './store.js';

export const QUEUE_POOL = ['a', 'b'].map((q) => Buffer.from(q));

const queueArb = fc.constantFrom(...QUEUE_POOL);
const receiptArb = fc.record({
  id: fc.integer({ min: 1, max: 8 }),
  delivery: fc.integer({ min: 1, max: 4 }),
});
const payloadArb = fc.constantFrom('x', 'y', 'z', '').map((s) => Buffer.from(s));

/** Operations within the commands' argument ranges (what parse lets through). */
export const queueOperationArb: fc.Arbitrary<QueueOperation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        queue: queueArb,
        payloads: fc.array(payloadArb, { minLength: 1, maxLength: 3 }),
        key: fc.constantFrom(null, 'k1', 'k2'),
        delayMs: fc.constantFrom(0, 0, 0, 700),
      })
      .map(({ queue, payloads, key, delayMs }): QueueOperation => ({
        type: 'queues.push',
        queue,
        payloads,
        idempotencyKey: key === null ? null : Buffer.from(key),
        delayMs,
      })),
  },
  {
    weight: 6,
    arbitrary: fc
      .record({
        queue: fc.oneof(queueArb, queueArb.map(deadLetterName)),
        count: fc.integer({ min: 1, max: 3 }),
        visibilityMs: fc.constantFrom(0, 500, 2_500),
        consumer: fc.constantFrom('c1', 'c2').map((s) => Buffer.from(s)),
        block: fc.option(fc.record({ ms: fc.constantFrom(300, 1_500), n: fc.integer({ min: 1, max: 9 }) }), {
          nil: null,
        }),
      })
      .map(({ queue, count, visibilityMs, consumer, block }): QueueOperation => ({
        type: 'queues.pop',
        queue,
        count,
        visibilityMs,
        consumer,
        waiterId: block === null ? '' : `w${block.n}`,
        blockMs: block === null ? 0 : block.ms,
      })),
  },
  {
    weight: 4,
    arbitrary: fc
      .record({ queue: queueArb, receipts: fc.array(receiptArb, { minLength: 1, maxLength: 3 }) })
      .map(({ queue, receipts }): QueueOperation => ({ type: 'queues.ack', queue, receipts })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ queue: queueArb, receipt: receiptArb, delayMs: fc.constantFrom(0, 0, 400) })
      .map(({ queue, receipt, delayMs }): QueueOperation => ({
        type: 'queues.nack',
        queue,
        receipt,
        delayMs,
      })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ queue: queueArb, receipt: receiptArb, visibilityMs: fc.constantFrom(0, 3_000) })
      .map(({ queue, receipt, visibilityMs }): QueueOperation => ({
        type: 'queues.touch',
        queue,
        receipt,
        visibilityMs,
      })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ queue: queueArb, n: fc.integer({ min: 1, max: 9 }) })
      .map(({ queue, n }): QueueOperation => ({ type: 'queues.cancel', queue, waiterId: `w${n}` })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({
        queue: queueArb,
        visibilityMs: fc.constantFrom(-1, 800),
        maxDeliveries: fc.constantFrom(-1, 0, 1, 2),
        maxLength: fc.constantFrom(-1, 3, 100),
        idempotencyWindowMs: fc.constantFrom(-1, 1_000),
      })
      .map((r): QueueOperation => ({ type: 'queues.config', ...r })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ queue: queueArb, count: fc.integer({ min: 1, max: 3 }) })
      .map(({ queue, count }): QueueOperation => ({ type: 'queues.replay', queue, count })),
  },
);

/** Queue operations mixed with ticks; entries from index 1, terms that sometimes increase. */
export function queueEntriesArb(maxLength: number, startMs = 100_000): fc.Arbitrary<Entry[]> {
  const opArb: fc.Arbitrary<Operation> = fc.oneof(
    { weight: 8, arbitrary: queueOperationArb },
    { weight: 2, arbitrary: fc.constant<Operation>({ type: 'sys.tick' }) },
  );
  return fc
    .array(fc.tuple(opArb, fc.integer({ min: -200, max: 1_200 }), fc.integer({ min: 0, max: 30 })), {
      maxLength,
    })
    .map((items) => {
      let t = startMs;
      let term = 1;
      return items.map(([op, step, termRoll], i) => {
        t = Math.max(0, t + step);
        if (termRoll === 0) term++;
        return { index: i + 1, timeMs: t, term, op };
      });
    });
}
