import { wrap, type Remote } from 'comlink';
import { CancelledError } from '../core/errors.ts';
import type { BackendInfo, BackendName } from '../ml/backend.ts';
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
 * (squoosh's pattern); the replacement starts on the backend the first one chose, so a cancel never
 * changes what the status bar says.
 */
let worker: Worker | null = null;
let api: Remote<TrainerApi> | null = null;
let backendName: BackendName | undefined;
/** Rejecters of the calls in flight on the current worker: a terminated worker never answers. */
const inFlight = new Set<(e: Error) => void>();

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

/** Starts the worker's compute backend (`preferred` first, when given) and remembers the choice. */
export async function initCompute(preferred?: BackendName): Promise<BackendInfo> {
  const info = await trainer().init(preferred);
  backendName = info.name;
  return info;
}

/**
 * Runs a long worker call that `cancelTrainer()` can stop: the returned promise then rejects with
 * a CancelledError at once, even though the terminated worker never answers.
 */
export function cancellable<T>(call: (api: Remote<TrainerApi>) => Promise<T>): Promise<T> {
  let reject!: (e: Error) => void;
  const stopped = new Promise<never>((_, r) => (reject = r));
  inFlight.add(reject);
  return Promise.race([call(trainer()), stopped]).finally(() => inFlight.delete(reject));
}

/**
 * Terminates the worker, rejects every call in flight with a CancelledError, and starts a fresh
 * worker on the same backend. Work the old worker committed (finished epochs) stays stored.
 */
export async function cancelTrainer(what = 'the operation'): Promise<void> {
  worker?.terminate();
  worker = null;
  api = null;
  for (const reject of inFlight) reject(new CancelledError(`${what} was cancelled`));
  inFlight.clear();
  await trainer().init(backendName);
}
