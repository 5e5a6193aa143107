import { InvalidOptionError } from '../errors.ts';
import type { Trajectories } from '../detect/knn.ts';
import { IMAGE_BYTES } from '../dataset.ts';
import { PROBE_NONE } from '../probes.ts';
import { byScore } from '../metrics.ts';

/** The defenses a run can compare (SPEC §5, §10), by their CLI names. */
export type DefenseName = 'badloss' | 'spectral' | 'activation-clustering' | 'frequency' | 'abl';
/** Every defense, in the order tables list them (BaDLoss first). */
export const DEFENSE_NAMES: readonly DefenseName[] = [
  'badloss',
  'spectral',
  'activation-clustering',
  'frequency',
  'abl',
];

/** The defenses compared beside BaDLoss (SPEC §10). */
export type BaselineName = Exclude<DefenseName, 'badloss'>;
export const BASELINE_NAMES = DEFENSE_NAMES.filter((d) => d !== 'badloss') as BaselineName[];

/** Display names of the defenses, for tables and charts. */
export const DEFENSE_LABELS: Record<DefenseName, string> = {
  badloss: 'BaDLoss',
  spectral: 'Spectral Signatures',
  'activation-clustering': 'Activation Clustering',
  frequency: 'Frequency analysis',
  abl: 'ABL (isolation)',
};

/** Penultimate-layer features: Float32Array, N × dim, row-major (global-average-pool output). */
export interface Features {
  dim: number;
  values: Float32Array;
}

/**
 * What the defenses see of one run's probationary phase. Every array is indexed by training row
 * (N rows, probes included). Each defense reads only what it needs and says what is missing.
 */
export interface DefenseInputs {
  /** Training labels as trained on (after attacks and probes changed them), N values. */
  labels: Uint8Array;
  numClasses: number;
  /** Per row: PROBE_* code from src/core/probes.ts. Probe rows are never scored or removed. */
  probeKind: Uint8Array;
  /** Spectral Signatures, Activation Clustering. */
  features?: Features;
  /** BaDLoss, ABL: loss after every epoch, N × E, nats. */
  trajectories?: Trajectories;
  /** Frequency: N × 32 × 32 × 3 uint8, NHWC (the training images as trained on). */
  images?: Uint8Array;
  /** The run's seed; every random choice of a defense derives from it. */
  seed: number;
}

/** One defense's verdict. */
export interface DefenseResult<D extends DefenseDetails = DefenseDetails> {
  name: DefenseName;
  /** Per training row: higher = more suspicious (for ROC/AUROC); NaN for probe rows. */
  scores: Float32Array;
  /** Training rows the defense removes, ascending; never a probe. */
  removed: number[];
  /**
   * Where removal is exactly "score > threshold" over all rows (BaDLoss, Activation Clustering,
   * Frequency), that threshold; absent for per-class or fraction-based removal.
   */
  threshold?: number;
  details: D;
}

/** BaDLoss: the detector's method, k (k-NN) and its leave-one-out AUROC per candidate k. */
export interface BadlossDetails {
  kind: 'badloss';
  method: string;
  k?: number;
  looAuroc?: { k: number; auroc: number }[];
  threshold: number;
}

/** Spectral Signatures: the fraction removed and each class's numbers. */
export interface SpectralDetails {
  kind: 'spectral';
  removeFraction: number;
  /** Per label: non-probe rows, rows removed, top eigenvalue of the class covariance (σ₁²/(n−1)). */
  perClass: { label: number; count: number; removed: number; topEigenvalue: number }[];
}

/** Activation Clustering: PCA dimensions, silhouette threshold and each class's split. */
export interface ActivationClusteringDetails {
  kind: 'activation-clustering';
  dims: number;
  silhouetteThreshold: number;
  /** Per label: rows, silhouette s_y (NaN when too few rows), smaller cluster size, removed? */
  perClass: {
    label: number;
    count: number;
    silhouette: number;
    smallerCluster: number;
    removed: boolean;
  }[];
}

/** Frequency analysis: the classifier, its training probes and its threshold on P(triggered). */
export interface FrequencyDetails {
  kind: 'frequency';
  model: 'logistic' | 'mlp';
  /** Training examples: clean probes (label 0) and backdoor probes (label 1). */
  trainClean: number;
  trainTriggered: number;
  /** Accuracy of the classifier on its own training probes at 0.5. */
  trainAccuracy: number;
  threshold: number;
}

