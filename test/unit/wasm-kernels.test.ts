import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { engineModule } from '../../src/ml/wasm-engine.ts';
import { registerFastCpuKernels, restoreStockCpuKernels } from '../../src/ml/fast-cpu.ts';
import { Rng } from '../../src/core/rng.ts';
import { cpuTf } from './tf-setup.ts';

/**
 * Oracle tests of the C kernels (src/ml/wasm/engine.c) against tfjs's STOCK CPU kernels (our
 * fast JS kernels are switched off here), on one thread: convolution forward, input gradient
 * (both paths: flipped-kernel GEMM for stride 1, col2im for strides > 1) and filter gradient on
 * random shapes; training-mode BatchNorm forward and backward; the head (GAP, FC, softmax CE).
 */

type Fn = (...a: number[]) => number;
let k: Record<string, Fn>;
let f32: Float32Array;
let i32: Int32Array;
let top = 0;
let base = 0;

function alloc(n: number): number {
  const p = top;
  top += Math.ceil((n * 4) / 64) * 64;
  if (top > f32.length * 4) throw new Error('test memory exhausted');
  return p;
}
function put(a: Float32Array, ld = 0, c = 0): number {
  // rows of c values stored with stride ld (zero padding), or a flat copy
  if (!ld) {
    const p = alloc(a.length);
    f32.set(a, p >> 2);
    return p;
  }
  const rows = a.length / c;
  const p = alloc(rows * ld);
  f32.fill(0, p >> 2, (p >> 2) + rows * ld);
  for (let r = 0; r < rows; r++) f32.set(a.subarray(r * c, r * c + c), (p >> 2) + r * ld);
  return p;
}
function get(p: number, rows: number, c: number, ld = c): Float32Array {
  const out = new Float32Array(rows * c);
  for (let r = 0; r < rows; r++)
    out.set(f32.subarray((p >> 2) + r * ld, (p >> 2) + r * ld + c), r * c);
  return out;
}
const ceil8 = (n: number) => Math.ceil(n / 8) * 8;

function randn(n: number, rng: Rng, sparsity = 0): Float32Array {
  return Float32Array.from({ length: n }, () => (rng.float() < sparsity ? 0 : rng.normal()));
}

function expectClose(ours: Float32Array, want: Float32Array, tol = 1e-4) {
  expect(ours.length).toBe(want.length);
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < want.length; i++)
    worst = Math.max(worst, Math.abs(ours[i] - want[i]) / (1e-3 * scale + Math.abs(want[i])));
  expect(worst).toBeLessThan(tol * 10);
  // and in the max-norm relative to the tensor's scale
  let e = 0;
  for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(ours[i] - want[i]));
  expect(e / (scale || 1)).toBeLessThan(tol);
}

beforeAll(async () => {
  await cpuTf();
  restoreStockCpuKernels(tf);
  const memory = new WebAssembly.Memory({ initial: 1024, maximum: 1024, shared: true });
  const inst = new WebAssembly.Instance(engineModule(), { env: { memory } });
  k = inst.exports as unknown as Record<string, Fn>;
  f32 = new Float32Array(memory.buffer);
  i32 = new Int32Array(memory.buffer);
  base = Math.ceil((inst.exports.__heap_base as WebAssembly.Global).value / 64) * 64;
  k.set_threads(1);
});
afterAll(() => {
  registerFastCpuKernels(tf);
});

interface ConvCase {
  B: number;
  H: number;
  W: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  pad: 'same' | 'valid';
}

function geometry(c: ConvCase) {
  const OH = c.pad === 'same' ? Math.ceil(c.H / c.stride) : Math.ceil((c.H - c.k + 1) / c.stride);
  const OW = c.pad === 'same' ? Math.ceil(c.W / c.stride) : Math.ceil((c.W - c.k + 1) / c.stride);
  const padT = c.pad === 'same' ? Math.floor(Math.max((OH - 1) * c.stride + c.k - c.H, 0) / 2) : 0;
  const padL = c.pad === 'same' ? Math.floor(Math.max((OW - 1) * c.stride + c.k - c.W, 0) / 2) : 0;
  return { OH, OW, padT, padL };
}

