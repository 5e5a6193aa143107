import { wrap, type Remote } from 'comlink';
import type { TrainerApi } from '../../workers/trainer.worker.ts';
import type { DataApi } from '../../workers/data.worker.ts';

/** A fresh data worker for one import; the caller terminates it when done or cancelled. */
export function createDataWorker(): { worker: Worker; api: Remote<DataApi> } {
  const worker = new Worker(new URL('../../workers/data.worker.ts', import.meta.url), {
    type: 'module',
    name: 'data',
  });
  return { worker, api: wrap<DataApi>(worker) };
}

/**
 * The trainer worker, started on first use. Long jobs are cancelled by terminating the worker
 * (squoosh's pattern): `restartTrainer()` kills it and the next call starts a fresh one.
 */
let worker: Worker | null = null;
let api: Remote<TrainerApi> | null = null;

export function trainer(): Remote<TrainerApi> {
  if (!api) {
    worker = new Worker(new URL('../../workers/trainer.worker.ts', import.meta.url), {
      type: 'module',
      name: 'trainer',
    });
    api = wrap<TrainerApi>(worker);
  }
  return api;
}

export function restartTrainer(): void {
  worker?.terminate();
  worker = null;
  api = null;
}
