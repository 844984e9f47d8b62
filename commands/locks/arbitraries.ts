/**
 * fast-check generators of lock operations, for the lock store's model spec and the codec's
 * round trip. Names and owners come from small pools so requests collide, queue and deadlock;
 * waiter ids are unique per generated run (the node-local registry guarantees that).
 */
import fc from 'fast-check';
import { operationArb } from '../arbitraries.js';
import type { Operation } from '../state-machine.js';
import type { LockMode, LockOperation } from './operations.js';

export const LOCK_NAMES = ['x', 'y', 'z'];
export const OWNERS = ['a', 'b', 'c', 'd'];

const nameArb = fc.constantFrom(...LOCK_NAMES).map((n) => Buffer.from(n));
const ownerArb = fc.constantFrom(...OWNERS).map((o) => Buffer.from(o));
const modeArb = fc.constantFrom<LockMode>('shared', 'exclusive');

/** Lock operations; `waiterId` is filled in by the caller when it needs unique ids. */
export const lockOperationArb: fc.Arbitrary<LockOperation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        name: nameArb,
        owner: ownerArb,
        mode: modeArb,
        ttlMs: fc.integer({ min: 1, max: 3_000 }),
        waitMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3_000 })),
        id: fc.integer({ min: 0, max: 10_000 }),
      })
      .map(({ name, owner, mode, ttlMs, waitMs, id }): LockOperation => ({
        type: 'lock.acquire',
        name,
        owner,
        mode,
        ttlMs,
        waitMs,
        waiterId: waitMs === 0 ? '' : `n1.${id}`,
      })),
  },
  {
    weight: 3,
    arbitrary: fc
      .record({ name: nameArb, owner: ownerArb })
      .map(({ name, owner }): LockOperation => ({ type: 'lock.release', name, owner })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        name: nameArb,
        owner: ownerArb,
        ttlMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3_000 })),
      })
      .map(({ name, owner, ttlMs }): LockOperation => ({ type: 'lock.renew', name, owner, ttlMs })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ name: nameArb, id: fc.integer({ min: 0, max: 60 }) })
      .map(({ name, id }): LockOperation => ({ type: 'lock.cancel', name, waiterId: `n1.${id}` })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ name: nameArb, owner: fc.option(ownerArb, { nil: null }) })
      .map(({ name, owner }): LockOperation => ({ type: 'lock.force-release', name, owner })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ name: nameArb, token: fc.integer({ min: 0, max: 50 }), op: operationArb })
      .map(({ name, token, op }): LockOperation => ({ type: 'lock.fenced', name, token, op })),
  },
);

/** Any operation, lock operations included (for the codec round trip). */
export const anyOperationArb: fc.Arbitrary<Operation> = fc.oneof(operationArb, lockOperationArb);