describe('wasm convolution kernels match tfjs stock kernels', () => {
  const cases: ConvCase[] = [
    { B: 2, H: 8, W: 8, cin: 3, cout: 5, k: 3, stride: 1, pad: 'same' },
    { B: 3, H: 9, W: 7, cin: 4, cout: 16, k: 3, stride: 2, pad: 'same' },
    { B: 2, H: 10, W: 10, cin: 6, cout: 8, k: 1, stride: 2, pad: 'same' },
    { B: 2, H: 7, W: 9, cin: 13, cout: 11, k: 3, stride: 1, pad: 'valid' },
    { B: 1, H: 11, W: 11, cin: 9, cout: 20, k: 3, stride: 2, pad: 'valid' },
    { B: 2, H: 6, W: 6, cin: 16, cout: 16, k: 1, stride: 1, pad: 'same' },
    { B: 1, H: 16, W: 16, cin: 32, cout: 24, k: 3, stride: 1, pad: 'same' },
    { B: 4, H: 4, W: 4, cin: 6, cout: 6, k: 3, stride: 1, pad: 'same' },
    { B: 4, H: 4, W: 4, cin: 51, cout: 51, k: 3, stride: 1, pad: 'same' },
    { B: 4, H: 8, W: 8, cin: 13, cout: 13, k: 3, stride: 1, pad: 'same' },
  ];
  it.each(cases)('conv %o: forward, input gradient and filter gradient', (c) => {
    top = base;
    const rng = new Rng(c.H * 100 + c.cin * 7 + c.stride);
    const { OH, OW, padT, padL } = geometry(c);
    const K = c.k * c.k * c.cin;
    const xv = randn(c.B * c.H * c.W * c.cin, rng, 0.3);
    const wv = randn(K * c.cout, rng);
    const dyv = randn(c.B * OH * OW * c.cout, rng);
    const x = tf.tensor4d(xv, [c.B, c.H, c.W, c.cin]);
    const w = tf.tensor4d(wv, [c.k, c.k, c.cin, c.cout]);
    const dy = tf.tensor4d(dyv, [c.B, OH, OW, c.cout]);
    const y = tf.conv2d(x, w, c.stride, c.pad);
    const [dx, dw] = tf.grads((...t: tf.Tensor[]) =>
      tf.sum(tf.mul(tf.conv2d(t[0] as tf.Tensor4D, t[1] as tf.Tensor4D, c.stride, c.pad), dy)),
    )([x, w]);
    const ldx = ceil8(c.cin);
    const ld = ceil8(c.cout);
    const M = c.B * OH * OW;
    const xp = put(xv, ldx, c.cin);
    const wp = put(wv);
    const zero = alloc(Math.max(ldx, ld));
    f32.fill(0, zero >> 2, (zero >> 2) + Math.max(ldx, ld));
    // forward, with bias and ReLU off, then with the fused epilogue (bias, residual, ReLU)
    const packed = alloc(ld * K);
    k.pack_panels(wp, K, c.cout, 0, packed);
    const yp = alloc(M * ld);
    k.conv_forward(
      xp, ldx, c.cin, c.H, c.W, c.B, OH, OW, c.stride, padT, padL, c.k, c.k, packed, ld / 8,
      yp, ld, 0, 0, 0, 0, zero,
    ); // prettier-ignore
    const yWant = y.dataSync() as Float32Array;
    expectClose(get(yp, M, c.cout, ld), yWant);
    const bias = randn(ld, rng).map((v, i) => (i < c.cout ? v : 0));
    const res = randn(M * c.cout, rng);
    const bp = put(bias);
    const rp = put(res, ld, c.cout);
    const y2 = alloc(M * ld);
    k.conv_forward(
      xp, ldx, c.cin, c.H, c.W, c.B, OH, OW, c.stride, padT, padL, c.k, c.k, packed, ld / 8,
      y2, ld, bp, rp, ld, 1, zero,
    ); // prettier-ignore
    const fused = yWant.map((v, i) => Math.max(0, v + bias[i % c.cout] + res[i]));
    expectClose(get(y2, M, c.cout, ld), fused);
    // the padding channels stay zero
    const raw = get(y2, M, ld, ld);
    for (let m = 0; m < M; m++) for (let j = c.cout; j < ld; j++) expect(raw[m * ld + j]).toBe(0);

    // input gradient: the flipped-kernel GEMM (stride 1) and the col2im path (any stride)
    const dyp = put(dyv, ld, c.cout);
    const dxWant = dx.dataSync() as Float32Array;
    const N = c.B * c.H * c.W;
    const wt = alloc(ceil8(K) * c.cout);
    k.pack_transposed(wp, K, c.cout, wt);
    const col = alloc(OH * OW * ceil8(K));
    const dxc = alloc(N * ldx);
    k.conv_dgrad_col(
      dyp, ld, c.cout, wt, ceil8(K) / 8, dxc, ldx, c.cin, c.H, c.W, c.B, OH, OW, c.stride, padT,
      padL, c.k, c.k, 0, col, OH * OW * ceil8(K), zero,
    ); // prettier-ignore
    expectClose(get(dxc, N, c.cin, ldx), dxWant);
    if (c.stride === 1) {
      const flipped = alloc(ldx * c.k * c.k * c.cout);
      k.pack_flipped(wp, c.k, c.k, c.cin, c.cout, flipped);
      const dxf = alloc(N * ldx);
      const res2 = randn(N * c.cin, rng);
      const r2 = put(res2, ldx, c.cin);
      k.conv_forward(
        dyp, ld, c.cout, OH, OW, c.B, c.H, c.W, 1, c.k - 1 - padT, c.k - 1 - padL, c.k, c.k,
        flipped, ldx / 8, dxf, ldx, 0, r2, ldx, 0, zero,
      ); // prettier-ignore
      expectClose(
        get(dxf, N, c.cin, ldx),
        dxWant.map((v, i) => v + res2[i]),
      );
    }
    // Winograd F(2×2, 3×3) path of stride-1 3×3 convolutions: forward (with the fused epilogue)
    // and the input gradient through the flipped kernel
    if (c.k === 3 && c.stride === 1) {
      const u = alloc(16 * c.cin * ld);
      k.winograd_pack(wp, c.cin, c.cout, 0, u);
      const scr = alloc(16 * 24 * (ldx + ld));
      const yw = alloc(M * ld);
      k.conv3x3_winograd(
        xp, ldx, c.cin, c.H, c.W, c.B, OH, OW, padT, padL, u, ld / 8, yw, ld, bp, rp, ld, 1,
        scr, 16 * 24 * (ldx + ld),
      ); // prettier-ignore
      expectClose(get(yw, M, c.cout, ld), fused);
      // F(4×4, 3×3) (evaluation): more rounding, so a looser bound
      const u4 = alloc(36 * c.cin * ld);
      k.winograd4_pack(wp, c.cin, c.cout, 0, u4);
      const scr4 = alloc(36 * 12 * (ldx + ld));
      const y4 = alloc(M * ld);
      k.conv3x3_winograd4(
        xp, ldx, c.cin, c.H, c.W, c.B, OH, OW, padT, padL, u4, ld / 8, y4, ld, bp, rp, ld, 1,
        scr4, 36 * 12 * (ldx + ld),
      ); // prettier-ignore
      expectClose(get(y4, M, c.cout, ld), fused, 1e-3);
      const flippedW = alloc(K * c.cout);
      k.flip_kernel(wp, 3, 3, c.cin, c.cout, flippedW);
      const ub = alloc(16 * c.cout * ldx);
      k.winograd_pack(flippedW, c.cout, c.cin, 0, ub);
      const dxw = alloc(N * ldx);
      k.conv3x3_winograd(
        dyp, ld, c.cout, OH, OW, c.B, c.H, c.W, 2 - padT, 2 - padL, ub, ldx / 8, dxw, ldx, 0, 0,
        0, 0, scr, 16 * 24 * (ldx + ld),
      ); // prettier-ignore
      expectClose(get(dxw, N, c.cin, ldx), dxWant);
    }
    // filter gradient (8 partial sums)
    const part = alloc(8 * K * ld);
    const dwp = alloc(K * c.cout);
    k.conv_wgrad(
      xp, ldx, c.cin, c.H, c.W, c.B, OH, OW, c.stride, padT, padL, c.k, c.k, dyp, ld, ld / 8,
      part, K * ld, dwp, c.cout,
    ); // prettier-ignore
    expectClose(get(dwp, K, c.cout), dw.dataSync() as Float32Array);
    tf.dispose([x, w, dy, y, dx, dw]);
  });
});

