import * as tf from '@tensorflow/tfjs';
import { registerFastCpuKernels } from '../../src/ml/fast-cpu.ts';

/** tfjs on its CPU backend with our fast kernels, as the CLI uses it. */
export async function cpuTf(): Promise<typeof tf> {
  await tf.setBackend('cpu');
  await tf.ready();
  registerFastCpuKernels(tf);
  return tf;
}
