/**
 * The small amount of linear algebra the feature-space defenses need: a class's covariance, its
 * leading eigenvectors, 2-means with k-means++ and the silhouette score.
 *
 * Written here rather than taken from ml-matrix / ml-pca / ml-kmeans (checked: ml-matrix 6.15 is
 * well kept, ESM, typed): we only ever need the top 1 or top 10 eigenvectors of a class's
 * covariance (D ≤ 512), which Lanczos gives in tens of O(n·D) steps without forming the D × D
 * matrix, where ml-matrix would form it and run a full O(D³) decomposition over arrays of arrays
 * (ml-pca on top of it computes every component); ml-kmeans draws from its own generator
 * (ml-random), not from the run's seeded `Rng`, pulls in ml-spectra-processing, and has no
 * silhouette score. The routines below are short, deterministic from the seed, and tested against
 * hand-worked cases and a full Jacobi decomposition.
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
  // Blocks of B centred rows, stored feature-major (bt[a·B + j]), so each upper-triangle entry
  // takes a contiguous B-long dot product and the D × D accumulator is swept once per block
  // (it is the memory-bound part: 2 MB at D = 512).
  const B = 32;
  const bt = new Float64Array(D * B);
  for (let j0 = 0; j0 < n; j0 += B) {
    const nb = Math.min(B, n - j0);
    bt.fill(0);
    for (let j = 0; j < nb; j++) {
      const o = rows[j0 + j] * D;
      for (let a = 0; a < D; a++) bt[a * B + j] = values[o + a] - mean[a];
    }
    for (let a = 0; a < D; a++) {
      const oa = a * B;
      const row = a * D;
      for (let c = a; c < D; c++) {
        const oc = c * B;
        let s = 0;
        for (let j = 0; j < B; j++) s += bt[oa + j] * bt[oc + j];
        cov[row + c] += s;
      }
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
 * tests (the oracle of `lanczosTop`), not for D = 512.
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

/** y = A·x for a symmetric D × D operator; `step` is the Lanczos step asking (from 0). */
export type SymmetricApply = (x: Float64Array, y: Float64Array, step: number) => void;

/** Leading eigenpairs: values descending, vectors as k rows of D (unit length). */
export interface Eigenpairs {
  values: number[];
  vectors: Float64Array;
}

/**
 * The k leading eigenpairs of a symmetric positive semi-definite D × D matrix `c` (row-major).
 * See `lanczosTop`.
 */
export function topEigenvectors(c: Float64Array, D: number, k: number, rng: Rng): Eigenpairs {
  return lanczosTop(
    (x, y) => {
      for (let a = 0; a < D; a++) {
        let s = 0;
        const o = a * D;
        for (let b = 0; b < D; b++) s += c[o + b] * x[b];
        y[a] = s;
      }
    },
    D,
    k,
    rng,
  );
}

/**
 * Principal axes of the rows `rows` of a row-major N × D matrix: the k leading eigenpairs of
 * their covariance Σ = R̂ᵀR̂ / (n − 1), R̂ the centred rows (so v₁ is R̂'s top right singular vector
 * and λ₁ = σ₁² / (n − 1)), with the mean. Σ·x is applied as R̂ᵀ(R̂x)/(n − 1) (2·n·D per step)
 * while that is cheaper than forming Σ (n·D²/2 once); a run that needs more than D/4 Lanczos
 * steps forms Σ and continues with it (D² per step).
 */
