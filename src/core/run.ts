/**
 * A run's domain: its record (configuration and every step's result), the training checkpoint
 * shape, the store interface the orchestrator writes through, and the stage sequence — written
 * once here and driven by every front end (the tab's worker, the CLI, the tests).
 *
 * Pure data and pure functions: `src/storage` implements `RunStore` on IndexedDB, the CLI on
 * files, `MemoryRunStore` in memory; `src/ml/run.ts` runs the stages.
 */
import type { ModelEvaluation, DetectionSummary, Report } from './report.ts';
import type { RunConfig, TrainRecipe } from './experiment.ts';
import { NotFoundError } from './errors.ts';
import { LIMITS } from './config.ts';
import type { Detection } from './detect/index.ts';
import type { ProbeFit } from './detect/fit.ts';
import {
  BASELINE_NAMES,
  type BaselineName,
  type DefenseName,
  type DefenseSummary,
} from './defenses/index.ts';

export { BASELINE_NAMES, type BaselineName };

/** Retraining without a baseline defense's removal set (BaDLoss's own is `retrain`). */
export type RetrainPhase = `retrain:${BaselineName}`;
export const RETRAIN_PHASES: readonly RetrainPhase[] = BASELINE_NAMES.map(
  (d) => `retrain:${d}` as const,
);

/**
 * The training phases of a run: the probationary model, the second detection round's model
 * trained on what the first round kept ('recheck', with `detect.secondRound`), the optional
 * separate undefended model ('baseline'), the model retrained without BaDLoss's removals
 * ('retrain'), and one retrained without each compared defense's removals.
 */
export type Phase = 'probationary' | 'recheck' | 'retrain' | 'baseline' | RetrainPhase;
export const PHASES: readonly Phase[] = [
  'probationary',
  'recheck',
  'baseline',
  'retrain',
  ...RETRAIN_PHASES,
];

/** The defense whose removal set a retraining phase drops (null for other phases). */
export function defenseOfPhase(p: Phase): DefenseName | null {
  if (p === 'retrain') return 'badloss';
  return p.startsWith('retrain:') ? (p.slice('retrain:'.length) as BaselineName) : null;
}

/**
 * The stripes of `RunConfig.retrainStripes`: on every image, amplitude up to 18 (0–255 units; the
 * sinusoid trigger's is 19). Measured on CIFAR-10 at 12, 18 and 24 (docs/detection.md): 12 left
 * the sinusoid, 24 cost up to 4.6 points of clean accuracy against the jitter alone.
 */
export const RETRAIN_STRIPES = { max: 18, share: 1 } as const;

/**
 * The epochs a retraining trains for: the recipe's `epochs`, or with `RunConfig.retrainMatchSteps`
 * as many as take about the steps the first model took on `fullRows` rows while training on `rows`
 * (rounded; never fewer than the recipe's, at most LIMITS.epochs.max).
 */
export function retrainEpochs(
  epochs: number,
  matchSteps: boolean | undefined,
  rows: number,
  fullRows: number,
): number {
  if (!matchSteps || rows <= 0 || rows >= fullRows) return epochs;
  return Math.min(LIMITS.epochs.max, Math.max(epochs, Math.round((epochs * fullRows) / rows)));
}

/** The rows a retraining phase drops: its defense's removal set (undefined until detected). */
export function removedByPhase(r: RunRecord, phase: Phase): number[] | undefined {
  const d = defenseOfPhase(phase);
  if (d === null) return undefined;
  return d === 'badloss' ? r.detection?.summary.flagged : r.defenses?.[d]?.summary.flagged;
}

/**
 * The rows a retraining phase trains on: the training set less its defense's removals and the
 * backdoor and mislabeled probes (undefined until prepared and detected).
 */
export function retrainRowCount(r: RunRecord, phase: Phase): number | undefined {
  const removed = removedByPhase(r, phase);
  if (!r.prepared || !removed) return undefined;
  return (
    r.prepared.trainCount -
    removed.length -
    r.prepared.probes.backdoor -
    r.prepared.probes.mislabeled
  );
}

/**
 * The epochs `phase` of `r` trains for, as far as the record knows: a retraining with
 * `retrainMatchSteps` knows once its defense has detected (`more` until then: it may train for
 * more than the recipe's).
 */
