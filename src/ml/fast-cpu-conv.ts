import type * as tfType from '@tensorflow/tfjs';

type Tf = typeof tfType;
type KernelConfig = ReturnType<Tf['getKernel']>;
type Conv2DInfo = tfType.backend_util.Conv2DInfo;

/**
 * Direct NHWC convolution kernels for tfjs's CPU backend.
 *
 * Why our own: tfjs's stock CPU `Conv2DBackpropFilter` takes ~93% of a training step (SPEC §9),
 * which makes training in Node (tests, CLI) impractical. These loops keep the innermost loop
 * contiguous over output channels (NHWC × HWIO layouts make that free), accumulate in float32,
 * and skip zero activations — after ReLU about half of them — which the stock kernels do not.
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

/** y[n,oy,ox,co] = Σ_{ky,kx,ci} x[n, oy·s−pt+ky, ox·s−pl+kx, ci] · w[ky,kx,ci,co]. */
export function conv2dForward(x: Float32Array, w: Float32Array, c: Conv2DInfo): Float32Array {
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
  const y = new Float32Array(N * OH * OW * CO);
  for (let n = 0; n < N; n++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        const yo = ((n * OH + oy) * OW + ox) * CO;
        for (let ky = 0; ky < KH; ky++) {
          const iy = oy * SH - PT + ky;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < KW; kx++) {
            const ix = ox * SW - PL + kx;
            if (ix < 0 || ix >= W) continue;
            const xo = ((n * H + iy) * W + ix) * CI;
            const wo = (ky * KW + kx) * CI * CO;
            for (let ci = 0; ci < CI; ci++) {
              const v = x[xo + ci];
              if (v === 0) continue;
              const wr = wo + ci * CO;
              for (let co = 0; co < CO; co++) y[yo + co] += v * w[wr + co];
            }
          }
        }
      }
  return y;
}

/** dw[ky,kx,ci,co] = Σ_{n,oy,ox} x[n, oy·s−pt+ky, ox·s−pl+kx, ci] · dy[n,oy,ox,co]. */
export function conv2dFilterGrad(x: Float32Array, dy: Float32Array, c: Conv2DInfo): Float32Array {
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
  const dw = new Float32Array(KH * KW * CI * CO);
  for (let n = 0; n < N; n++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        const go = ((n * OH + oy) * OW + ox) * CO;
        for (let ky = 0; ky < KH; ky++) {
          const iy = oy * SH - PT + ky;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < KW; kx++) {
            const ix = ox * SW - PL + kx;
            if (ix < 0 || ix >= W) continue;
            const xo = ((n * H + iy) * W + ix) * CI;
            const wo = (ky * KW + kx) * CI * CO;
            for (let ci = 0; ci < CI; ci++) {
              const v = x[xo + ci];
              if (v === 0) continue;
              const wr = wo + ci * CO;
              for (let co = 0; co < CO; co++) dw[wr + co] += v * dy[go + co];
            }
          }
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
  const dx = new Float32Array(N * H * W * CI);
  for (let n = 0; n < N; n++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        const go = ((n * OH + oy) * OW + ox) * CO;
        for (let ky = 0; ky < KH; ky++) {
          const iy = oy * SH - PT + ky;
          if (iy < 0 || iy >= H) continue;
          for (let kx = 0; kx < KW; kx++) {
            const ix = ox * SW - PL + kx;
            if (ix < 0 || ix >= W) continue;
            const xo = ((n * H + iy) * W + ix) * CI;
            const wo = (ky * KW + kx) * CI * CO;
            for (let ci = 0; ci < CI; ci++) {
              const wr = wo + ci * CO;
              let s = 0;
              for (let co = 0; co < CO; co++) s += dy[go + co] * w[wr + co];
              dx[xo + ci] += s;
            }
          }
        }
      }
  return dx;
}
