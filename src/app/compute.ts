import { wrap, type Remote } from 'comlink';
import { CancelledError } from '../core/errors.ts';
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
 * (squoosh's pattern); the replacement starts on the backend the first one chose, so a cancel never
 * changes what the status bar says.
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
/** Rejecters of the calls in flight on the current worker: a terminated worker never answers. */
const inFlight = new Set<(e: Error) => void>();

export function trainer(): Remote<TrainerApi> {
  if (!api) {
    worker = new Worker(new URL('../../workers/trainer.worker.ts', import.meta.url), {
      type: 'module',
      name: 'trainer',
    });
    api = tracked(wrap<TrainerApi>(worker));
    // Messages are handled in order, so this init is the one every later call waits for.
    if (initOptions) void api.init(initOptions).catch(() => undefined);
  }
  return api;
}

/** A call that settles with the worker's answer, or rejects when the worker is replaced. */
function track<T>(answer: Promise<T>): Promise<T> {
  let reject!: (e: Error) => void;
  const stopped = new Promise<never>((_, r) => (reject = r));
  inFlight.add(reject);
  return Promise.race([answer, stopped]).finally(() => inFlight.delete(reject));
}

/**
 * The worker's API with every call tracked: when `cancelTrainer()` terminates the worker, every
 * call still waiting (training, but also a detection or a slider recount) rejects with a
 * CancelledError instead of hanging.
 */
function tracked(remote: Remote<TrainerApi>): Remote<TrainerApi> {
  return new Proxy(remote, {
    get(target, prop) {
      const member: unknown = Reflect.get(target, prop);
      if (typeof member !== 'function') return member;
      return (...args: unknown[]) => track(Promise.resolve(Reflect.apply(member, target, args)));
    },
  });
}

/**
 * Runs a long worker call that `cancelTrainer()` can stop: the returned promise then rejects with
 * a CancelledError at once, even though the terminated worker never answers.
 */
export function cancellable<T>(call: (api: Remote<TrainerApi>) => Promise<T>): Promise<T> {
  return call(trainer());
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
  // The fresh worker starts on the same backend with the measurement already taken (setTrainerInit).
  await trainer().init(initOptions ?? {});
}
