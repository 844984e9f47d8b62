/**
 * The driver's view of real time: a wall clock for leader-stamped entry times and a periodic
 * timer for Raft ticks, injectable so tests can move the wall clock (even backwards) without
 * touching the process clock.
 *
 * Owns nothing but these two calls. Must never be used by the pure core (raft/core.ts) or the
 * state machine: they read time only from ticks and leader-stamped entries.
 */

/** A cancel function for a timer started by `Clock.every`. */
export type CancelTimer = () => void;

export interface Clock {
  /** Wall-clock milliseconds since the epoch (may jump, even backwards). */
  now(): number;
  /** Calls `fn` every `ms` milliseconds until the returned function is called. */
  every(ms: number, fn: () => void): CancelTimer;
  /**
   * Milliseconds from an arbitrary origin that never jump (performance.now). When present, a
   * leader stamps entries with its wall clock read once per term plus the monotonic time since
   * (RaftNode.stamp), so a wall-clock step during a term cannot cut leases short.
   */
  monotonic?(): number;
}

/** The process clock: Date.now and setInterval (unref'd: a timer alone keeps no process alive). */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  every(ms: number, fn: () => void): CancelTimer {
    const handle = setInterval(fn, ms);
    handle.unref();
    return () => clearInterval(handle);
  },
};