export function phaseEpochs(r: RunRecord, phase: Phase): { epochs: number; more: boolean } {
  const { epochs } = r.config.train;
  if (!r.config.retrainMatchSteps || defenseOfPhase(phase) === null) return { epochs, more: false };
  const rows = r.phases[phase]?.rows ?? retrainRowCount(r, phase);
  if (rows === undefined || !r.prepared) return { epochs, more: true };
  return { epochs: retrainEpochs(epochs, true, rows, r.prepared.trainCount), more: false };
}

/** A training recipe with the seed of its initialization and shuffling (one per phase). */
export interface TrainConfig extends TrainRecipe {
  seed: number;
  /**
   * Resample each training image at a random sub-pixel offset (bilinear, [0, 1) px on each axis):
   * set on the retraining phases when `RunConfig.retrainJitter` is on; absent = off.
   */
  jitter?: boolean;
  /**
   * Add a faint random plane wave (a stripe pattern) to a share of the training images: each gets,
   * with probability `share`, `a·cos(k·(x, y) + φ)` with a uniform in [0, max] (0–255 units), 1 to
   * `cycles` (default 8) cycles per image in a uniform direction and phase: set on the retraining
   * phases when `RunConfig.retrainStripes` is on (RETRAIN_STRIPES); absent = off. With `fine`, a
   * second wave on the same images, amplitude uniform in [0, fine], `cycles` to 16 cycles.
   */
  waves?: { max: number; share: number; cycles?: number; fine?: number };
  /**
   * Per-class multipliers of each example's loss (the loss is Σ w·CE / Σ w over a batch): set on
   * the retraining phases when `RunConfig.retrainReweight` is on (`priorWeights`); absent = 1.
   */
  classWeights?: number[];
}

/** Statistics of one finished epoch. */
export interface EpochStats {
  epoch: number;
  /** Mean training loss (nats) and accuracy over the epoch's real (unpadded) examples. */
  loss: number;
  accuracy: number;
  seconds: number;
  imagesPerSecond: number;
  /** Engine tensors and bytes held after the epoch: flat from epoch to epoch, or there is a leak. */
  tensors: number;
  bytes: number;
  /** Test accuracy and ASR after this epoch, when evaluated every epoch. */
  test?: { cleanAccuracy: number; asr: Record<string, number> };
}

/** Everything needed to continue a phase exactly: written after every epoch. */
export interface Checkpoint {
  version: 1;
  config: TrainConfig;
  numClasses: number;
  count: number;
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps completed. */
  step: number;
  rngState: number[];
  weights: Record<string, Float32Array>;
  optimizer: { m: Record<string, Float32Array>; v: Record<string, Float32Array> };
  /** count × epochs, row-major; columns ≥ `epoch` are still zero. Losses in nats, clamped at 100. */
  trajectories: Float32Array;
  history: EpochStats[];
  /**
   * Penultimate (global-average-pooled) features of every training row in evaluation mode after
   * the last epoch: count × dim, row-major. Written with the finished probationary model.
   */
  features?: { dim: number; values: Float32Array };
  /**
   * Each training row's mirror gap (core/detect/mirror.ts: its loss with the image mirrored minus
   * its loss as it is), under the finished probationary model; the mirror test
   * reads it. Written with the finished model.
   */
  mirrorGap?: Float32Array;
}

/** Live progress of a training phase. */
export interface TrainProgress {
  phase: 'train' | 'record' | 'evaluate';
  epoch: number;
  epochs: number;
  /** Examples done in this pass of this epoch, of `total`. */
  done: number;
  total: number;
  imagesPerSecond: number;
  /** Seconds left in the whole phase (core's PhaseProgress: monotone within a phase). */
  etaSeconds: number;
  /** Fraction of the whole phase's work done, in [0, 1] (set by the orchestrator). */
  fraction?: number;
  /** Running mean loss / accuracy of this epoch (train pass). */
  loss?: number;
  accuracy?: number;
}

/** What the Probes step shows: sizes of everything the experiment built. */
export interface PreparedSummary {
  trainCount: number;
  testCount: number;
  numClasses: number;
  attacks: { id: string; name: string; target: number; count: number; perClass: number[] }[];
  probes: {
    clean: number;
    backdoor: number;
    mislabeled: number;
    backdoorLabel: number;
    perClass: number[];
  };
  /** Examples per class of the (poisoned, probed) training set. */
  classCounts: number[];
  /** SHA-256 of the training set's labels and images: identical for the same seed in Node and the browser. */
  fingerprint: string;
}

