import type * as tfType from '@tensorflow/tfjs';

type Tf = typeof tfType;
type KernelConfig = ReturnType<Tf['getKernel']>;
type Conv2DInfo = tfType.backend_util.Conv2DInfo;

/**
 * Direct NHWC convolution kernels for tfjs's CPU backend.
 *
 * Why our own: tfjs's stock CPU `Conv2DBackpropFilter` takes ~93% of a training step (SPEC §9),
 * which makes training in Node (tests, CLI) impractical. These kernels gather one output row's
 * patches at a time (im2col, a few kB) and multiply with 2 × 4 blocks of accumulators held in
 * registers, so the innermost loops only load — no stores, no bounds checks, no index arrays.
 *
 * Shapes: x [N, H, W, Cin], filter [KH, KW, Cin, Cout], dy / y [N, OH, OW, Cout]; dilation 1.
 */
const KERNELS = ['Conv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput'] as const;

const stock = new Map<string, KernelConfig>();
const ours = new WeakSet<object>();

/** Registers the fast kernels on the 'cpu' backend (idempotent). */
export function registerFastCpuConv(tf: Tf): void {
  for (const name of KERNELS) {
    const current = tf.getKernel(name, 'cpu');
    if (current && ours.has(current.kernelFunc)) continue;
    if (current && !stock.has(name)) stock.set(name, current);
    if (current) tf.unregisterKernel(name, 'cpu');
    const kernelFunc = makeKernel(tf, name);
    ours.add(kernelFunc);
    tf.registerKernel({ kernelName: name, backendName: 'cpu', kernelFunc });
  }
}

/** Puts tfjs's stock kernels back (for the benchmark's stock-vs-ours comparison). */
export function restoreStockCpuConv(tf: Tf): void {
  for (const name of KERNELS) {
    const s = stock.get(name);
    if (!s) continue;
    if (tf.getKernel(name, 'cpu')) tf.unregisterKernel(name, 'cpu');
    tf.registerKernel(s);
  }
}

interface KernelArgs {
  inputs: tfType.NamedTensorInfoMap;
  backend: unknown;
  attrs?: unknown;
}

interface CpuLikeBackend {
  readSync(dataId: object): unknown;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tfType.TensorInfo;
}

function makeKernel(tf: Tf, name: (typeof KERNELS)[number]) {
  return ({ inputs, backend: b, attrs }: KernelArgs): tfType.TensorInfo => {
    const backend = b as CpuLikeBackend;
    const a = attrs as {
      strides: number | [number, number];
      pad: 'same' | 'valid' | number;
      dataFormat?: 'NHWC' | 'NCHW';
      dimRoundingMode?: 'floor' | 'round' | 'ceil';
      dilations?: number | [number, number];
      filterShape?: [number, number, number, number];
      inputShape?: [number, number, number, number];
    };
    if (a.dataFormat && a.dataFormat !== 'NHWC')
      throw new Error(`fast CPU conv: only NHWC is supported, got ${a.dataFormat}`);
    const dil = a.dilations ?? 1;
    if (dil !== 1 && !(Array.isArray(dil) && dil[0] === 1 && dil[1] === 1))
      throw new Error('fast CPU conv: dilation must be 1');
    const input = (key: string): tfType.TensorInfo => {
      const t = inputs[key];
      if (!t) throw new Error(`fast CPU ${name}: missing input ${key}`);
      return t;
    };
    const read = (t: tfType.TensorInfo) => backend.readSync(t.dataId) as Float32Array;
    if (name === 'Conv2D') {
      const x = input('x');
      const filter = input('filter');
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as never,
        filter.shape as never,
        a.strides,
        1,
        a.pad,
        a.dimRoundingMode,
        false,
        'channelsLast',
      );
      const out = conv2dForward(read(x), read(filter), info);
      return backend.makeTensorInfo(info.outShape, 'float32', out);
    }
    if (name === 'Conv2DBackpropFilter') {
      const x = input('x');
      const dy = input('dy');
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as never,
        a.filterShape!,
        a.strides,
        1,
        a.pad,
        a.dimRoundingMode,
        false,
        'channelsLast',
      );
      const out = conv2dFilterGrad(read(x), read(dy), info);
      return backend.makeTensorInfo(a.filterShape!, 'float32', out);
    }
    const dy = input('dy');
    const filter = input('filter');
    const info = tf.backend_util.computeConv2DInfo(
      a.inputShape!,
      filter.shape as never,
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
      false,
      'channelsLast',
    );
    const out = conv2dInputGrad(read(dy), read(filter), info);
    return backend.makeTensorInfo(a.inputShape!, 'float32', out);
  };
}

