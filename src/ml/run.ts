import { validateRunConfig } from '../core/config.ts';
import {
  IMAGE_BYTES,
  labelCounts,
  splitFingerprint,
  subsetSplit,
  type Dataset,
  type ImageSplit,
} from '../core/dataset.ts';
import {
  DEFAULT_TARGET_FPR,
  detect,
  flaggedRows,
  type Detection,
  type DetectOptions,
} from '../core/detect/index.ts';
import { nearestNeighbours, probeRowsFromKinds, type NearestFn } from '../core/detect/knn.ts';
import { CancelledError, InvalidOptionError, LabError } from '../core/errors.ts';
import {
  keptRows,
  prepareExperiment,
  preset,
  withoutRetrainOptions,
  type Prepared,
  type RunConfig,
} from '../core/experiment.ts';
import { ATTACK_NAMES } from '../core/attacks/triggers.ts';
import type { ResolvedAttack, TriggeredTestSet } from '../core/attacks/plan.ts';
import { parseNpy } from '../core/formats/npy.ts';
import { readTruthFile, type TruthFile } from '../core/truth.ts';
import { PROBE_BACKDOOR, PROBE_CLEAN, PROBE_MISLABELED, PROBE_NONE } from '../core/probes.ts';
import { capPerClass } from '../core/detect/calibrate.ts';
import { caveatLine, runDetectionCaveats } from '../core/verdict.ts';
import { probeFit, type ProbeFit } from '../core/detect/fit.ts';
import { mirrorGaps } from '../core/detect/mirror.ts';
import { accuracy } from '../core/metrics.ts';
import { classPrior, priorWeights } from '../core/reweight.ts';
import { pca2 } from '../core/embed.ts';
import { PhaseProgress } from '../core/progress.ts';
import { decodeRunBundle, encodeRunBundle } from '../core/run-bundle.ts';
import { compareDefenses } from '../core/comparison.ts';
import { countRemovals } from '../core/removals.ts';
import {
  buildReport,
  secondRoundReport,
  detectionSummaryOf,
  summarizeDetection,
  type DetectionSummary,
  type ModelEvaluation,
} from '../core/report.ts';
import {
  BASELINE_NAMES,
  clearFrom,
  configChange,
  dataKey,
  defenseOfPhase,
  firstRound,
  hasSecondRound,
  phaseName,
  secondRoundPending,
  type SecondRoundRecord,
  type BaselineName,
  type DefenseRecord,
  defaultRunName,
  getRun,
  MemoryRunStore,
  nextStage,
  RETRAIN_STRIPES,
  retrainEpochs,
  phaseEpochs,
  removedByPhase,
  retrainRowCount,
  stagesWithResults,
  testsThatRan,
  type Checkpoint,
  type DetectionContext,
  type DetectionRecord,
  type Phase,
  type PhaseResult,
  type PreparedSummary,
  type RunRecord,
  type RunStore,
  type Stage,
  type TrainConfig,
  type TrainProgress,
} from '../core/run.ts';
import type { Trainer } from './train.ts';
import { DEFENSE_LABELS, runDefenses, summarizeDefense } from '../core/defenses/index.ts';

/** Run records written by this version (IndexedDB, files). */
export const RUN_SCHEMA = 1;

/** A change would discard results; nothing was changed. Ask the user, then repeat with `confirm`. */
export class ConfirmationNeededError extends LabError {
  override name = 'ConfirmationNeededError';
}

/** A fresh trainer for a phase, on whatever engine the front end set up, resuming from `checkpoint`. */
export type TrainerFactory = (
  cfg: TrainConfig,
  split: ImageSplit,
  numClasses: number,
  checkpoint?: Checkpoint,
) => Trainer | Promise<Trainer>;

/** What the orchestrator runs on: a store for runs, datasets by id, and a training engine. */
export interface RunDeps {
  store: RunStore;
  loadDataset: (id: string) => Promise<Dataset>;
  createTrainer: TrainerFactory;
  /** The k-nearest-neighbour kernel of detection (core's pure one when absent). */
  nearest?: NearestFn;
  newId?: () => string;
  now?: () => number;
}

/** Hooks and controls of a long call (a training phase, a whole run). */
export interface RunCall {
  /** Live progress of the training phase in progress. */
  onProgress?: (phase: Phase, p: TrainProgress) => void;
  /** The stored run after every change (each epoch, each stage). */
  onUpdate?: (r: RunRecord) => void;
  /** One human-readable line per event (the CLI's log). */
  log?: (line: string) => void;
  /** Aborting rejects the call with a CancelledError after the current step; the last epoch's checkpoint stays. */
  signal?: AbortSignal;
  /** Polled between steps: true makes the call return with the phase unfinished (a pause). */
  shouldPause?: () => boolean;
}

/**
 * The recipe of a phase: the run's recipe with its own seed. Only the probationary models'
 * trajectories (the first and the second detection round's) are used, so the retrained and
 * baseline models record from their training pass (free) instead of a separate evaluation pass.
 * `rows` (a retraining's kept rows, of the first model's `full`) sets its epochs with
 * `retrainMatchSteps` (retrainEpochs); with `retrainReweight`, its rows' `labels` and the
 * `prior` to reweight them to (classPrior of the test split) set its class weights.
 */
export function trainConfigOf(
  cfg: RunConfig,
  phase: Phase = 'probationary',
  rows?: { kept: number; full: number; labels?: ArrayLike<number>; prior?: number[] },
): TrainConfig {
  const { evalEachEpoch: _unused, ...train } = cfg.train;
  // Every retraining (BaDLoss's and each compared defense's) shares one seed, so two retrained
  // models differ only in the rows they dropped. The second round's model gets a seed of its own
  // (docs/detection.md measured it so).
  const offset =
    phase === 'probationary' ? 0 : phase === 'baseline' ? 2 : phase === 'recheck' ? 3 : 1;
  const probing = phase === 'probationary' || phase === 'recheck';
  // The sub-pixel jitter and the stripes harden every retraining alike (BaDLoss's and each
  // compared defense's), never a model whose losses are read or the undefended one.
  const retraining = defenseOfPhase(phase) !== null;
  const jitter = !!cfg.retrainJitter && retraining;
  const stripes = !!cfg.retrainStripes && retraining;
  if (retraining && cfg.retrainReweight && !rows?.labels)
    throw new Error(
      `trainConfigOf: the ${phase} phase reweights its classes: pass its rows' labels`,
    );
  // No prior (a dataset without a test split): nothing to reweight to.
  const reweight = !!cfg.retrainReweight && retraining && rows?.labels && rows.prior;
  if (retraining && cfg.retrainMatchSteps && !rows)
    throw new Error(
      `trainConfigOf: the ${phase} phase matches the first model's steps: pass its rows`,
    );
  const epochs =
    retraining && rows
      ? retrainEpochs(train.epochs, cfg.retrainMatchSteps, rows.kept, rows.full)
      : train.epochs;
  return {
    ...train,
    epochs,
    record: probing ? train.record : 'train',
    seed: cfg.seed + offset,
    ...(jitter ? { jitter } : {}),
    ...(stripes ? { waves: { ...RETRAIN_STRIPES } } : {}),
    ...(reweight ? { classWeights: priorWeights(rows.labels!, rows.prior!) } : {}),
  };
}