export interface PhaseResult {
  history: EpochStats[];
  /** e.g. "ResNet-8 ×0.5 · 0.02 M parameters". */
  model?: string;
  evaluation?: ModelEvaluation;
  done: boolean;
  rows: number;
  /** Stopped by the user's pause (an unfinished phase without it was interrupted: a reload resumes it). */
  paused?: boolean;
}

export interface DetectionRecord {
  /**
   * What BaDLoss removes: the first round's detection, or — once a second round has run — both
   * rounds' removals together (`flagged` is their union; the AUROC and ROC stay the first
   * round's, whose scores judged every row).
   */
  summary: DetectionSummary;
  /** The first round's per-row scores (NaN for probes). Everything below is the first round's. */
  scores: Float32Array;
  k?: number;
  looAuroc?: { k: number; auroc: number }[];
  /** With the probe-calibrated ('auto') threshold: how it was calibrated (the histogram draws it). */
  calibration?: Detection['calibration'];
  /** With a per-class cap: per class, rows removed, judged and spared by the cap. */
  classRemoval?: Detection['classRemoval'];
  /** How far the probationary model fit its probes (its last epoch's median losses). */
  probeFit?: ProbeFit;
  /** The second detection round (`detect.secondRound`), once it has run. */
  secondRound?: SecondRoundRecord;
}

/**
 * The second detection round: a model trained on the rows the first round kept (every probe
 * included) and its detection. Rows are training-set rows throughout.
 */
export interface SecondRoundRecord {
  /** The first round alone (the detection's `summary` is then both rounds together). */
  first: DetectionSummary;
  /** The clean-removal budget α2 the second round's threshold was calibrated at. */
  targetFpr: number;
  /**
   * The second round's detection on the rows it judged (the first round's keepers): its AUROC
   * and removal counts are over those rows; `flagged` are the rows it added.
   */
  summary: DetectionSummary;
  /** Per training row: the second round's score; NaN for probes and the first round's removals. */
  scores: Float32Array;
  calibration?: Detection['calibration'];
}

/** The first round's summary of a detection (its `summary` when there is no second round). */
export function firstRound(d: DetectionRecord): DetectionSummary {
  return d.secondRound?.first ?? d.summary;
}

/**
 * The tests united with the run's calibrated k-NN that ran, at the budgets its settings now give
 * (a moved threshold scaled them, a fixed cut dropped them): what the report names. A test the
 * detection skipped — the mirror test without the model — is left out.
 */
export function testsThatRan(r: RunRecord): { easiness?: number; mirror?: number } {
  const ran = r.detection?.calibration;
  const d = r.config.detect;
  return {
    ...(ran?.easiness !== undefined && d.easiness !== undefined ? { easiness: d.easiness } : {}),
    ...(ran?.mirror !== undefined && d.mirror !== undefined ? { mirror: d.mirror } : {}),
  };
}

/** Whether a run's detection has a second round to do or done. */
export function hasSecondRound(r: RunRecord): boolean {
  return !r.imported && r.config.detect.method === 'knn' && !!r.config.detect.secondRound;
}

/** The run has detected once and its second round is still to do (retraining waits for it). */
export function secondRoundPending(r: RunRecord): boolean {
  return hasSecondRound(r) && !!r.detection && !r.detection.secondRound;
}

/** A phase's name in a sentence ("the … model"): its id, except the second round's. */
export function phaseName(p: Phase): string {
  return p === 'recheck' ? 'second-round probationary' : p;
}

/** A compared defense's verdict on the probationary run. */
export interface DefenseRecord {
  summary: DefenseSummary;
  /** Per-row scores (higher = more suspicious; NaN for probes). */
  scores: Float32Array;
}

