/*
 * BaDLoss Lab training engine: ResNet kernels in freestanding C for wasm32 + SIMD128, run on
 * several threads over one shared WebAssembly.Memory (one instance per thread). Written for this
 * project (no libc, no code taken from elsewhere); the TypeScript side (wasm-engine.ts) plans the
 * network, owns the memory layout and calls these kernels layer by layer.
 *
 * Conventions: activations are NHWC float32 with a channel stride `ld` that is a multiple of 8;
 * channels between the real count and `ld` are kept at zero by every kernel (packed weights,
 * biases and BatchNorm scales are zero there), so every inner loop runs on whole 128-bit vectors.
 * Convolution weights are HWIO ([KH·KW·Cin][Cout], row-major) as in tfjs; kernels read them
 * packed into 8-column panels: panel[nb][k][j] = W[k][8·nb + j] (zero past Cout).
 *
 * Threads: thread 0 (the caller) publishes a task, wakes the helpers through a futex on
 * `pool_gen`, works on the task itself, and waits until every helper has finished: each call of
 * `run_task` is a barrier. Work inside a task is split into chunks claimed with an atomic counter,
 * so a thread that is descheduled (the machine is shared) does not hold the others up.
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define MAX_THREADS 64
typedef v128_t v4;

/* ---------------------------------------------------------------- thread pool */

typedef void (*task_fn)(int tid);
static volatile int pool_gen;
static volatile int pool_done;
static volatile int pool_next;
static volatile int pool_quit;
static int pool_threads = 1;
static task_fn pool_fn;