/**
 * What trainConfigOf needs to know of a phase's training split `split` of the experiment `p`: its
 * rows against the first model's (the matched steps) and their labels against the test split's
 * class frequencies (the class weights).
 */
export function retrainRows(p: Prepared, split: ImageSplit) {
  return {
    kept: split.count,
    full: p.train.count,
    labels: split.labels,
    prior: classPrior(p.test.labels, p.numClasses),
  };
}

/** Clean test accuracy and ASR (+ boosted) of a trained model (SPEC §6), rates in [0, 1]. */
export async function evaluateModel(
  trainer: Trainer,
  test: ImageSplit,
  triggered: TriggeredTestSet[],
  onRows?: (done: number, total: number) => void,
): Promise<ModelEvaluation> {
  const total = evaluationRows(test, triggered);
  let before = 0;
  const predict = async (s: ImageSplit) => {
    const out = await trainer.predict(s, (d) => onRows?.(before + d, total));
    before += s.count;
    return out;
  };
  const cleanAccuracy = test.count ? accuracy(await predict(test), test.labels) : NaN;
  const asr: Record<string, number> = {};
  const asrBoosted: Record<string, number> = {};
  for (const t of triggered) {
    asr[t.attack] = accuracy(await predict(t.set), t.set.labels);
    if (t.boosted) asrBoosted[t.attack] = accuracy(await predict(t.boosted), t.boosted.labels);
  }
  return { cleanAccuracy, asr, asrBoosted };
}

/**
 * Rows evaluated after a phase's last epoch besides the test sets, all by the probationary model:
 * with the mirror test on, its two passes over the training rows; the features (one more).
 */
function finalPassRows(phase: Phase, rows: number, mirror: boolean): number {
  if (phase !== 'probationary') return 0;
  return (mirror ? 2 * rows : 0) + rows;
}

/** Each row's mirror gap under `trainer`'s model (core's `mirrorGaps`): two evaluation passes. */
export async function mirrorGapOf(
  trainer: Trainer,
  split: ImageSplit,
  onRows?: (done: number) => void,
): Promise<Float32Array> {
  const plain = await trainer.perExampleLosses(split, onRows);
  const mirrored = await trainer.perExampleLosses(split, (d) => onRows?.(split.count + d), true);
  return mirrorGaps(plain, mirrored);
}

/** Images an evaluation predicts: the test set and every triggered (and boosted) test set. */
export function evaluationRows(test: ImageSplit, triggered: TriggeredTestSet[]): number {
  return triggered.reduce((n, t) => n + t.set.count + (t.boosted?.count ?? 0), test.count);
}

/** Sizes of everything an experiment built (the Probes step's summary). */
export async function summarizePrepared(p: Prepared): Promise<PreparedSummary> {
  const C = p.numClasses;
  const perClassOf = (rows: number[]) => {
    const c = new Array<number>(C).fill(0);
    for (const i of rows) c[p.sourceLabels[i]]++;
    return c;
  };
  const { clean, backdoor, mislabeled } = p.probes.indices;
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
      clean: clean.length,
      backdoor: backdoor.length,
      mislabeled: mislabeled.length,
      backdoorLabel: p.probes.backdoorLabel,
      perClass: perClassOf([...clean, ...backdoor, ...mislabeled]),
    },
    classCounts: labelCounts(p.train.labels, C),
    fingerprint: await splitFingerprint(p.train),
  };
}

function stageWords(s: Stage): string {
  const words: Partial<Record<Stage, string>> = {
    prepare: 'the built training set',
    probationary: 'the probationary model and its trajectories',
    detect: 'the detection',
    recheck: "the second detection round's model and removals",
    baseline: 'the separate undefended model',
    retrain: 'the retrained model',
    report: 'the report',
  };
  return (
    words[s] ??
    `the model retrained without ${DEFENSE_LABELS[defenseOfPhase(s as Phase)!]}'s removals`
  );
}

/**
 * The run orchestrator: the one place that knows a run's stages (core's `nextStage`), what each
 * phase trains on, and what goes into the report. Every front end drives it — the tab's worker
 * (IndexedDB store), the CLI (memory or file store), the tests — and it is the only writer of run
 * records. Every write goes through the store atomically, so a crash between epochs or stages
 * loses at most the epoch in progress, and `runAll` continues where the stored run stopped.
 */
export class RunOrchestrator {
  private readonly deps: Required<RunDeps>;
  private cache: { key: string; prepared: Prepared } | null = null;

  constructor(deps: RunDeps) {
    this.deps = {
      nearest: nearestNeighbours,
      newId: () => crypto.randomUUID(),
      now: () => Date.now(),
      ...deps,
    };
  }

  get store(): RunStore {
    return this.deps.store;
  }

  /** A new run (not built yet) for a dataset and a configuration, validated. */
  async createRun(args: {
    datasetId: string;
    datasetName: string;
    config: unknown;
    name?: string;
  }): Promise<RunRecord> {
    const config = validateRunConfig(args.config);
    const now = this.deps.now();
    const r: RunRecord = {
      schema: RUN_SCHEMA,
      id: this.deps.newId(),
      name: args.name?.trim() || defaultRunName(args.datasetName, config),
      datasetId: args.datasetId,
      datasetName: args.datasetName,
      config,
      createdAt: now,
      updatedAt: now,
      phases: {},
    };
    await this.deps.store.putRun(r);
    return r;
  }

  async getRun(id: string): Promise<RunRecord> {
    return getRun(this.deps.store, id);
  }

  async listRuns(): Promise<RunRecord[]> {
    return this.deps.store.listRuns();
  }

  async rename(id: string, name: string): Promise<RunRecord> {
    const trimmed = name.trim();
    if (!trimmed || trimmed.length > 200)
      throw new InvalidOptionError(`run name "${name}" must have 1–200 characters`);
    return this.put({ ...(await this.getRun(id)), name: trimmed });
  }

  async deleteRun(id: string): Promise<void> {
    const phase = this.active.get(id);
    if (phase)
      throw new LabError(
        `the ${phaseName(phase)} model of this run is training: pause or cancel it first`,
      );
    if (this.cache?.key.startsWith(`${id}|`)) this.cache = null;
    await this.deps.store.deleteRun(id);
  }

  /**
   * Changes a run's configuration (validated here, the one place). A change that would discard
   * results (see core's `configChange`) throws ConfirmationNeededError unless `confirm`; with it,
   * the affected stages and everything downstream are cleared.
   */
  async setConfig(id: string, config: unknown, confirm = false): Promise<RunRecord> {
    const next = validateRunConfig(config);
    const r = await this.getRun(id);
    const change = configChange(r.config, next);
    if (change.what.length === 0) return r;
    this.refuseWhileTraining(r, `change ${change.what.join(' and ')}`);
    if (r.imported && change.clear.some((s) => s === 'prepare' || s === 'probationary'))
      throw new InvalidOptionError(
        `this run was recorded elsewhere (${r.imported.trajectoriesFile}): its training set and recipe cannot change here; record a new run and open it`,
      );
    // The report is rebuilt in an instant: losing it needs no confirmation.
    const lost = stagesWithResults(r, change.clear).filter((s) => s !== 'report');
    if (lost.length && !confirm)
      throw new ConfirmationNeededError(
        `changing ${change.what.join(' and ')} discards ${lost.map((s) => stageWords(s)).join(', ')} of this run; confirm, or start a new run with these settings`,
      );
    let run: RunRecord = { ...r, config: next };
    // New detection settings: BaDLoss's detection is redone (cheap); its second round and its
    // retraining go.
    if (JSON.stringify(r.config.detect) !== JSON.stringify(next.detect)) delete run.detection;
    if (run.defenses) {
      const kept = new Set(next.defenses ?? []);
      run.defenses = Object.fromEntries(
        Object.entries(run.defenses).filter(([d]) => kept.has(d as BaselineName)),
      );
    }
    const drop = new Set<Phase>();
    for (const s of change.clear) {
      const c = clearFrom(run, s);
      run = c.run;
      c.dropCheckpoints.forEach((p) => drop.add(p));
    }
    return this.put(run, [...drop]);
  }

