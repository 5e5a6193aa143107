import * as tf from '@tensorflow/tfjs';
import { wrap } from 'comlink';
import '@tensorflow/tfjs-backend-webgpu';
import { transfer } from 'comlink';
import { InvalidOptionError, LabError } from '../core/errors.ts';
import type { Dataset } from '../core/dataset.ts';
import type { DetectOptions } from '../core/detect/index.ts';
import type { DetectionSummary } from '../core/report.ts';
import type { DetectionContext, Phase, RunRecord, RunStore, TrainProgress } from '../core/run.ts';
import { selectBackend, trainerCandidates, type BackendInfo, type MeasureApi } from './backend.ts';
import type { TrainingEngine } from './engine.ts';
import { createWasmEngine } from './wasm-engine-web.ts';
import type { ChooseOptions, IsolatedTimer } from './backend-select.ts';
import { wasmNearest } from './fast-knn.ts';
import { measureThroughput, type Throughput } from './benchmark.ts';
import { isModelName } from './resnet.ts';
import { runSelfTest, type SelfTestResult } from './self-test.ts';
import { RunOrchestrator } from './run.ts';
import { Trainer } from './train.ts';
import { createTfjsEngine } from './tfjs-engine.ts';

/**
 * Times a candidate in a nested, throwaway worker and terminates it at the deadline: a WebGL or
 * WebGPU warm-up cannot be interrupted otherwise, and an abandoned step must not keep running
 * beside the trainer. Without nested workers, candidates are timed in place.
 */
const isolatedTimer: IsolatedTimer | undefined =
  typeof Worker === 'undefined'
    ? undefined
    : async (name, budget, deadlineMs) => {
        const w = new Worker(new URL('../../workers/measure.worker.ts', import.meta.url), {
          type: 'module',
          name: `measure-${name}`,
        });
        try {
          const api = wrap<MeasureApi>(w);
          await api.ready();
          let timer: ReturnType<typeof setTimeout> | undefined;
          const late = new Promise<null>((r) => (timer = setTimeout(() => r(null), deadlineMs)));
          try {
            return await Promise.race([api.time(name, budget), late]);
          } finally {
            clearTimeout(timer);
          }
        } finally {
          w.terminate();
        }
      };

/** Progress reported across the worker boundary (a comlink proxy on the page side). */
export type StepProgress = (done: number, total: number) => void;

/** What the trainer worker needs from its host: where runs live and how to load a dataset. */
export interface TrainerApiDeps {
  store: RunStore;
  loadDataset: (id: string) => Promise<Dataset>;
}

/**
 * The trainer worker's API: a thin adapter from comlink requests to the run orchestrator, which
 * is the only writer of run records. The page sends requests and shows the snapshots it gets
 * back. Long calls (training) report progress and each stored change through proxies, stop on
 * `pause(runId)`, and are cancelled by terminating the worker (the page rejects its pending
 * promise with a CancelledError and starts a fresh worker). Big typed arrays leave by transfer.
 */