/** What the Detect step draws with: per-row trajectories, ground truth, probe kinds and labels. */
export interface DetectionContext {
  n: number;
  epochs: number;
  /** n × epochs, row-major, nats. */
  trajectories: Float32Array;
  /** Attack index per row, −1 clean (all −1 in audit mode). */
  truth: Int8Array;
  probeKind: Uint8Array;
  labels: Uint8Array;
  attackIds: string[];
  /** Per row: which stored split its image came from and its index there (flagged CSV sources). */
  origin: { split: Uint8Array; index: Int32Array };
  /** Epochs whose trajectory column is filled (the rest are zero). */
  epochsDone: number;
  /**
   * 2-D PCA of the filled trajectory columns (n × 2, row-major) and the variance each axis
   * explains (computed in the worker: heavy for 50,000 rows).
   */
  embedding: { coords: Float32Array; explained: [number, number] };
}

/** A run: its configuration, dataset, and the result of every stage so far. */
export interface RunRecord {
  schema: number;
  id: string;
  /** A name the user can change; defaults to the dataset and the attacks. */
  name: string;
  datasetId: string;
  datasetName: string;
  config: RunConfig;
  createdAt: number;
  updatedAt: number;
  prepared?: PreparedSummary;
  phases: Partial<Record<Phase, PhaseResult>>;
  detection?: DetectionRecord;
  /**
   * A run whose trajectories were recorded elsewhere (PyTorch on a cluster): the files it came
   * from and what the truth file said. It has no models here: detection, the comparison and the
   * report work on the recorded trajectories; retraining happens where the training did.
   */
  imported?: {
    trajectoriesFile: string;
    truthFile: string;
    truth: Int8Array;
    probeKind: Uint8Array;
    labels: Uint8Array;
    classes: string[];
    attacks: { id: string; target: number; ratio: number; strength: number; indices: number[] }[];
    backdoorLabel: number;
  };
  /** The compared defenses' verdicts (SPEC §10), beside BaDLoss's `detection`. */
  defenses?: Partial<Record<BaselineName, DefenseRecord>>;
  report?: Report;
}

/**
 * Where runs and checkpoints live. Every write is atomic: a reader sees the old value or the new
 * one, never a mix, and `commitEpoch` writes a run and a phase checkpoint together.
 */
export interface RunStore {
  /** The run, or undefined when it is not stored. */
  findRun(id: string): Promise<RunRecord | undefined>;
  /** Newest first. */
  listRuns(): Promise<RunRecord[]>;
  putRun(r: RunRecord): Promise<void>;
  /** Removes the run and all its checkpoints. */
  deleteRun(id: string): Promise<void>;
  loadCheckpoint(id: string, phase: Phase): Promise<Checkpoint | undefined>;
  /** Writes the run and one phase's checkpoint in one transaction. */
  commitEpoch(r: RunRecord, phase: Phase, c: Checkpoint): Promise<void>;
  /** Writes the run and deletes the named checkpoints in one transaction. */
  putRunDropping(r: RunRecord, drop: Phase[]): Promise<void>;
}

/** The run, or a NotFoundError that says what to do. */
export async function getRun(store: RunStore, id: string): Promise<RunRecord> {
  const r = await store.findRun(id);
  if (!r)
    throw new NotFoundError(`run ${id} is not stored (it may have been deleted); start a new run`);
  return r;
}

/**
 * The stages of a run, in order. `prepare` builds the training set (attacks, probes);
 * `probationary` trains with trajectories; `detect` scores them; `recheck` (only with a second
 * detection round) trains a second probationary model on the rows kept and detects again;
 * `baseline` (only with a separate undefended model) trains on the poisoned data without probes;
 * `retrain` trains without the flagged rows; `report` assembles the result.
 */
export type Stage =
  | 'prepare'
  | 'probationary'
  | 'detect'
  | 'recheck'
  | 'baseline'
  | 'retrain'
  | RetrainPhase
  | 'report';
export const STAGES: readonly Stage[] = [
  'prepare',
  'probationary',
  'detect',
  'recheck',
  'baseline',
  'retrain',
  ...RETRAIN_PHASES,
  'report',
];

const phaseFinished = (r: RunRecord, p: Phase) => !!r.phases[p]?.done && !!r.phases[p]?.evaluation;