  /** Builds the run's training set (attacks, probes) and stores its summary. Idempotent. */
  async prepare(id: string): Promise<RunRecord> {
    const r = await this.getRun(id);
    if (r.prepared) return r;
    const p = await this.prepared(r);
    return this.put({ ...r, prepared: await summarizePrepared(p) });
  }

  /**
   * Trains one phase, resuming from its last checkpoint, committing the run and a checkpoint after
   * every epoch, and evaluating the model at the end. Returns the stored run: the phase is done,
   * or unfinished after a pause. A cancel (aborted signal) rejects with CancelledError.
   */
  async train(id: string, phase: Phase, call: RunCall = {}): Promise<RunRecord> {
    let r = await this.getRun(id);
    if (!r.prepared) throw new InvalidOptionError('build the training set before training');
    if (phase === 'baseline' && !r.config.separateBaseline)
      throw new InvalidOptionError(
        'this run has no separate undefended model: turn the option on first',
      );
    if (phase === 'recheck' && !hasSecondRound(r))
      throw new InvalidOptionError(
        'this run has no second detection round: set its clean-removal budget in the detection settings first',
      );
    if (r.phases[phase]?.done && r.phases[phase]?.evaluation)
      return phase === 'recheck' && !r.detection?.secondRound
        ? this.put(await this.withSecondRound(r))
        : r;
    const was = r.phases[phase];
    if (was?.paused)
      r = await this.put({ ...r, phases: { ...r.phases, [phase]: { ...was, paused: false } } });
    const p = await this.prepared(r);
    const split = this.trainingSplit(r, phase, p);
    const cfg = trainConfigOf(r.config, phase, retrainRows(p, split));
    const ckpt = await this.deps.store.loadCheckpoint(id, phase);
    // A checkpoint of another recipe or training set (a stale file, another tab) is not resumed.
    const usable =
      ckpt &&
      ckpt.count === split.count &&
      ckpt.epoch <= cfg.epochs &&
      JSON.stringify(ckpt.config) === JSON.stringify(cfg)
        ? ckpt
        : undefined;
    if (this.active.has(id))
      throw new LabError(
        `the ${phaseName(this.active.get(id)!)} model of this run is already training`,
      );
    this.active.set(id, phase);
    let trainer: Trainer;
    try {
      trainer = await this.deps.createTrainer(cfg, split, p.numClasses, usable);
    } catch (e) {
      this.active.delete(id);
      throw e;
    }
    const model = trainer.model.describe();
    const wantsGaps = r.config.detect.mirror !== undefined;
    const stop = () => !!call.signal?.aborted || !!call.shouldPause?.();
    // Every pass this phase makes, counted as it is (core's one progress model).
    const evalRows = evaluationRows(p.test, p.triggered);
    const progress = new PhaseProgress(
      {
        epochs: cfg.epochs,
        startEpoch: trainer.epoch,
        trainRows: split.count,
        recordRows: cfg.record === 'eval' ? split.count : 0,
        evalRowsPerEpoch: r.config.train.evalEachEpoch ? evalRows : 0,
        finalEvalRows: evalRows + finalPassRows(phase, split.count, wantsGaps),
      },
      performance.now() / 1000,
    );
    const report = (pr: TrainProgress) =>
      call.onProgress?.(phase, {
        ...pr,
        ...progress.observe(pr.phase, pr.epoch, pr.done, pr.total, performance.now() / 1000),
      });
    const evaluatingAt = (epoch: number, total: number) => (done: number) =>
      report({ ...evaluating(epoch, cfg.epochs), done, total });
    try {
      while (!trainer.done) {
        const stats = await trainer.trainEpoch(report, stop);
        if (!stats) {
          if (call.signal?.aborted)
            throw new CancelledError(`training of the ${phaseName(phase)} model was cancelled`);
          call.log?.(`${phase}: paused after epoch ${trainer.epoch}`);
          // A pause the user asked for stays paused; a reloaded tab resumes unpaused phases.
          const cur = await this.getRun(id);
          const at = cur.phases[phase];
          return at
            ? this.put({ ...cur, phases: { ...cur.phases, [phase]: { ...at, paused: true } } })
            : cur;
        }
        if (r.config.train.evalEachEpoch) {
          const onRows = evaluatingAt(trainer.epoch - 1, evalRows);
          onRows(0);
          const e = await evaluateModel(trainer, p.test, p.triggered, onRows);
          stats.test = { cleanAccuracy: e.cleanAccuracy, asr: e.asr };
        }
        call.log?.(epochLine(phase, cfg.epochs, trainer.history.at(-1)!));
        const ck = await trainer.checkpoint();
        r = await this.getRun(id);
        const phases = {
          ...r.phases,
          [phase]: { history: trainer.history, done: false, rows: split.count, model },
        };
        r = { ...r, phases, updatedAt: this.deps.now() };
        await this.deps.store.commitEpoch(r, phase, ck);
        call.onUpdate?.(r);
      }
      const finalRows = evalRows + finalPassRows(phase, split.count, wantsGaps);
      const onFinal = evaluatingAt(cfg.epochs, finalRows);
      onFinal(0);
      const evaluation = await evaluateModel(trainer, p.test, p.triggered, onFinal);
      if (phase === 'probationary') {
        // Kept with the last checkpoint: with the mirror test on, its gaps (two evaluation passes
        // over the training rows; measured later from the weights if it is turned on later) and,
        // for the compared defenses (SPEC §10), the penultimate features.
        const ck = await trainer.checkpoint();
        let done = evalRows;
        if (wantsGaps) {
          ck.mirrorGap = await mirrorGapOf(trainer, split, (d) => onFinal(done + d));
          done += 2 * split.count;
        }
        ck.features = await this.featuresOf(trainer, split, (d) => onFinal(done + d));
        await this.deps.store.commitEpoch(await this.getRun(id), phase, ck);
      }
      const result: PhaseResult = {
        history: trainer.history,
        evaluation,
        done: true,
        rows: split.count,
        model,
      };
      r = await this.getRun(id);
      // A report built before this phase finished no longer shows everything: rebuild it.
      const { report: _stale, ...rest } = r;
      let next: RunRecord = { ...rest, phases: { ...r.phases, [phase]: result } };
      // The second round's model and its detection are stored in one write: a reload never
      // finds the model trained and its removals missing.
      if (phase === 'recheck') next = await this.withSecondRound(next);
      const done = await this.put(next);
      if (phase === 'recheck') call.log?.(secondRoundLine(done.detection!));
      call.onUpdate?.(done);
      return done;
    } finally {
      this.active.delete(id);
      trainer.dispose();
    }
  }

