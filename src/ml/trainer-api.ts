import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { InvalidOptionError } from '../core/errors.ts';
import { splitFingerprint, subsetSplit, type ImageSplit } from '../core/dataset.ts';
import { prepareExperiment, keptRows, type Prepared } from '../core/experiment.ts';
import { detect, type Detection } from '../core/detect/index.ts';
import { probeRowsFromKinds } from '../core/detect/knn.ts';
import { buildReport, summarizeDetection } from '../core/report.ts';
import { ATTACK_NAMES, type AttackId } from '../core/attacks/triggers.ts';
import { labelCounts } from '../core/dataset.ts';
import type { DetectOptions } from '../core/detect/index.ts';
import { loadDataset } from '../storage/datasets.ts';
import {
  deleteCheckpoint,
  getRun,
  loadCheckpoint,
  saveCheckpoint,
  saveRun,
  type DetectionRecord,
  type Phase,
  type PhaseResult,
  type PreparedSummary,
  type RunRecord,
} from '../storage/runs.ts';
import { selectBackend, type BackendInfo, type BackendName } from './backend.ts';
import { registerFastCpuKernels } from './fast-cpu.ts';
import { evaluateEpoch, evaluateModel, trainConfigOf } from './pipeline.ts';
import { runSelfTest, type SelfTestResult } from './self-test.ts';
import { measureThroughput, type Throughput } from './benchmark.ts';
import { isModelName } from './resnet.ts';
import { Trainer, type TrainProgress } from './train.ts';

/** Progress reported across the worker boundary (a comlink proxy on the page side). */
export type StepProgress = (done: number, total: number) => void;

/** What the Detect step needs to draw and recount: per-row ground truth, probe kinds, labels, trajectories. */
export interface DetectionContext {
  n: number;
  epochs: number;
  trajectories: Float32Array;
  truth: Int8Array;
  probeKind: Uint8Array;
  labels: Uint8Array;
  attackIds: AttackId[];
  /** Per row: which stored split its image came from and its index there (flagged CSV sources). */
  origin: Prepared['origin'];
}

/**
 * The trainer worker's API. Everything here runs inside the dedicated worker; the page only
 * sees this object through comlink (`wrap<TrainerApi>`), so arguments and results are
 * structured-cloneable. Runs are read from and written to IndexedDB here, after every epoch,
 * so a reload or a crash loses at most the epoch in progress.
 */
