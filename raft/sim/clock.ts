/**
 * The simulated clock: logical time in ticks, advanced only by the simulation.
 *
 * One tick is one call of RaftCore.tick() on every live node (Raft's election and heartbeat
 * timeouts are counted in ticks, paper §5.2). Message delays are expressed in the same unit,
 * so "a read began after a write was acknowledged" is ordered in sim time, not wall time.
 * This module must never read Date, performance.now() or timers.
 */

export class SimClock {
  private ticks = 0;

  /** Current sim time in ticks, starting at 0. */
  get now(): number {
    return this.ticks;
  }

  /** Advances time by one tick and returns the new time. */
  advance(): number {
    this.ticks += 1;
    return this.ticks;
  }
}