  /**
   * The probationary model's mirror gaps for the mirror test: from the checkpoint, or (a run
   * trained before they were kept) measured once with the stored weights — two evaluation passes,
   * no training. Undefined where the model is not here (a run recorded elsewhere): the test is
   * then skipped.
   */
  private async storedMirrorGap(r: RunRecord, p: Prepared): Promise<Float32Array | undefined> {
    const ck = await this.deps.store.loadCheckpoint(r.id, 'probationary');
    if (!ck) return undefined;
    if (ck.mirrorGap?.length === ck.count) return ck.mirrorGap;
    if (Object.keys(ck.weights).length === 0 || ck.count !== p.train.count) return undefined;
    return this.measureStored(r, ck, p, async (t) => {
      ck.mirrorGap = await mirrorGapOf(t, p.train);
      return ck.mirrorGap;
    });
  }

  /**
   * Measures something of the stored probationary model once — evaluation passes, no training —
   * and keeps it: `measure` runs on a trainer restored from its checkpoint `ck` (which has
   * weights) and sets what it measured on `ck`, which is then committed back, so the next call
   * reads it from there.
   */
  private async measureStored<T>(
    r: RunRecord,
    ck: Checkpoint,
    p: Prepared,
    measure: (trainer: Trainer) => Promise<T>,
  ): Promise<T> {
    const trainer = await this.deps.createTrainer(ck.config, p.train, p.numClasses, ck);
    let value: T;
    try {
      value = await measure(trainer);
    } finally {
      trainer.dispose();
    }
    await this.deps.store.commitEpoch(await this.getRun(r.id), 'probationary', ck);
    return value;
  }

  /** Penultimate features of every row of `split` (N × D). */
  private async featuresOf(
    trainer: Trainer,
    split: ImageSplit,
    onRows?: (done: number) => void,
  ): Promise<{ dim: number; values: Float32Array }> {
    const values = await trainer.features(split, onRows);
    return { dim: values.length / split.count, values };
  }

  /**
   * The probationary model's features: stored with its checkpoint, or (a run trained before
   * features were kept) computed once from the stored weights — an evaluation pass, no training.
   */
  private async storedFeatures(
    r: RunRecord,
    p: Prepared,
  ): Promise<{ dim: number; values: Float32Array }> {
    const ck = await this.deps.store.loadCheckpoint(r.id, 'probationary');
    if (!ck) throw new InvalidOptionError('train the probationary model before detection');
    if (ck.features) return ck.features;
    if (Object.keys(ck.weights).length === 0)
      throw new InvalidOptionError(
        'this run was trained elsewhere and has no model here: Spectral Signatures and Activation Clustering need its penultimate features; compare those where it was trained, or choose the trajectory- and image-based defenses',
      );
    return this.measureStored(r, ck, p, async (t) => {
      ck.features = await this.featuresOf(t, p.train);
      return ck.features;
    });
  }

  /** Marks an unfinished phase as paused by the user (a reload then leaves it waiting). */
  async markPaused(id: string, phase: Phase): Promise<RunRecord> {
    const r = await this.getRun(id);
    const at = r.phases[phase];
    if (!at || at.done || at.paused) return r;
    return this.put({ ...r, phases: { ...r.phases, [phase]: { ...at, paused: true } } });
  }

  /** Forgets a phase's checkpoint and results, and everything downstream of them. */
  async resetPhase(id: string, phase: Phase): Promise<RunRecord> {
    const r = await this.getRun(id);
    this.refuseWhileTraining(r, `discard the ${phaseName(phase)} model`);
    const { run, dropCheckpoints } = clearFrom(r, phase);
    return this.put(run, dropCheckpoints);
  }

  /**
   * Scores every trajectory of the probationary model (options default to the run's) and stores
   * the detection; new options become the run's. A retrained model no longer matches the new
   * removals, so it is dropped — which needs `confirm` when one exists.
   */
  async detect(id: string, options?: DetectOptions, confirm = false): Promise<RunRecord> {
    let r = await this.getRun(id);
    this.refuseWhileTraining(r, 'detect again');
    const config = options ? validateRunConfig({ ...r.config, detect: options }) : r.config;
    const p = await this.prepared(r);
    const ck = await this.deps.store.loadCheckpoint(id, 'probationary');
    if (!ck || !r.phases.probationary?.done)
      throw new InvalidOptionError('train the probationary model before detection');
    // Compute first, then commit the settings and the detection together: a detection that
    // fails (say, k larger than the probes allow) leaves the run as it was.
    const trajectories = { n: p.train.count, epochs: ck.config.epochs, losses: ck.trajectories };
    const mirrorGap =
      config.detect.mirror !== undefined ? await this.storedMirrorGap(r, p) : undefined;
    const det = detect(
      trajectories,
      probeRowsFromKinds(p.probes.probeKind),
      config.detect,
      // Labels let the threshold be calibrated per class and the per-class cap apply.
      { labels: p.train.labels, numClasses: p.numClasses, ...(mirrorGap ? { mirrorGap } : {}) },
      this.deps.nearest,
    );
    this.confirmDropping(r, [this.invalidatedBy({ ...r, config }, det, det.threshold)], confirm);
    r = await this.getRun(id);
    const stored = await this.storeDetection(
      { ...r, config },
      p,
      det,
      det.threshold,
      probeFit(trajectories, p.probes.probeKind),
    );
    return this.detectBaselines(stored.id);
  }

  /**
   * Runs the compared defenses the configuration lists and has no verdict from yet (SPEC §10),
   * on the probationary run's features, trajectories and images. Nothing else changes.
   */
  async detectBaselines(id: string): Promise<RunRecord> {
    const r = await this.getRun(id);
    const missing = (r.config.defenses ?? []).filter((d) => !r.defenses?.[d]);
    if (missing.length === 0) return r;
    const p = await this.prepared(r);
    const ck = await this.deps.store.loadCheckpoint(id, 'probationary');
    if (!ck || !r.phases.probationary?.done)
      throw new InvalidOptionError('train the probationary model before detection');
    if (r.imported && !r.datasetId && missing.includes('frequency'))
      throw new InvalidOptionError(
        'Frequency analysis looks at the images: open the recording again with its training set (the train.bin of the poison run)',
      );
    const needsFeatures = missing.some((d) => d === 'spectral' || d === 'activation-clustering');
    const features = needsFeatures ? await this.storedFeatures(r, p) : undefined;
    const results = runDefenses(missing, {
      labels: p.train.labels,
      numClasses: p.numClasses,
      probeKind: p.probes.probeKind,
      features,
      trajectories: { n: p.train.count, epochs: ck.config.epochs, losses: ck.trajectories },
      images: p.train.images,
      seed: r.config.seed,
    });
    const defenses: Partial<Record<BaselineName, DefenseRecord>> = {
      ...(await this.getRun(id)).defenses,
    };
    for (const res of results)
      defenses[res.name as BaselineName] = {
        summary: summarizeDefense(
          res,
          p.truth,
          p.probes.probeKind,
          p.attacks,
          p.train.labels,
          p.numClasses,
        ),
        scores: res.scores,
      };
    const cur = await this.getRun(id);
    const { report: _stale, ...rest } = cur;
    return this.put({ ...rest, defenses });
  }

  /** The probationary model's penultimate features (N × D), for `--save-features`. */
  async features(id: string): Promise<{ dim: number; values: Float32Array }> {
    const r = await this.getRun(id);
    return this.storedFeatures(r, await this.prepared(r));
  }