export function principalAxes(
  values: ArrayLike<number>,
  dim: number,
  rows: readonly number[],
  k: number,
  rng: Rng,
): Eigenpairs & { mean: Float64Array } {
  const D = dim;
  const n = rows.length;
  const mean = new Float64Array(D);
  for (const r of rows) for (let a = 0; a < D; a++) mean[a] += values[r * D + a];
  for (let a = 0; a < D; a++) mean[a] /= Math.max(1, n);
  const div = Math.max(1, n - 1);
  let cov: Float64Array | undefined;
  const switchAt = Math.max(8, Math.floor(D / 4));
  const apply: SymmetricApply = (x, y, step) => {
    if (step >= switchAt && !cov) cov = covariance(values, D, rows).cov;
    if (cov) {
      for (let a = 0; a < D; a++) {
        let s = 0;
        const o = a * D;
        for (let b = 0; b < D; b++) s += cov[o + b] * x[b];
        y[a] = s;
      }
      return;
    }
    let mx = 0;
    for (let a = 0; a < D; a++) mx += mean[a] * x[a];
    y.fill(0);
    let tSum = 0;
    for (const r of rows) {
      const o = r * D;
      let t = -mx;
      for (let a = 0; a < D; a++) t += values[o + a] * x[a];
      tSum += t;
      for (let a = 0; a < D; a++) y[a] += t * values[o + a];
    }
    for (let a = 0; a < D; a++) y[a] = (y[a] - tSum * mean[a]) / div;
  };
  return { ...lanczosTop(apply, D, k, rng), mean };
}

/**
 * The k leading eigenpairs of a symmetric positive semi-definite operator on ℝ^D by Lanczos with
 * full reorthogonalization from a seeded Gaussian start. Every 8 steps the top k eigenpairs of the
 * tridiagonal T_m are found (Sturm bisection, then inverse iteration) and the run stops once every
 * Ritz residual |β_m·s_i[m]| ≤ 1e-9·λ₁ or m = D (exact up to rounding); an invariant Krylov
 * space restarts from a fresh vector orthogonal to the basis (that is how repeated eigenvalues
 * and the null space of a rank-deficient covariance are reached). Returns eigenvalues descending (clamped at 0)
 * and unit vectors as k rows of D, each signed so its largest-magnitude component is positive.
 *
 * Lanczos rather than subspace iteration: the top of a feature covariance is often clustered
 * (near-equal eigenvalues), where subspace iteration needs thousands of steps and Lanczos tens.
 */
export function lanczosTop(apply: SymmetricApply, D: number, k: number, rng: Rng): Eigenpairs {
  if (!(Number.isInteger(k) && k >= 1 && k <= D))
    throw new InvalidOptionError(`cannot take ${k} eigenvectors of a ${D} × ${D} operator`);
  const basis: Float64Array[] = [];
  const alpha: number[] = [];
  const beta: number[] = []; // beta[j] couples basis[j] and basis[j + 1]
  let q = randomOrthogonal(basis, D, rng);
  let result: { values: number[]; s: Float64Array[] } | null = null;
  const w = new Float64Array(D);
  for (let j = 0; j < D; j++) {
    basis.push(q);
    apply(q, w, j);
    let a = 0;
    for (let d = 0; d < D; d++) a += w[d] * q[d];
    alpha.push(a);
    for (let pass = 0; pass < 2; pass++)
      for (const v of basis) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += w[d] * v[d];
        for (let d = 0; d < D; d++) w[d] -= dot * v[d];
      }
    let b = 0;
    for (let d = 0; d < D; d++) b += w[d] * w[d];
    b = Math.sqrt(b);
    const m = j + 1;
    const scale = Math.max(...alpha.map(Math.abs), 1e-300);
    // An invariant Krylov space does not end the run: a repeated eigenvalue shows up in it only
    // once, so the search goes on from a fresh orthogonal vector (β = 0) until the residuals of a
    // non-invariant step say the top k have converged, or m = D.
    const invariant = b <= 1e-10 * scale;
    if (m === D || (m >= k && !invariant && m % 8 === 0)) {
      result = tridiagonalTop(alpha, beta, Math.min(k, m), rng);
      const lam1 = Math.max(result.values[0], 1e-300);
      if (m === D || result.s.every((s) => Math.abs(b * s[m - 1]) <= 1e-9 * lam1)) break;
    }
    if (invariant) {
      beta.push(0);
      q = randomOrthogonal(basis, D, rng);
    } else {
      beta.push(b);
      q = w.map((x) => x / b);
    }
  }
  const m = basis.length;
  const vectors = new Float64Array(k * D);
  for (let i = 0; i < k; i++) {
    const s = result!.s[i];
    for (let t = 0; t < m; t++) {
      const st = s[t];
      if (st === 0) continue;
      const v = basis[t];
      for (let d = 0; d < D; d++) vectors[i * D + d] += st * v[d];
    }
    let big = 0;
    for (let d = 0; d < D; d++)
      if (Math.abs(vectors[i * D + d]) > Math.abs(big)) big = vectors[i * D + d];
    if (big < 0) for (let d = 0; d < D; d++) vectors[i * D + d] = -vectors[i * D + d];
  }
  return { values: result!.values.map((v) => Math.max(v, 0)), vectors };
}