/**
 * The patches of one output row, im2col style: P[ox·K + k], k = (ky·KW + kx)·CI + ci, holds
 * x[n, oy·SH − PT + ky, ox·SW − PL + kx, ci] (0 outside the image). K = KH·KW·CI. The three
 * kernels below are small GEMMs over these rows with 2 × 4 register blocks, which keeps the
 * innermost loop free of stores and bounds checks.
 */
function rowPatches(x: Float32Array, c: Conv2DInfo, n: number, oy: number, P: Float32Array): void {
  const { inHeight: H, inWidth: W, inChannels: CI, outWidth: OW } = c;
  const { filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW } = c;
  const PT = c.padInfo.top;
  const PL = c.padInfo.left;
  const K = KH * KW * CI;
  for (let ox = 0; ox < OW; ox++) {
    const base = ox * K;
    for (let ky = 0; ky < KH; ky++) {
      const iy = oy * SH - PT + ky;
      for (let kx = 0; kx < KW; kx++) {
        const ix = ox * SW - PL + kx;
        const o = base + (ky * KW + kx) * CI;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
          P.fill(0, o, o + CI);
        } else {
          const xo = ((n * H + iy) * W + ix) * CI;
          for (let ci = 0; ci < CI; ci++) P[o + ci] = x[xo + ci];
        }
      }
    }
  }
}

/** y[n,oy,ox,co] = Σ_{ky,kx,ci} x[n, oy·s−pt+ky, ox·s−pl+kx, ci] · w[ky,kx,ci,co]. */
export function conv2dForward(x: Float32Array, w: Float32Array, c: Conv2DInfo): Float32Array {
  const { batchSize: N, outHeight: OH, outWidth: OW, outChannels: CO } = c;
  const K = c.filterHeight * c.filterWidth * c.inChannels;
  const y = new Float32Array(N * OH * OW * CO);
  const P = new Float32Array(OW * K);
  const co4 = CO - (CO % 4);
  for (let n = 0; n < N; n++)
    for (let oy = 0; oy < OH; oy++) {
      rowPatches(x, c, n, oy, P);
      const yr = (n * OH + oy) * OW * CO;
      let ox = 0;
      for (; ox + 1 < OW; ox += 2) {
        const p0 = ox * K;
        const p1 = p0 + K;
        const y0 = yr + ox * CO;
        const y1 = y0 + CO;
        for (let co = 0; co < co4; co += 4) {
          let a0 = 0,
            a1 = 0,
            a2 = 0,
            a3 = 0,
            b0 = 0,
            b1 = 0,
            b2 = 0,
            b3 = 0;
          for (let k = 0, wk = co; k < K; k++, wk += CO) {
            const u = P[p0 + k];
            const v = P[p1 + k];
            const w0 = w[wk],
              w1 = w[wk + 1],
              w2 = w[wk + 2],
              w3 = w[wk + 3];
            a0 += u * w0;
            a1 += u * w1;
            a2 += u * w2;
            a3 += u * w3;
            b0 += v * w0;
            b1 += v * w1;
            b2 += v * w2;
            b3 += v * w3;
          }
          y[y0 + co] = a0;
          y[y0 + co + 1] = a1;
          y[y0 + co + 2] = a2;
          y[y0 + co + 3] = a3;
          y[y1 + co] = b0;
          y[y1 + co + 1] = b1;
          y[y1 + co + 2] = b2;
          y[y1 + co + 3] = b3;
        }
        for (let co = co4; co < CO; co++) {
          let a = 0,
            b = 0;
          for (let k = 0, wk = co; k < K; k++, wk += CO) {
            a += P[p0 + k] * w[wk];
            b += P[p1 + k] * w[wk];
          }
          y[y0 + co] = a;
          y[y1 + co] = b;
        }
      }
      for (; ox < OW; ox++) {
        const p0 = ox * K;
        for (let co = 0; co < CO; co++) {
          let a = 0;
          for (let k = 0, wk = co; k < K; k++, wk += CO) a += P[p0 + k] * w[wk];
          y[yr + ox * CO + co] = a;
        }
      }
    }
  return y;
}