/** ABL isolation: epochs averaged, fraction removed, and the loss below which rows went. */
export interface AblDetails {
  kind: 'abl';
  /** Epochs averaged: max(1, round(earlyFraction · E)). */
  earlyEpochs: number;
  removeFraction: number;
  /** Largest mean early loss among the removed rows (NaN when none removed). */
  lossCutoff: number;
}

/** Per-defense details, told apart by `kind` (= the defense's name). */
export type DefenseDetails =
  BadlossDetails | SpectralDetails | ActivationClusteringDetails | FrequencyDetails | AblDetails;

/** Training rows that are not probes, ascending. */
export function judgedRows(probeKind: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < probeKind.length; i++) if (probeKind[i] === PROBE_NONE) out.push(i);
  return out;
}

/** Checks the shared inputs' shapes; throws InvalidOptionError naming the mismatch. */
export function checkInputs(inp: DefenseInputs): number {
  const n = inp.labels.length;
  if (inp.probeKind.length !== n)
    throw new InvalidOptionError(
      `probe kinds cover ${inp.probeKind.length} rows but there are ${n} labels; pass one per training row`,
    );
  for (let i = 0; i < n; i++)
    if (inp.labels[i] >= inp.numClasses)
      throw new InvalidOptionError(
        `label ${inp.labels[i]} of row ${i} is outside the ${inp.numClasses} classes`,
      );
  return n;
}

/** The features, checked against N; throws when a feature-space defense has none. */
export function requireFeatures(inp: DefenseInputs, who: string): Features {
  const f = inp.features;
  const n = inp.labels.length;
  if (!f)
    throw new InvalidOptionError(
      `${who} needs the penultimate-layer features of the probationary model; record them or leave ${who} out`,
    );
  if (!(Number.isInteger(f.dim) && f.dim >= 1) || f.values.length !== n * f.dim)
    throw new InvalidOptionError(
      `feature matrix has ${f.values.length} values, expected ${n} rows × ${f.dim}`,
    );
  return f;
}

/** The trajectories, checked against N; throws when a loss-based defense has none. */
export function requireTrajectories(inp: DefenseInputs, who: string): Trajectories {
  const t = inp.trajectories;
  const n = inp.labels.length;
  if (!t)
    throw new InvalidOptionError(
      `${who} needs the loss trajectories of the probationary run; train with recording or leave ${who} out`,
    );
  if (t.n !== n || t.losses.length !== t.n * t.epochs || t.epochs < 1)
    throw new InvalidOptionError(
      `trajectory matrix has ${t.losses.length} values for ${t.n} × ${t.epochs}, expected ${n} rows`,
    );
  return t;
}

/** The images, checked against N; throws when the frequency defense has none. */
export function requireImages(inp: DefenseInputs, who: string): Uint8Array {
  const im = inp.images;
  const n = inp.labels.length;
  if (!im)
    throw new InvalidOptionError(`${who} needs the training images; pass them or leave ${who} out`);
  if (im.length !== n * IMAGE_BYTES)
    throw new InvalidOptionError(
      `image buffer has ${im.length} bytes, expected ${n} images × ${IMAGE_BYTES}`,
    );
  return im;
}

/**
 * The `count` rows with the highest scores among `rows` (ties → lower row index first), returned
 * ascending. Used for "remove the top fraction".
 */
export function topRows(scores: ArrayLike<number>, rows: number[], count: number): number[] {
  return byScore(rows, scores)
    .slice(0, count)
    .sort((a, b) => a - b);
}

/** Number removed for "the top fraction f of n": round(f·n), as the paper's fixed 15%. */
export function fractionCount(fraction: number, n: number): number {
  if (!(fraction >= 0 && fraction <= 1))
    throw new InvalidOptionError(`removal fraction ${fraction} must be in [0, 1]`);
  return Math.round(fraction * n);
}

/** `value` if `ok(value)`, else InvalidOptionError "<name> must be <range>, got <value>". */
export function checkOption(
  value: number,
  ok: (v: number) => boolean,
  name: string,
  range: string,
): number {
  if (!ok(value)) throw new InvalidOptionError(`${name} must be ${range}, got ${value}`);
  return value;
}

/** A whole number ≥ min. */
export const wholeAtLeast = (min: number) => (v: number) => Number.isInteger(v) && v >= min;
