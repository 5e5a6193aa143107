import { InvalidOptionError } from '../errors.ts';
import { mirrorTest } from './mirror.ts';
import { cleanDistanceScores, mahalanobisScores, toRanks } from './clean-distance.ts';
import {
  knnScores,
  knnScoresAllRows,
  nearestNeighbours,
  type NearestFn,
  type ProbeRows,
  type Trajectories,
} from './knn.ts';
import {
  adaptiveThreshold,
  calibratedZTest,
  capPerClass,
  classRobustZ,
  conformalScores,
  eitherScores,
  type ClassRemoval,
} from './calibrate.ts';

export type DetectMethod = 'knn' | 'clean-distance' | 'no-probe';
export const DETECT_METHODS: readonly DetectMethod[] = ['knn', 'clean-distance', 'no-probe'];

/**
 * The raw suspicion score of the k-NN method: the paper's anomalous-neighbour fraction
 * ('knn'); that with the clean distance breaking its ties ('knn+distance'); or the larger of
 * that score's and the clean distance's ranks within the class, calibrated like any score
 * ('knn-or-distance', see `eitherScores`).
 */
export type KnnScore = 'knn' | 'knn+distance' | 'knn-or-distance';
export const KNN_SCORES: readonly KnnScore[] = ['knn', 'knn+distance', 'knn-or-distance'];

/**
 * What the detector compares of each trajectory. 'loss': the losses as recorded (the paper).
 * 'loss+log': the losses followed by LOG_WEIGHT · ln(loss + LOG_FLOOR) for every epoch, for every
 * method. Raw losses crowd every easily learned row together near 0 — on one seed the dimple
 * blend's poisons ended at a median of 0.026 and the clean rows at 0.17, a gap raw distances
 * hardly see beside the mislabeled probes' 3–7 nats; the logarithm spreads that end out, and the
 * raw half keeps the high-loss end (the slow, never-learned rows) as it was. An option (docs/detection.md): over
 * ten seeds of the six-attack setting it raised the dimple blend's AUROC from 0.90 to 0.93 and,
 * with one detection round, halved every attack on 6 of 10 seeds instead of 2 — but with the
 * default's second round it met issue #12's targets on 10 of 20 seeds against 11 (mean average
 * ASR 7.9% against 8.0%) and went over the clean budget on one. The logarithm alone lost the
 * high-loss end (warping 0.92 → 0.85).
 */
export type TrajectoryFeatures = 'loss' | 'loss+log';
export const TRAJECTORY_FEATURES: readonly TrajectoryFeatures[] = ['loss', 'loss+log'];
/** 'loss+log': the log part's weight (0.3, 0.5 and 1 measured; 0.3 best) and the floor under the loss. */
export const LOG_WEIGHT = 0.3;
export const LOG_FLOOR = 1e-3;

/** The trajectories `detect` compares: as recorded, or with the log part after every row's losses. */
export function trajectoryFeatures(t: Trajectories, features: TrajectoryFeatures): Trajectories {
  if (features === 'loss') return t;
  const E = t.epochs;
  const losses = new Float32Array(t.n * 2 * E);
  for (let i = 0; i < t.n; i++)
    for (let e = 0; e < E; e++) {
      const v = t.losses[i * E + e];
      losses[i * 2 * E + e] = v;
      losses[i * 2 * E + E + e] = LOG_WEIGHT * Math.log(Math.max(v, 0) + LOG_FLOOR);
    }
  return { n: t.n, epochs: 2 * E, losses };
}

