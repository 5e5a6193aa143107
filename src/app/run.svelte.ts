import { proxy } from 'comlink';
import {
  preset,
  retrainOptionsOf,
  withoutRetrainOptions,
  type PresetName,
  type RunConfig,
} from '../core/experiment.ts';
import type { DetectionSummary } from '../core/report.ts';
import type { DetectOptions } from '../core/detect/index.ts';
import { describeError } from '../core/errors.ts';
import {
  BASELINE_NAMES,
  dataKey,
  firstRound,
  phaseName,
  PHASES,
  type BaselineName,
  type DetectionContext,
  type Phase,
  type RunRecord,
  type TrainProgress,
} from '../core/run.ts';
import { cancellable, cancelTrainer, trainer } from './compute.ts';
import { decodeConfig, encodeConfig } from './url-state.ts';

export interface TrainingStatus {
  runId: string;
  phase: Phase;
  progress: TrainProgress | null;
  startedAt: number;
  pausing: boolean;
}

/** A question for the user before something is discarded; `answer` settles `ask`'s promise. */
export interface Question {
  title: string;
  message: string;
  confirmLabel: string;
  answer: (yes: boolean) => void;
}

/**
 * The page's view of runs. The trainer worker owns every run record (it validates and stores);
 * this class sends it requests and shows the snapshots it returns. `config` is the form the user
 * edits: before a run is built it is the configuration to build; afterwards it is copied from each
 * snapshot, and changing it sends the change (asking first when results would be discarded).
 * The configuration round-trips through the URL hash, so a demo can be shared as a link.
 */
export class RunState {
  config = $state<RunConfig>(preset('quick'));
  record = $state.raw<RunRecord | null>(null);
  /** Every stored run, newest first (the history). */
  runs = $state.raw<RunRecord[]>([]);
  training = $state<TrainingStatus | null>(null);
  context = $state.raw<DetectionContext | null>(null);
  /** Threshold being explored on the Detect step (applied with `applyThreshold`). */
  threshold = $state<number | null>(null);
  /** Removals at the explored threshold, recounted by the worker. */
  exploredSummary = $state.raw<DetectionSummary | null>(null);
  busy = $state<string | null>(null);
  question = $state<Question | null>(null);

  /**
   * What the Detect step's histogram and slider show: the explored threshold's summary, else the
   * stored first round's (a second round, when there is one, is shown beside it).
   */
  liveSummary = $derived.by((): DetectionSummary | null =>
    this.threshold !== null && this.exploredSummary
      ? this.exploredSummary
      : this.record?.detection
        ? firstRound(this.record.detection)
        : null,
  );

  private summarizing = false;

  /** Loads the run named in the URL (or the newest one), else applies a configuration from the URL. */
  async init(): Promise<void> {
    const { runId, config } = decodeConfig(location.hash);
    if (config) this.config = config;
    await this.refreshRuns();
    const run = runId ? this.runs.find((r) => r.id === runId) : this.runs[0];
    if (run && (!config || runId)) this.show(run);
    this.syncUrl();
    if (this.record && !this.training) {
      // A phase interrupted by a reload or a closed tab (not paused by the user) goes on by itself.
      const r = this.record;
      const interrupted = PHASES.find((p) => {
        const x = r.phases[p];
        return x && !x.done && !x.paused && x.history.length > 0;
      });
      if (interrupted) this.resumed = interrupted;
    }
  }

  /** The phase `init` found interrupted; the app resumes it once compute has started. */
  resumed = $state<Phase | null>(null);

  applyPreset(name: PresetName, gtsrb = false): void {
    this.config = preset(name, gtsrb);
    this.syncUrl();
  }

  syncUrl(): void {
    const hash = encodeConfig(this.config, this.isBuiltFromForm() ? this.record?.id : undefined);
    if (location.hash !== hash) history.replaceState(null, '', hash);
  }

  /** The stored run was built from the selected dataset and the form's data settings. */
  isCurrent(datasetId: string | null): boolean {
    return !!this.record && this.record.datasetId === datasetId && this.isBuiltFromForm();
  }

  private isBuiltFromForm(): boolean {
    return (
      !!this.record &&
      dataKey(this.record.config) === dataKey($state.snapshot(this.config) as RunConfig)
    );
  }

  /** Asks the user (a dialog) and resolves with the answer. */
  ask(title: string, message: string, confirmLabel = 'Go on'): Promise<boolean> {
    this.question?.answer(false);
    return new Promise((resolve) => {
      this.question = {
        title,
        message,
        confirmLabel,
        answer: (yes) => {
          this.question = null;
          resolve(yes);
        },
      };
    });
  }

