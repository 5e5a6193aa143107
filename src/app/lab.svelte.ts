import { proxy } from 'comlink';
import type { BackendInfo, BackendName } from '../ml/backend.ts';
import { describeError } from '../core/errors.ts';
import { trainer } from './compute.ts';
import { DataState } from './data.svelte.ts';
import { RunState } from './run.svelte.ts';

import { STEPS, stepFromUrl, urlWithStep, type StepId } from './steps-done.ts';

export { STEPS, type StepId };

export const STEP_TITLES: Record<StepId, string> = {
  data: 'Data',
  attacks: 'Attacks',
  probes: 'Probes',
  train: 'Train',
  detect: 'Detect',
  retrain: 'Retrain',
  report: 'Report',
};

export interface StorageStatus {
  usage: number;
  quota: number;
  persisted: boolean;
}

/** A message for the user: what failed (error name) and what it said. */
export interface Notice {
  kind: 'error' | 'info';
  title: string;
  message: string;
}

/** App-wide state: the current step, the compute backend, storage, and notices. */
export class Lab {
  step = $state<StepId>('data');
  backend = $state<BackendInfo | null>(null);
  backendError = $state<string | null>(null);
  storage = $state<StorageStatus | null>(null);
  notices = $state<Notice[]>([]);
  readonly data = new DataState();
  readonly run = new RunState();

  constructor() {
    const fromUrl = stepFromUrl(location.search, location.hash);
    const stored = sessionStorage.getItem('badloss-step');
    if (fromUrl) this.step = fromUrl;
    else if (stored && (STEPS as readonly string[]).includes(stored)) this.step = stored as StepId;
    this.showStepInUrl();
  }

  /** Goes to a step; the URL's `?step=` follows, so a reload or a shared link opens it. */
  go(step: StepId): void {
    this.step = step;
    sessionStorage.setItem('badloss-step', step);
    this.showStepInUrl();
  }

  /** The step lives in the query, the run in the hash: the run's hash updates leave it alone. */
  private showStepInUrl(): void {
    const url = urlWithStep(location.href, this.step);
    if (url !== location.pathname + location.search + location.hash)
      history.replaceState(history.state, '', url);
  }

  /** Starts the trainer worker and records which backend it chose. */
  async startCompute(preferred?: BackendName): Promise<void> {
    try {
      this.backend = await trainer().init(preferred);
      this.backendError = null;
    } catch (e) {
      this.backendError = describeError(e).message;
      this.report(e);
    }
  }

  /** Runs the worker's self-test, reporting progress; errors become notices. */
  async selfTest(n: number, onProgress: (done: number, total: number) => void) {
    try {
      return await trainer().selfTest(n, proxy(onProgress));
    } catch (e) {
      this.report(e);
      return null;
    }
  }

  /** Measures training speed in the worker (Diagnostics); errors become notices. */
  async measureSpeed(model: string, batchSize: number, steps: number) {
    try {
      return await trainer().measureSpeed(model, batchSize, steps);
    } catch (e) {
      this.report(e);
      return null;
    }
  }

  async refreshStorage(): Promise<void> {
    if (!navigator.storage?.estimate) return;
    const est = await navigator.storage.estimate();
    const persisted = (await navigator.storage.persisted?.()) ?? false;
    this.storage = { usage: est.usage ?? 0, quota: est.quota ?? 0, persisted };
  }

  /** Asks the browser to keep our data under storage pressure (it may say no). */
  async requestPersistence(): Promise<void> {
    try {
      await navigator.storage?.persist?.();
    } finally {
      await this.refreshStorage();
    }
  }

  /** Shows an error to the user with its name and message (names survive comlink). */
  report(e: unknown): void {
    const { name, message } = describeError(e);
    this.notices = [...this.notices, { kind: 'error', title: name, message }];
  }

  info(title: string, message: string): void {
    this.notices = [...this.notices, { kind: 'info', title, message }];
  }

  dismiss(n: Notice): void {
    this.notices = this.notices.filter((x) => x !== n);
  }
}
