/**
 * The lock manager's operations (commands/locks/store.ts applies them). Every variant has a
 * permanent codec tag in commands/codec.ts (range 200-299).
 *
 * Names and owners are Buffers (binary safe, as everywhere else); waiter ids are the node-local
 * ids of commands/waiters.ts, unique across the cluster, or '' when the request does not wait.
 * Must never carry argv or a local clock reading: only typed fields.
 */
import type { Operation } from '../state-machine.js';

export type LockMode = 'shared' | 'exclusive';

export type LockOperation =
  /**
   * LOCK: grants at once (the token), or queues the request as a waiter until `waitMs` from
   * the entry's time runs out (result `blocked`, woken later with the token or nil), or
   * answers nil at once when `waitMs` is 0. Refused with -DEADLOCK when queueing would close a
   * cycle in the wait-for graph.
   */
  | {
      readonly type: 'lock.acquire';
      readonly name: Buffer;
      readonly owner: Buffer;
      readonly mode: LockMode;
      /** Lease of the hold once granted (> 0). */
      readonly ttlMs: number;
      /** How long to wait in the queue (0: try once). */
      readonly waitMs: number;
      /** The waiter to wake when served later; '' when waitMs is 0. */
      readonly waiterId: string;
    }
  /** UNLOCK: drops `owner`'s hold and grants to the next waiters in the same apply. */
  | { readonly type: 'lock.release'; readonly name: Buffer; readonly owner: Buffer }
  /** LOCK.RENEW: the hold's lease runs `ttlMs` from now (0: the hold's own TTL again). */
  | { readonly type: 'lock.renew'; readonly name: Buffer; readonly owner: Buffer; readonly ttlMs: number }
  /** Withdraws a queued waiter (its client disconnected or gave up). */
  | { readonly type: 'lock.cancel'; readonly name: Buffer; readonly waiterId: string }
  /** LOCK.FORCERELEASE: drops `owner`'s hold, or every hold when `owner` is null. */
  | { readonly type: 'lock.force-release'; readonly name: Buffer; readonly owner: Buffer | null }
  /**
   * Any operation, applied only if `token` is not older than lock `name`'s latest grant
   * (SET, QACK, CSET, CDEL ... FENCE name token): Kleppmann's fencing inside the service.
   */
  | FencedOperation;

export interface FencedOperation {
  readonly type: 'lock.fenced';
  readonly name: Buffer;
  readonly token: number;
  /** The guarded operation; never itself a 'lock.fenced' (the codec refuses nesting). */
  readonly op: Operation;
}

/** Wraps `op` so it applies only while `token` is lock `name`'s latest token. */
export function fenced(name: Buffer, token: number, op: Operation): FencedOperation {
  return { type: 'lock.fenced', name, token, op };
}
