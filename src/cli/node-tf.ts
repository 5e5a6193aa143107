import * as tf from '@tensorflow/tfjs';
import { nodeCandidates, selectBackend, type BackendInfo } from '../ml/backend.ts';

/**
 * tfjs on the fastest backend Node has, chosen the same way as in the browser
 * (`nodeCandidates`: tfjs CPU with our fast kernels today; a lone candidate is not timed).
 * Silences the "install tfjs-node" banner.
 */
export async function setupNodeTf(): Promise<typeof tf> {
  await setupNodeCompute();
  return tf;
}

/** As `setupNodeTf`, saying which backend was chosen and on what figures. */
export async function setupNodeCompute(): Promise<BackendInfo> {
  tf.env().set('IS_NODE', false);
  tf.env().set('PROD', true);
  return selectBackend(tf, {}, nodeCandidates(tf));
}