/** Whether a stage's result is present (a stage that does not apply counts as done). */
export function stageDone(r: RunRecord, s: Stage): boolean {
  switch (s) {
    case 'prepare':
      return !!r.prepared;
    case 'probationary':
      return phaseFinished(r, s);
    case 'retrain':
      // A run recorded elsewhere is retrained where it was trained.
      return !!r.imported || phaseFinished(r, s);
    case 'baseline':
      return !r.config.separateBaseline || phaseFinished(r, s);
    case 'detect':
      return !!r.detection && (r.config.defenses ?? []).every((d) => !!r.defenses?.[d]);
    case 'recheck':
      return !hasSecondRound(r) || (phaseFinished(r, s) && !!r.detection?.secondRound);
    case 'report':
      return !!r.report;
    default: {
      const d = defenseOfPhase(s) as BaselineName;
      return !!r.imported || !(r.config.retrainDefenses ?? []).includes(d) || phaseFinished(r, s);
    }
  }
}

/** The first stage not done yet, or null when the run is complete. */
export function nextStage(r: RunRecord): Stage | null {
  return STAGES.find((s) => !stageDone(r, s)) ?? null;
}

/** The stages whose results depend directly on a stage's result. */
const DEPENDENTS: Record<Stage, Stage[]> = {
  prepare: ['probationary', 'baseline'],
  probationary: ['detect'],
  detect: ['recheck', ...RETRAIN_PHASES],
  recheck: ['retrain'],
  baseline: ['report'],
  retrain: ['report'],
  ...(Object.fromEntries(RETRAIN_PHASES.map((p) => [p, ['report']])) as Record<
    RetrainPhase,
    Stage[]
  >),
  report: [],
};

/** A stage and every stage downstream of it. */
export function downstreamOf(s: Stage): Stage[] {
  const out = new Set<Stage>([s]);
  const walk = (x: Stage) => {
    for (const d of DEPENDENTS[x])
      if (!out.has(d)) {
        out.add(d);
        walk(d);
      }
  };
  walk(s);
  return STAGES.filter((x) => out.has(x));
}

/**
 * The run with `stage` and everything downstream of it cleared, and the checkpoints to delete.
 * (Clearing `probationary` also clears detection, retraining and the report; the baseline does not
 * depend on it.)
 */
export function clearFrom(
  r: RunRecord,
  stage: Stage,
): { run: RunRecord; dropCheckpoints: Phase[] } {
  const stages = downstreamOf(stage);
  const phases = { ...r.phases };
  const drop: Phase[] = [];
  for (const p of PHASES)
    if (stages.includes(p)) {
      delete phases[p];
      drop.push(p);
    }
  const run: RunRecord = { ...r, phases };
  if (stages.includes('prepare')) delete run.prepared;
  if (stages.includes('detect')) {
    delete run.detection;
    delete run.defenses;
  } else if (stages.includes('recheck') && run.detection?.secondRound) {
    // Back to the first round alone.
    const { secondRound, ...first } = run.detection;
    run.detection = { ...first, summary: secondRound.first };
  }
  // Every stage feeds the report.
  delete run.report;
  return { run, dropCheckpoints: drop };
}

/** A run's default name: the dataset and what was done to it. */
export function defaultRunName(datasetName: string, config: RunConfig): string {
  const what =
    config.mode === 'audit'
      ? 'audit'
      : config.attacks.length
        ? config.attacks.map((a) => a.id).join(' + ')
        : 'no attacks';
  return `${datasetName} · ${what}`;
}

/**
 * Runs held in memory (the CLI without a state directory, tests). Values are cloned in and out,
 * as a real store would, so no caller can change a stored run by mutating its copy.
 */
export class MemoryRunStore implements RunStore {
  private readonly runs = new Map<string, RunRecord>();
  private readonly ckpts = new Map<string, Checkpoint>();

  async findRun(id: string): Promise<RunRecord | undefined> {
    const r = this.runs.get(id);
    return r && structuredClone(r);
  }

  async listRuns(): Promise<RunRecord[]> {
    return [...this.runs.values()]
      .sort((a, b) => b.updatedAt - a.updatedAt)
      .map((r) => structuredClone(r));
  }

  async putRun(r: RunRecord): Promise<void> {
    this.runs.set(r.id, structuredClone(r));
  }

  async deleteRun(id: string): Promise<void> {
    this.runs.delete(id);
    for (const p of PHASES) this.ckpts.delete(`${id}:${p}`);
  }

  async loadCheckpoint(id: string, phase: Phase): Promise<Checkpoint | undefined> {
    const c = this.ckpts.get(`${id}:${phase}`);
    return c && structuredClone(c);
  }