  /**
   * Sends a request that may discard results; when the worker says it would, asks the user and
   * repeats it confirmed. Resolves with the new snapshot, or null when the user said no.
   */
  private async confirming(
    send: (confirm: boolean) => Promise<RunRecord>,
    title: string,
  ): Promise<RunRecord | null> {
    try {
      return await send(false);
    } catch (e) {
      const { name, message } = describeError(e);
      if (name !== 'ConfirmationNeededError') throw e;
      const sentence = message.charAt(0).toUpperCase() + message.slice(1) + '.';
      if (!(await this.ask(title, sentence, 'Discard and go on'))) return null;
      return send(true);
    }
  }

  /** Stores the form's training and detection settings with the run (asking before discarding results). */
  async saveTrainSettings(): Promise<void> {
    this.syncUrl();
    const rec = this.record;
    if (!rec || !this.isBuiltFromForm()) return;
    const form = $state.snapshot(this.config) as RunConfig;
    const next: RunConfig = {
      ...withoutRetrainOptions(rec.config),
      train: form.train,
      detect: form.detect,
      separateBaseline: form.separateBaseline,
      // Only when on, as the presets write it (absent = off, the paper's retraining).
      ...retrainOptionsOf(form),
    };
    const id = rec.id;
    const r = await this.confirming(
      (confirm) => trainer().setConfig(id, next, confirm),
      'Change the settings?',
    );
    this.show(r ?? (await this.fetch(id)));
  }

  /**
   * Builds a new run for the dataset and the form's configuration. The run shown before stays in
   * the history (nothing is deleted); its results are one click away there.
   */
  async prepare(datasetId: string, datasetName: string): Promise<void> {
    const config = $state.snapshot(this.config) as RunConfig;
    this.busy = 'Building the training set…';
    try {
      const created = await trainer().createRun({ datasetId, datasetName, config });
      try {
        this.show(await trainer().prepare(created.id));
      } catch (e) {
        await trainer().deleteRun(created.id);
        throw e;
      }
      await this.refreshRuns();
    } finally {
      this.busy = null;
    }
  }

  /** Makes a stored run the current one (training of another run goes on meanwhile). */
  async open(id: string): Promise<void> {
    this.show(await this.fetch(id));
  }

  async rename(id: string, name: string): Promise<void> {
    const r = await trainer().rename(id, name);
    if (this.record?.id === id) this.record = r;
    await this.refreshRuns();
  }

  /** Deletes a run and its checkpoints after asking. */
  async remove(id: string): Promise<void> {
    const r = this.runs.find((x) => x.id === id);
    if (this.training?.runId === id) return;
    const ok = await this.ask(
      'Delete this run?',
      `“${r?.name ?? id}” and everything it trained and measured will be deleted from this browser.`,
      'Delete',
    );
    if (!ok) return;
    await trainer().deleteRun(id);
    if (this.record?.id === id) {
      this.record = null;
      this.context = null;
    }
    await this.refreshRuns();
    this.syncUrl();
  }

  async refreshRuns(): Promise<void> {
    this.runs = await trainer().listRuns();
  }

  /** Trains a phase (resuming from its checkpoint), streaming progress; returns when done or paused. */
  async train(phase: Phase): Promise<void> {
    const id = this.record?.id;
    if (!id || this.training) return;
    this.training = {
      runId: id,
      phase,
      progress: null,
      startedAt: performance.now(),
      pausing: false,
    };
    try {
      const r = await cancellable((api) =>
        api.train(
          id,
          phase,
          proxy((p: TrainProgress) => {
            if (this.training) this.training.progress = p;
          }),
          proxy((r: RunRecord) => {
            if (this.record?.id === r.id) this.record = r;
          }),
        ),
      );
      // The user may be looking at another run (the recorded demo) meanwhile: leave them there.
      if (this.record?.id === r.id) {
        this.show(r);
        if (phase === 'probationary') await this.loadContext().catch(() => undefined);
      }
    } catch (e) {
      if (describeError(e).name !== 'CancelledError') throw e;
    } finally {
      this.training = null;
      void this.refreshRuns();
    }
  }

  pause(): void {
    if (!this.training) return;
    this.training.pausing = true;
    void trainer().pause(this.training.runId);
  }

