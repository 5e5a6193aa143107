/**
 * The small amount of linear algebra the feature-space defenses need: a class's covariance, its
 * leading eigenvectors, 2-means with k-means++ and the silhouette score.
 *
 * Written here rather than taken from ml-matrix / ml-pca / ml-kmeans (checked: ml-matrix 6.15 is
 * well kept, ESM, typed): we only ever need the top 1 or top 10 eigenvectors of a D × D (D ≤ 512)
 * covariance, which subspace iteration gives in O(D²·p) per step instead of a full O(D³)
 * decomposition over arrays of arrays; ml-kmeans draws from its own generator (ml-random), not
 * from the run's seeded `Rng`, pulls in ml-spectra-processing, and has no silhouette score. The
 * routines below are short, deterministic from the seed, and tested against hand-worked cases.
 */
import { InvalidOptionError } from '../errors.ts';
import type { Rng } from '../rng.ts';

/**
 * Mean (D) and covariance (D × D, row-major, divided by n − 1; by 1 when n = 1) of the rows
 * `rows` of a row-major N × D matrix, accumulated in float64. Cost n·D²/2 multiply-adds.
 */
export function covariance(
  values: ArrayLike<number>,
  dim: number,
  rows: ArrayLike<number>,
): { mean: Float64Array; cov: Float64Array } {
  const D = dim;
  const n = rows.length;
  const mean = new Float64Array(D);
  for (let j = 0; j < n; j++) {
    const b = rows[j] * D;
    for (let a = 0; a < D; a++) mean[a] += values[b + a];
  }
  for (let a = 0; a < D; a++) mean[a] /= Math.max(1, n);
  const cov = new Float64Array(D * D);
  // Two rows at a time halves the passes over the D × D accumulator (it is the memory-bound part).
  const r0 = new Float64Array(D);
  const r1 = new Float64Array(D);
  let j = 0;
  for (; j + 1 < n; j += 2) {
    const b0 = rows[j] * D;
    const b1 = rows[j + 1] * D;
    for (let a = 0; a < D; a++) {
      r0[a] = values[b0 + a] - mean[a];
      r1[a] = values[b1 + a] - mean[a];
    }
    for (let a = 0; a < D; a++) {
      const x0 = r0[a];
      const x1 = r1[a];
      const o = a * D;
      for (let c = a; c < D; c++) cov[o + c] += x0 * r0[c] + x1 * r1[c];
    }
  }
  if (j < n) {
    const b0 = rows[j] * D;
    for (let a = 0; a < D; a++) r0[a] = values[b0 + a] - mean[a];
    for (let a = 0; a < D; a++) {
      const x0 = r0[a];
      const o = a * D;
      for (let c = a; c < D; c++) cov[o + c] += x0 * r0[c];
    }
  }
  const div = Math.max(1, n - 1);
  for (let a = 0; a < D; a++) for (let c = a; c < D; c++) cov[c * D + a] = cov[a * D + c] /= div;
  return { mean, cov };
}

/**
 * All eigenpairs of a small symmetric p × p matrix (row-major) by cyclic Jacobi rotations:
 * A = V·diag(λ)·Vᵀ. Returns eigenvalues in descending order and the matching eigenvectors as the
 * columns of V (p × p, row-major: component i of vector k at i·p + k). O(p³) per sweep — meant for
 * the Rayleigh–Ritz step (p ≈ 16) and tests, not for D = 512.
 */
export function jacobiEigen(
  a: ArrayLike<number>,
  p: number,
): { values: number[]; vectors: Float64Array } {
  const A = Float64Array.from(a);
  const V = new Float64Array(p * p);
  for (let i = 0; i < p; i++) V[i * p + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < p; i++) {
      diag += A[i * p + i] ** 2;
      for (let j = i + 1; j < p; j++) off += A[i * p + j] ** 2;
    }
    if (off <= 1e-30 * Math.max(diag, 1e-300)) break;
    for (let i = 0; i < p; i++)
      for (let j = i + 1; j < p; j++) {
        const aij = A[i * p + j];
        if (aij === 0) continue;
        // Rotation angle θ with tan 2θ = 2a_ij / (a_jj − a_ii), taken in its stable form.
        const theta = (A[j * p + j] - A[i * p + i]) / (2 * aij);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < p; k++) {
          const aki = A[k * p + i];
          const akj = A[k * p + j];
          A[k * p + i] = c * aki - s * akj;
          A[k * p + j] = s * aki + c * akj;
        }
        for (let k = 0; k < p; k++) {
          const aik = A[i * p + k];
          const ajk = A[j * p + k];
          A[i * p + k] = c * aik - s * ajk;
          A[j * p + k] = s * aik + c * ajk;
        }
        for (let k = 0; k < p; k++) {
          const vki = V[k * p + i];
          const vkj = V[k * p + j];
          V[k * p + i] = c * vki - s * vkj;
          V[k * p + j] = s * vki + c * vkj;
        }
      }
  }
  const order = [...Array(p).keys()].sort((x, y) => A[y * p + y] - A[x * p + x] || x - y);
  const vectors = new Float64Array(p * p);
  order.forEach((src, k) => {
    for (let i = 0; i < p; i++) vectors[i * p + k] = V[i * p + src];
  });
  return { values: order.map((i) => A[i * p + i]), vectors };
}