  /** Stores the removals at a new threshold (the Detect step's slider, applied). */
  async setThreshold(id: string, threshold: number, confirm = false): Promise<RunRecord> {
    if (!(threshold >= 0 && threshold <= 1))
      throw new InvalidOptionError(`threshold ${threshold} must be in [0, 1]`);
    const r = await this.getRun(id);
    this.refuseWhileTraining(r, 'change the threshold');
    if (!r.detection) throw new InvalidOptionError('run detection before choosing a threshold');
    const p = await this.prepared(r);
    const det = this.storedDetection(r);
    this.confirmDropping(r, [this.invalidatedBy(r, det, threshold)], confirm);
    // Store the cut where a re-detection reads it: rank-based detectors cut at 1 − rejectFraction,
    // a calibrated k-NN threshold at 1 − α (its scores are 1 − p), a fixed one at the threshold.
    // With the easiness and mirror tests the cut is at 1 − (α + α_e + α_m), and moving it scales
    // every budget alike (`unionOfTests`): the stored budgets give the same removals when detected
    // again (up to rows lying exactly on a scaled cut). The second round is the k-NN alone; it is
    // trained again anyway when the first round's removals change. A fixed cut (the
    // slider's ends) drops both tests, which need the calibrated threshold.
    const d = r.config.detect;
    const { easiness: _easiness, mirror: _mirror, ...withoutTests } = d;
    const budget = 1 - threshold;
    const alpha = d.targetFpr ?? DEFAULT_TARGET_FPR;
    // (a mirror test skipped for want of the model's gaps took no budget: it keeps its setting)
    const mirrorRan = r.detection.calibration?.mirror !== undefined;
    const scale = budget / (alpha + (d.easiness ?? 0) + (mirrorRan ? (d.mirror ?? 0) : 0));
    const detectCfg =
      d.method !== 'knn'
        ? { ...d, rejectFraction: budget }
        : d.threshold === 'auto' && threshold > 0 && threshold < 1
          ? {
              ...d,
              targetFpr: alpha * scale,
              ...(d.easiness !== undefined ? { easiness: d.easiness * scale } : {}),
              ...(d.mirror !== undefined && mirrorRan ? { mirror: d.mirror * scale } : {}),
            }
          : { ...withoutTests, threshold };
    const run = await this.storeDetection(
      { ...r, config: { ...r.config, detect: detectCfg } },
      p,
      det,
      threshold,
      r.detection.probeFit,
    );
    return run;
  }

  /**
   * Removals at a threshold, without storing anything (a live slider): recounted in O(N); the
   * ROC and AUROC do not depend on the threshold and stay as stored.
   */
  async summarizeAt(id: string, threshold: number): Promise<DetectionSummary> {
    const r = await this.getRun(id);
    if (!r.detection) throw new InvalidOptionError('run detection first');
    const p = await this.prepared(r);
    const counts = countRemovals(
      r.detection.scores,
      threshold,
      p.truth,
      p.probes.probeKind,
      p.attacks.map((a) => a.id),
      p.train.labels,
      p.numClasses,
    );
    return { ...firstRound(r.detection), ...counts, threshold };
  }

  /** Per-row data of the probationary run for the Detect step's pictures. */
  async detectionContext(id: string): Promise<DetectionContext> {
    const r = await this.getRun(id);
    const p = await this.prepared(r);
    const ck = await this.deps.store.loadCheckpoint(id, 'probationary');
    if (!ck)
      throw new InvalidOptionError('no trajectories yet: train the probationary model first');
    // The map of the epochs trained so far (the Detect step's Figure-3b picture).
    const E = ck.config.epochs;
    const done = Math.max(1, ck.epoch);
    const filled = new Float32Array(p.train.count * done);
    for (let i = 0; i < p.train.count; i++)
      filled.set(ck.trajectories.subarray(i * E, i * E + done), i * done);
    return {
      embedding: pca2(filled, p.train.count, done),
      n: p.train.count,
      epochs: ck.config.epochs,
      trajectories: ck.trajectories,
      truth: p.truth,
      probeKind: p.probes.probeKind,
      labels: p.train.labels,
      attackIds: p.attacks.map((a) => a.id),
      origin: p.origin,
      epochsDone: ck.epoch,
    };
  }

  /** Images and labels of some training rows (galleries of suspicious examples). */
  async trainingImages(id: string, rows: number[]): Promise<ImageSplit> {
    return subsetSplit((await this.prepared(await this.getRun(id))).train, rows);
  }

  /** Assembles and stores the report once the models are evaluated and detection has run. */
  async report(id: string): Promise<RunRecord> {
    const r = await this.getRun(id);
    const p = await this.prepared(r);
    const undefendedPhase = r.config.separateBaseline ? r.phases.baseline : r.phases.probationary;
    // A run recorded elsewhere has no retrained model here: its report is the detection's.
    const retrain = r.imported ? r.phases.probationary : r.phases.retrain;
    if (!undefendedPhase?.evaluation || !retrain?.evaluation || !r.detection)
      throw new InvalidOptionError('finish training, detection and retraining before the report');
    const report = buildReport({
      datasetName: r.datasetName,
      classes: p.classes,
      trainCount: p.train.count,
      testCount: p.test.count,
      config: r.config,
      attacks: p.attacks,
      probes: { n: r.config.probes.n, backdoorLabel: p.probes.backdoorLabel },
      summary: r.detection.summary,
      ...(r.detection.calibration ? { tests: testsThatRan(r) } : {}),
      ...(r.detection.secondRound
        ? {
            secondRound: secondRoundReport(
              r.detection.secondRound.targetFpr,
              r.detection.secondRound.first,
              r.detection.secondRound.summary,
              r.detection.secondRound.calibration?.easiness,
              r.detection.secondRound.calibration?.mirror,
            ),
          }
        : {}),
      undefended: undefendedPhase.evaluation,
      defended: retrain.evaluation,
      historyUndefended: r.phases.probationary?.history ?? [],
      historyDefended: retrain.history,
      fingerprint: r.prepared?.fingerprint,
      createdAt: new Date(this.deps.now()),
      defenses: compareDefenses(
        {
          badloss: r.detection.summary,
          ...Object.fromEntries(BASELINE_NAMES.map((d) => [d, r.defenses?.[d]?.summary])),
        },
        {
          badloss: retrain.evaluation,
          ...Object.fromEntries(
            BASELINE_NAMES.map((d) => [d, r.phases[`retrain:${d}`]?.evaluation]),
          ),
        },
      ),
    });
    return this.put({ ...r, report });
  }

  /** A finished run and its trajectories as one file (see core's run-bundle). */
  async exportBundle(id: string): Promise<Uint8Array> {
    const r = await this.getRun(id);
    const ck = await this.deps.store.loadCheckpoint(id, 'probationary');
    if (!ck || !r.phases.probationary?.done)
      throw new InvalidOptionError('train the probationary model before exporting the run');
    return encodeRunBundle(r, ck.trajectories, ck.config.epochs, ck.features, ck.mirrorGap);
  }

