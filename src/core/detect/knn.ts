import { InvalidOptionError } from '../errors.ts';
import { PROBE_BACKDOOR, PROBE_CLEAN, PROBE_MISLABELED } from '../probes.ts';
import { auroc } from '../metrics.ts';

/**
 * Loss trajectories: Float32Array, N × E row-major (example i's loss after epoch e at i·E + e),
 * losses in nats, clamped at 100.
 */
export interface Trajectories {
  n: number;
  epochs: number;
  losses: Float32Array;
}

/** The detector's labeled points: row indices of clean and of anomalous probes. */
export interface ProbeRows {
  clean: number[];
  anomalous: number[];
}

/** Probe rows from per-example probe kinds: P1 → clean, P2 ∪ P3 → anomalous. */
export function probeRowsFromKinds(kinds: Uint8Array): ProbeRows {
  const clean: number[] = [];
  const anomalous: number[] = [];
  kinds.forEach((k, i) => {
    if (k === PROBE_CLEAN) clean.push(i);
    else if (k === PROBE_BACKDOOR || k === PROBE_MISLABELED) anomalous.push(i);
  });
  return { clean, anomalous };
}

/**
 * A squared-distance kernel: Q × R row-major, out[q·R + r] = Σ_e (x_q,e − x_r,e)² between the
 * trajectories of rows `queries[q]` and `refs[r]`. `squaredDistances` below is the pure default.
 */
export type SquaredDistancesFn = (
  t: Trajectories,
  queries: ArrayLike<number>,
  refs: ArrayLike<number>,
) => Float32Array;

/** The k nearest references of each query: Q × k each, nearest first. */
export interface Neighbours {
  /** Column indices into `refs`. */
  index: Int32Array;
  /** Their squared Euclidean distances. */
  sqDist: Float32Array;
}

/**
 * A nearest-neighbour kernel: for each row `queries[q]`, the k rows of `refs` nearest by
 * Euclidean distance between trajectories (ties → lower column index), excluding column
 * `skip[q]` when given (leave-one-out). The caller guarantees k ≤ R (k ≤ R − 1 with a skip).
 * `nearestNeighbours` is the pure default; the CLI and the worker pass the WebAssembly SIMD one
 * (src/ml/fast-knn.ts), which is about 10× faster.
 */
export type NearestFn = (
  t: Trajectories,
  queries: ArrayLike<number>,
  refs: ArrayLike<number>,
  k: number,
  skip?: Int32Array,
) => Neighbours;

/** A nearest-neighbour kernel built from a distance kernel and `kNearest` (pure TypeScript). */
export function nearestFromDistances(distances: SquaredDistancesFn): NearestFn {
  return (t, queries, refs, k, skip) => {
    const Q = queries.length;
    const R = refs.length;
    const d = distances(t, queries, refs);
    const index = kNearest(d, Q, R, k, skip);
    const sqDist = new Float32Array(Q * k);
    for (let q = 0; q < Q; q++)
      for (let m = 0; m < k; m++) sqDist[q * k + m] = d[q * R + index[q * k + m]];
    return { index, sqDist };
  };
}

/**
 * Squared Euclidean distances from every row in `queries` to every row in `refs`:
 * out[q·R + r] = Σ_e (x_q,e − x_r,e)². Computed as ‖a‖² + ‖b‖² − 2a·b in float64 accumulators
 * (clamped at 0), blocked over references so the reference block stays in cache — we write it
 * ourselves because it is the hot loop of detection (50,000 × 750 × 100 in a few seconds).
 */
