import type * as tf from '@tensorflow/tfjs';
import { setupNodeTf } from '../../src/cli/node-tf.ts';

/** tfjs on its CPU backend with our fast kernels, exactly as the CLI uses it. */
export async function cpuTf(): Promise<typeof tf> {
  return setupNodeTf();
}