export interface DetectOptions {
  method: DetectMethod;
  /** What is compared of each trajectory (default 'loss', the paper's); see `TrajectoryFeatures`. */
  features?: TrajectoryFeatures;
  /** k-NN: a fixed k or 'auto' (leave-one-out AUROC over the probes). */
  k?: number | 'auto';
  /**
   * k-NN: reject when score > threshold (the paper: 0.1), or 'auto': calibrate on the clean
   * probes so that about `targetFpr` of the clean rows are removed (conformal p-values; see
   * calibrate.ts). Default 0.1 (the paper's method).
   */
  threshold?: number | 'auto';
  /** 'auto' threshold: the clean false-positive rate aimed at, α (default DEFAULT_TARGET_FPR, 0.1). */
  targetFpr?: number;
  /** 'auto' threshold: calibrate within each class ('class', default) or over all clean probes ('pooled'). */
  calibration?: 'class' | 'pooled';
  /** k-NN: the raw score (default 'knn'). */
  score?: KnnScore;
  /**
   * k-NN with the 'auto' threshold: the budget α_e of the easiness test, united with the k-NN's
   * (unset = none). A row is also flagged when it was learned far better than its class — see
   * `easinessScores` — at a clean-removal rate of about α_e, calibrated on the clean probes. It
   * applies in the first detection round only (see `secondRound`); with a fixed threshold or
   * another method it is ignored.
   */
  easiness?: number;
  /**
   * k-NN with the 'auto' threshold: the budget α_m of the mirror test (mirror.ts), united like the
   * easiness test (unset = none): a row is also flagged when its loss jumps far more than its
   * class's when its image is mirrored left–right. It needs the rows' mirror gaps
   * (`DetectContext.mirrorGap`, measured on the finished model); without them it is skipped and
   * `calibration.mirror` stays unset. Like the easiness test, it applies in the first round only.
   */
  mirror?: number;
  /** Remove at most this fraction of any class's rows (needs labels); unset = no cap. */
  maxClassFraction?: number;
  /** clean-distance / no-probe: reject the top fraction by rank (default 0.4). */
  rejectFraction?: number;
  /**
   * k-NN: the clean-removal budget α2 of a second detection round (unset = one round). A run with
   * it trains a second probationary model on the rows this round keeps (every probe included),
   * detects again on its trajectories — the k-NN alone, without the easiness and mirror tests —
   * with a threshold calibrated at α2, and retrains without both rounds' removals. The run
   * orchestrator does it (it needs training); `detect()` ignores it.
   */
  secondRound?: number;
}

/** The 'auto' threshold's clean false-positive rate α where the options name none. */
export const DEFAULT_TARGET_FPR = 0.1;

/** What the calibrated ('auto') threshold found on the probes. */
export interface Calibration {
  /** The clean false-positive rate aimed at (α). */
  targetFpr: number;
  calibration: 'class' | 'pooled';
  /**
   * The raw-score threshold with clean-probe FPR ≤ α over all probes (for the raw histogram); with
   * the 'knn-or-distance' score the raw score is the larger of the two scores' ranks.
   */
  rawThreshold: number;
  /** Leave-one-out rates over the probes at the returned threshold. */
  cleanProbeFpr: number;
  anomalousProbeTpr: number;
  /** Classes with too few clean probes (< ⌈1/α⌉ − 1) that used the pooled calibration. */
  pooledClasses: number[];
  /**
   * With `easiness`: the easiness test's budget α_e. The scores are then the two tests' union
   * (`unionOfTests`) and the threshold 1 − (α + α_e); `cleanProbeFpr` and `anomalousProbeTpr`
   * are the k-NN's alone.
   */
  easiness?: number;
  /** With `mirror` and the rows' mirror gaps: the mirror test's budget α_m, united likewise. */
  mirror?: number;
}

export interface Detection {
  method: DetectMethod;
  /** k used (k-NN only). */
  k?: number;
  looAuroc?: { k: number; auroc: number }[];
  /** Per row: higher = more suspicious; NaN for probe rows (never judged). */
  scores: Float32Array;
  /** The threshold applied: flagged ⇔ score > threshold. */
  threshold: number;
  /** With the 'auto' threshold: how it was calibrated. */
  calibration?: Calibration;
  /** With `maxClassFraction`: per class, rows removed, judged, and spared by the cap. */
  classRemoval?: ClassRemoval[];
}

/** Per-row labels, for per-class calibration and the per-class cap. */
export interface DetectContext {
  labels: ArrayLike<number>;
  numClasses: number;
  /**
   * Per row, its loss with the image mirrored minus its loss as it is, under the finished model
   * (`mirrorGaps`), for the mirror test; absent where the model is not here (a run recorded
   * elsewhere, a bundle without them).
   */
  mirrorGap?: ArrayLike<number>;
}