export const squaredDistances: SquaredDistancesFn = (t, queries, refs) => {
  const E = t.epochs;
  const R = refs.length;
  const Q = queries.length;
  const refData = new Float64Array(R * E);
  const refNorm = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let s = 0;
    const base = refs[r] * E;
    for (let e = 0; e < E; e++) {
      const v = t.losses[base + e];
      refData[r * E + e] = v;
      s += v * v;
    }
    refNorm[r] = s;
  }
  const out = new Float32Array(Q * R);
  const q = new Float64Array(E);
  for (let i = 0; i < Q; i++) {
    const base = queries[i] * E;
    let qn = 0;
    for (let e = 0; e < E; e++) {
      const v = t.losses[base + e];
      q[e] = v;
      qn += v * v;
    }
    const o = i * R;
    for (let r = 0; r < R; r++) {
      let dot = 0;
      const rb = r * E;
      for (let e = 0; e < E; e++) dot += q[e] * refData[rb + e];
      const d = qn + refNorm[r] - 2 * dot;
      out[o + r] = d > 0 ? d : 0;
    }
  }
  return out;
};

/**
 * For each row of a Q × R distance matrix, the indices (into the R columns) of its k smallest
 * entries, nearest first; ties broken by the lower column index. `skip[q]` excludes one column
 * (leave-one-out). Returns Q × k Int32Array.
 */
export function kNearest(
  dist: Float32Array,
  Q: number,
  R: number,
  k: number,
  skip?: Int32Array,
): Int32Array {
  const out = new Int32Array(Q * k);
  const bestD = new Float64Array(k);
  const bestI = new Int32Array(k);
  for (let q = 0; q < Q; q++) {
    let size = 0;
    const row = q * R;
    const s = skip ? skip[q] : -1;
    for (let r = 0; r < R; r++) {
      if (r === s) continue;
      const d = dist[row + r];
      if (size === k && d >= bestD[k - 1]) continue;
      // insertion into the sorted prefix
      let j = size < k ? size++ : k - 1;
      while (j > 0 && bestD[j - 1] > d) {
        bestD[j] = bestD[j - 1];
        bestI[j] = bestI[j - 1];
        j--;
      }
      bestD[j] = d;
      bestI[j] = r;
    }
    if (size < k)
      throw new InvalidOptionError(`k = ${k} is larger than the ${size} probes available`);
    out.set(bestI.subarray(0, k), q * k);
  }
  return out;
}

export interface KnnResult {
  k: number;
  /** Per row of the trajectory matrix: anomalous fraction among the k nearest probes; NaN for probe rows. */
  scores: Float32Array;
  /** Leave-one-out AUROC over the probes of each candidate k (when k was chosen). */
  looAuroc?: { k: number; auroc: number }[];
}

/** Default candidates for choosing k by leave-one-out (the paper's values and neighbours). */
export const K_CANDIDATES = [5, 10, 20, 30, 50];

/**
 * BaDLoss's k-NN detector (paper A.1): labeled points are probe trajectories (clean → 0,
 * anomalous → 1); every non-probe row's score is the fraction of anomalous probes among its k
 * nearest probe trajectories by Euclidean distance (uniform weights). With `k = 'auto'`, k is
 * the candidate that maximizes leave-one-out AUROC over the probes (ties → smaller k).
 * `nearest` finds the nearest probes (default: the pure-TypeScript `nearestNeighbours`).
 */
