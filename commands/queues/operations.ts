/**
 * The queue family's operations (codec tags 300-399, commands/codec.ts): the typed changes
 * QPUSH, QPOP, QACK, QNACK, QTOUCH, QCONFIG, QREPLAY and a blocked QPOP's cancel make to the
 * replicated queues (commands/queues/store.ts).
 *
 * Every operation names exactly one queue (its first key, so cluster clients route it by the
 * queue's hash slot); an operation never reads or changes another queue except the queue's own
 * dead-letter queue, whose name keeps the queue's hash slot (store.ts deadLetterName).
 *
 * Must never: carry argv, a local clock reading or anything node-specific except a blocked
 * QPOP's waiter id (which only the node holding that waiter acts on).
 */

/** A delivery handle: the message and which delivery of it (QPOP's receipt "id-delivery"). */
export interface Receipt {
  readonly id: number;
  readonly delivery: number;
}

export type QueueOperation =
  | {
      readonly type: 'queues.push';
      readonly queue: Buffer;
      readonly payloads: readonly Buffer[];
      /** A producer's idempotency key (QPUSH ... IDEMP key), or null. */
      readonly idempotencyKey: Buffer | null;
      /** Delivery delay from the entry's time; 0 = ready at once. */
      readonly delayMs: number;
    }
  | {
      readonly type: 'queues.pop';
      readonly queue: Buffer;
      /** Messages to lease at most (>= 1). */
      readonly count: number;
      /** Lease length; 0 = the queue's default visibility. */
      readonly visibilityMs: number;
      /** Who leases (QPENDING shows it); may be empty. */
      readonly consumer: Buffer;
      /** '' = answer at once; else the blocked request's waiter (commands/waiters.ts). */
      readonly waiterId: string;
      /** How long a blocked request waits, from the entry's time (> 0 when waiterId is set). */
      readonly blockMs: number;
    }
  | { readonly type: 'queues.ack'; readonly queue: Buffer; readonly receipts: readonly Receipt[] }
  | {
      readonly type: 'queues.nack';
      readonly queue: Buffer;
      readonly receipt: Receipt;
      /** 0 = ready again at once; else ready after this delay. */
      readonly delayMs: number;
    }
  | {
      readonly type: 'queues.touch';
      readonly queue: Buffer;
      readonly receipt: Receipt;
      /** New lease length from the entry's time; 0 = the lease's own visibility. */
      readonly visibilityMs: number;
    }
  /** A blocked QPOP's client went away: withdraw its wait (no-op if it was served already). */
  | { readonly type: 'queues.cancel'; readonly queue: Buffer; readonly waiterId: string }
  | {
      readonly type: 'queues.config';
      readonly queue: Buffer;
      /** Each setting: the new value, or -1 to keep the current one. */
      readonly visibilityMs: number;
      readonly maxDeliveries: number;
      readonly maxLength: number;
      readonly idempotencyWindowMs: number;
    }
  /** Moves up to `count` ready messages of the queue's dead-letter queue back to the queue. */
  | { readonly type: 'queues.replay'; readonly queue: Buffer; readonly count: number };

export type QueueOperationType = QueueOperation['type'];
