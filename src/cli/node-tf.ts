import * as tf from '@tensorflow/tfjs';
import { registerFastCpuKernels } from '../ml/fast-cpu.ts';

/** tfjs's CPU backend with our fast kernels; silences the "install tfjs-node" banner. */
export async function setupNodeTf(): Promise<typeof tf> {
  tf.env().set('IS_NODE', false);
  tf.env().set('PROD', true);
  await tf.setBackend('cpu');
  await tf.ready();
  registerFastCpuKernels(tf);
  return tf;
}