  /**
   * Stops training at once (the worker is replaced on the same backend; the pending call rejects
   * with a CancelledError) and, after asking, discards the phase's progress.
   */
  async cancel(): Promise<void> {
    const t = this.training;
    if (!t) return;
    await cancelTrainer(`training of the ${phaseName(t.phase)} model`);
    this.training = null;
    await this.discard(t.phase, t.runId);
  }

  /** Forgets a phase's results and checkpoint (and everything downstream), after asking. */
  async discard(phase: Phase, id = this.record?.id): Promise<void> {
    if (!id) return;
    const ok = await this.ask(
      'Discard this model?',
      `The ${phaseName(phase)} model's finished epochs${
        phase === 'probationary'
          ? ', its trajectories and the detection'
          : phase === 'recheck'
            ? ", its trajectories, the second round's removals and the retrained model"
            : ''
      } will be deleted; training starts again from scratch.`,
      'Discard',
    );
    // Kept: it waits for the user, like a pause (a reload does not start it again).
    const r = ok ? await trainer().resetPhase(id, phase) : await trainer().markPaused(id, phase);
    if (!this.record || this.record.id === r.id) this.show(r);
  }

  async loadContext(): Promise<void> {
    if (!this.record) return;
    this.context = await trainer().detectionContext(this.record.id);
  }

  async detect(options: DetectOptions): Promise<void> {
    const rec = this.record;
    if (!rec) return;
    this.busy = 'Scoring every trajectory…';
    try {
      const r = await this.confirming(
        (confirm) => trainer().detect(rec.id, options, confirm),
        'Detect again?',
      );
      if (!r) return;
      this.threshold = null;
      this.show(r);
      if (!this.context) await this.loadContext();
    } finally {
      this.busy = null;
    }
  }

  /** Explores a threshold: the worker recounts the removals (the latest value wins). */
  explore(threshold: number | null): void {
    this.threshold = threshold;
    if (threshold === null || this.summarizing || !this.record?.detection) return;
    this.summarizing = true;
    const id = this.record.id;
    void trainer()
      .summarizeAt(id, threshold)
      .then((s) => {
        if (this.threshold === threshold) this.exploredSummary = s;
      })
      .finally(() => {
        this.summarizing = false;
        // A newer value arrived while the worker counted: count that one too.
        if (this.threshold !== null && this.threshold !== threshold) this.explore(this.threshold);
      });
  }

  /**
   * Chooses the defenses compared beside BaDLoss and the ones retrained (asking before a
   * retrained model is discarded), then computes the verdicts still missing.
   */
  async setDefenses(defenses: BaselineName[], retrain: BaselineName[]): Promise<void> {
    const rec = this.record;
    if (!rec) return;
    const next: RunConfig = {
      ...rec.config,
      defenses: BASELINE_NAMES.filter((d) => defenses.includes(d)),
      retrainDefenses: BASELINE_NAMES.filter((d) => retrain.includes(d) && defenses.includes(d)),
    };
    const r = await this.confirming(
      (confirm) => trainer().setConfig(rec.id, next, confirm),
      'Change the compared defenses?',
    );
    if (!r) return this.show(await this.fetch(rec.id));
    this.show(r);
    if (r.detection && (r.config.defenses ?? []).some((d) => !r.defenses?.[d])) {
      this.busy = 'Running the other defenses…';
      try {
        this.show(await trainer().compareDefenses(r.id));
      } finally {
        this.busy = null;
      }
    }
  }

  async applyThreshold(): Promise<void> {
    const rec = this.record;
    const t = this.threshold;
    if (!rec || t === null) return;
    const r = await this.confirming(
      (confirm) => trainer().setThreshold(rec.id, t, confirm),
      'Apply the new threshold?',
    );
    if (!r) return;
    this.threshold = null;
    this.show(r);
  }

  async buildReport(): Promise<void> {
    if (!this.record) return;
    this.show(await trainer().report(this.record.id));
    void this.refreshRuns();
  }

  async reload(id = this.record?.id): Promise<void> {
    if (id) this.show(await this.fetch(id));
  }

  private async fetch(id: string): Promise<RunRecord> {
    const r = await trainer().findRun(id);
    if (!r) throw new Error(`run ${id} is no longer stored`);
    return r;
  }

  /** Shows a snapshot; the form follows the stored configuration. */
  private show(r: RunRecord): void {
    const switched = this.record?.id !== r.id;
    this.record = r;
    this.config = structuredClone(r.config);
    if (switched) {
      this.context = null;
      this.threshold = null;
      this.exploredSummary = null;
    }
    this.syncUrl();
  }
}
