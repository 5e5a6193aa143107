import type * as tfType from '@tensorflow/tfjs';

type Tf = typeof tfType;
type KernelConfig = ReturnType<Tf['getKernel']>;

/**
 * Fast paths for the CPU backend's broadcasting binary ops and axis reductions.
 *
 * Why our own: after the convolutions were fixed, profiling a ResNet training step showed
 * Multiply, Sum, Mean and Sub taking more time than all convolutions together. tfjs's CPU backend
 * computes every broadcast element through index arrays, and reduces over non-trailing axes by
 * transposing first; Tile likewise walks index arrays. BatchNorm does exactly those things
 * ([B,H,W,C] ⊙ [C]; Σ over B,H,W; tiling [1,1,1,C]). These kernels handle the layouts that occur —
 * one operand's shape is a suffix of the other's; the reduced axes are leading or trailing; only
 * leading unit axes are tiled — with flat loops, and defer to the stock kernel otherwise.
 */
const BINARY = ['Add', 'Sub', 'Multiply', 'RealDiv'] as const;
type BinaryName = (typeof BINARY)[number];
const REDUCE = ['Sum', 'Mean'] as const;

interface Args {
  inputs: tfType.NamedTensorInfoMap;
  backend: unknown;
  attrs?: unknown;
}
interface CpuLike {
  readSync(dataId: object): unknown;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tfType.TensorInfo;
}

const stock = new Map<string, KernelConfig>();
const ours = new WeakSet<object>();

export function registerFastCpuElementwise(tf: Tf): void {
  for (const name of [...BINARY, ...REDUCE, 'Tile'] as const) {
    const current = tf.getKernel(name, 'cpu');
    if (!current || ours.has(current.kernelFunc)) continue;
    stock.set(name, current);
    tf.unregisterKernel(name, 'cpu');
    const fallback = current.kernelFunc as unknown as (a: Args) => tfType.TensorInfo;
    const kernelFunc = (name === 'Sum' || name === 'Mean'
      ? reduceKernel(name, fallback)
      : name === 'Tile'
        ? tileKernel(fallback)
        : binaryKernel(name, fallback)) as unknown as tfType.KernelFunc;
    ours.add(kernelFunc);
    tf.registerKernel({ kernelName: name, backendName: 'cpu', kernelFunc });
  }
}