/** A unit Gaussian vector orthogonal to the given orthonormal vectors. */
function randomOrthogonal(basis: Float64Array[], D: number, rng: Rng): Float64Array {
  for (let attempt = 0; attempt < 20; attempt++) {
    const x = Float64Array.from({ length: D }, () => rng.normal());
    for (let pass = 0; pass < 2; pass++)
      for (const v of basis) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += x[d] * v[d];
        for (let d = 0; d < D; d++) x[d] -= dot * v[d];
      }
    const norm = Math.hypot(...x);
    if (norm > 1e-8) return x.map((v) => v / norm);
  }
  throw new InvalidOptionError(
    `could not draw a direction orthogonal to ${basis.length} in ℝ^${D}`,
  );
}

/**
 * The k largest eigenpairs of the symmetric tridiagonal matrix with diagonal `alpha` (m) and
 * off-diagonal `beta` (m − 1): eigenvalues by Sturm-sequence bisection, eigenvectors by three
 * steps of inverse iteration (pivoted tridiagonal elimination), each orthogonalized against the
 * ones already found (so repeated eigenvalues get distinct vectors).
 */
export function tridiagonalTop(
  alpha: readonly number[],
  beta: readonly number[],
  k: number,
  rng: Rng,
): { values: number[]; s: Float64Array[] } {
  const m = alpha.length;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < m; i++) {
    const r = (i > 0 ? Math.abs(beta[i - 1]) : 0) + (i < m - 1 ? Math.abs(beta[i]) : 0);
    lo = Math.min(lo, alpha[i] - r);
    hi = Math.max(hi, alpha[i] + r);
  }
  const span = Math.max(hi - lo, Math.abs(hi), 1e-300);
  // Number of eigenvalues < x (Sturm count of the LDLᵀ pivots).
  const below = (x: number) => {
    let count = 0;
    let d = 1;
    for (let i = 0; i < m; i++) {
      d = alpha[i] - x - (i > 0 ? (beta[i - 1] * beta[i - 1]) / d : 0);
      if (d === 0) d = -1e-300;
      if (d < 0) count++;
    }
    return count;
  };
  const values: number[] = [];
  const s: Float64Array[] = [];
  for (let i = 0; i < k; i++) {
    const target = m - 1 - i; // ascending index of the i-th largest
    let a = lo - 1e-12 * span;
    let b = hi + 1e-12 * span;
    for (let it = 0; it < 200 && b - a > 1e-15 * span; it++) {
      const mid = (a + b) / 2;
      if (below(mid) > target) b = mid;
      else a = mid;
    }
    const lambda = (a + b) / 2;
    let x: Float64Array = Float64Array.from({ length: m }, () => rng.normal());
    for (let it = 0; it < 3; it++) {
      x = solveShifted(alpha, beta, lambda, x, 1e-14 * span);
      for (const prev of s) {
        let dot = 0;
        for (let t = 0; t < m; t++) dot += x[t] * prev[t];
        for (let t = 0; t < m; t++) x[t] -= dot * prev[t];
      }
      let norm = 0;
      for (let t = 0; t < m; t++) norm += x[t] * x[t];
      norm = Math.sqrt(norm);
      if (!(norm > 0)) x = Float64Array.from({ length: m }, () => rng.normal());
      else for (let t = 0; t < m; t++) x[t] /= norm;
    }
    values.push(lambda);
    s.push(x);
  }
  return { values, s };
}

