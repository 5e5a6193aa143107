import {
  DEFAULT_TARGET_FPR,
  type DetectMethod,
  type DetectOptions,
  type TrajectoryFeatures,
} from '../core/detect/index.ts';
import { extraBudgetsText } from '../core/report.ts';
import { testsThatRan, type RunRecord } from '../core/run.ts';

/** What the Detect step's controls say. */
export interface DetectControls {
  method: DetectMethod;
  k: 'auto' | number;
  /** k-NN: calibrated on the clean probes (a clean-data budget) or the paper's fixed threshold. */
  thresholdMode: 'auto' | 'fixed';
  threshold: number;
  /** The clean-removal budget α, in percent. */
  budgetPct: number;
  /** Per-class removal cap in percent; null or 0 = none. */
  capPct: number | null;
  /** clean-distance / no-probe: the share rejected. */
  rejectFraction: number;
  /** k-NN: the second detection round's clean-removal budget in percent; null = one round. */
  secondRoundPct: number | null;
  /** What the detectors compare: the losses as recorded, or with their logarithms beside them. */
  features: TrajectoryFeatures;
  /**
   * k-NN with the calibrated threshold: the easiness test's clean-removal budget in percent
   * (rows learned far better than their class); null = off.
   */
  easinessPct: number | null;
  /**
   * k-NN with the calibrated threshold: the mirror test's clean-removal budget in percent (rows
   * whose loss jumps when the image is mirrored); null = off.
   */
  mirrorPct: number | null;
}

/** The controls a run's detection settings start them at (the default budget where it has none). */
export function controlsFrom(d: DetectOptions): DetectControls {
  return {
    method: d.method,
    k: d.k ?? 'auto',
    thresholdMode: d.threshold === 'auto' ? 'auto' : 'fixed',
    threshold: typeof d.threshold === 'number' ? d.threshold : 0.1,
    budgetPct: Math.round(100 * (d.targetFpr ?? DEFAULT_TARGET_FPR)),
    capPct: d.maxClassFraction !== undefined ? Math.round(100 * d.maxClassFraction) : null,
    rejectFraction: d.rejectFraction ?? 0.4,
    secondRoundPct: d.secondRound !== undefined ? +(100 * d.secondRound).toFixed(1) : null,
    features: d.features ?? 'loss',
    easinessPct: d.easiness !== undefined ? +(100 * d.easiness).toFixed(1) : null,
    mirrorPct: d.mirror !== undefined ? +(100 * d.mirror).toFixed(1) : null,
  };
}

/**
 * The detection options the controls describe. Settings without a control (the score, per-class
 * or pooled calibration) are kept from the run's configuration `base`, so a preset's detection is
 * exactly what runs from the page — the app and the CLI give the same removals on the same run.
 */
export function detectOptionsFrom(c: DetectControls, base: DetectOptions): DetectOptions {
  // 'loss' is what an absent option means: written only where the configuration wrote it.
  const features = c.features !== 'loss' || base.features ? c.features : undefined;
  if (c.method !== 'knn')
    return { method: c.method, rejectFraction: c.rejectFraction, ...(features && { features }) };
  const opts: DetectOptions = {
    method: 'knn',
    k: c.k,
    threshold: c.thresholdMode === 'auto' ? 'auto' : c.threshold,
  };
  if (c.thresholdMode === 'auto') {
    opts.targetFpr = c.budgetPct / 100;
    if (c.easinessPct !== null && c.easinessPct > 0) opts.easiness = c.easinessPct / 100;
    if (c.mirrorPct !== null && c.mirrorPct > 0) opts.mirror = c.mirrorPct / 100;
  }
  if (base.calibration) opts.calibration = base.calibration;
  if (base.score) opts.score = base.score;
  if (features) opts.features = features;
  if (c.capPct !== null && c.capPct > 0) opts.maxClassFraction = c.capPct / 100;
  if (c.secondRoundPct !== null && c.secondRoundPct > 0) opts.secondRound = c.secondRoundPct / 100;
  return opts;
}

/**
 * The Detect step's sentence on the second round: its budget in words and, with a calibrated first
 * round, the sum of every budget (the first round's k-NN and the tests that ran in it, the second
 * round's k-NN and any tests an older run's second round recorded); '' without a second round.
 * Before detection it counts the tests the settings name; after, those that ran (the mirror test
 * needs the model).
 */
export function secondRoundBudgetText(rec: RunRecord): string {
  const d = rec.config.detect;
  if (!d.secondRound) return '';
  const tests = rec.detection ? testsThatRan(rec) : d;
  // Since the second round became the k-NN alone it records no tests; a run detected before did.
  const again = rec.detection?.secondRound?.calibration ?? {};
  const sum = (t: { easiness?: number; mirror?: number }) => (t.easiness ?? 0) + (t.mirror ?? 0);
  const p = (x: number) => `${+(100 * x).toFixed(1)}%`;
  if (d.threshold !== 'auto')
    return `${p(d.secondRound)}: it loses at most about that much more of the clean data`;
  const total = (d.targetFpr ?? DEFAULT_TARGET_FPR) + sum(tests) + d.secondRound + sum(again);
  return `${p(d.secondRound)}${extraBudgetsText(again)} — the budgets add up: together the two rounds lose at most about ${p(total)} of the clean data`;
}