  /**
   * Stores a run from a bundle on `datasetId` (the dataset it was made from: the training set is
   * rebuilt from it and must have the fingerprint the run recorded). The probationary checkpoint
   * holds the trajectories but no weights: everything downstream of training can be looked at and
   * redone, the model itself cannot be resumed. Importing the same bundle again returns the run.
   */
  async importBundle(name: string, bytes: Uint8Array, datasetId: string): Promise<RunRecord> {
    const b = decodeRunBundle(name, bytes);
    const existing = await this.deps.store.findRun(b.run.id);
    if (existing) return existing;
    const run: RunRecord = { ...b.run, datasetId, schema: RUN_SCHEMA, updatedAt: this.deps.now() };
    validateRunConfig(run.config);
    const p = await this.prepared(run);
    const fingerprint = await splitFingerprint(p.train);
    if (fingerprint !== run.prepared!.fingerprint)
      throw new InvalidOptionError(
        `${name} was recorded on another training set (fingerprint ${run.prepared!.fingerprint.slice(0, 16)}, here ${fingerprint.slice(0, 16)}): open it with the dataset it was made from`,
      );
    const cfg = trainConfigOf(run.config, 'probationary');
    await this.deps.store.commitEpoch(run, 'probationary', {
      version: 1,
      config: cfg,
      numClasses: p.numClasses,
      count: p.train.count,
      epoch: b.epochs,
      step: 0,
      rngState: [],
      weights: {},
      optimizer: { m: {}, v: {} },
      trajectories: b.trajectories,
      history: run.phases.probationary!.history,
      ...(b.features ? { features: b.features } : {}),
      ...(b.mirrorGap ? { mirrorGap: b.mirrorGap } : {}),
    });
    return run;
  }

  /**
   * Opens trajectories recorded elsewhere (a `.npy`, N × E float32, e.g. from
   * integrations/pytorch) with the truth file `poison --probes` wrote, as a run whose training is
   * done: detection, the comparison and the report run here. With `datasetId` (the training set
   * the trajectories were recorded on, e.g. the imported train.bin) its images are used for
   * galleries and image-based defenses; its fingerprint must be the truth file's.
   */
  async importRecorded(args: {
    trajectoriesFile: string;
    npy: Uint8Array;
    truthFile: string;
    truthJson: unknown;
    datasetId?: string;
  }): Promise<RunRecord> {
    const { shape, data } = parseNpy(args.trajectoriesFile, args.npy);
    const [n, epochs] = shape;
    for (let i = 0; i < data.length; i++)
      if (!Number.isFinite(data[i]))
        throw new InvalidOptionError(
          `${args.trajectoriesFile}: row ${Math.floor(i / epochs)}, epoch ${i % epochs} is ${data[i]}; every loss must be finite — record that run again`,
        );
    const t = readTruthFile(args.truthFile, args.truthJson);
    if (t.count !== n)
      throw new InvalidOptionError(
        `${args.trajectoriesFile} has ${n} rows but ${args.truthFile} describes ${t.count}: they belong to different training sets`,
      );
    const file = args.truthJson as TruthFile;
    let datasetName = `${args.trajectoriesFile} (no images)`;
    if (args.datasetId) {
      const ds = await this.deps.loadDataset(args.datasetId);
      const train = ds.splits.train;
      if (!train || train.count !== n || (await splitFingerprint(train)) !== t.fingerprint)
        throw new InvalidOptionError(
          `${ds.name} is not the training set ${args.truthFile} was written for (rows or fingerprint differ): import the --out file of that poison run, or open the trajectories without images`,
        );
      datasetName = ds.name;
    }
    const attacks = t.attacks.map((a, k) => {
      const f = file.attacks?.[a.id];
      const indices: number[] = [];
      for (let i = 0; i < n; i++) if (t.truth[i] === k) indices.push(i);
      return {
        id: a.id,
        target: f?.target ?? 0,
        ratio: f?.params?.ratio ?? indices.length / n,
        strength: Number(f?.params?.strength ?? 1),
        indices,
      };
    });
    // Retrained where it was recorded: no retraining recipe of ours (jitter, stripes, steps) applies.
    const base = withoutRetrainOptions(preset('quick'));
    const config = validateRunConfig({
      ...base,
      mode: attacks.length ? 'benchmark' : 'audit',
      attacks: attacks.map((a) => ({ id: a.id, ratio: Math.min(1, Math.max(a.ratio, 1e-9)) })),
      probes: {
        n: Math.max(1, t.probes.clean.length),
        trigger: file.config?.probes?.trigger ?? 'patch',
        trusted: 'train-untouched',
      },
      train: { ...base.train, epochs },
      seed: file.seed ?? 0,
    });
    const now = this.deps.now();
    const probesOf = (kind: number) => [...Array(n).keys()].filter((i) => t.probeKind[i] === kind);
    const C = t.classes.length;
    const perClass = (rows: number[]) => {
      const c = new Array<number>(C).fill(0);
      for (const i of rows) c[t.labels[i]]++;
      return c;
    };
    const probeRows = [...t.probes.clean, ...t.probes.anomalous];
    const run: RunRecord = {
      schema: RUN_SCHEMA,
      id: this.deps.newId(),
      name: `${args.trajectoriesFile} (recorded elsewhere)`,
      datasetId: args.datasetId ?? '',
      datasetName,
      config,
      createdAt: now,
      updatedAt: now,
      imported: {
        trajectoriesFile: args.trajectoriesFile,
        truthFile: args.truthFile,
        truth: t.truth,
        probeKind: t.probeKind,
        labels: t.labels,
        classes: t.classes,
        attacks,
        backdoorLabel: file.config?.probes?.backdoorLabel ?? 0,
      },
      prepared: {
        trainCount: n,
        testCount: 0,
        numClasses: C,
        attacks: attacks.map((a) => ({
          id: a.id,
          name: ATTACK_NAMES[a.id as keyof typeof ATTACK_NAMES] ?? a.id,
          target: a.target,
          count: a.indices.length,
          perClass: perClass(a.indices),
        })),
        probes: {
          clean: probesOf(PROBE_CLEAN).length,
          backdoor: probesOf(PROBE_BACKDOOR).length,
          mislabeled: probesOf(PROBE_MISLABELED).length,
          backdoorLabel: file.config?.probes?.backdoorLabel ?? 0,
          perClass: perClass(probeRows),
        },
        classCounts: labelCounts(t.labels, C),
        fingerprint: t.fingerprint,
      },
      phases: {
        probationary: {
          history: [],
          done: true,
          rows: n,
          model: 'trained elsewhere',
          evaluation: { cleanAccuracy: NaN, asr: {}, asrBoosted: {} },
        },
      },
    };
    await this.deps.store.commitEpoch(run, 'probationary', {
      version: 1,
      config: trainConfigOf(config, 'probationary'),
      numClasses: C,
      count: n,
      epoch: epochs,
      step: 0,
      rngState: [],
      weights: {},
      optimizer: { m: {}, v: {} },
      trajectories: data,
      history: [],
    });
    return run;
  }

  /** Does one stage of a run. */
  async runStage(id: string, stage: Stage, call: RunCall = {}): Promise<RunRecord> {
    let r: RunRecord;
    switch (stage) {
      case 'prepare':
        r = await this.prepare(id);
        call.log?.(prepareLine(r));
        break;
      case 'detect': {
        const before = await this.getRun(id);
        r = before.detection ? await this.detectBaselines(id) : await this.detect(id);
        if (!before.detection) {
          call.log?.(detectLine(r.detection!));
          for (const c of runDetectionCaveats(r)) call.log?.(caveatLine(c));
        }
        for (const d of BASELINE_NAMES)
          if (r.defenses?.[d] && !before.defenses?.[d]) call.log?.(defenseLine(r.defenses[d]!));
        break;
      }
      case 'report':
        r = await this.report(id);
        break;
      default:
        if (stage === 'recheck')
          call.log?.(
            `recheck: a second probationary model on the ${this.trainingRows(await this.getRun(id), stage)} rows the first round kept`,
          );
        else if (stage !== 'probationary' && stage !== 'baseline')
          call.log?.(
            `${stage}: training on ${this.trainingRows(await this.getRun(id), stage)} rows for ${phaseEpochs(await this.getRun(id), stage).epochs} epochs`,
          );
        r = await this.train(id, stage, call);
    }
    call.onUpdate?.(r);
    return r;
  }