describe('wasm BatchNorm and head kernels match tfjs', () => {
  it('training-mode BatchNorm forward (with residual and ReLU) and backward (with ReLU mask)', () => {
    top = base;
    const rng = new Rng(4);
    const M = 300;
    const C = 13;
    const ld = ceil8(C);
    const zv = Float32Array.from(randn(M * C, rng), (v, i) => v * (1 + (i % C)) + (i % 3));
    const gamma = randn(C, rng);
    const beta = randn(C, rng);
    const resv = randn(M * C, rng);
    const dyv = randn(M * C, rng);
    const z = tf.tensor2d(zv, [M, C]);
    const g = tf.tensor1d(gamma);
    const b = tf.tensor1d(beta);
    const res = tf.tensor2d(resv, [M, C]);
    const dy = tf.tensor2d(dyv, [M, C]);
    const f = (zz: tf.Tensor2D, gg: tf.Tensor1D, bb: tf.Tensor1D) => {
      const { mean, variance } = tf.moments(zz, [0]);
      return tf.relu(tf.add(tf.batchNorm(zz, mean, variance, bb, gg, 1e-5), res));
    };
    const out = f(z, g, b);
    const [dz, dg, db] = tf.grads((...t: tf.Tensor[]) =>
      tf.sum(tf.mul(f(t[0] as tf.Tensor2D, t[1] as tf.Tensor1D, t[2] as tf.Tensor1D), dy)),
    )([z, g, b]);
    const { mean, variance } = tf.moments(z, [0]);
    const zp = put(zv, ld, C);
    const gp = put(Float32Array.from({ length: ld }, (_, i) => (i < C ? gamma[i] : 0)));
    const bp = put(Float32Array.from({ length: ld }, (_, i) => (i < C ? beta[i] : 0)));
    const mp = alloc(ld);
    const vp = alloc(ld);
    const ip = alloc(ld);
    const rp = put(resv, ld, C);
    const op = alloc(M * ld);
    const part = alloc(8 * 2 * ld * 2);
    const scratch = alloc(3 * ld);
    k.bn_train_forward(zp, M, ld, gp, bp, mp, vp, ip, rp, 1, op, part, scratch, 1e-5);
    expectClose(get(mp, 1, C), mean.dataSync() as Float32Array);
    expectClose(get(vp, 1, C), variance.dataSync() as Float32Array);
    expectClose(get(op, M, C, ld), out.dataSync() as Float32Array);
    // backward: the ReLU at the output masks dy (mask = the output), then BN backward
    const dyp = put(dyv, ld, C);
    const dzp = alloc(M * ld);
    const dgp = alloc(C);
    const dbp = alloc(C);
    k.bn_train_backward(dyp, op, zp, M, ld, C, mp, ip, gp, dzp, dgp, dbp, part, scratch);
    expectClose(get(dzp, M, C, ld), dz.dataSync() as Float32Array);
    expectClose(get(dgp, 1, C), dg.dataSync() as Float32Array);
    expectClose(get(dbp, 1, C), db.dataSync() as Float32Array);
    tf.dispose([z, g, b, res, dy, out, dz, dg, db, mean, variance]);
  });

  it('GAP, FC and masked softmax cross-entropy: loss, per-example losses, gradients', () => {
    top = base;
    const rng = new Rng(5);
    const [B, P, D, C] = [6, 9, 11, 7];
    const ld = ceil8(D);
    const hv = randn(B * P * D, rng).map((v) => Math.max(0, v));
    const wv = randn(D * C, rng);
    const bv = randn(C, rng);
    const labels = Int32Array.from({ length: B }, () => rng.int(C));
    const mask = Float32Array.from({ length: B }, (_, i) => (i < B - 2 ? 1 : 0));
    const h = tf.tensor3d(hv, [B, P, D]);
    const W = tf.tensor2d(wv, [D, C]);
    const bias = tf.tensor1d(bv);
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), C);
    const m = tf.tensor1d(mask);
    const logitsOf = (hh: tf.Tensor3D, ww: tf.Tensor2D, bb: tf.Tensor1D) =>
      tf.add(tf.matMul(tf.mean(hh, 1) as tf.Tensor2D, ww), bb) as tf.Tensor2D;
    const lossOf = (hh: tf.Tensor3D, ww: tf.Tensor2D, bb: tf.Tensor1D) => {
      const ce = tf.losses.softmaxCrossEntropy(
        y,
        logitsOf(hh, ww, bb),
        undefined,
        undefined,
        tf.Reduction.NONE,
      );
      return tf.div(tf.sum(tf.mul(ce, m)), tf.sum(m)) as tf.Scalar;
    };
    const ceWant = tf.losses.softmaxCrossEntropy(
      y,
      logitsOf(h, W, bias),
      undefined,
      undefined,
      tf.Reduction.NONE,
    );
    const [dh, dW, db] = tf.grads((...t: tf.Tensor[]) =>
      lossOf(t[0] as tf.Tensor3D, t[1] as tf.Tensor2D, t[2] as tf.Tensor1D),
    )([h, W, bias]);
    const hp = put(hv, ld, D);
    const Wp = put(wv);
    const bpp = put(bv);
    const pooled = alloc(B * D);
    const logits = alloc(B * C);
    k.head_forward(hp, B, P, ld, D, Wp, bpp, C, pooled, logits);
    expectClose(get(logits, B, C), logitsOf(h, W, bias).dataSync() as Float32Array);
    const lp = alloc(B);
    i32.set(labels, lp >> 2);
    const mp = put(mask);
    const ce = alloc(B);
    const dl = alloc(B * C);
    const correct = alloc(1);
    const loss = k.softmax_ce(logits, lp, mp, B, C, ce, dl, correct);
    expect(loss).toBeCloseTo(lossOf(h, W, bias).dataSync()[0], 5);
    expectClose(get(ce, 1, B), ceWant.dataSync() as Float32Array);
    // the masked count of correct argmax predictions
    const lg = get(logits, B, C);
    let hits = 0;
    for (let i = 0; i < B; i++) {
      let arg = 0;
      for (let c = 1; c < C; c++) if (lg[i * C + c] > lg[i * C + arg]) arg = c;
      if (arg === labels[i] && mask[i] > 0) hits++;
    }
    expect(i32[correct >> 2]).toBe(hits);
    const dWp = alloc(D * C);
    const dbp = alloc(C);
    const dhp = alloc(B * P * ld);
    k.head_backward(pooled, dl, B, P, ld, D, Wp, C, dWp, dbp, dhp);
    expectClose(get(dWp, D, C), dW.dataSync() as Float32Array);
    expectClose(get(dbp, 1, C), db.dataSync() as Float32Array);
    expectClose(get(dhp, B * P, D, ld), dh.dataSync() as Float32Array);
    tf.dispose([h, W, bias, y, m, ceWant, dh, dW, db]);
  });

  it('exp and log are accurate to float64 rounding over a wide range', () => {
    for (let x = -700; x <= 700; x += 3.7)
      expect(Math.abs(k.exp_f64(x) / Math.exp(x) - 1)).toBeLessThan(4e-15);
    for (let x = 1e-300; x < 1e300; x *= 13.3)
      expect(Math.abs(k.log_f64(x) - Math.log(x))).toBeLessThan(
        1e-13 * Math.max(1, Math.abs(Math.log(x))),
      );
    expect(k.exp_f64(-800)).toBe(0);
    expect(k.log_f64(1)).toBe(0);
  });
});
