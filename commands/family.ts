/**
 * What a family of replicated state (locks, queues, cache directory ...) plugs into the state
 * machine (commands/state-machine.ts). The keyspace is the original family and is wired in
 * directly; every later family implements StateFamily and is listed in StateMachine.families.
 *
 * Owns: the contract between the state machine and a family. A family must be deterministic
 * (time only from the arguments, never the local clock; no timers, no randomness) and its
 * snapshot must capture ALL of its state.
 */
import type { Result } from './state-machine.js';

/** Reads a captured snapshot section out in chunks. */
export interface ChunkReader {
  /** The next chunk of at most about `maxBytes` (any size when Infinity), or null at the end. */
  next(maxBytes: number): Buffer | null;
}

/** What the state machine gives a family to act on. */
export interface FamilyContext {
  /**
   * Wakes a blocked request (LOCK ... WAIT, QPOP ... BLOCK): `result` becomes the reply of
   * the request that registered `waiterId` (commands/waiters.ts) on whichever node it is.
   * Called during apply, identically on every node; only the node that holds the waiter acts.
   */
  wake(waiterId: string, result: Result): void;
}

export interface StateFamily {
  /** Permanent snapshot section tag (never renumbered or reused); 1 is the keyspace. */
  readonly snapshotSection: number;
  /**
   * Captures the family's state as it is now, cheaply; the reader serializes later, in
   * chunks, while entries keep being applied, and must produce the bytes of capture time.
   */
  capture(): ChunkReader;
  /** Replaces the whole state with the bytes capture() produced. Empty bytes: empty state. */
  restore(data: Buffer): void;
  /**
   * The earliest leader time (ms) at which the family must change on its own (a lease or a
   * visibility timeout runs out, a waiter's wait ends), or Infinity. The leader proposes a
   * sys.tick entry when its clock passes this, so time-based rules apply everywhere at the
   * same log index.
   */
  nextDeadlineMs(): number;
  /** Applies what is due at `nowMs` (called before every operation, with the entry's time). */
  advanceTime(nowMs: number): void;
  /**
   * A new leader took office at `nowMs` (sys.term-start). Leases must not expire early because
   * the new leader's clock differs or because time passed without a leader: a family that
   * holds leases renews them here (etcd's lessor does the same on promotion).
   */
  onTermStart(nowMs: number): void;
}