/**
 * The k leading eigenpairs of a symmetric positive semi-definite D × D matrix `c` (row-major), by
 * subspace iteration with Rayleigh–Ritz on a block of p = min(D, k + 8) vectors (seeded Gaussian
 * start), until every wanted residual ‖C·v − λ·v‖ ≤ 1e-9·λ₁ (at most 2,000 steps). Returns
 * eigenvalues in descending order and vectors as k rows of D (row-major, unit length, sign fixed
 * so that the largest-magnitude component is positive).
 */
export function topEigenvectors(
  c: Float64Array,
  D: number,
  k: number,
  rng: Rng,
): { values: number[]; vectors: Float64Array } {
  if (!(Number.isInteger(k) && k >= 1 && k <= D))
    throw new InvalidOptionError(`cannot take ${k} eigenvectors of a ${D} × ${D} matrix`);
  const p = Math.min(D, k + 8);
  // Q: p column vectors stored as rows (p × D) for contiguous access.
  let Q: Float64Array = new Float64Array(p * D);
  for (let i = 0; i < Q.length; i++) Q[i] = rng.normal();
  orthonormalizeRows(Q, p, D, rng);
  let W: Float64Array = mulRows(c, Q, p, D);
  let values: number[] = new Array<number>(p).fill(0);
  for (let it = 0; it < 2000; it++) {
    // Rayleigh–Ritz: T = Qᵀ C Q (p × p), T = S Λ Sᵀ, Q ← Q S, W = C Q ← W S.
    const T = new Float64Array(p * p);
    for (let i = 0; i < p; i++)
      for (let j = i; j < p; j++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += Q[i * D + d] * W[j * D + d];
        T[i * p + j] = s;
        T[j * p + i] = s;
      }
    const eig = jacobiEigen(T, p);
    values = eig.values;
    Q = combineRows(Q, eig.vectors, p, D);
    W = combineRows(W, eig.vectors, p, D);
    const scale = Math.max(Math.abs(values[0]), 1e-300);
    let converged = true;
    for (let i = 0; i < k && converged; i++) {
      let r = 0;
      for (let d = 0; d < D; d++) r += (W[i * D + d] - values[i] * Q[i * D + d]) ** 2;
      if (Math.sqrt(r) > 1e-9 * scale) converged = false;
    }
    if (converged || values[0] === 0) break;
    Q = W;
    orthonormalizeRows(Q, p, D, rng);
    W = mulRows(c, Q, p, D);
  }
  const vectors = Q.slice(0, k * D);
  for (let i = 0; i < k; i++) {
    let big = 0;
    for (let d = 0; d < D; d++)
      if (Math.abs(vectors[i * D + d]) > Math.abs(big)) big = vectors[i * D + d];
    if (big < 0) for (let d = 0; d < D; d++) vectors[i * D + d] = -vectors[i * D + d];
  }
  return { values: values.slice(0, k).map((v) => Math.max(v, 0)), vectors };
}

/** Rows of the result = C · (rows of Q): out[i] = C q_i, for symmetric C (D × D). */
function mulRows(c: Float64Array, Q: Float64Array, p: number, D: number): Float64Array {
  const out = new Float64Array(p * D);
  for (let i = 0; i < p; i++)
    for (let a = 0; a < D; a++) {
      let s = 0;
      const o = a * D;
      for (let b = 0; b < D; b++) s += c[o + b] * Q[i * D + b];
      out[i * D + a] = s;
    }
  return out;
}

/** New row k = Σ_i S[i][k] · row i (S p × p row-major). */
function combineRows(Q: Float64Array, S: Float64Array, p: number, D: number): Float64Array {
  const out = new Float64Array(p * D);
  for (let k = 0; k < p; k++)
    for (let i = 0; i < p; i++) {
      const s = S[i * p + k];
      if (s === 0) continue;
      for (let d = 0; d < D; d++) out[k * D + d] += s * Q[i * D + d];
    }
  return out;
}

/** Modified Gram–Schmidt on the p rows (twice, for stability); a collapsed row is redrawn. */
function orthonormalizeRows(Q: Float64Array, p: number, D: number, rng: Rng): void {
  for (let i = 0; i < p; i++) {
    for (let attempt = 0; ; attempt++) {
      const before = rowNorm(Q, i, D);
      for (let pass = 0; pass < 2; pass++)
        for (let j = 0; j < i; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += Q[i * D + d] * Q[j * D + d];
          for (let d = 0; d < D; d++) Q[i * D + d] -= dot * Q[j * D + d];
        }
      const norm = rowNorm(Q, i, D);
      if (norm > 1e-10 * before && norm > 0) {
        for (let d = 0; d < D; d++) Q[i * D + d] /= norm;
        break;
      }
      if (attempt > 20) throw new InvalidOptionError('subspace iteration could not orthonormalize');
      for (let d = 0; d < D; d++) Q[i * D + d] = rng.normal();
    }
  }
}