/**
 * Runs a detector over trajectories. Probe rows get NaN scores (they are dropped or kept by
 * their kind, not judged). For rank-based methods the threshold is 1 − rejectFraction, so
 * "score > threshold" rejects the top fraction. With `threshold: 'auto'` (k-NN) the scores are
 * conformal: 1 − p, p calibrated on the clean probes' leave-one-out scores (per class when
 * `context` gives labels and `calibration` is 'class'), and the threshold is 1 − targetFpr.
 * Without `context`, per-class calibration falls back to pooled and no cap is applied.
 * `nearest` is the nearest-neighbour kernel of the k-NN and clean-distance methods (default: the
 * pure one; the CLI and the worker pass the WebAssembly SIMD kernel of src/ml/fast-knn.ts).
 */
export function detect(
  t: Trajectories,
  probes: ProbeRows,
  opts: DetectOptions,
  context?: DetectContext,
  nearest: NearestFn = nearestNeighbours,
): Detection {
  if (t.losses.length !== t.n * t.epochs) {
    throw new InvalidOptionError(
      `trajectory matrix has ${t.losses.length} values, expected ${t.n} × ${t.epochs}`,
    );
  }
  if (context && context.labels.length !== t.n)
    throw new InvalidOptionError(`${context.labels.length} labels for ${t.n} trajectories`);
  const features = opts.features ?? 'loss';
  if (!TRAJECTORY_FEATURES.includes(features))
    throw new InvalidOptionError(
      `features ${JSON.stringify(features)} is invalid: must be one of ${TRAJECTORY_FEATURES.join(', ')}`,
    );
  const recorded = t;
  t = trajectoryFeatures(t, features);
  const probeRows = [...probes.clean, ...probes.anomalous];
  for (const r of probeRows)
    if (!(r >= 0 && r < t.n))
      throw new InvalidOptionError(`probe row ${r} is outside 0–${t.n - 1}`);
  let det: Detection;
  if (opts.method === 'knn') {
    const res = knnScores(t, probes, opts.k ?? 'auto', undefined, nearest);
    const score = opts.score ?? 'knn';
    if (opts.threshold === 'auto' || score !== 'knn') {
      const knn = knnScoresAllRows(t, probes, res.k, nearest);
      let raw = knn;
      if (score !== 'knn') {
        const dist =
          probes.clean.length >= 2
            ? cleanDistanceScores(t, probes.clean, undefined, nearest)
            : toRanks(knn);
        raw = withDistanceTies(knn, dist, res.k);
        // The either score is a conformal quantity, meaningful only calibrated: with a fixed
        // threshold (on the k-NN scale) the k-NN score with the distance's ties is used.
        if (score === 'knn-or-distance' && opts.threshold === 'auto') {
          const { groupOf, minGroup } = calibrationGroups(opts, context);
          raw = eitherScores([raw, dist], probes.clean, t.n, groupOf, minGroup);
        }
      }
      det = { method: 'knn', k: res.k, looAuroc: res.looAuroc, scores: raw, threshold: 0.1 };
      if (opts.threshold === 'auto') {
        const cal = calibrate(raw, probes, t.n, opts, context);
        det.scores = cal.scores;
        det.threshold = cal.threshold;
        det.calibration = cal.calibration;
        // The budgets add: each test flags about its own share of the clean rows.
        let budget = cal.calibration.targetFpr;
        if (opts.easiness !== undefined) {
          const easy = easinessTest(recorded, probes, opts.easiness, context);
          det.scores = unionOfTests(det.scores, budget, easy, opts.easiness);
          budget += opts.easiness;
          det.threshold = 1 - budget;
          det.calibration = { ...det.calibration!, easiness: opts.easiness };
        }
        if (opts.mirror !== undefined && context?.mirrorGap) {
          if (context.mirrorGap.length !== t.n)
            throw new InvalidOptionError(
              `${context.mirrorGap.length} mirror gaps for ${t.n} rows: they come from another training set`,
            );
          const mirrored = mirrorTest(context.mirrorGap, probes, opts.mirror, context);
          det.scores = unionOfTests(det.scores, budget, mirrored, opts.mirror);
          budget += opts.mirror;
          det.threshold = 1 - budget;
          det.calibration = { ...det.calibration!, mirror: opts.mirror };
        }
      } else {
        det.threshold = opts.threshold ?? 0.1;
        const isProbe = new Uint8Array(t.n);
        for (const r of probeRows) isProbe[r] = 1;
        det.scores = raw.map((v, i) => (isProbe[i] ? NaN : v));
      }
    } else {
      det = {
        method: 'knn',
        k: res.k,
        looAuroc: res.looAuroc,
        scores: res.scores,
        threshold: opts.threshold ?? 0.1,
      };
    }
  } else {
    const fraction = opts.rejectFraction ?? 0.4;
    if (!(fraction >= 0 && fraction <= 1))
      throw new InvalidOptionError(`reject fraction ${fraction} must be in [0, 1]`);
    const raw =
      opts.method === 'clean-distance'
        ? cleanDistanceScores(t, probes.clean, undefined, nearest)
        : mahalanobisScores(t, probes.clean);
    const scores = raw.slice();
    for (const r of probeRows) scores[r] = NaN;
    det = { method: opts.method, scores, threshold: 1 - fraction };
  }
  if (opts.maxClassFraction !== undefined && context) {
    const isProbe = new Uint8Array(t.n);
    for (const r of probeRows) isProbe[r] = 1;
    const rows: number[] = [];
    for (let i = 0; i < t.n; i++) if (!isProbe[i]) rows.push(i);
    det.classRemoval = capPerClass(
      det.scores,
      det.threshold,
      rows,
      context.labels,
      context.numClasses,
      opts.maxClassFraction,
    );
  }
  return det;
}

