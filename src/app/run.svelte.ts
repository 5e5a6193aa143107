import { proxy } from 'comlink';
import type { RunConfig } from '../core/experiment.ts';
import { preset, type PresetName } from '../core/experiment.ts';
import type { DetectionSummary } from '../core/report.ts';
import { summarizeDetection } from '../core/report.ts';
import type { DetectOptions } from '../core/detect/index.ts';
import {
  findRun,
  listRuns,
  saveRun,
  deleteRun,
  SCHEMA_VERSION,
  type Phase,
  type RunRecord,
} from '../storage/runs.ts';
import type { TrainProgress } from '../ml/train.ts';
import type { DetectionContext } from '../ml/trainer-api.ts';
import { restartTrainer, trainer } from './compute.ts';
import { decodeConfig, encodeConfig } from './url-state.ts';

/** The settings that decide the training set (a change means a new run). */
function dataKey(c: RunConfig): string {
  return JSON.stringify([c.mode, c.attacks, c.probes, c.limit ?? null, c.seed]);
}

export interface TrainingStatus {
  phase: Phase;
  progress: TrainProgress | null;
  startedAt: number;
  pausing: boolean;
}

/**
 * The current run: its configuration (a draft until the training set is built), its stored record
 * with every step's result, and the live training status. The configuration round-trips through
 * the URL hash, so a demo can be shared as a link.
 */
export class RunState {
  config = $state<RunConfig>(preset('quick'));
  record = $state.raw<RunRecord | null>(null);
  training = $state<TrainingStatus | null>(null);
  context = $state.raw<DetectionContext | null>(null);
  /** Threshold being explored on the Detect step (applied with `applyThreshold`). */
  threshold = $state<number | null>(null);
  busy = $state<string | null>(null);

  /** Removals recounted live at the explored threshold, on the page (pure core code). */
  liveSummary = $derived.by((): DetectionSummary | null => {
    const det = this.record?.detection;
    const ctx = this.context;
    if (!det || !ctx || this.threshold === null) return det?.summary ?? null;
    const attacks = ctx.attackIds.map((id) => ({ id }));
    return summarizeDetection(
      {
        method: det.summary.method as DetectOptions['method'],
        scores: det.scores,
        threshold: this.threshold,
      },
      ctx.truth,
      ctx.probeKind,
      attacks,
      ctx.labels,
      this.record!.prepared!.numClasses,
      this.threshold,
    );
  });

  /** Loads the run named in the URL (or the newest one), else applies a configuration from the URL. */
  async init(): Promise<void> {
    const { runId, config } = decodeConfig(location.hash);
    if (config) this.config = config;
    const run = runId ? await findRun(runId) : (await listRuns())[0];
    if (run && (!config || runId)) {
      this.record = run;
      this.config = structuredClone(run.config);
    }
    this.syncUrl();
  }

  applyPreset(name: PresetName, gtsrb = false): void {
    this.config = preset(name, gtsrb);
    this.syncUrl();
  }

  syncUrl(): void {
    const hash = encodeConfig(this.config, this.record?.id);
    if (location.hash !== hash) history.replaceState(null, '', hash);
  }

  /** The stored run was built from the selected dataset and the draft's data settings (attacks, probes, subsample, seed). */
  isCurrent(datasetId: string | null): boolean {
    return (
      !!this.record &&
      this.record.datasetId === datasetId &&
      dataKey(this.record.config) === dataKey($state.snapshot(this.config) as RunConfig)
    );
  }

  /** Stores the training and detection settings with the run, while no training has started. */
  async saveTrainSettings(): Promise<void> {
    this.syncUrl();
    const rec = this.record;
    if (!rec || Object.keys(rec.phases).length > 0) return;
    const snap = $state.snapshot(this.config) as RunConfig;
    const next = {
      ...rec,
      config: {
        ...rec.config,
        train: snap.train,
        detect: snap.detect,
        separateBaseline: snap.separateBaseline,
      },
    };
    await saveRun(next);
    this.record = next;
  }

  /** Starts a fresh run for the dataset and configuration and builds its training set. */
  async prepare(datasetId: string, datasetName: string): Promise<void> {
    const config = $state.snapshot(this.config) as RunConfig;
    const record: RunRecord = {
      schema: SCHEMA_VERSION,
      id: crypto.randomUUID(),
      datasetId,
      datasetName,
      config,
      createdAt: Date.now(),
      updatedAt: Date.now(),
      phases: {},
    };
    await saveRun(record);
    this.busy = 'Building the training set…';
    try {
      await trainer().prepare(record.id);
      if (this.record) await deleteRun(this.record.id);
      this.context = null;
      this.threshold = null;
      await this.reload(record.id);
      this.syncUrl();
    } catch (e) {
      await deleteRun(record.id);
      throw e;
    } finally {
      this.busy = null;
    }
  }

  async reload(id = this.record?.id): Promise<void> {
    if (!id) return;
    this.record = (await findRun(id)) ?? null;
  }

  /** Trains a phase (resuming from its checkpoint), streaming progress; returns when done or paused. */
  async train(phase: Phase): Promise<void> {
    const id = this.record?.id;
    if (!id || this.training) return;
    this.training = { phase, progress: null, startedAt: performance.now(), pausing: false };
    try {
      await trainer().train(
        id,
        phase,
        proxy((p: TrainProgress) => {
          if (this.training) this.training.progress = p;
          if (p.phase === 'record' && p.done === p.total) void this.reload(id);
        }),
      );
    } finally {
      this.training = null;
      await this.reload(id);
      if (phase === 'probationary') await this.loadContext().catch(() => undefined);
    }
  }

  pause(): void {
    if (!this.training) return;
    this.training.pausing = true;
    void trainer().pause();
  }

  /** Cancels training by terminating the worker; the phase's checkpoint and results are removed. */
  async cancel(): Promise<void> {
    const id = this.record?.id;
    const phase = this.training?.phase;
    restartTrainer();
    this.training = null;
    if (id && phase) await trainer().resetPhase(id, phase);
    await this.reload(id);
  }

  async loadContext(): Promise<void> {
    if (!this.record) return;
    this.context = await trainer().detectionContext(this.record.id);
  }

  async detect(options: DetectOptions): Promise<void> {
    if (!this.record) return;
    this.busy = 'Scoring every trajectory…';
    try {
      await trainer().detect(this.record.id, options);
      this.threshold = null;
      await this.reload();
      if (!this.context) await this.loadContext();
    } finally {
      this.busy = null;
    }
  }

  async applyThreshold(): Promise<void> {
    if (!this.record || this.threshold === null) return;
    await trainer().setThreshold(this.record.id, this.threshold);
    this.threshold = null;
    await this.reload();
  }

  async buildReport(): Promise<void> {
    if (!this.record) return;
    await trainer().report(this.record.id);
    await this.reload();
  }
}
