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
