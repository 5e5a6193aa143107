import { toRanks } from '../detect/clean-distance.ts';
import { Rng } from '../rng.ts';
import { principalAxes } from './linalg.ts';
import {
  checkInputs,
  fractionCount,
  judgedRows,
  requireFeatures,
  topRows,
  type DefenseInputs,
  type DefenseResult,
  type SpectralDetails,
} from './types.ts';

/** Options of Spectral Signatures. */
export interface SpectralOptions {
  /** Fraction of each class removed (default 0.15, the BaDLoss paper's fixed fraction). */
  removeFraction?: number;
}

/**
 * Spectral Signatures (Tran et al., 2018; SPEC §10). For each label y, over the non-probe rows
 * labeled y: R̂ = R − mean(R) (features, n_y × D), v = top right singular vector of R̂ (the top
 * eigenvector of R̂ᵀR̂, by Lanczos seeded from `seed`), raw score = (R̂_i·v)². Removes
 * the top `removeFraction` of each class by raw score (round(f·n_y) rows, ties → lower row).
 * The returned score is the within-class rank of the raw score in [0, 1] (ties share their mean
 * rank; a class of one row scores 0), so classes of different spread share one ROC.
 *
 * Probes are left out of the class statistics as well as the verdict: the published method does
 * not know them, and backdoor / mislabeled probes would pull the class's top direction.
 */
export function spectralSignatures(
  inp: DefenseInputs,
  opts: SpectralOptions = {},
): DefenseResult<SpectralDetails> {
  const n = checkInputs(inp);
  const f = requireFeatures(inp, 'Spectral Signatures');
  const fraction = opts.removeFraction ?? 0.15;
  fractionCount(fraction, 0); // rejects a fraction outside [0, 1] before any work
  const D = f.dim;
  const byClass: number[][] = Array.from({ length: inp.numClasses }, () => []);
  for (const i of judgedRows(inp.probeKind)) byClass[inp.labels[i]].push(i);
  const scores = new Float32Array(n).fill(NaN);
  const removed: number[] = [];
  const perClass: SpectralDetails['perClass'] = [];
  const rng = new Rng(inp.seed).fork('spectral');
  const rawAll = new Float64Array(n);
  byClass.forEach((rows, label) => {
    const classRng = rng.fork(`class-${label}`);
    if (rows.length === 0) return;
    const raw = new Float64Array(rows.length);
    let top = 0;
    if (rows.length >= 2) {
      const eig = principalAxes(f.values, D, rows, 1, classRng);
      const mean = eig.mean;
      top = eig.values[0];
      const v = eig.vectors;
      rows.forEach((r, j) => {
        let s = 0;
        for (let d = 0; d < D; d++) s += (f.values[r * D + d] - mean[d]) * v[d];
        raw[j] = s * s;
      });
    }
    const ranks = toRanks(raw);
    rows.forEach((r, j) => (scores[r] = ranks[j]));
    const count = fractionCount(fraction, rows.length);
    rows.forEach((r, j) => (rawAll[r] = raw[j]));
    const take = topRows(rawAll, rows, count);
    removed.push(...take);
    perClass.push({ label, count: rows.length, removed: take.length, topEigenvalue: top });
  });
  removed.sort((a, b) => a - b);
  return {
    name: 'spectral',
    scores,
    removed,
    details: { kind: 'spectral', removeFraction: fraction, perClass },
  };
}
