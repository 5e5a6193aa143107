import { wrap, type Remote } from 'comlink';
import type { TrainerApi } from '../../workers/trainer.worker.ts';
import type { DataApi } from '../../workers/data.worker.ts';
import type { ChooseOptions } from '../ml/backend-select.ts';

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
let initOptions: ChooseOptions | null = null;

/**
 * How a restarted worker starts compute: the same forced backend and the measurement already
 * taken, so a cancel does not measure every backend again.
 */
export function setTrainerInit(opts: ChooseOptions): void {
  initOptions = opts;
}

export function trainer(): Remote<TrainerApi> {
  if (!api) {
    worker = new Worker(new URL('../../workers/trainer.worker.ts', import.meta.url), {
      type: 'module',
      name: 'trainer',
    });
    api = wrap<TrainerApi>(worker);
    // Messages are handled in order, so this init is the one every later call waits for.
    if (initOptions) void api.init(initOptions).catch(() => undefined);
  }
  return api;
}

export function restartTrainer(): void {
  worker?.terminate();
  worker = null;
  api = null;
}