export function createTrainerApi() {
  let backend: Promise<BackendInfo> | null = null;
  const ensure = (preferred?: BackendName) =>
    (backend ??= selectBackend(tf, preferred).then((b) => {
      if (b.name === 'cpu') registerFastCpuKernels(tf);
      return b;
    }));
  let session: { runId: string; prepared: Prepared } | null = null;
  let pauseRequested = false;

  async function prepared(runId: string): Promise<Prepared> {
    if (session?.runId === runId) return session.prepared;
    const run = await getRun(runId);
    const ds = await loadDataset(run.datasetId);
    const trustedId = run.config.probes.trusted === 'dataset' && run.config.probes.trustedDatasetId;
    const trusted = trustedId ? await loadDataset(trustedId) : undefined;
    session = { runId, prepared: prepareExperiment(ds, run.config, trusted) };
    return session.prepared;
  }

  async function summarize(p: Prepared): Promise<PreparedSummary> {
    const C = p.numClasses;
    const perClassOf = (rows: number[]) => {
      const c = new Array<number>(C).fill(0);
      for (const i of rows) c[p.sourceLabels[i]]++;
      return c;
    };
    const probeRows = [
      ...p.probes.indices.clean,
      ...p.probes.indices.backdoor,
      ...p.probes.indices.mislabeled,
    ];
    return {
      trainCount: p.train.count,
      testCount: p.test.count,
      numClasses: C,
      attacks: p.attacks.map((a) => ({
        id: a.id,
        name: ATTACK_NAMES[a.id],
        target: a.target,
        count: a.indices.length,
        perClass: perClassOf(a.indices),
      })),
      probes: {
        clean: p.probes.indices.clean.length,
        backdoor: p.probes.indices.backdoor.length,
        mislabeled: p.probes.indices.mislabeled.length,
        backdoorLabel: p.probes.backdoorLabel,
        perClass: perClassOf(probeRows),
      },
      classCounts: labelCounts(p.train.labels, C),
      fingerprint: await splitFingerprint(p.train),
    };
  }

  /** Removals and AUROC of a detection over the run's training set, at `threshold`. */
  function summarizeFor(p: Prepared, det: Detection, threshold: number) {
    return summarizeDetection(
      det,
      p.truth,
      p.probes.probeKind,
      p.attacks,
      p.train.labels,
      p.numClasses,
      threshold,
    );
  }

  /** Saves a detection with its run; the retrained model (if any) no longer matches, so it goes. */
  async function storeDetection(run: RunRecord, record: DetectionRecord): Promise<DetectionRecord> {
    const { retrain: _stale, ...phases } = run.phases;
    await saveRun({ ...run, detection: record, phases });
    await deleteCheckpoint(run.id, 'retrain');
    return record;
  }

  async function trainingSplit(runId: string, phase: Phase, p: Prepared): Promise<ImageSplit> {
    if (phase === 'probationary') return p.train;
    if (phase === 'baseline') return p.poisoned;
    const run = await getRun(runId);
    if (!run.detection)
      throw new InvalidOptionError(
        'run detection before retraining: retraining drops the flagged examples',
      );
    return subsetSplit(p.train, keptRows(run.detection.summary.flagged, p.probes.probeKind));
  }

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
      return measureThroughput(tf, model, batchSize, steps);
    },

    /** Tensors and bytes tfjs holds now (for leak checks). */
    memory(): { numTensors: number; numBytes: number } {
      const m = tf.memory();
      return { numTensors: m.numTensors, numBytes: m.numBytes };
    },

    /** Builds the run's training set (attacks, probes) and stores its summary with the run. */
    async prepare(runId: string): Promise<PreparedSummary> {
      session = null;
      const p = await prepared(runId);
      const summary = await summarize(p);
      const run = await getRun(runId);
      await saveRun({ ...run, prepared: summary });
      return summary;
    },

    /**
     * Trains one phase of a run, resuming from its last checkpoint if there is one, saving a
     * checkpoint and the run's history after every epoch, and evaluating at the end. Returns
     * early (done = false) after `pause()`.
     */
    async train(
      runId: string,
      phase: Phase,
      onProgress?: (p: TrainProgress) => void,
    ): Promise<PhaseResult> {
      await ensure();
      pauseRequested = false;
      const p = await prepared(runId);
      const split = await trainingSplit(runId, phase, p);
      const run = await getRun(runId);
      const cfg = trainConfigOf(run.config, phase);
      const ckpt = await loadCheckpoint(runId, phase);
      const trainer = new Trainer(
        tf,
        cfg,
        split,
        p.numClasses,
        ckpt && ckpt.count === split.count ? ckpt : undefined,
      );
      const model = trainer.model.describe();
      try {
        // Warm the pipelines up before timing starts (WebGPU compiles shaders on first use).
        await trainer.predict(subsetSplit(split, [0]));
        while (!trainer.done) {
          const stats = await trainer.trainEpoch(onProgress, () => pauseRequested);
          if (!stats)
            return {
              history: trainer.history,
              done: false,
              rows: split.count,
              model,
            };
          if (run.config.train.evalEachEpoch) {
            onProgress?.({
              phase: 'evaluate',
              epoch: trainer.epoch - 1,
              epochs: cfg.epochs,
              done: 0,
              total: 1,
              imagesPerSecond: 0,
              etaSeconds: NaN,
            });
            await evaluateEpoch(trainer, p.test, p.triggered);
          }
          await saveCheckpoint(runId, phase, await trainer.checkpoint());
          const cur = await getRun(runId);
          await saveRun({
            ...cur,
            phases: {
              ...cur.phases,
              [phase]: { history: trainer.history, done: false, rows: split.count, model },
            },
          });
        }
        onProgress?.({
          phase: 'evaluate',
          epoch: cfg.epochs - 1,
          epochs: cfg.epochs,
          done: 0,
          total: 1,
          imagesPerSecond: 0,
          etaSeconds: NaN,
        });
        const evaluation = await evaluateModel(trainer, p.test, p.triggered);
        const result: PhaseResult = {
          history: trainer.history,
          evaluation,
          done: true,
          rows: split.count,
          model,
        };
        const cur = await getRun(runId);
        await saveRun({ ...cur, phases: { ...cur.phases, [phase]: result } });
        return result;
      } finally {
        trainer.dispose();
      }
    },

    /** Asks a running `train` to stop after the current step; the last checkpoint stays. */
    pause(): void {
      pauseRequested = true;
    },

    /** Forgets a phase's checkpoint and results (to train it again from scratch). */
    async resetPhase(runId: string, phase: Phase): Promise<void> {
      await deleteCheckpoint(runId, phase);
      const run = await getRun(runId);
      const phases = { ...run.phases };
      delete phases[phase];
      await saveRun({ ...run, phases });
    },

    /** Per-row data the Detect step draws and recounts with. */
    async detectionContext(runId: string): Promise<DetectionContext> {
      const p = await prepared(runId);
      const ckpt = await loadCheckpoint(runId, 'probationary');
      if (!ckpt)
        throw new InvalidOptionError('no trajectories yet: train the probationary model first');
      return {
        n: p.train.count,
        epochs: ckpt.config.epochs,
        trajectories: ckpt.trajectories,
        truth: p.truth,
        probeKind: p.probes.probeKind,
        labels: p.train.labels,
        attackIds: p.attacks.map((a) => a.id),
        origin: p.origin,
      };
    },

    /** Runs the detector over the probationary trajectories and stores the result with the run. */
    async detect(runId: string, options: DetectOptions): Promise<DetectionRecord> {
      const p = await prepared(runId);
      const ckpt = await loadCheckpoint(runId, 'probationary');
      const run = await getRun(runId);
      if (!ckpt || !run.phases.probationary?.done)
        throw new InvalidOptionError('the probationary model has not finished training yet');
      const det = detect(
        { n: p.train.count, epochs: ckpt.config.epochs, losses: ckpt.trajectories },
        probeRowsFromKinds(p.probes.probeKind),
        options,
      );
      const summary = summarizeFor(p, det, det.threshold);
      const record: DetectionRecord = {
        summary,
        scores: det.scores,
        k: det.k,
        looAuroc: det.looAuroc,
      };
      return storeDetection(run, record);
    },

    /** Stores a new threshold's removals (the Detect step's slider) with the run. */
    async setThreshold(runId: string, threshold: number): Promise<DetectionRecord> {
      const p = await prepared(runId);
      const run = await getRun(runId);
      if (!run.detection) throw new InvalidOptionError('run detection first');
      const det = {
        method: run.detection.summary.method as DetectOptions['method'],
        k: run.detection.k,
        scores: run.detection.scores,
        threshold,
      };
      const summary = summarizeFor(p, det, threshold);
      const record = { ...run.detection, summary };
      return storeDetection(run, record);
    },

    /** Images and labels of some training rows (for galleries of suspicious examples). */
    async trainingImages(runId: string, rows: number[]): Promise<ImageSplit> {
      return subsetSplit((await prepared(runId)).train, rows);
    },

    /** Assembles and stores the report once both models are evaluated. */
    async report(runId: string): Promise<ReturnType<typeof buildReport>> {
      const p = await prepared(runId);
      const run = await getRun(runId);
      const undefendedPhase = run.config.separateBaseline
        ? run.phases.baseline
        : run.phases.probationary;
      const retrain = run.phases.retrain;
      if (!undefendedPhase?.evaluation || !retrain?.evaluation || !run.detection)
        throw new InvalidOptionError('finish training, detection and retraining first');
      const report = buildReport({
        datasetName: run.datasetName,
        classes: p.classes,
        trainCount: p.train.count,
        testCount: p.test.count,
        config: run.config,
        attacks: p.attacks,
        probes: { n: run.config.probes.n, backdoorLabel: p.probes.backdoorLabel },
        summary: run.detection.summary,
        undefended: undefendedPhase.evaluation,
        defended: retrain.evaluation,
        historyUndefended: run.phases.probationary?.history ?? [],
        historyDefended: retrain.history,
        fingerprint: run.prepared?.fingerprint,
      });
      await saveRun({ ...run, report });
      return report;
    },
  };
}
