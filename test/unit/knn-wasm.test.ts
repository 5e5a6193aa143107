import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { knnScores, nearestNeighbours, type Trajectories } from '../../src/core/detect/knn.ts';
import { cleanDistanceScores } from '../../src/core/detect/clean-distance.ts';
import { wasmNearest, wasmSquaredDistances } from '../../src/ml/fast-knn.ts';
import { SQDIST_WASM_BASE64 } from '../../src/ml/knn-wasm/sqdist-wasm.generated.ts';
import { Rng } from '../../src/core/rng.ts';

function random(n: number, epochs: number, seed: number, integer = false): Trajectories {
  const rng = new Rng(seed);
  const losses = Float32Array.from({ length: n * epochs }, () =>
    integer ? Math.floor(rng.float() * 4) : rng.float() * 5,
  );
  return { n, epochs, losses };
}

function brute(t: Trajectories, a: number, b: number): number {
  let s = 0;
  for (let e = 0; e < t.epochs; e++)
    s += (t.losses[a * t.epochs + e] - t.losses[b * t.epochs + e]) ** 2;
  return s;
}

describe('k-NN WebAssembly kernel', () => {
  it('is built from its source: rebuilding gives identical bytes', () => {
    if (!existsSync('/usr/bin/clang-14') && !process.env.CLANG)
      throw new Error(
        'clang-14 is missing, so the committed kernel cannot be checked against its source: apt-get install clang-14 lld-14',
      );
    const out = mkdtempSync(join(tmpdir(), 'knn-wasm-'));
    try {
      execFileSync('scripts/build-knn-wasm.sh', [out], { stdio: 'pipe' });
      const committed = readFileSync('src/ml/knn-wasm/sqdist.wasm');
      expect(readFileSync(join(out, 'sqdist.wasm')).equals(committed)).toBe(true);
      expect(readFileSync(join(out, 'sqdist-wasm.generated.ts'), 'utf8')).toBe(
        readFileSync('src/ml/knn-wasm/sqdist-wasm.generated.ts', 'utf8'),
      );
      expect(Buffer.from(SQDIST_WASM_BASE64, 'base64').equals(committed)).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('computes the squared distances of brute force (E not a multiple of 4, ragged blocks)', () => {
    for (const [n, E] of [
      [23, 7],
      [40, 100],
      [9, 1],
    ]) {
      const t = random(n, E, n + E);
      const queries = [...Array(n).keys()].filter((i) => i % 3 !== 1); // not a multiple of 4
      const refs = [2, 5, 7, 0, 8]; // odd count
      const d = wasmSquaredDistances(t, queries, refs);
      expect(d.length).toBe(queries.length * refs.length);
      queries.forEach((q, i) =>
        refs.forEach((r, j) => {
          const want = brute(t, q, r);
          expect(Math.abs(d[i * refs.length + j] - want)).toBeLessThanOrEqual(1e-5 * (1 + want));
        }),
      );
    }
  });

  it('finds the same neighbours as the pure kernel, ties and leave-one-out included', () => {
    // Integer losses make every distance exact in float32 and float64, so ties are real ties
    // and must be broken by the lower column in both kernels.
    const t = random(120, 5, 3, true);
    const refs = [...Array(30).keys()].map((i) => i * 4);
    const queries = [...Array(120).keys()];
    const skip = Int32Array.from(queries, (q) => (q % 4 === 0 ? q / 4 : -1));
    for (const k of [1, 7, 29]) {
      const fast = wasmNearest(t, queries, refs, k, skip);
      const pure = nearestNeighbours(t, queries, refs, k, skip);
      expect(fast.index).toEqual(pure.index);
      expect(fast.sqDist).toEqual(pure.sqDist);
      for (let q = 0; q < queries.length; q++)
        for (let m = 0; m < k; m++) expect(fast.index[q * k + m]).not.toBe(skip[q]);
    }
    // the 30 nearest of 30 without a skip: every column exactly once
    const all = wasmNearest(t, [1], refs, 30);
    expect([...all.index].sort((a, b) => a - b)).toEqual([...refs.keys()]);
  });

  it('gives the k-NN and clean-distance detectors the same scores as the pure kernel', () => {
    const t = random(3000, 20, 5);
    const probes = {
      clean: [...Array(60).keys()].map((i) => i * 7),
      anomalous: [...Array(40).keys()].map((i) => 1000 + i * 11),
    };
    const pure = knnScores(t, probes, 'auto');
    const fast = knnScores(t, probes, 'auto', undefined, wasmNearest);
    expect(fast.k).toBe(pure.k);
    expect(fast.looAuroc).toEqual(pure.looAuroc);
    expect(fast.scores).toEqual(pure.scores);
    const c1 = cleanDistanceScores(t, probes.clean);
    const c2 = cleanDistanceScores(t, probes.clean, 50, wasmNearest);
    // distances agree to float32 rounding, so ranks may swap only between near-equal rows
    let moved = 0;
    for (let i = 0; i < t.n; i++) if (Math.abs(c1[i] - c2[i]) > 1e-3) moved++;
    expect(moved).toBe(0);
  });
});
