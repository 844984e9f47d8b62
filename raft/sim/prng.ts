/**
 * Seeded pseudo-random numbers for the Raft simulation and the scripted scenarios.
 *
 * Generator: xoshiro128** (Blackman & Vigna, "Scrambled linear pseudorandom number generators",
 * 2018), 128 bits of state, period 2^128 - 1; the state is filled from the integer seed with
 * splitmix32 so nearby seeds give unrelated streams. Same seed => same sequence, on every
 * platform: only 32-bit integer arithmetic (Math.imul, >>> 0) is used.
 *
 * This module owns the only randomness of a simulated run. It must never read Math.random,
 * Date or any other ambient source, and never keep global state: every caller holds a Prng.
 */

/** splitmix32 step: mixes a 32-bit counter into a well-distributed 32-bit word. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed` is any safe integer; its low 53 bits are folded into the 32-bit splitmix seed. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    const high = Math.floor(seed / 0x1_0000_0000);
    const mix = { s: (seed ^ Math.imul(high, 0x27d4eb2d)) | 0 };
    this.a = splitmix32(mix);
    this.b = splitmix32(mix);
    this.c = splitmix32(mix);
    this.d = splitmix32(mix);
    // xoshiro's all-zero state is a fixed point; splitmix32 cannot produce four zeros in a row,
    // but guard anyway so the invariant is local.
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** A generator with the given raw xoshiro128** state (reference test vectors); not all zero. */
  static fromState(a: number, b: number, c: number, d: number): Prng {
    if ((a | b | c | d) === 0) throw new RangeError('xoshiro128** state must not be all zero');
    const prng = new Prng(0);
    prng.a = a | 0;
    prng.b = b | 0;
    prng.c = c | 0;
    prng.d = d | 0;
    return prng;
  }

  /** Next 32-bit unsigned integer (xoshiro128**). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of precision. Suitable as RaftConfig.random. */
  float(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  /** Uniform integer in [0, n). `n` must be a positive integer <= 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x1_0000_0000) {
      throw new RangeError(`int(n) needs 0 < n <= 2^32, got ${n}`);
    }
    // Multiply-shift (Lemire) without the rejection step: bias <= n / 2^32, irrelevant here.
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** A uniformly chosen element; throws on an empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty array');
    return items[this.int(items.length)] as T;
  }

  /** Fisher-Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /**
   * An independent generator derived from this one (consumes two words). Give each consumer
   * (network, scheduler, each core) its own fork so adding a draw in one place does not shift
   * the stream of the others.
   */
  fork(): Prng {
    const hi = this.nextUint32();
    const lo = this.nextUint32();
    return new Prng((hi & 0x1f_ffff) * 0x1_0000_0000 + lo);
  }

  /** The generator as a `() => number` in [0, 1), e.g. for RaftConfig.random. */
  asFunction(): () => number {
    return () => this.float();
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
