import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { registerFastCpuKernels, restoreStockCpuKernels } from '../../src/ml/fast-cpu.ts';
import { Rng } from '../../src/core/rng.ts';
import { cpuTf } from './tf-setup.ts';

function rand(shape: number[], rng: Rng, sparsity = 0): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => (rng.float() < sparsity ? 0 : rng.normal())),
    shape,
  );
}

async function both<T extends tf.Tensor>(
  f: () => T,
): Promise<[Float32Array, Float32Array, number[]]> {
  restoreStockCpuKernels(tf);
  const s = f();
  const stock = (await s.data()) as Float32Array;
  registerFastCpuKernels(tf);
  const o = f();
  const ours = (await o.data()) as Float32Array;
  expect(o.shape).toEqual(s.shape);
  const shape = s.shape;
  s.dispose();
  o.dispose();
  return [stock, ours, shape];
}

function expectClose(a: Float32Array, b: Float32Array) {
  expect(b.length).toBe(a.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++)
    worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1 + Math.abs(a[i])));
  expect(worst).toBeLessThan(1e-4);
}

describe('fast CPU kernels match the stock kernels', () => {
  const cases: { x: number[]; f: number[]; stride: number; pad: 'same' | 'valid' }[] = [
    { x: [2, 8, 8, 3], f: [3, 3, 3, 5], stride: 1, pad: 'same' },
    { x: [3, 9, 7, 4], f: [3, 3, 4, 6], stride: 2, pad: 'same' },
    { x: [2, 10, 10, 6], f: [1, 1, 6, 8], stride: 2, pad: 'same' },
    { x: [1, 7, 9, 2], f: [3, 2, 2, 3], stride: 1, pad: 'valid' },
    { x: [2, 11, 11, 5], f: [5, 5, 5, 2], stride: 3, pad: 'valid' },
  ];
  it('on random convolution shapes, strides and paddings (forward and both gradients)', async () => {
    await cpuTf();
    const rng = new Rng(1);
    for (const c of cases) {
      const x = rand(c.x, rng, 0.4) as tf.Tensor4D;
      const w = rand(c.f, rng) as tf.Tensor4D;
      const [s1, o1, outShape] = await both(() => tf.conv2d(x, w, c.stride, c.pad));
      expectClose(s1, o1);
      const dy = rand(outShape, rng) as tf.Tensor4D;
      const [s2, o2] = await both(() =>
        tf.conv2dTranspose(dy, w, c.x as [number, number, number, number], c.stride, c.pad),
      );
      expectClose(s2, o2);
      const grads = () =>
        tf.grads((xx: tf.Tensor, ww: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.stride, c.pad), dy)),
        );
      const [s3, o3] = await both(() => grads()([x, w])[1]);
      expectClose(s3, o3);
      const [s4, o4] = await both(() => grads()([x, w])[0]);
      expectClose(s4, o4);
      for (const t of [x, w, dy]) t.dispose();
    }
  });
  it('on broadcasting binary ops and reductions', async () => {
    await cpuTf();
    const rng = new Rng(2);
    const big = rand([3, 4, 5, 6], rng);
    for (const small of [
      [6],
      [1, 6],
      [5, 6],
      [1, 1, 1, 6],
      [3, 4, 5, 6],
      [4, 1, 6],
      [3, 1, 1, 1],
    ]) {
      const s = rand(small, rng);
      for (const op of [tf.add, tf.sub, tf.mul, tf.div]) {
        const [a, b] = await both(() => op(big, s));
        expectClose(a, b);
        const [c, d] = await both(() => op(s, big));
        expectClose(c, d);
      }
      s.dispose();
    }
    for (const axis of [[0], [0, 1, 2], [3], [2, 3], [1], [1, 3], -1]) {
      for (const keepDims of [false, true]) {
        const [a, b] = await both(() => tf.sum(big, axis, keepDims));
        expectClose(a, b);
        const [c, d] = await both(() => tf.mean(big, axis, keepDims));
        expectClose(c, d);
      }
    }
    for (const [shape, reps] of [
      [
        [1, 1, 1, 6],
        [3, 4, 5, 1],
      ],
      [
        [1, 5, 6],
        [4, 1, 1],
      ],
      [
        [2, 3],
        [2, 2],
      ],
      [
        [3, 1],
        [1, 4],
      ],
    ] as const) {
      const t = rand([...shape], rng);
      const [a, b] = await both(() => tf.tile(t, [...reps]));
      expectClose(a, b);
      t.dispose();
    }
    big.dispose();
  });
});
