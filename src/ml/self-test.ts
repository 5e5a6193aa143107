import type * as tfType from '@tensorflow/tfjs';

/** Result of a small known computation run on the active backend. */
export interface SelfTestResult {
  backend: string;
  /** Σ of ones(n×n)·diag(1..n) = n·n(n+1)/2. */
  value: number;
  expected: number;
  ms: number;
}

/**
 * Runs a matmul and a 3×3 convolution on the active backend and returns a checksum with its
 * closed-form expected value: ones(n×n)·diag(1..n) sums to n·n(n+1)/2, and a 3×3 all-ones kernel
 * over an all-ones image adds 9 per interior pixel (checked inside, thrown on mismatch).
 */
export async function runSelfTest(
  tf: typeof tfType,
  n: number,
  onStep?: (done: number, total: number) => void,
): Promise<SelfTestResult> {
  const t0 = performance.now();
  const steps = 4;
  let value = 0;
  for (let s = 0; s < steps; s++) {
    const out = tf.tidy(() => {
      const a = tf.ones([n, n]);
      const d = tf.diag(tf.range(1, n + 1));
      return tf.sum(tf.matMul(a, d));
    });
    value = (await out.data())[0];
    out.dispose();
    onStep?.(s + 1, steps);
  }
  const conv = tf.tidy(() =>
    tf.sum(
      tf.conv2d(
        tf.ones([1, 8, 8, 1]) as tfType.Tensor4D,
        tf.ones([3, 3, 1, 1]) as tfType.Tensor4D,
        1,
        'valid',
      ),
    ),
  );
  const convValue = (await conv.data())[0];
  conv.dispose();
  if (convValue !== 36 * 9)
    throw new Error(`self-test convolution returned ${convValue}, expected ${36 * 9}`);
  return {
    backend: tf.getBackend(),
    value,
    expected: (n * n * (n + 1)) / 2,
    ms: performance.now() - t0,
  };
}
