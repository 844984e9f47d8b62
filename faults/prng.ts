/**
 * A small seeded PRNG (mulberry32) for the fault suite: the nemesis schedule and the workload's
 * choices come from it, so a printed seed replays the same schedule (the timing of real
 * processes still varies from run to run).
 *
 * Owns: its 32-bit state. Must never: be fed from Math.random or the clock.
 */
export class Prng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.below(items.length)];
    if (item === undefined) throw new Error('Prng.pick: empty list');
    return item;
  }

  /** A new generator derived from this one (independent streams for workload and nemeses). */
  fork(): Prng {
    return new Prng(Math.floor(this.next() * 4294967296));
  }
}
