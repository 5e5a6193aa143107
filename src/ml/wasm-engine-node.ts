import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { TrainingEngine } from './engine.ts';
import {
  createWasmEngineWith,
  HELPER_BODY,
  type HelperInit,
  type WasmEngineOptions,
} from './wasm-engine.ts';

/**
 * The WebAssembly engine in Node: thread 0 is the calling thread, helpers are worker_threads
 * (unreferenced, so a forgotten model does not keep the process alive). `threads` defaults to
 * the machine's available parallelism (at most 8).
 */
export function createWasmEngine(
  opts: { threads?: number } & WasmEngineOptions = {},
): TrainingEngine {
  return createWasmEngineWith(
    opts.threads ?? Math.min(8, availableParallelism()),
    spawnNodeHelper,
    opts,
  );
}

// V8 first runs WebAssembly with its baseline compiler (Liftoff) and swaps in optimized code only
// for later calls; our kernels are few long calls, so the first epochs would run 2–3× slower.
// Compile optimized code up front instead (helper threads share the flag: it is process-wide).
setFlagsFromString('--no-liftoff');

async function spawnNodeHelper(init: HelperInit) {
  const src = `const { parentPort, workerData } = require('node:worker_threads');
${HELPER_BODY}
runHelper(workerData, (m) => parentPort.postMessage(m));`;
  const worker = new Worker(src, { eval: true, workerData: init });
  worker.unref();
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`wasm helper thread exited with code ${code}`)));
  });
  return { terminate: () => void worker.terminate() };
}
