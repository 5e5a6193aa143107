import { DEFENSE_LABELS, DEFENSE_NAMES, type DefenseName } from './defenses/index.ts';
import { averageOf, type ModelEvaluation, type RemovalSummary } from './report.ts';

/**
 * One defense's row in the report's comparison (SPEC §6, §10): detection AUROC per attack and
 * over all poisons ("all"), removals per attack / "clean" / "total" at the defense's own rule,
 * and — when a model was retrained without its removals — that model's clean accuracy and ASR.
 * Rates are fractions in [0, 1].
 */
export interface DefenseComparison {
  auroc: Record<string, number>;
  removed: Record<string, number>;
  removedFraction: Record<string, number>;
  cleanAccuracy?: number;
  asr?: Record<string, number>;
  averageAsr?: number;
}

/** The comparison rows of every defense that has a verdict, BaDLoss first (Table 1/3 order). */
export function compareDefenses(
  summaries: Partial<Record<DefenseName, RemovalSummary>>,
  evaluations: Partial<Record<DefenseName, ModelEvaluation>>,
): Partial<Record<DefenseName, DefenseComparison>> {
  const out: Partial<Record<DefenseName, DefenseComparison>> = {};
  for (const d of DEFENSE_NAMES) {
    const s = summaries[d];
    if (!s) continue;
    const e = evaluations[d];
    out[d] = {
      auroc: s.auroc,
      removed: s.removed,
      removedFraction: s.removedFraction,
      ...(e ? { cleanAccuracy: e.cleanAccuracy, asr: e.asr, averageAsr: averageOf(e.asr) } : {}),
    };
  }
  return out;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * One sentence naming the defense that did best and by how much: by average ASR after
 * retraining when two or more defenses were retrained (clean accuracy alongside), else by
 * detection AUROC over all poisons. Empty when fewer than two defenses can be compared.
 */
export function bestDefenseSentence(
  rows: Partial<Record<DefenseName, DefenseComparison>>,
  undefendedAverageAsr?: number,
): string {
  const entries = DEFENSE_NAMES.filter((d) => rows[d]).map((d) => [d, rows[d]!] as const);
  const retrained = entries.filter(([, r]) => Number.isFinite(r.averageAsr));
  if (retrained.length >= 2) {
    const sorted = [...retrained].sort((a, b) => a[1].averageAsr! - b[1].averageAsr!);
    const [best, second] = sorted;
    const gap = 100 * (second[1].averageAsr! - best[1].averageAsr!);
    const from =
      undefendedAverageAsr !== undefined && Number.isFinite(undefendedAverageAsr)
        ? ` (from ${pct(undefendedAverageAsr)} undefended)`
        : '';
    return `${DEFENSE_LABELS[best[0]]} did best: average attack success ${pct(best[1].averageAsr!)} after retraining${from}, ${gap.toFixed(1)} points below the next best, ${DEFENSE_LABELS[second[0]]} (${pct(second[1].averageAsr!)}), at a clean accuracy of ${pct(best[1].cleanAccuracy!)}.`;
  }
  const detected = entries.filter(([, r]) => Number.isFinite(r.auroc.all));
  if (detected.length >= 2) {
    const sorted = [...detected].sort((a, b) => b[1].auroc.all - a[1].auroc.all);
    const [best, second] = sorted;
    return `${DEFENSE_LABELS[best[0]]} told poisons from clean examples best: AUROC ${best[1].auroc.all.toFixed(3)} over all poisons, ${(best[1].auroc.all - second[1].auroc.all).toFixed(3)} above the next best, ${DEFENSE_LABELS[second[0]]} (${second[1].auroc.all.toFixed(3)}).`;
  }
  return '';
}