static inline int atomic_load(volatile int *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline int atomic_add(volatile int *p, int v) {
  return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
static inline void atomic_store(volatile int *p, int v) {
  __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

/* Spin a little before sleeping: a layer takes ~0.1–10 ms, a futex round trip ~20 µs. */
#define SPIN 4000

static void wait_while_equal(volatile int *p, int v) {
  for (int i = 0; i < SPIN; i++)
    if (atomic_load(p) != v) return;
  while (atomic_load(p) == v) __builtin_wasm_memory_atomic_wait32((int *)p, v, -1);
}

/** Number of threads the kernels split work over (1 = the caller alone). */
EXPORT(set_threads) void set_threads(int n) { pool_threads = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n; }

/** A helper thread's loop: runs every published task until `pool_stop`. */
EXPORT(helper_loop) void helper_loop(int tid) {
  int seen = 0;
  for (;;) {
    wait_while_equal(&pool_gen, seen);
    seen = atomic_load(&pool_gen);
    if (atomic_load(&pool_quit)) return;
    pool_fn(tid);
    atomic_add(&pool_done, 1);
    __builtin_wasm_memory_atomic_notify((int *)&pool_done, 1);
  }
}

/** Makes every helper return from helper_loop. */
EXPORT(pool_stop) void pool_stop(void) {
  atomic_store(&pool_quit, 1);
  atomic_add(&pool_gen, 1);
  __builtin_wasm_memory_atomic_notify((int *)&pool_gen, -1);
}

static void run_task(task_fn fn) {
  if (pool_threads == 1) {
    pool_next = 0;
    fn(0);
    return;
  }
  pool_fn = fn;
  atomic_store(&pool_done, 0);
  atomic_store(&pool_next, 0);
  atomic_add(&pool_gen, 1);
  __builtin_wasm_memory_atomic_notify((int *)&pool_gen, -1);
  fn(0);
  for (;;) {
    int d = atomic_load(&pool_done);
    if (d == pool_threads - 1) break;
    wait_while_equal(&pool_done, d);
  }
}

static inline int claim(void) { return atomic_add(&pool_next, 1); }

/* ---------------------------------------------------------------- small helpers */

static inline int imin(int a, int b) { return a < b ? a : b; }

static void fill(float *p, int n, float v) {
  for (int i = 0; i < n; i++) p[i] = v;
}

/* exp and log in double precision (used for softmax cross-entropy only). */
static double exp_d(double x) {
  if (x < -745) return 0;
  if (x > 709) x = 709;
  const double ln2_hi = 0.6931471803691238, ln2_lo = 1.9082149292705877e-10;
  double kf = __builtin_floor(x * 1.4426950408889634 + 0.5);
  double r = (x - kf * ln2_hi) - kf * ln2_lo; /* |r| ≤ 0.35 */
  /* Taylor series to r^13: error < 0.35^14/14! ≈ 5e-18 */
  double s = 1, t = 1;
  for (int i = 1; i <= 13; i++) {
    t *= r / i;
    s += t;
  }
  long long k = (long long)kf;
  /* scale by 2^k in two steps so that subnormal results stay exact enough */
  long long k1 = k / 2, k2 = k - k1;
  union { double d; unsigned long long u; } a, b;
  a.u = (unsigned long long)(k1 + 1023) << 52;
  b.u = (unsigned long long)(k2 + 1023) << 52;
  return s * a.d * b.d;
}

static double log_d(double x) {
  if (!(x > 0)) return x == 0 ? -__builtin_inf() : __builtin_nan("");
  union { double d; unsigned long long u; } v = {x};
  int e = (int)((v.u >> 52) & 0x7ff) - 1023;
  if (e == -1023) { /* subnormal: renormalize */
    v.d = x * 4503599627370496.0; /* 2^52 */
    e = (int)((v.u >> 52) & 0x7ff) - 1023 - 52;
  }
  v.u = (v.u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL; /* m in [1, 2) */
  double m = v.d;
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e += 1;
  }
  double s = (m - 1) / (m + 1), s2 = s * s; /* |s| ≤ 0.1716 */
  /* log m = 2·atanh(s) = 2(s + s³/3 + s⁵/5 + …), to s^23: error < 0.0295^12 ≈ 4e-19 */
  double sum = 0, p = s;
  for (int i = 1; i <= 23; i += 2) {
    sum += p / i;
    p *= s2;
  }
  return 2 * sum + e * 0.6931471805599453;
}

EXPORT(exp_f64) double exp_f64(double x) { return exp_d(x); }
EXPORT(log_f64) double log_f64(double x) { return log_d(x); }

/* ---------------------------------------------------------------- convolution geometry */

typedef struct {
  const float *x; /* input  [B][H][W][ldx], `cin` channels used */
  int ldx, cin, H, W;
  int B, OH, OW, stride, padT, padL, KH, KW;
  const float *w; /* packed panels [nb][KH·KW·cin][8] */
  int nb;         /* output panels: output channels padded = 8·nb */
  float *y;       /* output [B·OH·OW][ldy] */
  int ldy;
  const float *bias; /* [8·nb] or 0 */
  const float *res;  /* residual [B·OH·OW][ldr] added before ReLU, or 0 */
  int ldr, relu;
  const float *zero; /* ≥ cin zeros: the padding row */
} conv_t;

/* 4 × 8: 8 accumulators + 2 weight vectors + a broadcast + a product fit V8's 15 usable SIMD
 * registers on x64 (6 × 8 spills there and runs ~1.6× slower). */
#define MR 4

/*
 * Implicit-GEMM micro-kernel: MR output pixels × 8 output channels, accumulated over every
 * (tap, input channel); rows[t·MR + r] points at pixel r's input row for tap t (or the zero row).
 */
static inline void ukernel(const float *const *rows, int taps, int cin, const float *w, v4 *acc) {
  v4 a[MR][2];
  for (int r = 0; r < MR; r++) a[r][0] = a[r][1] = wasm_f32x4_splat(0);
  for (int t = 0; t < taps; t++) {
    const float *rp[MR];
    for (int r = 0; r < MR; r++) rp[r] = rows[t * MR + r];
    for (int c = 0; c < cin; c++) {
      v4 b0 = wasm_v128_load(w), b1 = wasm_v128_load(w + 4);
      w += 8;
#pragma unroll
      for (int r = 0; r < MR; r++) {
        v4 x = wasm_v128_load32_splat(rp[r] + c);
        a[r][0] = wasm_f32x4_add(a[r][0], wasm_f32x4_mul(x, b0));
        a[r][1] = wasm_f32x4_add(a[r][1], wasm_f32x4_mul(x, b1));
      }
    }
  }
  for (int r = 0; r < MR; r++) acc[2 * r] = a[r][0], acc[2 * r + 1] = a[r][1];
}

/* Output rows [m0, m1) of a convolution, all channel panels. */
static void conv_rows(const conv_t *a, int m0, int m1, float *y, int ldy, const float *res, int ldr) {
  const int taps = a->KH * a->KW, K = taps * a->cin;
  const float *rows[MR * 49 > 0 ? MR * 121 : 1]; /* up to 11×11 kernels */
  v4 acc[2 * MR];
  const v4 zero = wasm_f32x4_splat(0);
  for (int m = m0; m < m1; m += MR) {
    int mr = imin(MR, m1 - m);
    for (int r = 0; r < MR; r++) {
      int mm = m + (r < mr ? r : 0);
      int ow = mm % a->OW, t2 = mm / a->OW, oh = t2 % a->OH, b = t2 / a->OH;
      int ih0 = oh * a->stride - a->padT, iw0 = ow * a->stride - a->padL;
      for (int kh = 0; kh < a->KH; kh++) {
        int ih = ih0 + kh;
        for (int kw = 0; kw < a->KW; kw++) {
          int iw = iw0 + kw;
          rows[(kh * a->KW + kw) * MR + r] =
              (ih >= 0 && ih < a->H && iw >= 0 && iw < a->W)
                  ? a->x + ((b * a->H + ih) * a->W + iw) * a->ldx
                  : a->zero;
        }
      }
    }
    for (int nb = 0; nb < a->nb; nb++) {
      ukernel(rows, taps, a->cin, a->w + nb * K * 8, acc);
      v4 b0 = zero, b1 = zero;
      if (a->bias) b0 = wasm_v128_load(a->bias + nb * 8), b1 = wasm_v128_load(a->bias + nb * 8 + 4);
      for (int r = 0; r < mr; r++) {
        v4 v0 = wasm_f32x4_add(acc[2 * r], b0), v1 = wasm_f32x4_add(acc[2 * r + 1], b1);
        if (res) {
          const float *rp = res + (m + r) * ldr + nb * 8;
          v0 = wasm_f32x4_add(v0, wasm_v128_load(rp));
          v1 = wasm_f32x4_add(v1, wasm_v128_load(rp + 4));
        }
        if (a->relu) v0 = wasm_f32x4_pmax(v0, zero), v1 = wasm_f32x4_pmax(v1, zero);
        float *yp = y + (m + r) * ldy + nb * 8;
        wasm_v128_store(yp, v0);
        wasm_v128_store(yp + 4, v1);
      }
    }
  }
}

static conv_t g_conv;
#define CONV_CHUNK (MR * 8)

static void conv_task(int tid) {
  (void)tid;
  const conv_t *a = &g_conv;
  int M = a->B * a->OH * a->OW, n = (M + CONV_CHUNK - 1) / CONV_CHUNK;
  for (int c; (c = claim()) < n;) {
    int m0 = c * CONV_CHUNK, m1 = imin(M, m0 + CONV_CHUNK);
    conv_rows(a, m0, m1, a->y, a->ldy, a->res, a->ldr);
  }
}

/**
 * y = act(conv(x, w) + bias + res): the forward convolution (and, with flipped weights, the input
 * gradient of a stride-1 convolution). Shapes as in conv_t; padding (padT, padL) from the caller.
 */
EXPORT(conv_forward)
void conv_forward(const float *x, int ldx, int cin, int H, int W, int B, int OH, int OW, int stride,
                  int padT, int padL, int KH, int KW, const float *w, int nb, float *y, int ldy,
                  const float *bias, const float *res, int ldr, int relu, const float *zero) {
  conv_t a = {x, ldx, cin, H, W, B, OH, OW, stride, padT, padL, KH, KW, w, nb, y, ldy, bias, res, ldr, relu, zero};
  g_conv = a;
  run_task(conv_task);
}

/* ---- input gradient of a strided convolution: per image, col = dy·Wᵀ, then scatter (col2im) */

typedef struct {
  const float *dy; /* [B][OH][OW][lddy] */
  int lddy, cout;
  const float *wt; /* packed panels of Wᵀ: [kb][cout][8], kb over KH·KW·cin */
  int kb;
  float *dx; /* [B][H][W][lddx] */
  int lddx, cin, H, W, B, OH, OW, stride, padT, padL, KH, KW;
  const float *res; /* added to dx (may equal dx), or 0 */
  float *col;       /* per-thread scratch, colStride floats each */
  int colStride;
  const float *zero;
} dgrad_t;

static dgrad_t g_dgrad;

static void dgrad_task(int tid) {
  const dgrad_t *a = &g_dgrad;
  int P = a->OH * a->OW, ldc = a->kb * 8, HW = a->H * a->W;
  float *col = a->col + tid * a->colStride;
  conv_t g = {0};
  g.ldx = a->lddy, g.cin = a->cout, g.H = a->OH, g.W = a->OW, g.B = a->B, g.OH = a->OH,
  g.OW = a->OW, g.stride = 1, g.KH = 1, g.KW = 1, g.w = a->wt, g.nb = a->kb, g.zero = a->zero;
  for (int b; (b = claim()) < a->B;) {
    g.x = a->dy + b * P * a->lddy;
    g.B = 1;
    conv_rows(&g, 0, P, col, ldc, 0, 0);
    float *dx = a->dx + b * HW * a->lddx;
    if (a->res) {
      const float *r = a->res + b * HW * a->lddx;
      if (r != dx)
        for (int i = 0; i < HW * a->lddx; i++) dx[i] = r[i];
    } else
      fill(dx, HW * a->lddx, 0);
    for (int oh = 0; oh < a->OH; oh++)
      for (int ow = 0; ow < a->OW; ow++) {
        const float *c = col + (oh * a->OW + ow) * ldc;
        for (int kh = 0; kh < a->KH; kh++) {
          int ih = oh * a->stride - a->padT + kh;
          if (ih < 0 || ih >= a->H) continue;
          for (int kw = 0; kw < a->KW; kw++) {
            int iw = ow * a->stride - a->padL + kw;
            if (iw < 0 || iw >= a->W) continue;
            float *d = dx + (ih * a->W + iw) * a->lddx;
            const float *s = c + (kh * a->KW + kw) * a->cin;
            int i = 0;
            for (; i + 4 <= a->cin; i += 4)
              wasm_v128_store(d + i, wasm_f32x4_add(wasm_v128_load(d + i), wasm_v128_load(s + i)));
            for (; i < a->cin; i++) d[i] += s[i];
          }
        }
      }
  }
}

/** dx = col2im(dy · Wᵀ) (+ res): the input gradient of any convolution (used for strides > 1). */
EXPORT(conv_dgrad_col)
void conv_dgrad_col(const float *dy, int lddy, int cout, const float *wt, int kb, float *dx, int lddx,
                    int cin, int H, int W, int B, int OH, int OW, int stride, int padT, int padL,
                    int KH, int KW, const float *res, float *col, int colStride, const float *zero) {
  dgrad_t a = {dy, lddy, cout, wt, kb, dx, lddx, cin, H, W, B, OH, OW, stride, padT, padL, KH, KW, res, col, colStride, zero};
  g_dgrad = a;
  run_task(dgrad_task);
}

/* ---- filter gradient: dW[k][n] = Σ_m x(m, tap)[ci] · dy[m][n], per-thread partial sums */

typedef struct {
  const float *x;
  int ldx, cin, H, W, B, OH, OW, stride, padT, padL, KH, KW;
  const float *dy;
  int lddy, nb;
  float *part; /* per group: [KH·KW·cin][8·nb] */
  int partStride;
  float *dw; /* result [KH·KW·cin][cout] */
  int cout;
} wgrad_t;

static wgrad_t g_wgrad;
#define WG_ROWS 4 /* output rows per chunk */

#define WG_TILE(CR)                                                                         \
  static void wg_tile_##CR(const wgrad_t *a, int b, int oh0, int oh1, int kh, int kw, int ci, \
                           int nbi, float *out) {                                            \
    v4 acc[CR][2];                                                                           \
    for (int r = 0; r < CR; r++)                                                             \
      acc[r][0] = wasm_v128_load(out + r * a->nb * 8),                                       \
      acc[r][1] = wasm_v128_load(out + r * a->nb * 8 + 4);                                   \
    int owlo = 0, owhi = a->OW;                                                              \
    while (owlo < owhi && owlo * a->stride - a->padL + kw < 0) owlo++;                       \
    while (owhi > owlo && (owhi - 1) * a->stride - a->padL + kw >= a->W) owhi--;             \
    for (int oh = oh0; oh < oh1; oh++) {                                                     \
      int ih = oh * a->stride - a->padT + kh;                                                \
      if (ih < 0 || ih >= a->H) continue;                                                    \
      const float *xp = a->x + ((b * a->H + ih) * a->W + owlo * a->stride - a->padL + kw) *  \
                                   a->ldx + ci;                                              \
      const float *dp = a->dy + ((b * a->OH + oh) * a->OW + owlo) * a->lddy + nbi * 8;       \
      int xs = a->stride * a->ldx;                                                           \
      for (int ow = owlo; ow < owhi; ow++, xp += xs, dp += a->lddy) {                        \
        v4 d0 = wasm_v128_load(dp), d1 = wasm_v128_load(dp + 4);                             \
        for (int r = 0; r < CR; r++) {                                                       \
          v4 xv = wasm_v128_load32_splat(xp + r);                                            \
          acc[r][0] = wasm_f32x4_add(acc[r][0], wasm_f32x4_mul(xv, d0));                     \
          acc[r][1] = wasm_f32x4_add(acc[r][1], wasm_f32x4_mul(xv, d1));                     \
        }                                                                                    \
      }                                                                                      \
    }                                                                                        \
    for (int r = 0; r < CR; r++)                                                             \
      wasm_v128_store(out + r * a->nb * 8, acc[r][0]),                                       \
          wasm_v128_store(out + r * a->nb * 8 + 4, acc[r][1]);                               \
  }
WG_TILE(1)
WG_TILE(2)
WG_TILE(3)
WG_TILE(4)

/*
 * Reductions are deterministic and independent of the thread count: the work is cut into a fixed
 * number of groups (a function of the shape only), each group sums into its own partial buffer,
 * and the partials are added in group order.
 */
#define GROUPS 8

static void wgrad_task(int tid) {
  (void)tid;
  const wgrad_t *a = &g_wgrad;
  int K = a->KH * a->KW * a->cin, ldp = a->nb * 8;
  int perImage = (a->OH + WG_ROWS - 1) / WG_ROWS, n = a->B * perImage;
  for (int grp; (grp = claim()) < GROUPS;) {
    float *part = a->part + grp * a->partStride;
    fill(part, K * ldp, 0);
    for (int c = grp * n / GROUPS; c < (grp + 1) * n / GROUPS; c++) {
      int b = c / perImage, oh0 = (c % perImage) * WG_ROWS, oh1 = imin(a->OH, oh0 + WG_ROWS);
      for (int kh = 0; kh < a->KH; kh++)
        for (int kw = 0; kw < a->KW; kw++)
          for (int ci = 0; ci < a->cin; ci += 4) {
            int cr = imin(4, a->cin - ci);
            for (int nbi = 0; nbi < a->nb; nbi++) {
              float *out = part + ((kh * a->KW + kw) * a->cin + ci) * ldp + nbi * 8;
              switch (cr) {
                case 4: wg_tile_4(a, b, oh0, oh1, kh, kw, ci, nbi, out); break;
                case 3: wg_tile_3(a, b, oh0, oh1, kh, kw, ci, nbi, out); break;
                case 2: wg_tile_2(a, b, oh0, oh1, kh, kw, ci, nbi, out); break;
                default: wg_tile_1(a, b, oh0, oh1, kh, kw, ci, nbi, out); break;
              }
            }
          }
    }
  }
}

static void wgrad_reduce_task(int tid) {
  (void)tid;
  const wgrad_t *a = &g_wgrad;
  int K = a->KH * a->KW * a->cin, ldp = a->nb * 8;
  const int CH = 16;
  int n = (K + CH - 1) / CH;
  for (int c; (c = claim()) < n;)
    for (int k = c * CH; k < imin(K, c * CH + CH); k++)
      for (int j = 0; j < a->cout; j++) {
        float s = 0;
        for (int t = 0; t < GROUPS; t++) s += a->part[t * a->partStride + k * ldp + j];
        a->dw[k * a->cout + j] = s;
      }
}

/** dW = Σ over output pixels of x-patch ⊗ dy: the filter gradient, written HWIO into `dw`;
 * `part` holds GROUPS partial sums of partStride floats. */
EXPORT(conv_wgrad)
void conv_wgrad(const float *x, int ldx, int cin, int H, int W, int B, int OH, int OW, int stride,
                int padT, int padL, int KH, int KW, const float *dy, int lddy, int nb, float *part,
                int partStride, float *dw, int cout) {
  wgrad_t a = {x, ldx, cin, H, W, B, OH, OW, stride, padT, padL, KH, KW, dy, lddy, nb, part, partStride, dw, cout};
  g_wgrad = a;
  run_task(wgrad_task);
  run_task(wgrad_reduce_task);
}

/* ---- Winograd F(2×2, 3×3) for stride-1 3×3 convolutions ------------------------------------
 * y-tile (2×2) = Aᵀ·[ Σ_ci (G·g·Gᵀ) ⊙ (Bᵀ·d·B) ]·A over 4×4 input tiles d: 16 multiplications
 * per output pair of pixels instead of 36. The 16 element-wise products become 16 GEMMs
 * (tiles × cin)·(cin × cout), run by the same micro-kernel; transforms are vectorized over
 * channels (input rows must have a channel stride that is a multiple of 4).
 */

typedef struct {
  const float *x;
  int ldx, cin, H, W, B, OH, OW, padT, padL;
  const float *u; /* transformed filters [16][nb][cin][8] */
  int nb;
  float *y;
  int ldy;
  const float *bias, *res;
  int ldr, relu;
  float *scratch; /* per thread: V [16][WT][ldx] then M [16][WT][8·nb] */
  int scratchStride;
} wino_t;

static wino_t g_wino;
#define WT 24 /* tiles per chunk (a multiple of MR) */

static void wino_task(int tid) {
  const wino_t *a = &g_wino;
  const int TH = (a->OH + 1) / 2, TW = (a->OW + 1) / 2, NT = a->B * TH * TW;
  const int ldv = a->ldx, ldm = a->nb * 8;
  float *V = a->scratch + tid * a->scratchStride;
  float *Mb = V + 16 * WT * ldv;
  const v4 zero = wasm_f32x4_splat(0);
  const int nchunks = (NT + WT - 1) / WT;
  const float *rows[MR];
  v4 acc[2 * MR];
  for (int ch; (ch = claim()) < nchunks;) {
    int t0 = ch * WT, nt = imin(WT, NT - t0);
    /* input transform: V[p][t][c] = (Bᵀ d B)[p] */
    for (int t = 0; t < nt; t++) {
      int tile = t0 + t, tx = tile % TW, r2 = tile / TW, ty = r2 % TH, b = r2 / TH;
      int ih0 = 2 * ty - a->padT, iw0 = 2 * tx - a->padL;
      const float *src[16];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
          int ih = ih0 + i, iw = iw0 + j;
          src[i * 4 + j] = (ih >= 0 && ih < a->H && iw >= 0 && iw < a->W)
                               ? a->x + ((b * a->H + ih) * a->W + iw) * a->ldx
                               : 0;
        }
      for (int c = 0; c < a->cin; c += 4) {
        v4 d[16], tt[16];
        for (int q = 0; q < 16; q++) d[q] = src[q] ? wasm_v128_load(src[q] + c) : zero;
        for (int j = 0; j < 4; j++) {
          tt[0 * 4 + j] = wasm_f32x4_sub(d[0 * 4 + j], d[2 * 4 + j]);
          tt[1 * 4 + j] = wasm_f32x4_add(d[1 * 4 + j], d[2 * 4 + j]);
          tt[2 * 4 + j] = wasm_f32x4_sub(d[2 * 4 + j], d[1 * 4 + j]);
          tt[3 * 4 + j] = wasm_f32x4_sub(d[1 * 4 + j], d[3 * 4 + j]);
        }
        for (int i = 0; i < 4; i++) {
          float *o = V + ((i * 4) * WT + t) * ldv + c;
          wasm_v128_store(o, wasm_f32x4_sub(tt[i * 4 + 0], tt[i * 4 + 2]));
          wasm_v128_store(o + WT * ldv, wasm_f32x4_add(tt[i * 4 + 1], tt[i * 4 + 2]));
          wasm_v128_store(o + 2 * WT * ldv, wasm_f32x4_sub(tt[i * 4 + 2], tt[i * 4 + 1]));
          wasm_v128_store(o + 3 * WT * ldv, wasm_f32x4_sub(tt[i * 4 + 1], tt[i * 4 + 3]));
        }
      }
    }
    /* 16 GEMMs: M[p][t][n] = Σ_c V[p][t][c]·U[p][c][n] */
    for (int p = 0; p < 16; p++)
      for (int t = 0; t < nt; t += MR) {
        int mr = imin(MR, nt - t);
        for (int r = 0; r < MR; r++) rows[r] = V + (p * WT + t + (r < mr ? r : 0)) * ldv;
        for (int nb = 0; nb < a->nb; nb++) {
          ukernel(rows, 1, a->cin, a->u + (p * a->nb + nb) * a->cin * 8, acc);
          for (int r = 0; r < mr; r++) {
            float *o = Mb + (p * WT + t + r) * ldm + nb * 8;
            wasm_v128_store(o, acc[2 * r]);
            wasm_v128_store(o + 4, acc[2 * r + 1]);
          }
        }
      }
    /* output transform Aᵀ m A, + bias (+ residual) (→ ReLU) */
    for (int t = 0; t < nt; t++) {
      int tile = t0 + t, tx = tile % TW, r2 = tile / TW, ty = r2 % TH, b = r2 / TH;
      int oh = 2 * ty, ow = 2 * tx;
      for (int n = 0; n < ldm; n += 4) {
        v4 m[16];
        for (int q = 0; q < 16; q++) m[q] = wasm_v128_load(Mb + (q * WT + t) * ldm + n);
        v4 t0v[4], t1v[4];
        for (int j = 0; j < 4; j++) {
          t0v[j] = wasm_f32x4_add(wasm_f32x4_add(m[0 * 4 + j], m[1 * 4 + j]), m[2 * 4 + j]);
          t1v[j] = wasm_f32x4_sub(wasm_f32x4_sub(m[1 * 4 + j], m[2 * 4 + j]), m[3 * 4 + j]);
        }
        v4 out[4];
        out[0] = wasm_f32x4_add(wasm_f32x4_add(t0v[0], t0v[1]), t0v[2]);
        out[1] = wasm_f32x4_sub(wasm_f32x4_sub(t0v[1], t0v[2]), t0v[3]);
        out[2] = wasm_f32x4_add(wasm_f32x4_add(t1v[0], t1v[1]), t1v[2]);
        out[3] = wasm_f32x4_sub(wasm_f32x4_sub(t1v[1], t1v[2]), t1v[3]);
        v4 bv = a->bias ? wasm_v128_load(a->bias + n) : zero;
        for (int q = 0; q < 4; q++) {
          int yh = oh + (q >> 1), yw = ow + (q & 1);
          if (yh >= a->OH || yw >= a->OW) continue;
          int m_ = (b * a->OH + yh) * a->OW + yw;
          v4 v = wasm_f32x4_add(out[q], bv);
          if (a->res) v = wasm_f32x4_add(v, wasm_v128_load(a->res + m_ * a->ldr + n));
          if (a->relu) v = wasm_f32x4_pmax(v, zero);
          wasm_v128_store(a->y + m_ * a->ldy + n, v);
        }
      }
    }
  }
}

/**
 * A stride-1 3×3 convolution by Winograd F(2×2, 3×3): same contract as conv_forward (output
 * OH×OW, padding padT/padL, bias, residual, ReLU), `u` from winograd_pack, ldx a multiple of 4,
 * `scratch` 16·24·(ldx + 8·nb) floats per thread.
 */
EXPORT(conv3x3_winograd)
void conv3x3_winograd(const float *x, int ldx, int cin, int H, int W, int B, int OH, int OW,
                      int padT, int padL, const float *u, int nb, float *y, int ldy,
                      const float *bias, const float *res, int ldr, int relu, float *scratch,
                      int scratchStride) {
  wino_t a = {x, ldx, cin, H, W, B, OH, OW, padT, padL, u, nb, y, ldy, bias, res, ldr, relu, scratch, scratchStride};
  g_wino = a;
  run_task(wino_task);
}

/* ---- Winograd F(4×4, 3×3): 36 multiplications per 16 outputs (vs 144 direct, 64 with F(2×2)).
 * Points 0, ±1, ±2, ∞: larger transforms and slightly larger rounding (~1e-6–1e-5 relative), used
 * for evaluation passes. Same data layout as F(2×2) with 36 positions. */

#define WT4 12 /* tiles per chunk (a multiple of MR) */

static inline void bt6(const v4 *d, v4 *o) {
  const v4 c4 = wasm_f32x4_splat(4), c5 = wasm_f32x4_splat(5), c2 = wasm_f32x4_splat(2);
  o[0] = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(c4, d[0]), wasm_f32x4_mul(c5, d[2])), d[4]);
  v4 a = wasm_f32x4_sub(d[4], wasm_f32x4_mul(c4, d[2])), b = wasm_f32x4_sub(d[3], wasm_f32x4_mul(c4, d[1]));
  o[1] = wasm_f32x4_add(a, b);
  o[2] = wasm_f32x4_sub(a, b);
  v4 e = wasm_f32x4_sub(d[4], d[2]), f = wasm_f32x4_mul(c2, wasm_f32x4_sub(d[3], d[1]));
  o[3] = wasm_f32x4_add(e, f);
  o[4] = wasm_f32x4_sub(e, f);
  o[5] = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(c4, d[1]), wasm_f32x4_mul(c5, d[3])), d[5]);
}

