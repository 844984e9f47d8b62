/**
 * Blocked requests on this node (LOCK ... WAIT, QPOP ... BLOCK): a request registers a waiter
 * here BEFORE it proposes its operation, puts the waiter's id in the operation, and, if the
 * operation's result is `blocked`, waits for the state machine to wake that id during a later
 * apply (FamilyContext.wake) with the final Result.
 *
 * Registering first matters: on a follower the wake-up may be applied locally before the
 * leader's answer to the forwarded write arrives, and it must not be lost.
 *
 * Owns: the node-local map waiter id -> pending request, bounded by `maxWaiters`.
 * Must never: decide anything about the replicated state (timeouts of a wait are decided by
 * the state machine at leader time, so every node agrees whether a waiter was served).
 */
import type { Result } from './state-machine.js';

export interface Waiter {
  /** Unique across the cluster and across restarts of this node. */
  readonly id: string;
  /** Settles with the Result the state machine woke this waiter with. */
  readonly woken: Promise<Result>;
  /** Forget the waiter here (the request finished another way); a later wake-up is ignored. */
  release(): void;
}

/** Too many requests are blocked on this node already. */
export class TooManyWaitersError extends Error {
  override readonly name = 'TooManyWaitersError';
}

export class WaiterRegistry {
  private readonly pending = new Map<string, (result: Result) => void>();
  /** Wake-ups that arrived for a waiter not (or no longer) registered: ignored, counted. */
  private strayWakeUps = 0;
  private seq = 0;

  /**
   * @param idPrefix unique per node process (node id and a boot nonce), so ids never collide
   *   with another node's or with this node's before a restart.
   */
  constructor(
    private readonly idPrefix: string,
    readonly maxWaiters = 10_000,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  get strayWakeUpCount(): number {
    return this.strayWakeUps;
  }

  /** Registers a waiter. Throws TooManyWaitersError when `maxWaiters` are waiting. */
  create(): Waiter {
    if (this.pending.size >= this.maxWaiters)
      throw new TooManyWaitersError(`max number of blocked clients reached (${this.maxWaiters})`);
    const id = `${this.idPrefix}:${(++this.seq).toString(36)}`;
    let resolve!: (result: Result) => void;
    const woken = new Promise<Result>((r) => (resolve = r));
    this.pending.set(id, resolve);
    return { id, woken, release: () => void this.pending.delete(id) };
  }

  /** Called by the state machine during apply (FamilyContext.wake). */
  wake(id: string, result: Result): void {
    const resolve = this.pending.get(id);
    if (resolve === undefined) {
      // Other nodes' waiters are woken here too (every node applies every entry): not stray.
      if (id.startsWith(`${this.idPrefix}:`)) this.strayWakeUps++;
      return;
    }
    this.pending.delete(id);
    resolve(result);
  }
}
