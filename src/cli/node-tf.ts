import * as tf from '@tensorflow/tfjs';
import { nodeCandidates, selectBackend, type BackendInfo } from '../ml/backend.ts';
import type { TrainingEngine } from '../ml/engine.ts';
import { createTfjsEngine } from '../ml/tfjs-engine.ts';
import { createWasmEngine } from '../ml/wasm-engine-node.ts';

/**
 * tfjs on the fastest backend Node has, chosen the same way as in the browser
 * (`nodeCandidates`: tfjs CPU with our fast kernels today; a lone candidate is not timed).
 * Silences the "install tfjs-node" banner.
 */
export async function setupNodeTf(): Promise<typeof tf> {
  // tfjs's CPU backend alone (tests, the tfjs-cpu engine): no WebAssembly candidate.
  await setupNodeCompute();
  return tf;
}

/** As `setupNodeTf`, saying which backend was chosen and on what figures. */
export async function setupNodeCompute(): Promise<BackendInfo> {
  tf.env().set('IS_NODE', false);
  tf.env().set('PROD', true);
  return selectBackend(tf, {}, nodeCandidates(tf));
}

/**
 * The training engine the CLI runs on, chosen the way the tab chooses its backend: our
 * WebAssembly engine (`threads` threads, default every core) and tfjs's CPU backend each time one
 * small training step, and the faster one wins. Says which, and the figures.
 */
export async function nodeEngineByMeasurement(
  threads?: number,
): Promise<{ engine: TrainingEngine; info: BackendInfo }> {
  tf.env().set('IS_NODE', false);
  tf.env().set('PROD', true);
  let wasm: TrainingEngine | null = null;
  const make = () => (wasm ??= createWasmEngine({ threads }));
  const info = await selectBackend(tf, {}, nodeCandidates(tf, make));
  return { engine: info.name === 'wasm' ? make() : createTfjsEngine(tf), info };
}
