// Squared Euclidean distances between loss trajectories and the k nearest probes of each row,
// the hot loop of k-NN detection (SPEC §5):
//   sqdist:   out[i·P + p] = Σ_e (rows[i·S + e] − probes[p·S + e])²
//   knearest: for each row, the k smallest of those P distances (nearest first, ties → lower
//             probe index, probe skip[i] excluded), as indices and squared distances.
// Selection lives here too: in JavaScript it took as long as the distances themselves.
//
// Built with scripts/build-knn-wasm.sh (clang-14, wasm32, -msimd128, no libc). We write this
// kernel ourselves because no maintained WebAssembly library offers a blocked distance matrix,
// and detection over 50,000 × 100-epoch trajectories must take about a second.
//
// Layout: `rows` is n × S and `probes` is P × S float32, row-major, S a multiple of 4 with the
// padding columns zero (they add nothing). The difference form (x − y)² is used rather than
// ‖x‖² + ‖y‖² − 2x·y because it keeps float32 accurate for near-identical trajectories.
// Register blocking: 4 rows × 2 probes share each loaded vector (8 accumulators + 6 operands fit
// the 16 SIMD registers of x86-64 and arm64).

#include <wasm_simd128.h>

static inline float hsum(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) +
         wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3);
}

#define ACC(a, x, y)                      \
  do {                                    \
    v128_t d_ = wasm_f32x4_sub((x), (y)); \
    (a) = wasm_f32x4_add((a), wasm_f32x4_mul(d_, d_)); \
  } while (0)

static void one_row(const float *r, const float *probes, int P, int S, float *out) {
  for (int p = 0; p < P; p++) {
    const float *q = probes + (long)p * S;
    v128_t a = wasm_f32x4_splat(0.0f);
    for (int e = 0; e < S; e += 4) ACC(a, wasm_v128_load(r + e), wasm_v128_load(q + e));
    out[p] = hsum(a);
  }
}

__attribute__((export_name("sqdist"))) void sqdist(const float *rows, int n, const float *probes,
                                                   int P, int S, float *out) {
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const float *r0 = rows + (long)i * S;
    const float *r1 = r0 + S;
    const float *r2 = r1 + S;
    const float *r3 = r2 + S;
    float *o = out + (long)i * P;
    int p = 0;
    for (; p + 2 <= P; p += 2) {
      const float *q0 = probes + (long)p * S;
      const float *q1 = q0 + S;
      v128_t a00 = wasm_f32x4_splat(0.0f), a01 = a00, a10 = a00, a11 = a00;
      v128_t a20 = a00, a21 = a00, a30 = a00, a31 = a00;
      for (int e = 0; e < S; e += 4) {
        v128_t y0 = wasm_v128_load(q0 + e);
        v128_t y1 = wasm_v128_load(q1 + e);
        v128_t x = wasm_v128_load(r0 + e);
        ACC(a00, x, y0);
        ACC(a01, x, y1);
        x = wasm_v128_load(r1 + e);
        ACC(a10, x, y0);
        ACC(a11, x, y1);
        x = wasm_v128_load(r2 + e);
        ACC(a20, x, y0);
        ACC(a21, x, y1);
        x = wasm_v128_load(r3 + e);
        ACC(a30, x, y0);
        ACC(a31, x, y1);
      }
      o[p] = hsum(a00);
      o[p + 1] = hsum(a01);
      o[P + p] = hsum(a10);
      o[P + p + 1] = hsum(a11);
      o[2 * P + p] = hsum(a20);
      o[2 * P + p + 1] = hsum(a21);
      o[3 * P + p] = hsum(a30);
      o[3 * P + p + 1] = hsum(a31);
    }
    for (; p < P; p++)
      for (int j = 0; j < 4; j++) one_row(r0 + (long)j * S, probes + (long)p * S, 1, S, o + (long)j * P + p);
  }
  for (; i < n; i++) one_row(rows + (long)i * S, probes, P, S, out + (long)i * P);
}

// Insertion into a sorted prefix: after the first k probes almost every distance is rejected by
// one comparison with the current k-th best.
static void select_k(const float *d, int P, int k, int skip, int *bi, float *bd) {
  int size = 0;
  for (int r = 0; r < P; r++) {
    if (r == skip) continue;
    float v = d[r];
    if (size == k && !(v < bd[k - 1])) continue;
    int j = size < k ? size++ : k - 1;
    while (j > 0 && bd[j - 1] > v) {
      bd[j] = bd[j - 1];
      bi[j] = bi[j - 1];
      j--;
    }
    bd[j] = v;
    bi[j] = r;
  }
}

// scratch: 4 × P floats. skip: n ints (−1 = none) or 0 for no exclusions. The caller guarantees
// k ≤ P − 1 when a row has a skip and k ≤ P otherwise.
__attribute__((export_name("knearest"))) void knearest(const float *rows, int n,
                                                       const float *probes, int P, int S, int k,
                                                       const int *skip, float *scratch,
                                                       int *outIdx, float *outDist) {
  for (int i = 0; i < n; i += 4) {
    int m = n - i < 4 ? n - i : 4;
    sqdist(rows + (long)i * S, m, probes, P, S, scratch);
    for (int j = 0; j < m; j++)
      select_k(scratch + (long)j * P, P, k, skip ? skip[i + j] : -1, outIdx + (long)(i + j) * k,
               outDist + (long)(i + j) * k);
  }
}