export function createTrainerApi(deps: TrainerApiDeps) {
  let backend: Promise<BackendInfo> | null = null;
  let forced: string | undefined;
  const ensure = (opts?: ChooseOptions) => {
    if (!backend) forced = opts?.forced;
    return (backend ??= selectBackend(
      tf,
      { ...opts, isolated: isolatedTimer },
      trainerCandidates(tf, wasmEngine),
    ));
  };
  /** Our WebAssembly engine, built once (its helper threads live as long as this worker). */
  let wasm: TrainingEngine | null = null;
  const wasmEngine = () => (wasm ??= createWasmEngine());
  /** The engine of the chosen backend: ours for 'wasm', else tfjs on the backend tfjs runs on. */
  const engine = async (): Promise<TrainingEngine> =>
    (await ensure()).name === 'wasm' ? wasmEngine() : createTfjsEngine(tf);
  const runs = new RunOrchestrator({
    ...deps,
    createTrainer: async (cfg, split, numClasses, ckpt) =>
      Trainer.create(await engine(), cfg, split, numClasses, ckpt),
    nearest: wasmNearest,
  });
  const pauses = new Set<string>();

  return {
    /**
     * Starts compute on the fastest backend here — `opts.forced` if it can run, else the page's
     * cached measurement for this device, else measured now (a few seconds) — and says which,
     * why the others were not, and the figures (the page caches a new measurement).
     */
    async init(opts?: ChooseOptions): Promise<BackendInfo> {
      return ensure(opts);
    },

    /**
     * Measures every backend again and switches to the fastest — or stays on a forced one
     * (Diagnostics, "Re-measure"). Not while training: the measurement switches tfjs backends.
     */
    async remeasure(): Promise<BackendInfo> {
      const prev = backend;
      backend = (prev ?? Promise.resolve(null))
        .catch(() => null)
        .then(() =>
          selectBackend(
            tf,
            { remeasure: true, forced, isolated: isolatedTimer },
            trainerCandidates(tf, wasmEngine),
          ),
        );
      return backend;
    },

    /** A small known computation on the active backend (n ≥ 1), with progress. */
    async selfTest(n: number, onProgress?: StepProgress): Promise<SelfTestResult> {
      if (!(Number.isInteger(n) && n >= 1 && n <= 4096))
        throw new InvalidOptionError(`self-test size ${n} must be a whole number in 1–4096`);
      await ensure();
      return runSelfTest(tf, n, onProgress);
    },

    /** Training and recording throughput of a model on this backend (Diagnostics, `npm run bench`). */
    async measureSpeed(model: string, batchSize: number, steps: number): Promise<Throughput> {
      if (!isModelName(model)) throw new InvalidOptionError(`unknown model "${model}"`);
      await ensure();
      return measureThroughput(
        await engine(),
        model,
        batchSize,
        steps,
        () => tf.memory().numTensors,
      );
    },

    /** Tensors and bytes tfjs holds now (for leak checks). */
    memory(): { numTensors: number; numBytes: number } {
      const m = tf.memory();
      return { numTensors: m.numTensors, numBytes: m.numBytes };
    },

    listRuns: (): Promise<RunRecord[]> => runs.listRuns(),
    findRun: (id: string): Promise<RunRecord | undefined> => runs.store.findRun(id),
    createRun: (args: {
      datasetId: string;
      datasetName: string;
      config: unknown;
      name?: string;
    }): Promise<RunRecord> => runs.createRun(args),
    setConfig: (id: string, config: unknown, confirm = false): Promise<RunRecord> =>
      runs.setConfig(id, config, confirm),
    rename: (id: string, name: string): Promise<RunRecord> => runs.rename(id, name),
    deleteRun: (id: string): Promise<void> => runs.deleteRun(id),
    prepare: (id: string): Promise<RunRecord> => runs.prepare(id),
    resetPhase: (id: string, phase: Phase): Promise<RunRecord> => runs.resetPhase(id, phase),
    detect: (id: string, options?: DetectOptions, confirm = false): Promise<RunRecord> =>
      runs.detect(id, options, confirm),
    /** Opens trajectories recorded elsewhere (.npy bytes + the parsed truth file) as a run. */
    importRecorded: (args: {
      trajectoriesFile: string;
      npy: Uint8Array;
      truthFile: string;
      truthJson: unknown;
      datasetId?: string;
    }): Promise<RunRecord> => runs.importRecorded(args),
    /** Stores a recorded run (a bundle file's bytes) made from the dataset `datasetId`. */
    importBundle: (name: string, bytes: Uint8Array, datasetId: string): Promise<RunRecord> =>
      runs.importBundle(name, bytes, datasetId),
    /** Runs the compared defenses the run lists and has no verdict from yet. */
    compareDefenses: (id: string): Promise<RunRecord> => runs.detectBaselines(id),
    setThreshold: (id: string, threshold: number, confirm = false): Promise<RunRecord> =>
      runs.setThreshold(id, threshold, confirm),
    summarizeAt: (id: string, threshold: number): Promise<DetectionSummary> =>
      runs.summarizeAt(id, threshold),
    report: (id: string): Promise<RunRecord> => runs.report(id),

    /**
     * Trains one phase (resuming from its checkpoint) and evaluates it; resolves with the stored
     * run when the phase is done or paused. `onUpdate` receives the run after every epoch.
     */
    async train(
      id: string,
      phase: Phase,
      onProgress?: (p: TrainProgress) => void,
      onUpdate?: (r: RunRecord) => void,
    ): Promise<RunRecord> {
      // Cleared before anything is awaited, so a pause clicked while compute starts is kept.
      pauses.delete(id);
      await ensure();
      const go = () =>
        runs.train(id, phase, {
          onProgress: (_phase, p) => onProgress?.(p),
          onUpdate,
          shouldPause: () => pauses.has(id),
        });
      // One trainer per run across tabs: a second tab (a shared link, an auto-resume) is refused.
      // A worker just terminated by a cancel releases its lock a moment later: wait up to 5 s.
      const locks = (globalThis.navigator as Navigator | undefined)?.locks;
      if (!locks) return go();
      try {
        return await locks.request(`badloss-run:${id}`, { signal: AbortSignal.timeout(5000) }, () =>
          go(),
        );
      } catch (e) {
        if ((e as Error).name === 'TimeoutError' || (e as Error).name === 'AbortError')
          throw new LabError(
            'this run is training in another tab of this browser: watch it there, or pause it there first',
          );
        throw e;
      }
    },

    /** Marks an unfinished phase as paused by the user (kept after a cancel: no auto-resume). */
    markPaused: (id: string, phase: Phase): Promise<RunRecord> => runs.markPaused(id, phase),
    /** Asks the running `train` of this run to stop after the current step; the last checkpoint stays. */
    pause(id: string): void {
      pauses.add(id);
    },

    /** Per-row data the Detect step draws with (transferred, not copied). */
    async detectionContext(id: string): Promise<DetectionContext> {
      const c = await runs.detectionContext(id);
      // The prepared arrays are cached here: send copies, transfer those.
      const out: DetectionContext = {
        ...c,
        embedding: { ...c.embedding, coords: c.embedding.coords.slice() },
        trajectories: c.trajectories.slice(),
        truth: c.truth.slice(),
        probeKind: c.probeKind.slice(),
        labels: c.labels.slice(),
        origin: { split: c.origin.split.slice(), index: c.origin.index.slice() },
      };
      return transfer(out, [
        out.trajectories.buffer,
        out.truth.buffer,
        out.probeKind.buffer,
        out.labels.buffer,
        out.origin.split.buffer,
        out.origin.index.buffer,
        out.embedding.coords.buffer,
      ]);
    },

    /** Images and labels of some training rows (galleries of suspicious examples). */
    async trainingImages(id: string, rows: number[]) {
      const s = await runs.trainingImages(id, rows);
      return transfer(s, [s.images.buffer, s.labels.buffer]);
    },
  };
}