/**
 * Solves (T − λI)·x = r for the tridiagonal T (Gaussian elimination with partial pivoting; a
 * pivot that vanishes is replaced by `tiny`, as inverse iteration wants).
 */
function solveShifted(
  alpha: readonly number[],
  beta: readonly number[],
  lambda: number,
  rhs: Float64Array,
  tiny: number,
): Float64Array {
  const m = alpha.length;
  const u0 = Float64Array.from(alpha, (a) => a - lambda);
  const u1 = new Float64Array(m);
  const u2 = new Float64Array(m);
  for (let i = 0; i < m - 1; i++) u1[i] = beta[i];
  const r = Float64Array.from(rhs);
  for (let i = 0; i < m - 1; i++) {
    let l = beta[i];
    if (Math.abs(l) > Math.abs(u0[i])) {
      // swap rows i and i+1: row i+1 is (β_i, u0[i+1], u1[i+1]) at columns i, i+1, i+2
      const [a0, a1, a2] = [u0[i], u1[i], u2[i]];
      u0[i] = l;
      u1[i] = u0[i + 1];
      u2[i] = u1[i + 1];
      l = a0;
      u0[i + 1] = a1;
      u1[i + 1] = a2;
      [r[i], r[i + 1]] = [r[i + 1], r[i]];
    }
    if (u0[i] === 0) u0[i] = tiny;
    const mu = l / u0[i];
    u0[i + 1] -= mu * u1[i];
    u1[i + 1] -= mu * u2[i];
    r[i + 1] -= mu * r[i];
  }
  if (u0[m - 1] === 0) u0[m - 1] = tiny;
  const x = new Float64Array(m);
  for (let i = m - 1; i >= 0; i--) {
    let v = r[i];
    if (i + 1 < m) v -= u1[i] * x[i + 1];
    if (i + 2 < m) v -= u2[i] * x[i + 2];
    x[i] = v / u0[i];
  }
  return x;
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
 * assignment stops changing or the centres move less than 1e-4 × the mean feature variance
 * (squared, summed; scikit-learn's rule) — at most 300 — best inertia of `starts` runs (ties →
 * earliest run). The returned inertia and assignment are those of the last assignment step.
 * A cluster that empties takes the point farthest from its center. Needs n ≥ 2.
 */
export function twoMeans(x: Float64Array, n: number, d: number, rng: Rng, starts = 10): TwoMeans {
  if (n < 2) throw new InvalidOptionError(`2-means needs at least 2 points, got ${n}`);
  // scikit-learn's stopping rule: centres move less than 1e-4 × the mean feature variance.
  let meanVar = 0;
  for (let j = 0; j < d; j++) {
    let m = 0;
    let q = 0;
    for (let i = 0; i < n; i++) {
      m += x[i * d + j];
      q += x[i * d + j] ** 2;
    }
    meanVar += (q / n - (m / n) ** 2) / d;
  }
  let best: TwoMeans | null = null;
  for (let s = 0; s < starts; s++) {
    const run = lloyd(x, n, d, seedPlusPlus(x, n, d, rng), 1e-4 * meanVar);
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

function lloyd(
  x: Float64Array,
  n: number,
  d: number,
  centers: Float64Array,
  tol: number,
): TwoMeans {
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
    const before = centers.slice();
    centers.fill(0);
    const c2 = [0, 0];
    for (let i = 0; i < n; i++) {
      const a = assignment[i];
      c2[a]++;
      for (let j = 0; j < d; j++) centers[a * d + j] += x[i * d + j];
    }
    for (const k of [0, 1]) for (let j = 0; j < d; j++) centers[k * d + j] /= c2[k];
    let shift = 0;
    for (let j = 0; j < 2 * d; j++) shift += (centers[j] - before[j]) ** 2;
    if (shift <= tol) break;
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
