import {
  checkInputs,
  checkOption,
  fractionCount,
  judgedRows,
  requireTrajectories,
  topRows,
  type AblDetails,
  type DefenseInputs,
  type DefenseResult,
} from './types.ts';

/** Options of ABL isolation. */
export interface AblOptions {
  /** Early epochs averaged: max(1, round(earlyFraction · E)) (default 0.2). */
  earlyFraction?: number;
  /** Fraction of the non-probe rows removed, lowest early loss first (default 0.15). */
  removeFraction?: number;
}

/**
 * Anti-Backdoor Learning, isolation only (Li et al., 2021, as the BaDLoss paper uses it; SPEC
 * §10): backdoored examples reach low loss early, so score_i = −(mean recorded loss of row i over
 * the first max(1, round(0.2·E)) epochs) from the probationary run's trajectories (N × E, nats),
 * and the `removeFraction` (15%, the paper's raise from ABL's 1%) of non-probe rows with the
 * highest score — the lowest early loss — are removed (round(f·n) rows, ties → lower row).
 *
 * Not included: ABL's LGA objective (loss flipped below γ = 0.5 during the early epochs) needs
 * one extra model trained with that objective; this isolation step reads the ordinary run's
 * losses instead, so it costs no training.
 */
export function ablIsolation(inp: DefenseInputs, opts: AblOptions = {}): DefenseResult<AblDetails> {
  const n = checkInputs(inp);
  const t = requireTrajectories(inp, 'ABL');
  const E = t.epochs;
  const earlyFraction = checkOption(
    opts.earlyFraction ?? 0.2,
    (v) => v > 0 && v <= 1,
    'ABL early fraction',
    'in (0, 1]',
  );
  const early = Math.min(E, Math.max(1, Math.round(earlyFraction * E)));
  const fraction = opts.removeFraction ?? 0.15;
  const rows = judgedRows(inp.probeKind);
  const scores = new Float32Array(n).fill(NaN);
  for (const i of rows) {
    let s = 0;
    for (let e = 0; e < early; e++) s += t.losses[i * E + e];
    scores[i] = -s / early;
  }
  const removed = topRows(scores, rows, fractionCount(fraction, rows.length));
  let cutoff = NaN;
  for (const i of removed) if (!(-scores[i] <= cutoff)) cutoff = -scores[i];
  return {
    name: 'abl',
    scores,
    removed,
    details: { kind: 'abl', earlyEpochs: early, removeFraction: fraction, lossCutoff: cutoff },
  };
}