static inline void at6(const v4 *m, v4 *y) {
  const v4 c2 = wasm_f32x4_splat(2), c4 = wasm_f32x4_splat(4), c8 = wasm_f32x4_splat(8);
  v4 s12 = wasm_f32x4_add(m[1], m[2]), d12 = wasm_f32x4_sub(m[1], m[2]);
  v4 s34 = wasm_f32x4_add(m[3], m[4]), d34 = wasm_f32x4_sub(m[3], m[4]);
  y[0] = wasm_f32x4_add(wasm_f32x4_add(m[0], s12), s34);
  y[1] = wasm_f32x4_add(d12, wasm_f32x4_mul(c2, d34));
  y[2] = wasm_f32x4_add(s12, wasm_f32x4_mul(c4, s34));
  y[3] = wasm_f32x4_add(wasm_f32x4_add(d12, wasm_f32x4_mul(c8, d34)), m[5]);
}

static void wino4_task(int tid) {
  const wino_t *a = &g_wino;
  const int TH = (a->OH + 3) / 4, TW = (a->OW + 3) / 4, NT = a->B * TH * TW;
  const int ldv = a->ldx, ldm = a->nb * 8;
  float *V = a->scratch + tid * a->scratchStride;
  float *Mb = V + 36 * WT4 * ldv;
  const v4 zero = wasm_f32x4_splat(0);
  const int nchunks = (NT + WT4 - 1) / WT4;
  const float *rows[MR];
  v4 acc[2 * MR];
  for (int ch; (ch = claim()) < nchunks;) {
    int t0 = ch * WT4, nt = imin(WT4, NT - t0);
    for (int t = 0; t < nt; t++) {
      int tile = t0 + t, tx = tile % TW, r2 = tile / TW, ty = r2 % TH, b = r2 / TH;
      int ih0 = 4 * ty - a->padT, iw0 = 4 * tx - a->padL;
      const float *src[36];
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
          int ih = ih0 + i, iw = iw0 + j;
          src[i * 6 + j] = (ih >= 0 && ih < a->H && iw >= 0 && iw < a->W)
                               ? a->x + ((b * a->H + ih) * a->W + iw) * a->ldx
                               : 0;
        }
      for (int c = 0; c < a->cin; c += 4) {
        v4 d[6], col[36], r[6];
        for (int j = 0; j < 6; j++) { /* columns: Bᵀ·d */
          for (int i = 0; i < 6; i++) d[i] = src[i * 6 + j] ? wasm_v128_load(src[i * 6 + j] + c) : zero;
          bt6(d, r);
          for (int i = 0; i < 6; i++) col[i * 6 + j] = r[i];
        }
        for (int i = 0; i < 6; i++) { /* rows: (Bᵀ·d)·B */
          bt6(col + i * 6, r);
          for (int j = 0; j < 6; j++) wasm_v128_store(V + ((i * 6 + j) * WT4 + t) * ldv + c, r[j]);
        }
      }
    }
    for (int p = 0; p < 36; p++)
      for (int t = 0; t < nt; t += MR) {
        int mr = imin(MR, nt - t);
        for (int r = 0; r < MR; r++) rows[r] = V + (p * WT4 + t + (r < mr ? r : 0)) * ldv;
        for (int nb = 0; nb < a->nb; nb++) {
          ukernel(rows, 1, a->cin, a->u + (p * a->nb + nb) * a->cin * 8, acc);
          for (int r = 0; r < mr; r++) {
            float *o = Mb + (p * WT4 + t + r) * ldm + nb * 8;
            wasm_v128_store(o, acc[2 * r]);
            wasm_v128_store(o + 4, acc[2 * r + 1]);
          }
        }
      }
    for (int t = 0; t < nt; t++) {
      int tile = t0 + t, tx = tile % TW, r2 = tile / TW, ty = r2 % TH, b = r2 / TH;
      int oh = 4 * ty, ow = 4 * tx;
      for (int n = 0; n < ldm; n += 4) {
        v4 m[6], tcol[24], y[4], out[4];
        for (int j = 0; j < 6; j++) { /* columns: Aᵀ·m */
          for (int i = 0; i < 6; i++) m[i] = wasm_v128_load(Mb + ((i * 6 + j) * WT4 + t) * ldm + n);
          at6(m, y);
          for (int i = 0; i < 4; i++) tcol[i * 6 + j] = y[i];
        }
        v4 bv = a->bias ? wasm_v128_load(a->bias + n) : zero;
        for (int i = 0; i < 4; i++) {
          int yh = oh + i;
          if (yh >= a->OH) break;
          at6(tcol + i * 6, out);
          for (int j = 0; j < 4; j++) {
            int yw = ow + j;
            if (yw >= a->OW) break;
            int m_ = (b * a->OH + yh) * a->OW + yw;
            v4 v = wasm_f32x4_add(out[j], bv);
            if (a->res) v = wasm_f32x4_add(v, wasm_v128_load(a->res + m_ * a->ldr + n));
            if (a->relu) v = wasm_f32x4_pmax(v, zero);
            wasm_v128_store(a->y + m_ * a->ldy + n, v);
          }
        }
      }
    }
  }
}

