import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { InvalidOptionError } from '../core/errors.ts';
import { selectBackend, type BackendInfo, type BackendName } from './backend.ts';
import { runSelfTest, type SelfTestResult } from './self-test.ts';

/** Progress reported across the worker boundary (a comlink proxy on the page side). */
export type StepProgress = (done: number, total: number) => void;

/**
 * The trainer worker's API. Everything here runs inside the dedicated worker; the page only
 * sees this object through comlink (`wrap<TrainerApi>`), so arguments and results are
 * structured-cloneable and big arrays are transferred.
 */
export function createTrainerApi() {
  let backend: Promise<BackendInfo> | null = null;
  const ensure = (preferred?: BackendName) => (backend ??= selectBackend(tf, preferred));
  return {
    /** Starts tfjs on the best backend (or from `preferred` down) and says which and why. */
    async init(preferred?: BackendName): Promise<BackendInfo> {
      return ensure(preferred);
    },
    /** A small known computation on the active backend (n ≥ 1), with progress. */
    async selfTest(n: number, onProgress?: StepProgress): Promise<SelfTestResult> {
      if (!(Number.isInteger(n) && n >= 1 && n <= 4096))
        throw new InvalidOptionError(`self-test size ${n} must be a whole number in 1–4096`);
      await ensure();
      return runSelfTest(tf, n, onProgress);
    },
    /** Tensors and bytes tfjs holds now (for leak checks). */
    memory(): { numTensors: number; numBytes: number } {
      const m = tf.memory();
      return { numTensors: m.numTensors, numBytes: m.numBytes };
    },
  };
}