/**
 * The 'knn+distance' score: the k-NN fraction plus the clean distance's rank (in [0, 1]) divided
 * by 2k — below one k-NN step, so it only orders rows with the same anomalous fraction (most clean
 * rows share a fraction of 0, and among them the ones farthest from every clean probe are the most
 * suspicious).
 */
function withDistanceTies(knn: Float32Array, dist: Float32Array, k: number): Float32Array {
  return knn.map((v, i) => v + dist[i] / (2 * k));
}

/** The easiness is averaged from this fraction of the epochs on: the first ones are warm-up. */
export const EASINESS_FROM = 0.2;

/**
 * How much better than its class a row was learned: its easiness, −mean ln(loss + LOG_FLOOR)
 * over the epochs after the first fifth (2 of 10), as a robust z-score within its class — minus
 * the median over the class's rows, over their median absolute deviation (one group without
 * labels). Higher = easier than the class. The k-NN does not see it where no probe is learned
 * that fast: on natural images (CIFAR-10 at 6,000 images and ten epochs) the network learns few
 * of the bank's backdoor probes (of its four triggers, one or two per seed), while the attacks that take hold — the dimple blend, the
 * sinusoid — end at a tenth or less of their class's clean loss, so their nearest probes are
 * clean; on the demo set the clean-label sinusoid's poisons do the same (AUROC 0.92 within the
 * class over eight seeds). docs/detection.md, "Natural images".
 */
export function easinessScores(t: Trajectories, context?: DetectContext): Float64Array {
  const { n, epochs: E, losses } = t;
  const from = Math.min(Math.floor(EASINESS_FROM * E), E - 1);
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let e = from; e < E; e++) s += Math.log(Math.max(losses[i * E + e], 0) + LOG_FLOOR);
    x[i] = -s / (E - from);
  }
  return classRobustZ(x, context);
}

/**
 * The easiness test's conformal scores 1 − p_e for every row but the probes (NaN there): the
 * easiness z-score calibrated on all clean probes together (a class has too few of them for a
 * level of 0.02; the z-score already makes the classes comparable). Flag ⇔ score > 1 − alpha.
 */
export function easinessTest(
  t: Trajectories,
  probes: ProbeRows,
  alpha: number,
  context?: DetectContext,
): Float32Array {
  if (!(alpha > 0 && alpha < 1))
    throw new InvalidOptionError(`easiness ${alpha} must be in (0, 1)`);
  return calibratedZTest(easinessScores(t, context), probes);
}

