import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { transfer } from 'comlink';
import { pca2 } from '../core/embed.ts';
import { InvalidOptionError } from '../core/errors.ts';
import type { Dataset } from '../core/dataset.ts';
import type { DetectOptions } from '../core/detect/index.ts';
import type { DetectionSummary } from '../core/report.ts';
import type { DetectionContext, Phase, RunRecord, RunStore, TrainProgress } from '../core/run.ts';
import { selectBackend, type BackendInfo, type BackendName } from './backend.ts';
import { registerFastCpuKernels } from './fast-cpu.ts';
import { measureThroughput, type Throughput } from './benchmark.ts';
import { isModelName } from './resnet.ts';
import { runSelfTest, type SelfTestResult } from './self-test.ts';
import { RunOrchestrator } from './run.ts';
import { Trainer } from './train.ts';
import { createTfjsEngine } from './tfjs-engine.ts';

/** Progress reported across the worker boundary (a comlink proxy on the page side). */
export type StepProgress = (done: number, total: number) => void;

/** What the trainer worker needs from its host: where runs live and how to load a dataset. */
export interface TrainerApiDeps {
  store: RunStore;
  loadDataset: (id: string) => Promise<Dataset>;
}

/** A 2-D map of the trajectories (PCA over the first `epochs` columns), n × 2 row-major. */
export interface EmbeddingView {
  coords: Float32Array;
  explained: [number, number];
  epochs: number;
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
  const ensure = (preferred?: BackendName) =>
    (backend ??= selectBackend(tf, preferred).then((b) => {
      if (b.name === 'cpu') registerFastCpuKernels(tf);
      return b;
    }));
  const runs = new RunOrchestrator({
    ...deps,
    createTrainer: (cfg, split, numClasses, ckpt) =>
      Trainer.create(createTfjsEngine(tf), cfg, split, numClasses, ckpt),
  });
  const pauses = new Set<string>();

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

    /** Training and recording throughput of a model on this backend (Diagnostics, `npm run bench`). */
    async measureSpeed(model: string, batchSize: number, steps: number): Promise<Throughput> {
      if (!isModelName(model)) throw new InvalidOptionError(`unknown model "${model}"`);
      await ensure();
      return measureThroughput(
        createTfjsEngine(tf),
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
      await ensure();
      pauses.delete(id);
      return runs.train(id, phase, {
        onProgress: (_phase, p) => onProgress?.(p),
        onUpdate,
        shouldPause: () => pauses.has(id),
      });
    },

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
        trajectories: c.trajectories.slice(),
        truth: c.truth.slice(),
        probeKind: c.probeKind.slice(),
        labels: c.labels.slice(),
      };
      return transfer(out, [
        out.trajectories.buffer,
        out.truth.buffer,
        out.probeKind.buffer,
        out.labels.buffer,
      ]);
    },

    /** The PCA map of the first `epochs` trajectory columns, computed here, off the page's thread. */
    async embedding(id: string, epochs: number): Promise<EmbeddingView> {
      const c = await runs.detectionContext(id);
      const e = Math.max(1, Math.min(c.epochs, Math.round(epochs)));
      const cols = new Float32Array(c.n * e);
      for (let i = 0; i < c.n; i++)
        cols.set(c.trajectories.subarray(i * c.epochs, i * c.epochs + e), i * e);
      const { coords, explained } = pca2(cols, c.n, e);
      return transfer({ coords, explained, epochs: e }, [coords.buffer]);
    },

    /** Images and labels of some training rows (galleries of suspicious examples). */
    async trainingImages(id: string, rows: number[]) {
      const s = await runs.trainingImages(id, rows);
      return transfer(s, [s.images.buffer, s.labels.buffer]);
    },
  };
}