  async commitEpoch(r: RunRecord, phase: Phase, c: Checkpoint): Promise<void> {
    const run = structuredClone(r);
    const ckpt = structuredClone(c);
    this.runs.set(r.id, run);
    this.ckpts.set(`${r.id}:${phase}`, ckpt);
  }

  async putRunDropping(r: RunRecord, drop: Phase[]): Promise<void> {
    this.runs.set(r.id, structuredClone(r));
    for (const p of drop) this.ckpts.delete(`${r.id}:${p}`);
  }
}

/** The settings that decide the training set: a change needs a new training set. */
export function dataKey(c: RunConfig): string {
  return JSON.stringify([c.mode, c.attacks, c.probes, c.limit ?? null, c.seed]);
}

/**
 * Which stages a configuration change invalidates, and in words what changed: the data settings
 * (attacks, probes, subsample, seed, mode) invalidate everything; the training recipe every
 * trained model; the detection options BaDLoss's detection (redone by the caller), its second
 * round and its retrained model; the retraining's jitter, stripes or steps every retrained model; turning the separate
 * baseline off drops that model, turning it on only adds a stage to do.
 */
export function configChange(prev: RunConfig, next: RunConfig): { clear: Stage[]; what: string[] } {
  const clear = new Set<Stage>();
  const what: string[] = [];
  if (dataKey(prev) !== dataKey(next)) {
    what.push('the training set (attacks, probes, subsample or seed)');
    clear.add('prepare');
  }
  if (JSON.stringify(prev.train) !== JSON.stringify(next.train)) {
    what.push('the training recipe');
    clear.add('probationary');
    clear.add('baseline');
  }
  if (JSON.stringify(prev.detect) !== JSON.stringify(next.detect)) {
    // BaDLoss's own detection is redone (the caller drops it) and its second round and
    // retraining go; the compared defenses do not read these settings.
    what.push('the detection settings');
    clear.add('recheck');
  }
  const removedFrom = (a?: BaselineName[], b?: BaselineName[]) =>
    (a ?? []).filter((d) => !(b ?? []).includes(d));
  const dropped = new Set([
    ...removedFrom(prev.defenses, next.defenses),
    ...removedFrom(prev.retrainDefenses, next.retrainDefenses),
  ]);
  if (
    JSON.stringify(prev.defenses ?? []) !== JSON.stringify(next.defenses ?? []) ||
    JSON.stringify(prev.retrainDefenses ?? []) !== JSON.stringify(next.retrainDefenses ?? [])
  ) {
    what.push('the compared defenses');
    for (const d of dropped) clear.add(`retrain:${d}`);
    clear.add('report');
  }
  // The retraining's recipe: every retrained model (BaDLoss's and the compared defenses') was
  // trained with the other one.
  for (const [key, on, off] of [
    ['retrainJitter', 'retraining with sub-pixel jitter', 'retraining without jitter'],
    ['retrainStripes', 'retraining with random stripes', 'retraining without stripes'],
    [
      'retrainMatchSteps',
      'retraining for as many steps as the first model',
      "retraining for the recipe's epochs",
    ],
    [
      'retrainReweight',
      "retraining with the classes reweighted to the test split's frequencies",
      'retraining without reweighting the classes',
    ],
  ] as const) {
    if (!!prev[key] === !!next[key]) continue;
    what.push(next[key] ? on : off);
    clear.add('retrain');
    for (const p of RETRAIN_PHASES) clear.add(p);
  }
  if (prev.separateBaseline !== next.separateBaseline) {
    what.push(
      next.separateBaseline ? 'a separate undefended model' : 'no separate undefended model',
    );
    clear.add(next.separateBaseline ? 'report' : 'baseline');
  }
  return { clear: [...clear], what };
}

/** The stages among `stages` (and downstream) that hold a result in `r`. */
export function stagesWithResults(r: RunRecord, stages: Stage[]): Stage[] {
  const all = new Set(stages.flatMap(downstreamOf));
  return STAGES.filter((s) => {
    if (!all.has(s)) return false;
    switch (s) {
      case 'prepare':
        return !!r.prepared;
      case 'detect':
        return !!r.detection;
      case 'recheck':
        return !!r.phases.recheck || !!r.detection?.secondRound;
      case 'report':
        return !!r.report;
      default:
        return !!r.phases[s];
    }
  });
}