  /**
   * Runs every stage not done yet, in order (core's `nextStage`), and returns the complete run —
   * or the run as it stands after a pause. Safe to call again after a crash: it continues.
   */
  async runAll(id: string, call: RunCall = {}): Promise<RunRecord> {
    let r = await this.getRun(id);
    for (let stage = nextStage(r); stage; stage = nextStage(r)) {
      r = await this.runStage(id, stage, call);
      if (nextStage(r) === stage) return r; // paused
    }
    return r;
  }

  /** The training set of a run, built on first use and kept for the run in progress. */
  async prepared(r: RunRecord): Promise<Prepared> {
    const key = `${r.id}|${r.datasetId}|${dataKey(r.config)}`;
    if (this.cache?.key === key) return this.cache.prepared;
    this.cache = null;
    if (r.imported) {
      const prepared = await this.preparedFromRecord(r);
      this.cache = { key, prepared };
      return prepared;
    }
    const ds = await this.deps.loadDataset(r.datasetId);
    // Audit probes may come from a separate dataset the user vouches for (SPEC §3).
    const trustedId = r.config.probes.trusted === 'dataset' && r.config.probes.trustedDatasetId;
    const trusted = trustedId ? await this.deps.loadDataset(trustedId) : undefined;
    const prepared = prepareExperiment(ds, r.config, trusted);
    this.cache = { key, prepared };
    return prepared;
  }

  /** The training set of a run recorded elsewhere: its truth file, and its images when given. */
  private async preparedFromRecord(r: RunRecord): Promise<Prepared> {
    const im = r.imported!;
    const n = im.truth.length;
    const train: ImageSplit = r.datasetId
      ? (await this.deps.loadDataset(r.datasetId)).splits.train!
      : { count: n, images: new Uint8Array(n * IMAGE_BYTES), labels: im.labels };
    const rows = (kind: number) => [...Array(n).keys()].filter((i) => im.probeKind[i] === kind);
    const empty: ImageSplit = { count: 0, images: new Uint8Array(0), labels: new Uint8Array(0) };
    return {
      train: { ...train, labels: im.labels },
      poisoned: train,
      sourceLabels: im.labels,
      truth: im.truth,
      probes: {
        train,
        probeKind: im.probeKind,
        backdoorLabel: im.backdoorLabel,
        bank: [],
        indices: {
          clean: rows(PROBE_CLEAN),
          backdoor: rows(PROBE_BACKDOOR),
          mislabeled: rows(PROBE_MISLABELED),
        },
      },
      attacks: im.attacks.map((a) => ({
        ...a,
        id: a.id as ResolvedAttack['id'],
        params: {} as ResolvedAttack['params'],
      })),
      test: empty,
      triggered: [],
      numClasses: im.classes.length,
      classes: im.classes,
      origin: { split: new Uint8Array(n), index: Int32Array.from(Array(n).keys()) },
    };
  }

  /**
   * Rows each phase trains on (SPEC §4): all, the poisoned set without probes, the rows the first
   * detection round kept (every probe included), or the kept rows.
   */
  private trainingSplit(r: RunRecord, phase: Phase, p: Prepared): ImageSplit {
    if (phase === 'probationary') return p.train;
    if (phase === 'baseline') return p.poisoned;
    if (phase === 'recheck') return subsetSplit(p.train, this.recheckRows(r, p.train.count));
    if (phase === 'retrain' && secondRoundPending(r))
      throw new InvalidOptionError(
        'run the second detection round before retraining: retraining drops what both rounds flag',
      );
    const removed = removedByPhase(r, phase);
    if (!removed)
      throw new InvalidOptionError(
        `run ${DEFENSE_LABELS[defenseOfPhase(phase)!]} detection before retraining: retraining drops the examples it flags`,
      );
    return subsetSplit(p.train, keptRows(removed, p.probes.probeKind));
  }

  /** The rows the second round's model trains on: every row the first round did not flag. */
  private recheckRows(r: RunRecord, count: number): number[] {
    if (!r.detection)
      throw new InvalidOptionError(
        'run detection before its second round: the second model trains on what the first kept',
      );
    const out = new Uint8Array(count);
    for (const i of firstRound(r.detection).flagged) out[i] = 1;
    const rows: number[] = [];
    for (let i = 0; i < count; i++) if (!out[i]) rows.push(i);
    return rows;
  }

  private trainingRows(r: RunRecord, phase: Phase): number | string {
    if (!r.prepared) return '?';
    if (phase === 'recheck')
      return r.detection ? r.prepared.trainCount - firstRound(r.detection).flagged.length : '?';
    return retrainRowCount(r, phase) ?? '?';
  }

  /**
   * The run with its second detection round (docs/detection.md): detects on the trajectories of
   * the model trained on the first round's keepers (its stored checkpoint), at the budget
   * `detect.secondRound`, with the run's other detection options and a calibrated threshold; keeps
   * its removals beside the first round's, and both together as what BaDLoss removes. With half
   * an attack's poisons gone, the rest are learned later and look more like the probes.
   */
  private async withSecondRound(r: RunRecord): Promise<RunRecord> {
    const p = await this.prepared(r);
    const ck = await this.deps.store.loadCheckpoint(r.id, 'recheck');
    const rows = this.recheckRows(r, p.train.count);
    if (!ck || !r.phases.recheck?.done || ck.count !== rows.length)
      throw new InvalidOptionError(
        "train the second round's model before its detection (it trains on the rows the first round kept)",
      );
    const pick = <T extends Uint8Array | Int8Array>(a: T, make: (n: number) => T): T => {
      const out = make(rows.length);
      rows.forEach((row, j) => (out[j] = a[row]));
      return out;
    };
    const kinds = pick(p.probes.probeKind, (n) => new Uint8Array(n));
    const labels = pick(p.train.labels, (n) => new Uint8Array(n));
    const truth = pick(p.truth, (n) => new Int8Array(n));
    // The k-NN alone: the easiness and mirror tests judge the first round only. Measured on
    // CIFAR-10 (eight seeds) and the demo set, in the second round they removed 2–3% of the clean
    // data each for a handful of poisons, and without them the retrained model was as clean of
    // backdoors, on more data (docs/detection.md, "The tests in the first round only").
    const {
      secondRound: targetFpr,
      maxClassFraction: cap,
      easiness: _easiness,
      mirror: _mirror,
      ...opts
    } = r.config.detect;
    const det = detect(
      { n: rows.length, epochs: ck.config.epochs, losses: ck.trajectories },
      probeRowsFromKinds(kinds),
      { ...opts, threshold: 'auto', targetFpr: targetFpr! },
      { labels, numClasses: p.numClasses },
      this.deps.nearest,
    );
    const first = firstRound(r.detection!);
    if (cap !== undefined) {
      // The cap holds for both rounds together: a class may lose what the first round left of
      // ⌊cap · its judged rows⌋.
      const judged = [...Array(rows.length).keys()].filter((j) => kinds[j] === PROBE_NONE);
      det.classRemoval = capPerClass(
        det.scores,
        det.threshold,
        judged,
        labels,
        p.numClasses,
        cap,
        (c) => Math.floor(cap * first.perClass[c].total) - first.perClass[c].removed,
      );
    }
    const local = summarizeDetection(det, truth, kinds, p.attacks, labels, p.numClasses);
    const scores = new Float32Array(p.train.count).fill(NaN);
    rows.forEach((row, j) => (scores[row] = det.scores[j]));
    const added = local.flagged.map((j) => rows[j]);
    const union = [...first.flagged, ...added].sort((a, b) => a - b);
    const summary = detectionSummaryOf(p, this.storedDetection(r), first.threshold, union);
    const secondRound: SecondRoundRecord = {
      first,
      targetFpr: targetFpr!,
      summary: { ...local, flagged: added },
      scores,
      ...(det.calibration ? { calibration: det.calibration } : {}),
    };
    const { report: _stale, ...rest } = r;
    return { ...rest, detection: { ...r.detection!, summary, secondRound } };
  }