/** dw[ky,kx,ci,co] = Σ_{n,oy,ox} x[n, oy·s−pt+ky, ox·s−pl+kx, ci] · dy[n,oy,ox,co]. */
export function conv2dFilterGrad(x: Float32Array, dy: Float32Array, c: Conv2DInfo): Float32Array {
  const { batchSize: N, outHeight: OH, outWidth: OW, outChannels: CO } = c;
  const K = c.filterHeight * c.filterWidth * c.inChannels;
  const dw = new Float32Array(K * CO);
  const P = new Float32Array(OW * K);
  const co4 = CO - (CO % 4);
  const k2 = K - (K % 2);
  for (let n = 0; n < N; n++)
    for (let oy = 0; oy < OH; oy++) {
      rowPatches(x, c, n, oy, P);
      const gr = (n * OH + oy) * OW * CO;
      for (let k = 0; k < k2; k += 2) {
        for (let co = 0; co < co4; co += 4) {
          let a0 = 0,
            a1 = 0,
            a2 = 0,
            a3 = 0,
            b0 = 0,
            b1 = 0,
            b2 = 0,
            b3 = 0;
          for (let ox = 0, pk = k, g = gr + co; ox < OW; ox++, pk += K, g += CO) {
            const u = P[pk];
            const v = P[pk + 1];
            const d0 = dy[g],
              d1 = dy[g + 1],
              d2 = dy[g + 2],
              d3 = dy[g + 3];
            a0 += u * d0;
            a1 += u * d1;
            a2 += u * d2;
            a3 += u * d3;
            b0 += v * d0;
            b1 += v * d1;
            b2 += v * d2;
            b3 += v * d3;
          }
          const o = k * CO + co;
          dw[o] += a0;
          dw[o + 1] += a1;
          dw[o + 2] += a2;
          dw[o + 3] += a3;
          dw[o + CO] += b0;
          dw[o + CO + 1] += b1;
          dw[o + CO + 2] += b2;
          dw[o + CO + 3] += b3;
        }
        for (let co = co4; co < CO; co++) {
          let a = 0,
            b = 0;
          for (let ox = 0; ox < OW; ox++) {
            const d = dy[gr + ox * CO + co];
            a += P[ox * K + k] * d;
            b += P[ox * K + k + 1] * d;
          }
          dw[k * CO + co] += a;
          dw[(k + 1) * CO + co] += b;
        }
      }
      for (let k = k2; k < K; k++)
        for (let co = 0; co < CO; co++) {
          let a = 0;
          for (let ox = 0; ox < OW; ox++) a += P[ox * K + k] * dy[gr + ox * CO + co];
          dw[k * CO + co] += a;
        }
    }
  return dw;
}

/** dx[n,iy,ix,ci] = Σ over (oy,ox,ky,kx) that read it of dy[n,oy,ox,co] · w[ky,kx,ci,co]. */
export function conv2dInputGrad(dy: Float32Array, w: Float32Array, c: Conv2DInfo): Float32Array {
  const {
    batchSize: N,
    inHeight: H,
    inWidth: W,
    inChannels: CI,
    outHeight: OH,
    outWidth: OW,
    outChannels: CO,
  } = c;
  const { filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW } = c;
  const PT = c.padInfo.top;
  const PL = c.padInfo.left;
  const K = KH * KW * CI;
  const dx = new Float32Array(N * H * W * CI);
  const dP = new Float32Array(OW * K);
  const k4 = K - (K % 4);
  for (let n = 0; n < N; n++)
    for (let oy = 0; oy < OH; oy++) {
      const gr = (n * OH + oy) * OW * CO;
      // dP[ox][k] = Σ_co dy[ox][co] · w[k][co]: 1 output pixel × 4 patch entries per block
      for (let ox = 0; ox < OW; ox++) {
        const g = gr + ox * CO;
        const o = ox * K;
        let k = 0;
        for (; k < k4; k += 4) {
          let a0 = 0,
            a1 = 0,
            a2 = 0,
            a3 = 0;
          const w0 = k * CO,
            w1 = w0 + CO,
            w2 = w1 + CO,
            w3 = w2 + CO;
          for (let co = 0; co < CO; co++) {
            const d = dy[g + co];
            a0 += d * w[w0 + co];
            a1 += d * w[w1 + co];
            a2 += d * w[w2 + co];
            a3 += d * w[w3 + co];
          }
          dP[o + k] = a0;
          dP[o + k + 1] = a1;
          dP[o + k + 2] = a2;
          dP[o + k + 3] = a3;
        }
        for (; k < K; k++) {
          let a = 0;
          for (let co = 0; co < CO; co++) a += dy[g + co] * w[k * CO + co];
          dP[o + k] = a;
        }
      }
      // col2im: scatter the patch gradients back onto the input
      for (let ox = 0; ox < OW; ox++)
        for (let ky = 0; ky < KH; ky++) {
          const iy = oy * SH - PT + ky;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < KW; kx++) {
            const ix = ox * SW - PL + kx;
            if (ix < 0 || ix >= W) continue;
            const xo = ((n * H + iy) * W + ix) * CI;
            const po = ox * K + (ky * KW + kx) * CI;
            for (let ci = 0; ci < CI; ci++) dx[xo + ci] += dP[po + ci];
          }
        }
    }
  return dx;
}
