import { InvalidOptionError } from '../errors.ts';
import { cleanDistanceScores, mahalanobisScores } from './clean-distance.ts';
import {
  knnScores,
  nearestNeighbours,
  type NearestFn,
  type ProbeRows,
  type Trajectories,
} from './knn.ts';

export type DetectMethod = 'knn' | 'clean-distance' | 'no-probe';
export const DETECT_METHODS: readonly DetectMethod[] = ['knn', 'clean-distance', 'no-probe'];

export interface DetectOptions {
  method: DetectMethod;
  /** k-NN: a fixed k or 'auto' (leave-one-out AUROC over the probes). */
  k?: number | 'auto';
  /** k-NN: reject when score > threshold (default 0.1). */
  threshold?: number;
  /** clean-distance / no-probe: reject the top fraction by rank (default 0.4). */
  rejectFraction?: number;
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
}

/**
 * Runs a detector over trajectories. Probe rows get NaN scores (they are dropped or kept by
 * their kind, not judged). For rank-based methods the threshold is 1 − rejectFraction, so
 * "score > threshold" rejects the top fraction. `nearest` is the nearest-neighbour kernel of the
 * k-NN and clean-distance methods (default: the pure one; the CLI and the worker pass the
 * WebAssembly SIMD kernel of src/ml/fast-knn.ts).
 */
export function detect(
  t: Trajectories,
  probes: ProbeRows,
  opts: DetectOptions,
  nearest: NearestFn = nearestNeighbours,
): Detection {
  if (t.losses.length !== t.n * t.epochs) {
    throw new InvalidOptionError(
      `trajectory matrix has ${t.losses.length} values, expected ${t.n} × ${t.epochs}`,
    );
  }
  const probeRows = [...probes.clean, ...probes.anomalous];
  for (const r of probeRows)
    if (!(r >= 0 && r < t.n))
      throw new InvalidOptionError(`probe row ${r} is outside 0–${t.n - 1}`);
  if (opts.method === 'knn') {
    const threshold = opts.threshold ?? 0.1;
    const res = knnScores(t, probes, opts.k ?? 'auto', undefined, nearest);
    return { method: 'knn', k: res.k, looAuroc: res.looAuroc, scores: res.scores, threshold };
  }
  const fraction = opts.rejectFraction ?? 0.4;
  if (!(fraction >= 0 && fraction <= 1))
    throw new InvalidOptionError(`reject fraction ${fraction} must be in [0, 1]`);
  const raw =
    opts.method === 'clean-distance'
      ? cleanDistanceScores(t, probes.clean, undefined, nearest)
      : mahalanobisScores(t, probes.clean);
  const scores = raw.slice();
  for (const r of probeRows) scores[r] = NaN;
  return { method: opts.method, scores, threshold: 1 - fraction };
}

/** Rows flagged by a detection: score > threshold (NaN never flags). */
export function flaggedRows(scores: ArrayLike<number>, threshold: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < scores.length; i++) if (scores[i] > threshold) out.push(i);
  return out;
}