export function knnScores(
  t: Trajectories,
  probes: ProbeRows,
  k: number | 'auto' = 'auto',
  candidates = K_CANDIDATES,
  nearest: NearestFn = nearestNeighbours,
): KnnResult {
  const refs = [...probes.clean, ...probes.anomalous];
  const isAnom = new Uint8Array(refs.length);
  isAnom.fill(1, probes.clean.length);
  if (probes.clean.length === 0 || probes.anomalous.length === 0) {
    throw new InvalidOptionError(
      'the k-NN detector needs clean and anomalous probes; use the clean-distance or no-probe method instead',
    );
  }
  let looAuroc: { k: number; auroc: number }[] | undefined;
  if (k === 'auto') {
    const usable = candidates.filter((c) => c < refs.length);
    if (usable.length === 0)
      throw new InvalidOptionError(
        `too few probes (${refs.length}) for any candidate k (${candidates.join(', ')})`,
      );
    looAuroc = leaveOneOutAuroc(t, refs, isAnom, usable, nearest);
    let best = looAuroc[0];
    for (const r of looAuroc) if (r.auroc > best.auroc) best = r;
    k = best.k;
  }
  if (!(Number.isInteger(k) && k >= 1 && k <= refs.length)) {
    throw new InvalidOptionError(
      `k = ${k} must be a whole number between 1 and the number of probes (${refs.length})`,
    );
  }
  const probeSet = new Set(refs);
  const queries: number[] = [];
  for (let i = 0; i < t.n; i++) if (!probeSet.has(i)) queries.push(i);
  const scores = new Float32Array(t.n).fill(NaN);
  // Chunk the queries to bound memory (Q × R floats per chunk).
  const CHUNK = 4096;
  for (let s = 0; s < queries.length; s += CHUNK) {
    const qs = queries.slice(s, s + CHUNK);
    const nn = nearest(t, qs, refs, k).index;
    for (let j = 0; j < qs.length; j++) {
      let a = 0;
      for (let m = 0; m < k; m++) a += isAnom[nn[j * k + m]];
      scores[qs[j]] = a / k;
    }
  }
  return looAuroc ? { k, scores, looAuroc } : { k, scores };
}

/** Leave-one-out AUROC (anomalous probes positive) of the k-NN score for each candidate k. */
export function leaveOneOutAuroc(
  t: Trajectories,
  refs: number[],
  isAnom: Uint8Array,
  candidates: number[],
  nearest: NearestFn = nearestNeighbours,
): { k: number; auroc: number }[] {
  const R = refs.length;
  const kMax = Math.max(...candidates);
  if (!(kMax < R))
    throw new InvalidOptionError(`k = ${kMax} needs more than ${R} probes for leave-one-out`);
  const skip = Int32Array.from(refs.keys());
  const nn = nearest(t, refs, refs, kMax, skip).index;
  return candidates.map((k) => {
    const scores = new Float64Array(R);
    for (let q = 0; q < R; q++) {
      let a = 0;
      for (let m = 0; m < k; m++) a += isAnom[nn[q * kMax + m]];
      scores[q] = a / k;
    }
    return { k, auroc: auroc(scores, isAnom) };
  });
}

/** The pure-TypeScript nearest-neighbour kernel: `squaredDistances` then `kNearest`. */
export const nearestNeighbours: NearestFn = nearestFromDistances(squaredDistances);

/**
 * k-NN scores for every row, probes included: a non-probe row's score is the anomalous fraction
 * among its k nearest probe trajectories (as `knnScores`); a probe's is the same with itself left
 * out (its leave-one-out score, what calibration against the probes needs). N floats.
 */
export function knnScoresAllRows(
  t: Trajectories,
  probes: ProbeRows,
  k: number,
  nearest: NearestFn = nearestNeighbours,
): Float32Array {
  const refs = [...probes.clean, ...probes.anomalous];
  if (!(Number.isInteger(k) && k >= 1 && k < refs.length))
    throw new InvalidOptionError(
      `k = ${k} must be a whole number between 1 and the number of probes less one (${refs.length - 1})`,
    );
  const isAnom = new Uint8Array(refs.length);
  isAnom.fill(1, probes.clean.length);
  const refIndex = new Map(refs.map((r, j) => [r, j]));
  const scores = new Float32Array(t.n);
  const CHUNK = 4096;
  for (let s = 0; s < t.n; s += CHUNK) {
    const qs: number[] = [];
    for (let i = s; i < Math.min(t.n, s + CHUNK); i++) qs.push(i);
    const skip = Int32Array.from(qs, (q) => refIndex.get(q) ?? -1);
    const nn = nearest(t, qs, refs, k, skip).index;
    for (let j = 0; j < qs.length; j++) {
      let a = 0;
      for (let m = 0; m < k; m++) a += isAnom[nn[j * k + m]];
      scores[qs[j]] = a / k;
    }
  }
  return scores;
}