/**
 * conv3x3_winograd with F(4×4, 3×3): `u` from winograd4_pack, `scratch` 36·12·(ldx + 8·nb)
 * floats per thread.
 */
EXPORT(conv3x3_winograd4)
void conv3x3_winograd4(const float *x, int ldx, int cin, int H, int W, int B, int OH, int OW,
                       int padT, int padL, const float *u, int nb, float *y, int ldy,
                       const float *bias, const float *res, int ldr, int relu, float *scratch,
                       int scratchStride) {
  wino_t a = {x, ldx, cin, H, W, B, OH, OW, padT, padL, u, nb, y, ldy, bias, res, ldr, relu, scratch, scratchStride};
  g_wino = a;
  run_task(wino4_task);
}

/**
 * F(4×4, 3×3) filter transform: u[p][nb][ci][j] = (G·g·Gᵀ)[p], p over 6×6, with
 * G = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1] (computed in double).
 */
EXPORT(winograd4_pack)
void winograd4_pack(const float *w, int cin, int cout, const float *scale, float *u) {
  static const double G[6][3] = {{0.25, 0, 0},
                                 {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                 {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                 {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                 {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                 {0, 0, 1}};
  int nb = (cout + 7) / 8;
  for (int ci = 0; ci < cin; ci++)
    for (int co = 0; co < nb * 8; co++) {
      double g[3][3], tg[6][3];
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
          g[i][j] = co < cout ? (double)(w[((i * 3 + j) * cin + ci) * cout + co] * (scale ? scale[co] : 1.0f)) : 0;
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) tg[i][j] = G[i][0] * g[0][j] + G[i][1] * g[1][j] + G[i][2] * g[2][j];
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
          u[(((i * 6 + j) * nb + co / 8) * cin + ci) * 8 + (co & 7)] =
              (float)(tg[i][0] * G[j][0] + tg[i][1] * G[j][1] + tg[i][2] * G[j][2]);
    }
}

/**
 * Winograd filter transform of HWIO 3×3 weights w [3][3][cin][cout] (times scale[co] when given):
 * u[p][nb][ci][j] = (G·g·Gᵀ)[p] of g = w[·][·][ci][8nb + j], G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
 */
EXPORT(winograd_pack)
void winograd_pack(const float *w, int cin, int cout, const float *scale, float *u) {
  int nb = (cout + 7) / 8;
  for (int ci = 0; ci < cin; ci++)
    for (int co = 0; co < nb * 8; co++) {
      float g[3][3], tg[4][3];
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
          g[i][j] = co < cout ? w[((i * 3 + j) * cin + ci) * cout + co] * (scale ? scale[co] : 1.0f) : 0;
      for (int j = 0; j < 3; j++) {
        tg[0][j] = g[0][j];
        tg[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
        tg[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
        tg[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; i++) {
        float r[4] = {tg[i][0], 0.5f * (tg[i][0] + tg[i][1] + tg[i][2]),
                      0.5f * (tg[i][0] - tg[i][1] + tg[i][2]), tg[i][2]};
        for (int j = 0; j < 4; j++)
          u[(((i * 4 + j) * nb + co / 8) * cin + ci) * 8 + (co & 7)] = r[j];
      }
    }
}

/** The flipped, transposed kernel in HWIO form: out[kh][kw][co][ci] = w[KH−1−kh][KW−1−kw][ci][co]. */
EXPORT(flip_kernel)
void flip_kernel(const float *w, int KH, int KW, int cin, int cout, float *out) {
  for (int kh = 0; kh < KH; kh++)
    for (int kw = 0; kw < KW; kw++)
      for (int co = 0; co < cout; co++)
        for (int ci = 0; ci < cin; ci++)
          out[((kh * KW + kw) * cout + co) * cin + ci] =
              w[(((KH - 1 - kh) * KW + (KW - 1 - kw)) * cin + ci) * cout + co];
}

/* ---------------------------------------------------------------- weight packing */

/** panels[nb][k][j] = w[k][8nb + j] · scale[8nb + j] (0 past n); w is [K][n]. */
EXPORT(pack_panels)
void pack_panels(const float *w, int K, int n, const float *scale, float *out) {
  int nb = (n + 7) / 8;
  for (int b = 0; b < nb; b++)
    for (int k = 0; k < K; k++)
      for (int j = 0; j < 8; j++) {
        int c = b * 8 + j;
        out[(b * K + k) * 8 + j] = c < n ? w[k * n + c] * (scale ? scale[c] : 1.0f) : 0;
      }
}

/** Panels of Wᵀ: out[kb][co][j] = w[8kb + j][co] (0 past K); w is [K][cout]. */
EXPORT(pack_transposed)
void pack_transposed(const float *w, int K, int cout, float *out) {
  int kb = (K + 7) / 8;
  for (int b = 0; b < kb; b++)
    for (int co = 0; co < cout; co++)
      for (int j = 0; j < 8; j++) {
        int k = b * 8 + j;
        out[(b * cout + co) * 8 + j] = k < K ? w[k * cout + co] : 0;
      }
}

/**
 * Panels of the flipped, transposed kernel, so that conv_forward computes the input gradient of
 * a stride-1 convolution: out[cb][(kh', kw', co)][j] = w[KH−1−kh'][KW−1−kw'][8cb + j][co].
 */
EXPORT(pack_flipped)
void pack_flipped(const float *w, int KH, int KW, int cin, int cout, float *out) {
  int cb = (cin + 7) / 8, K = KH * KW * cout;
  for (int b = 0; b < cb; b++)
    for (int kh = 0; kh < KH; kh++)
      for (int kw = 0; kw < KW; kw++)
        for (int co = 0; co < cout; co++)
          for (int j = 0; j < 8; j++) {
            int ci = b * 8 + j;
            int k = (kh * KW + kw) * cout + co;
            int src = (((KH - 1 - kh) * KW + (KW - 1 - kw)) * cin + ci) * cout + co;
            out[(b * K + k) * 8 + j] = ci < cin ? w[src] : 0;
          }
}

/* ---------------------------------------------------------------- BatchNorm */

typedef struct {
  const float *z; /* [M][ld] */
  int M, ld;
  double *part; /* per thread [2][ld] */
  float *mean, *var, *invstd;
  const float *g; /* gradient [M][ld] (backward) */
  const float *mask;
  const float *gamma, *beta;
  const float *res;
  int relu;
  float *out;
  float eps;
} bn_t;

static bn_t g_bn;
#define BN_ROWS 64

static void bn_sum_task(int tid) {
  (void)tid;
  const bn_t *a = &g_bn;
  int n = (a->M + BN_ROWS - 1) / BN_ROWS;
  for (int grp; (grp = claim()) < GROUPS;) {
    double *p = a->part + grp * 2 * a->ld;
    for (int c = 0; c < a->ld; c++) p[c] = 0;
    for (int ch = grp * n / GROUPS; ch < (grp + 1) * n / GROUPS; ch++)
    for (int c = 0; c < a->ld; c += 4) {
      v4 s = wasm_f32x4_splat(0);
      for (int m = ch * BN_ROWS; m < imin(a->M, ch * BN_ROWS + BN_ROWS); m++)
        s = wasm_f32x4_add(s, wasm_v128_load(a->z + m * a->ld + c));
      for (int j = 0; j < 4; j++) p[c + j] += ((float *)&s)[j];
    }
  }
}

static void bn_var_task(int tid) {
  (void)tid;
  const bn_t *a = &g_bn;
  int n = (a->M + BN_ROWS - 1) / BN_ROWS;
  for (int grp; (grp = claim()) < GROUPS;) {
    double *p = a->part + grp * 2 * a->ld;
    for (int c = 0; c < a->ld; c++) p[c] = 0;
    for (int ch = grp * n / GROUPS; ch < (grp + 1) * n / GROUPS; ch++)
    for (int c = 0; c < a->ld; c += 4) {
      v4 s = wasm_f32x4_splat(0), mu = wasm_v128_load(a->mean + c);
      for (int m = ch * BN_ROWS; m < imin(a->M, ch * BN_ROWS + BN_ROWS); m++) {
        v4 d = wasm_f32x4_sub(wasm_v128_load(a->z + m * a->ld + c), mu);
        s = wasm_f32x4_add(s, wasm_f32x4_mul(d, d));
      }
      for (int j = 0; j < 4; j++) p[c + j] += ((float *)&s)[j];
    }
  }
}

static void bn_reduce(double *out) {
  const bn_t *a = &g_bn;
  for (int c = 0; c < a->ld; c++) {
    double s = 0;
    for (int t = 0; t < GROUPS; t++) s += a->part[t * 2 * a->ld + c];
    out[c] = s;
  }
}

/* y = act(z·scale + shift (+ res)), with scale/shift in mean/invstd slots of the args */
static void bn_apply_task(int tid) {
  (void)tid;
  const bn_t *a = &g_bn;
  const v4 zero = wasm_f32x4_splat(0);
  int n = (a->M + BN_ROWS - 1) / BN_ROWS;
  for (int ch; (ch = claim()) < n;)
    for (int m = ch * BN_ROWS; m < imin(a->M, ch * BN_ROWS + BN_ROWS); m++)
      for (int c = 0; c < a->ld; c += 4) {
        v4 v = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(a->z + m * a->ld + c),
                                             wasm_v128_load(a->mean + c)),
                              wasm_v128_load(a->invstd + c));
        if (a->res) v = wasm_f32x4_add(v, wasm_v128_load(a->res + m * a->ld + c));
        if (a->relu) v = wasm_f32x4_pmax(v, zero);
        wasm_v128_store(a->out + m * a->ld + c, v);
      }
}

/**
 * Training-mode BatchNorm over the M = B·H·W rows of z: batch mean and biased variance per
 * channel (written to mean/var, 1/√(var+eps) to invstd), then
 * out = act(γ·(z − mean)·invstd + β (+ res)). `scratch` holds 2·ld floats for the affine form,
 * `part` 2·ld doubles per group (GROUPS = 8).
 */
EXPORT(bn_train_forward)
void bn_train_forward(const float *z, int M, int ld, const float *gamma, const float *beta,
                      float *mean, float *var, float *invstd, const float *res, int relu,
                      float *out, double *part, float *scratch, float eps) {
  bn_t a = {0};
  a.z = z, a.M = M, a.ld = ld, a.part = part, a.mean = mean, a.eps = eps;
  g_bn = a;
  static double tot[1 << 14];
  run_task(bn_sum_task);
  bn_reduce(tot);
  for (int c = 0; c < ld; c++) mean[c] = (float)(tot[c] / M);
  run_task(bn_var_task);
  bn_reduce(tot);
  for (int c = 0; c < ld; c++) {
    var[c] = (float)(tot[c] / M);
    invstd[c] = 1.0f / __builtin_sqrtf(var[c] + eps);
    scratch[c] = gamma[c] * invstd[c];
    scratch[ld + c] = beta[c] - mean[c] * scratch[c];
  }
  a.mean = scratch, a.invstd = scratch + ld, a.res = res, a.relu = relu, a.out = out;
  g_bn = a;
  run_task(bn_apply_task);
}

static void bn_bsum_task(int tid) {
  (void)tid;
  const bn_t *a = &g_bn;
  const v4 zero = wasm_f32x4_splat(0);
  int n = (a->M + BN_ROWS - 1) / BN_ROWS;
  for (int grp; (grp = claim()) < GROUPS;) {
    double *p = a->part + grp * 2 * a->ld;
    for (int c = 0; c < 2 * a->ld; c++) p[c] = 0;
    for (int ch = grp * n / GROUPS; ch < (grp + 1) * n / GROUPS; ch++)
    for (int c = 0; c < a->ld; c += 4) {
      v4 sg = zero, sgx = zero, mu = wasm_v128_load(a->mean + c), is = wasm_v128_load(a->invstd + c);
      for (int m = ch * BN_ROWS; m < imin(a->M, ch * BN_ROWS + BN_ROWS); m++) {
        v4 g = wasm_v128_load(a->g + m * a->ld + c);
        if (a->mask) g = wasm_v128_and(g, wasm_f32x4_gt(wasm_v128_load(a->mask + m * a->ld + c), zero));
        v4 xh = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(a->z + m * a->ld + c), mu), is);
        sg = wasm_f32x4_add(sg, g);
        sgx = wasm_f32x4_add(sgx, wasm_f32x4_mul(g, xh));
      }
      for (int j = 0; j < 4; j++) p[c + j] += ((float *)&sg)[j], p[a->ld + c + j] += ((float *)&sgx)[j];
    }
  }
}

/* dz = k1·g − k2 − k3·z with per-channel constants in scratch [3][ld] */
static float *g_bn_k;
static void bn_bapply_task(int tid) {
  (void)tid;
  const bn_t *a = &g_bn;
  const float *k = g_bn_k;
  const v4 zero = wasm_f32x4_splat(0);
  int n = (a->M + BN_ROWS - 1) / BN_ROWS;
  for (int ch; (ch = claim()) < n;)
    for (int m = ch * BN_ROWS; m < imin(a->M, ch * BN_ROWS + BN_ROWS); m++)
      for (int c = 0; c < a->ld; c += 4) {
        v4 g = wasm_v128_load(a->g + m * a->ld + c);
        if (a->mask) g = wasm_v128_and(g, wasm_f32x4_gt(wasm_v128_load(a->mask + m * a->ld + c), zero));
        v4 z = wasm_v128_load(a->z + m * a->ld + c);
        v4 v = wasm_f32x4_sub(wasm_f32x4_mul(wasm_v128_load(k + c), g),
                              wasm_f32x4_add(wasm_v128_load(k + a->ld + c),
                                             wasm_f32x4_mul(wasm_v128_load(k + 2 * a->ld + c), z)));
        wasm_v128_store(a->out + m * a->ld + c, v);
      }
}

/**
 * Training-mode BatchNorm backward. g = dy (· [mask > 0] when mask is given: a fused ReLU);
 * x̂ = (z − mean)·invstd; dγ = Σ g·x̂, dβ = Σ g (written for the first C channels);
 * dz = γ·invstd·(g − Σg/M − x̂·Σ(g·x̂)/M), written to `out` (may equal g).
 */
EXPORT(bn_train_backward)
void bn_train_backward(const float *g, const float *mask, const float *z, int M, int ld, int C,
                       const float *mean, const float *invstd, const float *gamma, float *out,
                       float *dgamma, float *dbeta, double *part, float *scratch) {
  bn_t a = {0};
  a.z = z, a.M = M, a.ld = ld, a.part = part, a.mean = (float *)mean, a.invstd = (float *)invstd;
  a.g = g, a.mask = mask, a.out = out;
  g_bn = a;
  run_task(bn_bsum_task);
  for (int c = 0; c < ld; c++) {
    double sg = 0, sgx = 0;
    for (int t = 0; t < GROUPS; t++)
      sg += a.part[t * 2 * ld + c], sgx += a.part[t * 2 * ld + ld + c];
    if (c < C) dgamma[c] = (float)sgx, dbeta[c] = (float)sg;
    float k1 = gamma[c] * invstd[c];
    float msg = (float)(sg / M), msgx = (float)(sgx / M);
    /* dz = k1·(g − msg − (z − mean)·invstd·msgx) = k1·g − k1·(msg − mean·invstd·msgx) − k1·invstd·msgx·z */
    scratch[c] = k1;
    scratch[ld + c] = k1 * (msg - mean[c] * invstd[c] * msgx);
    scratch[2 * ld + c] = k1 * invstd[c] * msgx;
  }
  g_bn_k = scratch;
  run_task(bn_bapply_task);
}

/** Evaluation-mode affine map y = act(z·scale + shift (+ res)), scale/shift per channel [ld]. */
EXPORT(affine_forward)
void affine_forward(const float *z, int M, int ld, const float *scale, const float *shift,
                    const float *res, int relu, float *out) {
  bn_t a = {0};
  a.z = z, a.M = M, a.ld = ld, a.mean = (float *)scale, a.invstd = (float *)shift, a.res = res;
  a.relu = relu, a.out = out;
  g_bn = a;
  run_task(bn_apply_task);
}

/* ---------------------------------------------------------------- elementwise */

typedef struct {
  float *a;
  const float *b;
  int n;
} ew_t;
static ew_t g_ew;
#define EW_CHUNK 4096

static void relu_mask_task(int tid) {
  (void)tid;
  const v4 zero = wasm_f32x4_splat(0);
  int n = (g_ew.n + EW_CHUNK - 1) / EW_CHUNK;
  for (int ch; (ch = claim()) < n;)
    for (int i = ch * EW_CHUNK; i < imin(g_ew.n, ch * EW_CHUNK + EW_CHUNK); i += 4) {
      v4 g = wasm_v128_load(g_ew.a + i);
      wasm_v128_store(g_ew.a + i, wasm_v128_and(g, wasm_f32x4_gt(wasm_v128_load(g_ew.b + i), zero)));
    }
}

/** g ← g · [y > 0] (the ReLU's backward, in place); n a multiple of 4. */
EXPORT(relu_backward) void relu_backward(float *g, const float *y, int n) {
  ew_t a = {g, y, n};
  g_ew = a;
  run_task(relu_mask_task);
}

/* ---------------------------------------------------------------- head: GAP, FC, softmax CE */

/**
 * Head forward: pooled[b][d] = mean over P pixels of h[b][p][d] (h rows of stride ld);
 * logits[b] = pooled[b]·W + bias (W [D][C]).
 */
EXPORT(head_forward)
void head_forward(const float *h, int B, int P, int ld, int D, const float *W, const float *bias,
                  int C, float *pooled, float *logits) {
  for (int b = 0; b < B; b++) {
    for (int d = 0; d < D; d++) pooled[b * D + d] = 0;
    for (int p = 0; p < P; p++) {
      const float *r = h + (b * P + p) * ld;
      for (int d = 0; d < D; d++) pooled[b * D + d] += r[d];
    }
    for (int d = 0; d < D; d++) pooled[b * D + d] /= (float)P;
    for (int c = 0; c < C; c++) {
      float s = 0;
      for (int d = 0; d < D; d++) s += pooled[b * D + d] * W[d * C + c];
      logits[b * C + c] = s + bias[c];
    }
  }
}

/**
 * Per-example cross-entropy ce[b] = logsumexp(logits[b]) − logits[b][label[b]] (nats) and the
 * masked count of correct top-1 predictions (first maximum wins, as tf.argMax). When dlogits is
 * given, also writes dL/dlogits of L = Σ mask·ce / Σ mask. Returns L.
 */
EXPORT(softmax_ce)
float softmax_ce(const float *logits, const int *labels, const float *mask, int B, int C, float *ce,
                 float *dlogits, int *correct) {
  double msum = 0, lsum = 0;
  int hits = 0;
  for (int b = 0; b < B; b++) msum += mask[b];
  for (int b = 0; b < B; b++) {
    const float *l = logits + b * C;
    int arg = 0;
    for (int c = 1; c < C; c++)
      if (l[c] > l[arg]) arg = c;
    double mx = l[arg], s = 0;
    for (int c = 0; c < C; c++) s += exp_d(l[c] - mx);
    double lse = mx + log_d(s);
    ce[b] = (float)(lse - l[labels[b]]);
    if (arg == labels[b] && mask[b] > 0) hits++;
    lsum += mask[b] * ce[b];
    if (dlogits)
      for (int c = 0; c < C; c++)
        dlogits[b * C + c] =
            (float)((exp_d(l[c] - lse) - (c == labels[b] ? 1 : 0)) * mask[b] / msum);
  }
  *correct = hits;
  return (float)(lsum / msum);
}

/**
 * Head backward: dW = pooledᵀ·dlogits, db = Σ_b dlogits, and the gradient reaching h:
 * dh[b][p][d] = (dlogits[b]·Wᵀ)[d] / P for every pixel p (channels ≥ D stay 0).
 */
EXPORT(head_backward)
void head_backward(const float *pooled, const float *dlogits, int B, int P, int ld, int D,
                   const float *W, int C, float *dW, float *db, float *dh) {
  for (int d = 0; d < D; d++)
    for (int c = 0; c < C; c++) {
      float s = 0;
      for (int b = 0; b < B; b++) s += pooled[b * D + d] * dlogits[b * C + c];
      dW[d * C + c] = s;
    }
  for (int c = 0; c < C; c++) {
    float s = 0;
    for (int b = 0; b < B; b++) s += dlogits[b * C + c];
    db[c] = s;
  }
  for (int b = 0; b < B; b++) {
    float *r = dh + b * P * ld;
    for (int d = 0; d < ld; d++) {
      float s = 0;
      if (d < D)
        for (int c = 0; c < C; c++) s += dlogits[b * C + c] * W[d * C + c];
      r[d] = s / (float)P;
    }
    for (int p = 1; p < P; p++)
      for (int d = 0; d < ld; d++) r[p * ld + d] = r[d];
  }
}

/* ---------------------------------------------------------------- AdamW */

typedef struct {
  float *p, *m, *v;
  const float *g;
  int n;
  float lr, wd, bc1, bc2;
} adam_t;
static adam_t g_adam;

static void adam_task(int tid) {
  (void)tid;
  const adam_t *a = &g_adam;
  const float b1 = 0.9f, b2 = 0.999f, ob1 = (float)(1 - 0.9), ob2 = (float)(1 - 0.999), eps = 1e-8f;
  int n = (a->n + EW_CHUNK - 1) / EW_CHUNK;
  for (int ch; (ch = claim()) < n;)
    for (int i = ch * EW_CHUNK; i < imin(a->n, ch * EW_CHUNK + EW_CHUNK); i++) {
      float g = a->g[i];
      float m = a->m[i] * b1 + g * ob1;
      float v = a->v[i] * b2 + (g * g) * ob2;
      a->m[i] = m, a->v[i] = v;
      float u = (m / a->bc1) / (__builtin_sqrtf(v / a->bc2) + eps);
      a->p[i] = a->p[i] - (u + a->p[i] * a->wd) * a->lr;
    }
}

/**
 * AdamW over n parameters: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * p ← p − lr·(m/bc1 / (√(v/bc2) + ε) + wd·p), with β = 0.9/0.999, ε = 1e-8, bc = 1 − βᵗ.
 */
EXPORT(adamw)
void adamw(float *p, float *m, float *v, const float *g, int n, float lr, float wd, float bc1,
           float bc2) {
  adam_t a = {p, m, v, g, n, lr, wd, bc1, bc2};
  g_adam = a;
  run_task(adam_task);
}

/**
 * Running statistics: rm ← (1−0.1)·rm + 0.1·mean; rv ← (1−0.1)·rv + 0.1·var·n/(n−1).
 */
EXPORT(bn_running_update)
void bn_running_update(float *rm, float *rv, const float *mean, const float *var, int C, float unbias) {
  for (int c = 0; c < C; c++) {
    rm[c] = rm[c] * (float)(1 - 0.1) + mean[c] * 0.1f;
    rv[c] = rv[c] * (float)(1 - 0.1) + var[c] * (float)(0.1 * unbias);
  }
}

/**
 * Folds evaluation-mode BatchNorm into a convolution: scale = γ/√(rv + eps) per output channel,
 * panels of W·scale into `out`, shift = β − rm·scale into `bias` (zero past C, ld entries).
 */
EXPORT(fold_bn)
void fold_bn(const float *w, int K, int C, const float *gamma, const float *beta, const float *rm,
             const float *rv, float eps, float *scale, float *out, float *bias, int ld) {
  for (int c = 0; c < ld; c++) {
    if (c < C) {
      scale[c] = (float)(gamma[c] / __builtin_sqrt((double)rv[c] + eps));
      bias[c] = beta[c] - rm[c] * scale[c];
    } else
      scale[c] = 0, bias[c] = 0;
  }
  pack_panels(w, K, C, scale, out);
}
