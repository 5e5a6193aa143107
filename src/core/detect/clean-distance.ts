import { InvalidOptionError } from '../errors.ts';
import { nearestNeighbours, type NearestFn, type Trajectories } from './knn.ts';

/**
 * The clean-distance detector (the published code's later version): d = mean Euclidean distance
 * to the `neighbours` (50) nearest clean-probe trajectories (a clean probe excludes itself);
 * s = log(0.01 + d); min-max normalized; converted to ranks in [0, 1] (ties share their mean
 * rank). Scores are returned for every row, probes included; callers ignore probe rows.
 * `nearest` finds the nearest clean probes (default: the pure `nearestNeighbours`).
 */
export function cleanDistanceScores(
  t: Trajectories,
  cleanRows: number[],
  neighbours = 50,
  nearest: NearestFn = nearestNeighbours,
): Float32Array {
  if (cleanRows.length < 2)
    throw new InvalidOptionError('the clean-distance detector needs at least 2 clean probes');
  const k = Math.min(neighbours, cleanRows.length - 1);
  const rowToRef = new Map(cleanRows.map((r, j) => [r, j]));
  const raw = new Float64Array(t.n);
  const CHUNK = 4096;
  const all = [...Array(t.n).keys()];
  for (let s = 0; s < t.n; s += CHUNK) {
    const qs = all.slice(s, s + CHUNK);
    const skip = Int32Array.from(qs, (q) => rowToRef.get(q) ?? -1);
    const { sqDist } = nearest(t, qs, cleanRows, k, skip);
    for (let j = 0; j < qs.length; j++) {
      let sum = 0;
      for (let m = 0; m < k; m++) sum += Math.sqrt(sqDist[j * k + m]);
      raw[qs[j]] = Math.log(0.01 + sum / k);
    }
  }
  return toRanks(minMax(raw));
}

/** (v − min) / (max − min); all zeros when constant. */
export function minMax(v: Float64Array): Float64Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  const span = hi - lo;
  return v.map((x) => (span > 0 ? (x - lo) / span : 0));
}

/** Ranks scaled to [0, 1]: (mean 0-based rank) / (n − 1), ties sharing their mean rank. */
export function toRanks(v: ArrayLike<number>): Float32Array {
  const n = v.length;
  const idx = [...Array(n).keys()].sort((a, b) => v[a] - v[b]);
  const out = new Float32Array(n);
  for (let s = 0; s < n;) {
    let e = s;
    while (e + 1 < n && v[idx[e + 1]] === v[idx[s]]) e++;
    const r = n > 1 ? (s + e) / 2 / (n - 1) : 0;
    for (let j = s; j <= e; j++) out[idx[j]] = r;
    s = e + 1;
  }
  return out;
}

/**
 * The no-probe fallback (paper §6.3): anomaly score = Mahalanobis distance of each trajectory to
 * the clean probes' trajectory distribution (mean μ and covariance Σ + λI, λ = 1e-3·tr(Σ)/E + 1e-6
 * for stability), converted to ranks in [0, 1] like the clean-distance variant.
 */
export function mahalanobisScores(t: Trajectories, cleanRows: number[]): Float32Array {
  const E = t.epochs;
  if (cleanRows.length < 2)
    throw new InvalidOptionError('the no-probe fallback needs at least 2 trusted clean examples');
  const mu = new Float64Array(E);
  for (const r of cleanRows)
    for (let e = 0; e < E; e++) mu[e] += t.losses[r * E + e] / cleanRows.length;
  const cov = new Float64Array(E * E);
  for (const r of cleanRows)
    for (let a = 0; a < E; a++) {
      const da = t.losses[r * E + a] - mu[a];
      for (let b = 0; b < E; b++)
        cov[a * E + b] += (da * (t.losses[r * E + b] - mu[b])) / (cleanRows.length - 1);
    }
  let trace = 0;
  for (let a = 0; a < E; a++) trace += cov[a * E + a];
  const lambda = (1e-3 * trace) / E + 1e-6;
  for (let a = 0; a < E; a++) cov[a * E + a] += lambda;
  const L = cholesky(cov, E);
  const raw = new Float64Array(t.n);
  const z = new Float64Array(E);
  for (let i = 0; i < t.n; i++) {
    // solve L z = x − μ; distance² = ‖z‖²
    let s = 0;
    for (let a = 0; a < E; a++) {
      let v = t.losses[i * E + a] - mu[a];
      for (let b = 0; b < a; b++) v -= L[a * E + b] * z[b];
      z[a] = v / L[a * E + a];
      s += z[a] * z[a];
    }
    raw[i] = Math.sqrt(s);
  }
  return toRanks(raw);
}

function cholesky(a: Float64Array, n: number): Float64Array {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      L[i * n + j] = i === j ? Math.sqrt(Math.max(s, 1e-12)) : s / L[j * n + j];
    }
  return L;
}
