import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { JumpableRandomGenerator } from 'pure-rand/types/JumpableRandomGenerator';

/**
 * Seeded random numbers (xoroshiro128+ from pure-rand) with a serializable state, so a training
 * run can checkpoint and resume its shuffling exactly. Every random choice in the project takes
 * an `Rng` passed in explicitly.
 */
export class Rng {
  private gen: JumpableRandomGenerator;

  constructor(seed: number | readonly number[]) {
    this.gen =
      typeof seed === 'number' ? xoroshiro128plus(seed | 0) : xoroshiro128plusFromState(seed);
  }

  /** The generator's state; `new Rng(state)` continues the same sequence. */
  state(): number[] {
    return [...this.gen.getState()];
  }

  /** An independent generator derived from this one and a stream name (stable across runs). */
  fork(stream: string): Rng {
    let h = 0x811c9dc5;
    for (let i = 0; i < stream.length; i++) h = Math.imul(h ^ stream.charCodeAt(i), 0x01000193);
    return new Rng((this.uint32() ^ h) | 0);
  }

  /** Uniform integer in [0, 2^32). */
  uint32(): number {
    return this.gen.next() >>> 0;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  float(): number {
    const a = this.uint32() >>> 5;
    const b = this.uint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling). */
  int(n: number): number {
    if (!(n >= 1) || n > 2 ** 32) throw new RangeError(`Rng.int: n must be in [1, 2^32], got ${n}`);
    const limit = Math.floor(2 ** 32 / n) * n;
    for (;;) {
      const v = this.uint32();
      if (v < limit) return v % n;
    }
  }

  /** Standard normal sample (Box–Muller). */
  normal(): number {
    const u = 1 - this.float();
    const v = this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher–Yates shuffle in place; returns the array. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }

  /** k distinct elements of `pool`, in random order. Throws if k > pool.length. */
  sample(pool: ArrayLike<number>, k: number): number[] {
    if (k > pool.length) throw new RangeError(`cannot sample ${k} of ${pool.length}`);
    const a = Array.from(pool);
    for (let i = 0; i < k; i++) {
      const j = i + this.int(a.length - i);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a.slice(0, k);
  }
}