/**
 * Two calibrated tests as one score: with conformal scores 1 − p of a test at budget α and of
 * another at β, s = 1 − (α + β)·min(p/α, q/β), so s > 1 − (α + β) ⇔ p < α or q < β — a row either
 * test flags, at about α + β of the clean rows. One score and one threshold keep the histogram
 * and the slider meaningful: moving the threshold scales both budgets together. NaN stays NaN;
 * scores are in [0, 1].
 */
export function unionOfTests(
  a: Float32Array,
  alpha: number,
  b: Float32Array,
  beta: number,
): Float32Array {
  const threshold = 1 - (alpha + beta);
  if (!(threshold > 0))
    throw new InvalidOptionError(
      `the two budgets ${alpha} and ${beta} add up to 1 or more: every row would be removed`,
    );
  const above = float32Beside(threshold, 1);
  const atMost = float32Beside(threshold, -1);
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) || Number.isNaN(b[i])) {
      out[i] = NaN;
      continue;
    }
    const s = 1 - (alpha + beta) * Math.min((1 - a[i]) / alpha, (1 - b[i]) / beta);
    // Each test decides as it would alone (score > 1 − budget); float rounding must not move a
    // row across the combined threshold.
    const flagged = a[i] > 1 - alpha || b[i] > 1 - beta;
    // (clamped at 0 below: s reaches −min(α, β)/max(α, β), and the histogram shows [0, 1])
    out[i] = flagged
      ? Math.max(Math.fround(s), above)
      : Math.max(0, Math.min(Math.fround(s), atMost));
  }
  return out;
}

/** The nearest float32 strictly above (`dir` 1) or at most (`dir` −1) a positive `x`. */
function float32Beside(x: number, dir: 1 | -1): number {
  const f = Math.fround(x);
  if (dir === 1 ? f > x : f <= x) return f;
  const bits = new Uint32Array(Float32Array.of(f).buffer);
  bits[0] += dir;
  return new Float32Array(bits.buffer)[0];
}

/** The budget α and the calibration groups (the class, or one group) of the 'auto' threshold. */
function calibrationGroups(opts: DetectOptions, context?: DetectContext) {
  const alpha = opts.targetFpr ?? DEFAULT_TARGET_FPR;
  if (!(alpha > 0 && alpha < 1))
    throw new InvalidOptionError(`targetFpr ${alpha} must be in (0, 1)`);
  const mode: 'class' | 'pooled' = context ? (opts.calibration ?? 'class') : 'pooled';
  const labels = context?.labels;
  const groupOf = mode === 'class' && labels ? (i: number) => labels[i] : () => 0;
  // A group of m clean probes can only reject p ≤ 1/(m + 1): it needs m ≥ 1/α − 1.
  const minGroup = Math.ceil(1 / alpha - 1);
  return { alpha, mode, groupOf, minGroup };
}

function calibrate(
  raw: Float32Array,
  probes: ProbeRows,
  n: number,
  opts: DetectOptions,
  context?: DetectContext,
): { scores: Float32Array; threshold: number; calibration: Calibration } {
  const { alpha, mode, groupOf, minGroup } = calibrationGroups(opts, context);
  const rows = [...Array(n).keys()];
  const { scores, pooledGroups } = conformalScores(raw, probes.clean, rows, groupOf, minGroup);
  const threshold = 1 - alpha;
  const rate = (r: number[]) => r.filter((i) => scores[i] > threshold).length / (r.length || 1);
  const cleanProbeFpr = rate(probes.clean);
  const anomalousProbeTpr = rate(probes.anomalous);
  const rawCut = adaptiveThreshold(
    probes.clean.map((r) => raw[r]),
    probes.anomalous.map((r) => raw[r]),
    alpha,
  );
  for (const r of [...probes.clean, ...probes.anomalous]) scores[r] = NaN;
  return {
    scores,
    threshold,
    calibration: {
      targetFpr: alpha,
      calibration: mode,
      rawThreshold: rawCut.threshold,
      cleanProbeFpr,
      anomalousProbeTpr,
      pooledClasses: mode === 'class' ? pooledGroups : [],
    },
  };
}

/** Rows flagged by a detection: score > threshold (NaN never flags). */
export function flaggedRows(scores: ArrayLike<number>, threshold: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < scores.length; i++) if (scores[i] > threshold) out.push(i);
  return out;
}