export function restoreStockCpuElementwise(tf: Tf): void {
  for (const [name, k] of stock) {
    if (tf.getKernel(name, 'cpu')) tf.unregisterKernel(name, 'cpu');
    tf.registerKernel(k);
  }
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** True when `small` (leading 1s ignored) equals the trailing dimensions of `big`. */
function isSuffix(small: number[], big: number[]): boolean {
  let s = small;
  while (s.length > 0 && s[0] === 1) s = s.slice(1);
  if (s.length > big.length) return false;
  const off = big.length - s.length;
  return s.every((d, i) => d === big[off + i]);
}

/**
 * out[i] = A[i mod an] ∘ B[i mod bn] over n outputs, one loop per operation: a shared loop calling
 * the operation through a function value is not inlined by V8 and runs several times slower.
 */
function applyBinary(
  name: BinaryName,
  A: Float32Array,
  B: Float32Array,
  out: Float32Array,
  an: number,
  bn: number,
): void {
  const n = out.length;
  if (an === n && bn === n) {
    switch (name) {
      case 'Add':
        for (let i = 0; i < n; i++) out[i] = A[i] + B[i];
        return;
      case 'Sub':
        for (let i = 0; i < n; i++) out[i] = A[i] - B[i];
        return;
      case 'Multiply':
        for (let i = 0; i < n; i++) out[i] = A[i] * B[i];
        return;
      case 'RealDiv':
        for (let i = 0; i < n; i++) out[i] = A[i] / B[i];
        return;
    }
  }
  if (an === n) {
    for (let i = 0; i < n; i += bn) {
      switch (name) {
        case 'Add':
          for (let j = 0; j < bn; j++) out[i + j] = A[i + j] + B[j];
          break;
        case 'Sub':
          for (let j = 0; j < bn; j++) out[i + j] = A[i + j] - B[j];
          break;
        case 'Multiply':
          for (let j = 0; j < bn; j++) out[i + j] = A[i + j] * B[j];
          break;
        case 'RealDiv':
          for (let j = 0; j < bn; j++) out[i + j] = A[i + j] / B[j];
          break;
      }
    }
    return;
  }
  for (let i = 0; i < n; i += an) {
    switch (name) {
      case 'Add':
        for (let j = 0; j < an; j++) out[i + j] = A[j] + B[i + j];
        break;
      case 'Sub':
        for (let j = 0; j < an; j++) out[i + j] = A[j] - B[i + j];
        break;
      case 'Multiply':
        for (let j = 0; j < an; j++) out[i + j] = A[j] * B[i + j];
        break;
      case 'RealDiv':
        for (let j = 0; j < an; j++) out[i + j] = A[j] / B[i + j];
        break;
    }
  }
}

/** Tile of a tensor whose repeated axes all lead the shape: the block is copied reps times. */
function tileKernel(fallback: (a: Args) => tfType.TensorInfo) {
  return (args: Args): tfType.TensorInfo => {
    const x = args.inputs.x;
    const be = args.backend as CpuLike;
    const reps = (args.attrs as { reps: number[] }).reps;
    if (!x || x.dtype !== 'float32' || reps.length !== x.shape.length) return fallback(args);
    let k = 0;
    while (k < reps.length && x.shape[k] === 1) k++;
    if (reps.slice(k).some((r) => r !== 1)) return fallback(args);
    const X = be.readSync(x.dataId) as Float32Array;
    const times = reps.reduce((a, b) => a * b, 1);
    const out = new Float32Array(X.length * times);
    for (let t = 0; t < times; t++) out.set(X, t * X.length);
    return be.makeTensorInfo(
      x.shape.map((d, i) => d * reps[i]),
      'float32',
      out,
    );
  };
}

function binaryKernel(name: BinaryName, fallback: (a: Args) => tfType.TensorInfo) {
  return (args: Args): tfType.TensorInfo => {
    const a = args.inputs.a;
    const b = args.inputs.b;
    const be = args.backend as CpuLike;
    if (!a || !b || a.dtype !== 'float32' || b.dtype !== 'float32') return fallback(args);
    const an = size(a.shape);
    const bn = size(b.shape);
    let aBig: boolean;
    if (an >= bn && isSuffix(b.shape, a.shape)) aBig = true;
    else if (bn > an && isSuffix(a.shape, b.shape)) aBig = false;
    else return fallback(args);
    const shape = aBig ? a.shape : b.shape;
    if ((aBig ? b.shape : a.shape).length > shape.length) return fallback(args);
    const A = be.readSync(a.dataId) as Float32Array;
    const B = be.readSync(b.dataId) as Float32Array;
    const out = new Float32Array(Math.max(an, bn));
    applyBinary(name, A, B, out, an, bn);
    return be.makeTensorInfo(shape, 'float32', out);
  };
}

function reduceKernel(name: 'Sum' | 'Mean', fallback: (a: Args) => tfType.TensorInfo) {
  return (args: Args): tfType.TensorInfo => {
    const x = args.inputs.x;
    const be = args.backend as CpuLike;
    const attrs = args.attrs as { axis: number | number[]; keepDims: boolean };
    if (!x || x.dtype !== 'float32') return fallback(args);
    const r = x.shape.length;
    const axes = [
      ...new Set(
        (Array.isArray(attrs.axis) ? attrs.axis : [attrs.axis]).map((a) => (a < 0 ? a + r : a)),
      ),
    ].sort((p, q) => p - q);
    const k = axes.length;
    const leading = axes.every((a, i) => a === i);
    const trailing = axes.every((a, i) => a === r - k + i);
    if (k === 0 || (!leading && !trailing)) return fallback(args);
    const X = be.readSync(x.dataId) as Float32Array;
    const reduced = size(axes.map((a) => x.shape[a]));
    const kept = size(x.shape) / Math.max(reduced, 1);
    const out = new Float32Array(kept);
    if (leading) {
      const acc = new Float64Array(kept);
      for (let i = 0, p = 0; i < reduced; i++) for (let j = 0; j < kept; j++, p++) acc[j] += X[p];
      for (let j = 0; j < kept; j++) out[j] = name === 'Mean' ? acc[j] / reduced : acc[j];
    } else {
      for (let j = 0, p = 0; j < kept; j++) {
        let s = 0;
        for (let i = 0; i < reduced; i++, p++) s += X[p];
        out[j] = name === 'Mean' ? s / reduced : s;
      }
    }
    const shape = attrs.keepDims
      ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !axes.includes(i));
    return be.makeTensorInfo(shape, 'float32', out);
  };
}
