/**
 * Orthonormal DCT-II over N×N blocks (N = 32 here): X = C·x·Cᵀ with
 * C[k][n] = a(k)·cos(π(2n+1)k / 2N), a(0) = √(1/N), a(k>0) = √(2/N). The inverse is x = Cᵀ·X·C.
 */
export function dctMatrix(n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const a = k === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n);
    for (let i = 0; i < n; i++) c[k * n + i] = a * Math.cos((Math.PI * (2 * i + 1) * k) / (2 * n));
  }
  return c;
}

const cache = new Map<number, Float64Array>();
function matrix(n: number): Float64Array {
  let m = cache.get(n);
  if (!m) cache.set(n, (m = dctMatrix(n)));
  return m;
}

/** 2-D orthonormal DCT-II of an n×n row-major block. */
export function dct2(x: Float64Array, n: number): Float64Array {
  const c = matrix(n);
  return mul(mul(c, x, n, false, false), c, n, false, true);
}

/** Inverse of dct2 (2-D orthonormal DCT-III). */
export function idct2(X: Float64Array, n: number): Float64Array {
  const c = matrix(n);
  return mul(mul(c, X, n, true, false), c, n, false, false);
}

/** a·b (or with aᵀ / bᵀ) for n×n row-major matrices. */
function mul(a: Float64Array, b: Float64Array, n: number, ta: boolean, tb: boolean): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++)
        s += (ta ? a[k * n + i] : a[i * n + k]) * (tb ? b[j * n + k] : b[k * n + j]);
      out[i * n + j] = s;
    }
  return out;
}

/**
 * The same orthonormal 2-D DCT-II as `dct2`, written into `out` (n × n, row-major) without
 * allocating, for the frequency defense's pass over every training image. `x` is read at
 * x[offset + (r·n + c)·stride] (so a channel of an interleaved HWC image can be read in place:
 * offset = channel, stride = 3). Uses the symmetry C[k][n−1−j] = (−1)^k·C[k][j]: each 1-D
 * transform folds its input into sums (even k) and differences (odd k) of mirrored pairs first,
 * halving the multiply-adds (n³ per 2-D transform instead of 2n³). n must be even. Not
 * re-entrant (it reuses module-level work buffers; JavaScript runs it on one thread).
 */
export function dct2Into(
  x: ArrayLike<number>,
  n: number,
  out: Float64Array,
  offset = 0,
  stride = 1,
): void {
  const { input, scratch } = work(n);
  // Copy into float64 first: the passes then see one array type (a monomorphic hot loop).
  for (let i = 0; i < n * n; i++) input[i] = x[offset + i * stride];
  // Each pass transforms rows and writes its result transposed, so the second pass reads the
  // first one's columns as contiguous rows and writes the 2-D result back in row-major order.
  foldedPass(input, n, scratch);
  foldedPass(scratch, n, out);
}

/** out[k·n + r] = Σ_j C[k][j]·x[r·n + j] (n × n row-major in, transposed out). */
function foldedPass(x: Float64Array, n: number, out: Float64Array): void {
  const h = n >> 1;
  const { half, fold } = work(n);
  for (let r = 0; r < n; r++) {
    const b = r * n;
    for (let j = 0; j < h; j++) {
      const a = x[b + j];
      const z = x[b + n - 1 - j];
      fold[j] = a + z;
      fold[h + j] = a - z;
    }
    for (let k = 0; k < n; k++) {
      const src = k & 1 ? h : 0;
      const o = k * h;
      let s = 0;
      for (let j = 0; j < h; j++) s += half[o + j] * fold[src + j];
      out[k * n + r] = s;
    }
  }
}

interface Work {
  /** C[k][j] for j < n/2 (n × n/2, row-major). */
  half: Float64Array;
  /** One folded row: [s_0..s_{h−1}, d_0..d_{h−1}]. */
  fold: Float64Array;
  input: Float64Array;
  scratch: Float64Array;
}
const workCache = new Map<number, Work>();
function work(n: number): Work {
  let w = workCache.get(n);
  if (!w) {
    if (!(n >= 2 && n % 2 === 0))
      throw new RangeError(`dct2Into needs an even block size, got ${n}`);
    const c = matrix(n);
    const h = n >> 1;
    const half = new Float64Array(n * h);
    for (let k = 0; k < n; k++) for (let j = 0; j < h; j++) half[k * h + j] = c[k * n + j];
    w = {
      half,
      fold: new Float64Array(n),
      input: new Float64Array(n * n),
      scratch: new Float64Array(n * n),
    };
    workCache.set(n, w);
  }
  return w;
}
