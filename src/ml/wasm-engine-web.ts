import type { TrainingEngine } from './engine.ts';
import {
  createWasmEngineWith,
  HELPER_BODY,
  type HelperInit,
  type WasmEngineOptions,
} from './wasm-engine.ts';

let helperUrl: string | null = null;

/**
 * The WebAssembly engine in a browser worker (the trainer worker is thread 0; it may block on
 * atomics): helpers are nested Web Workers started from a blob. Threads need SharedArrayBuffer,
 * i.e. a cross-origin-isolated page (COOP/COEP); without it the engine runs on one thread.
 * `threads` defaults to navigator.hardwareConcurrency (at most 8). The engine's `threads` says
 * how many it runs.
 */
export function createWasmEngine(
  opts: { threads?: number } & WasmEngineOptions = {},
): TrainingEngine {
  const hc = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency || 1 : 1;
  const canNest = typeof Worker !== 'undefined' && typeof Blob !== 'undefined';
  return createWasmEngineWith(
    opts.threads ?? Math.min(8, hc),
    canNest ? spawnWebHelper : undefined,
    opts,
  );
}

async function spawnWebHelper(init: HelperInit) {
  helperUrl ??= URL.createObjectURL(
    new Blob([`${HELPER_BODY}\nonmessage = (e) => runHelper(e.data, (m) => postMessage(m));`], {
      type: 'text/javascript',
    }),
  );
  const worker = new Worker(helperUrl);
  await new Promise<void>((resolve, reject) => {
    worker.onmessage = () => resolve();
    worker.onerror = (e) => reject(new Error(`wasm helper thread failed: ${e.message}`));
    worker.postMessage(init);
  });
  return { terminate: () => worker.terminate() };
}