function rowNorm(Q: Float64Array, i: number, D: number): number {
  let s = 0;
  for (let d = 0; d < D; d++) s += Q[i * D + d] ** 2;
  return Math.sqrt(s);
}

/** A 2-means clustering: per-point cluster (0 or 1), the two centers (2 × d) and the inertia. */
export interface TwoMeans {
  assignment: Uint8Array;
  centers: Float64Array;
  /** Sum of squared distances of points to their centers. */
  inertia: number;
}

/**
 * 2-means of the n rows of a row-major n × d matrix: k-means++ seeding (first center uniform,
 * second drawn with probability ∝ squared distance to the first), Lloyd iterations until the
 * assignment stops changing (at most 300), best inertia of `starts` runs (ties → earliest run).
 * A cluster that empties takes the point farthest from its center. Needs n ≥ 2.
 */
export function twoMeans(x: Float64Array, n: number, d: number, rng: Rng, starts = 10): TwoMeans {
  if (n < 2) throw new InvalidOptionError(`2-means needs at least 2 points, got ${n}`);
  let best: TwoMeans | null = null;
  for (let s = 0; s < starts; s++) {
    const run = lloyd(x, n, d, seedPlusPlus(x, n, d, rng));
    if (!best || run.inertia < best.inertia) best = run;
  }
  return best!;
}

function dist2(x: Float64Array, i: number, c: Float64Array, k: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += (x[i * d + j] - c[k * d + j]) ** 2;
  return s;
}

function seedPlusPlus(x: Float64Array, n: number, d: number, rng: Rng): Float64Array {
  const centers = new Float64Array(2 * d);
  const first = rng.int(n);
  centers.set(x.subarray(first * d, first * d + d), 0);
  const w = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) total += w[i] = dist2(x, i, centers, 0, d);
  let second = first;
  if (total > 0) {
    let u = rng.float() * total;
    second = n - 1;
    for (let i = 0; i < n; i++) {
      u -= w[i];
      if (u < 0 && w[i] > 0) {
        second = i;
        break;
      }
    }
    while (w[second] === 0) second--; // float round-off at the end of the scan
  }
  centers.set(x.subarray(second * d, second * d + d), d);
  return centers;
}

function lloyd(x: Float64Array, n: number, d: number, centers: Float64Array): TwoMeans {
  const assignment = new Uint8Array(n).fill(255);
  let inertia = 0;
  for (let it = 0; it < 300; it++) {
    let changed = false;
    inertia = 0;
    const counts = [0, 0];
    for (let i = 0; i < n; i++) {
      const d0 = dist2(x, i, centers, 0, d);
      const d1 = dist2(x, i, centers, 1, d);
      const a = d1 < d0 ? 1 : 0;
      inertia += a ? d1 : d0;
      counts[a]++;
      if (assignment[i] !== a) {
        assignment[i] = a;
        changed = true;
      }
    }
    if (!changed) break;
    for (const k of [0, 1])
      if (counts[k] === 0) {
        // Re-seed an empty cluster with the point farthest from the other center.
        let far = 0;
        let farD = -1;
        for (let i = 0; i < n; i++) {
          const dd = dist2(x, i, centers, 1 - k, d);
          if (dd > farD) [far, farD] = [i, dd];
        }
        assignment[far] = k;
      }
    centers.fill(0);
    const c2 = [0, 0];
    for (let i = 0; i < n; i++) {
      const a = assignment[i];
      c2[a]++;
      for (let j = 0; j < d; j++) centers[a * d + j] += x[i * d + j];
    }
    for (const k of [0, 1]) for (let j = 0; j < d; j++) centers[k * d + j] /= c2[k];
  }
  return { assignment, centers, inertia };
}

/**
 * Mean silhouette of a 2-cluster assignment of the n rows of x (n × d, Euclidean distance):
 * s(i) = (b(i) − a(i)) / max(a(i), b(i)), with a(i) the mean distance from i to the other members
 * of its cluster and b(i) the mean distance to the members of the other cluster; s(i) = 0 when
 * i's cluster has one member (as scikit-learn). NaN when either cluster is empty. O(n²·d).
 */
export function silhouette(x: Float64Array, n: number, d: number, assignment: Uint8Array): number {
  const size = [0, 0];
  for (let i = 0; i < n; i++) size[assignment[i]]++;
  if (size[0] === 0 || size[1] === 0) return NaN;
  const sums = new Float64Array(2 * n); // sums[i·2 + k] = Σ distance from i to cluster k
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let t = 0; t < d; t++) s += (x[i * d + t] - x[j * d + t]) ** 2;
      const dist = Math.sqrt(s);
      sums[i * 2 + assignment[j]] += dist;
      sums[j * 2 + assignment[i]] += dist;
    }
  let total = 0;
  for (let i = 0; i < n; i++) {
    const own = assignment[i];
    if (size[own] === 1) continue;
    const a = sums[i * 2 + own] / (size[own] - 1);
    const b = sums[i * 2 + 1 - own] / size[1 - own];
    const m = Math.max(a, b);
    total += m > 0 ? (b - a) / m : 0;
  }
  return total / n;
}
