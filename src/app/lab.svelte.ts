import { proxy } from 'comlink';
import type { BackendInfo } from '../ml/backend.ts';
import type { SelfTestResult } from '../ml/self-test.ts';
import { describeError } from '../core/errors.ts';
import { setTrainerInit, trainer } from './compute.ts';
import { loadMeasurements, saveMeasurement } from './backend-cache.ts';
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
  /** The run history is open instead of a step. */
  showRuns = $state(false);
  backend = $state<BackendInfo | null>(null);
  backendError = $state<string | null>(null);
  /** Measuring every backend again (Diagnostics). */
  remeasuring = $state(false);
  /** The Diagnostics drawer is open. */
  diagnosticsOpen = $state(false);
  /** The last compute self-test, shown in the status bar. */
  check = $state<SelfTestResult | null>(null);
  checking = $state(false);
  /** `?backend=` from the URL: used when it can run, instead of the measured fastest. */
  forced: string | undefined;
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
    this.showRuns = false;
    sessionStorage.setItem('badloss-step', step);
    this.showStepInUrl();
  }

  /** The step lives in the query, the run in the hash: the run's hash updates leave it alone. */
  private showStepInUrl(): void {
    const url = urlWithStep(location.href, this.step);
    if (url !== location.pathname + location.search + location.hash)
      history.replaceState(history.state, '', url);
  }

  /**
   * Starts the trainer worker on the fastest backend for this device (measured on first start,
   * then remembered per device in localStorage), or on `forced` when it can run.
   */
  async startCompute(forced?: string): Promise<void> {
    this.forced = forced;
    try {
      const cached = loadMeasurements();
      this.backend = await trainer().init({ forced, cached });
      this.remember(this.backend, cached);
      this.backendError = null;
    } catch (e) {
      this.backendError = describeError(e).message;
      this.report(e);
    }
  }

  /** Measures every backend again and switches to the fastest (or stays on a forced one). */
  async remeasure(): Promise<void> {
    this.remeasuring = true;
    try {
      this.backend = await trainer().remeasure();
      this.remember(this.backend, []);
    } catch (e) {
      this.report(e);
    } finally {
      this.remeasuring = false;
    }
  }

  private remember(b: BackendInfo, cached: NonNullable<BackendInfo['measurement']>[]): void {
    if (b.measuredNow && b.measurement) saveMeasurement(b.measurement);
    setTrainerInit({ forced: this.forced, cached: b.measurement ? [b.measurement] : cached });
  }

  /** The compute self-test in the worker (n ≥ 1); the status bar shows its result. */
  async runCheck(n: number): Promise<void> {
    this.checking = true;
    this.check = null;
    try {
      this.check = await this.selfTest(n, () => {});
    } finally {
      this.checking = false;
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