  private storedDetection(r: RunRecord): Detection {
    const d = r.detection!;
    return {
      method: d.summary.method as DetectOptions['method'],
      k: d.k,
      scores: d.scores,
      threshold: d.summary.threshold,
      looAuroc: d.looAuroc,
      calibration: d.calibration,
    };
  }

  private async storeDetection(
    r: RunRecord,
    p: Prepared,
    det: Detection,
    threshold: number,
    fit: ProbeFit | undefined,
  ): Promise<RunRecord> {
    const record: DetectionRecord = {
      summary: detectionSummaryOf(p, det, threshold),
      scores: det.scores,
      k: det.k,
      looAuroc: det.looAuroc,
      ...(det.calibration ? { calibration: det.calibration } : {}),
      ...(det.classRemoval ? { classRemoval: det.classRemoval } : {}),
      ...(fit ? { probeFit: fit } : {}),
    };
    // Only BaDLoss's own second round and retraining depend on its removals: the compared
    // defenses and their retrained models stay.
    const { run, dropCheckpoints } = clearFrom(r, this.invalidatedBy(r, det, threshold));
    return this.put({ ...run, detection: record }, dropCheckpoints);
  }

  /**
   * What a new first-round detection of `r` (its configuration already the new one) discards,
   * with everything downstream: the second round's model only when the rows it trained on
   * change (or the run no longer has a second round); otherwise its removals (scored again, no
   * training) and the retrained model.
   */
  private invalidatedBy(r: RunRecord, det: Detection, threshold: number): Stage {
    const before = r.detection && firstRound(r.detection).flagged;
    const after = flaggedRows(det.scores, threshold);
    const same =
      !!before && before.length === after.length && before.every((x, i) => x === after[i]);
    return same && hasSecondRound(r) ? 'retrain' : 'recheck';
  }

  /** Phases training now in this process, by run (a run trains one phase at a time). */
  private readonly active = new Map<string, Phase>();

  /** Refuses a change to a run while one of its phases trains (it would be undone by the next epoch). */
  private refuseWhileTraining(r: RunRecord, what: string): void {
    const phase = this.active.get(r.id);
    if (phase)
      throw new LabError(
        `cannot ${what} while the ${phaseName(phase)} model of this run is training: pause or cancel it first`,
      );
  }

  private confirmDropping(r: RunRecord, stages: Stage[], confirm: boolean): void {
    const lost = stagesWithResults(r, stages);
    if (lost.length && !confirm)
      throw new ConfirmationNeededError(
        `this discards ${lost.map((s) => stageWords(s)).join(', ')}; confirm to go on`,
      );
  }

  private async put(r: RunRecord, drop: Phase[] = []): Promise<RunRecord> {
    const run = { ...r, updatedAt: this.deps.now() };
    await this.deps.store.putRunDropping(run, drop);
    return run;
  }
}

function evaluating(epoch: number, epochs: number): TrainProgress {
  return {
    phase: 'evaluate',
    epoch,
    epochs,
    done: 0,
    total: 1,
    imagesPerSecond: 0,
    etaSeconds: NaN,
  };
}

function epochLine(phase: Phase, epochs: number, s: Checkpoint['history'][number]): string {
  const t = s.test
    ? `; test acc ${(100 * s.test.cleanAccuracy).toFixed(1)}%${Object.entries(s.test.asr)
        .map(([id, v]) => `, ASR ${id} ${(100 * v).toFixed(1)}%`)
        .join('')}`
    : '';
  return `${phase}: epoch ${s.epoch + 1}/${epochs} loss ${s.loss.toFixed(3)} acc ${(100 * s.accuracy).toFixed(1)}%${t} (${s.imagesPerSecond.toFixed(0)} img/s)`;
}

function prepareLine(r: RunRecord): string {
  const p = r.prepared!;
  const attacks =
    p.attacks.map((a) => `${a.id}: ${a.count} → class ${a.target}`).join(', ') || 'no attacks';
  return `prepared ${p.trainCount} training rows, fingerprint ${p.fingerprint.slice(0, 16)} (${attacks}; ${r.config.probes.n} probes of each kind), ${p.testCount} test images`;
}

/** Per-group AUROCs for a log line; "—" for a group with nothing left to rank. */
function aurocText(auroc: Record<string, number>): string {
  return (
    Object.entries(auroc)
      .map(([k, v]) => `${k} ${Number.isNaN(v) ? '—' : v.toFixed(3)}`)
      .join(', ') || 'n/a (no ground truth)'
  );
}

function defenseLine(d: DefenseRecord): string {
  const s = d.summary;
  return `${s.method}: removes ${s.flagged.length}; AUROC ${aurocText(s.auroc)}`;
}

function secondRoundLine(d: DetectionRecord): string {
  const s = d.secondRound!;
  const easy = s.calibration?.easiness;
  const mirror = s.calibration?.mirror;
  return `second detection round (α = ${s.targetFpr}${easy ? `, easiness test ${easy}` : ''}${mirror ? `, mirror test ${mirror}` : ''}): flagged ${s.summary.flagged.length} more, ${d.summary.flagged.length} in all; AUROC on the rows it judged ${aurocText(s.summary.auroc)}`;
}

function detectLine(d: DetectionRecord): string {
  const s = d.summary;
  return `detection (${s.method}${s.k ? `, k = ${s.k}` : ''}): flagged ${s.flagged.length}; AUROC ${aurocText(s.auroc)}`;
}

/**
 * A whole run in memory (scripts, tests, the efficacy benchmark): one dataset, one
 * configuration, every stage. Returns the complete run and the orchestrator (for its stored
 * checkpoints and the prepared training set).
 */
export async function runInMemory(
  ds: Dataset,
  config: RunConfig,
  createTrainer: TrainerFactory,
  call: RunCall = {},
): Promise<{ run: RunRecord; runs: RunOrchestrator }> {
  const runs = new RunOrchestrator({
    store: new MemoryRunStore(),
    loadDataset: async () => ds,
    createTrainer,
  });
  const created = await runs.createRun({ datasetId: ds.name, datasetName: ds.name, config });
  return { run: await runs.runAll(created.id, call), runs };
}
