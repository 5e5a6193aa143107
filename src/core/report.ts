import type { ResolvedAttack } from './attacks/plan.ts';
import type { AttackId } from './attacks/triggers.ts';
import { ATTACK_NAMES } from './attacks/triggers.ts';
import type { Detection } from './detect/index.ts';
import { flaggedRows } from './detect/index.ts';
import { disproportionateClasses } from './detect/calibrate.ts';
import type { RunConfig } from './experiment.ts';
import { auroc, rocCurve, type RocCurve } from './metrics.ts';
import { PROBE_NONE } from './probes.ts';
import type { DefenseName } from './defenses/types.ts';
import { bestDefenseSentence, type DefenseComparison } from './comparison.ts';

/** Detection quality and removals of one set of scores and removed rows (SPEC §6). */
export interface RemovalSummary {
  /** AUROC per attack id and over all poisons ("all"); only where ground truth exists. */
  auroc: Record<string, number>;
  roc: Record<string, RocCurve>;
  /** Removed (flagged) count per attack id, "clean" (never poisoned, non-probe) and "total". */
  removed: Record<string, number>;
  /** Removed fraction of each group. */
  removedFraction: Record<string, number>;
  /** Per class (by the training label): [removed, total] of non-probe rows. */
  perClass: { removed: number; total: number }[];
  flagged: number[];
}

/** Detection quality and removals at the chosen threshold (SPEC §6). */
export interface DetectionSummary extends RemovalSummary {
  method: string;
  k?: number;
  threshold: number;
  /** Benchmark mode: per class, [removed, total] of the clean (never poisoned) non-probe rows. */
  perClassClean?: { removed: number; total: number }[];
  /**
   * Classes losing disproportionately many rows (core's `disproportionateClasses` rule: at least
   * twice the overall fraction and 10 points more), judged on clean rows when the ground truth is
   * known — a class an attack targets holds its poisons, which should go — and on all rows in
   * audit mode.
   */
  classWarnings: number[];
}

/**
 * Summarizes a detection against the ground truth (benchmark) or without it (audit: `truth` all
 * −1, so only clean removals and per-class counts are reported — nothing is invented).
 * Only each attack's id is needed (its index in `attacks` is what `truth` holds).
 */
export function summarizeDetection(
  det: Detection,
  truth: Int8Array,
  probeKind: Uint8Array,
  attacks: readonly Pick<ResolvedAttack, 'id'>[],
  labels: Uint8Array,
  numClasses: number,
  threshold = det.threshold,
): DetectionSummary {
  const flagged = flaggedRows(det.scores, threshold);
  const base = summarizeRemoval(det.scores, flagged, truth, probeKind, attacks, labels, numClasses);
  let perClassClean: { removed: number; total: number }[] | undefined;
  if (attacks.length > 0) {
    perClassClean = Array.from({ length: numClasses }, () => ({ removed: 0, total: 0 }));
    const isFlagged = new Uint8Array(truth.length);
    for (const i of flagged) isFlagged[i] = 1;
    for (let i = 0; i < truth.length; i++)
      if (probeKind[i] === PROBE_NONE && truth[i] === -1) {
        perClassClean[labels[i]].total++;
        perClassClean[labels[i]].removed += isFlagged[i];
      }
  }
  return {
    method: det.method,
    k: det.k,
    threshold,
    ...base,
    ...(perClassClean ? { perClassClean } : {}),
    classWarnings: disproportionateClasses(perClassClean ?? base.perClass),
  };
}

/**
 * The summary shared by BaDLoss and the baseline defenses: `scores` (per training row, higher =
 * more suspicious, NaN for probes) give the AUROC and ROC curve of each attack's poisons against
 * the clean non-probe rows and of all poisons together ("all"; SPEC §6, ties count half);
 * `removed` (training rows) gives the removal per attack, of clean rows, in total and per class.
 * Probe rows are never counted. Audit mode (`truth` all −1): no AUROC, only removals.
 */
export function summarizeRemoval(
  scores: ArrayLike<number>,
  removedRows: readonly number[],
  truth: Int8Array,
  probeKind: Uint8Array,
  attacks: readonly Pick<ResolvedAttack, 'id'>[],
  labels: Uint8Array,
  numClasses: number,
): RemovalSummary {
  const isFlagged = new Uint8Array(truth.length);
  for (const i of removedRows) isFlagged[i] = 1;
  const flagged: number[] = [];
  const judged: number[] = [];
  for (let i = 0; i < truth.length; i++)
    if (probeKind[i] === PROBE_NONE) {
      judged.push(i);
      if (isFlagged[i]) flagged.push(i);
    }
  const removed: Record<string, number> = { clean: 0, total: flagged.length };
  const sizes: Record<string, number> = { clean: 0, total: judged.length };
  const aurocs: Record<string, number> = {};
  const roc: Record<string, RocCurve> = {};
  const perClass = Array.from({ length: numClasses }, () => ({ removed: 0, total: 0 }));
  for (const i of judged) {
    const key = truth[i] >= 0 ? attacks[truth[i]].id : 'clean';
    sizes[key] = (sizes[key] ?? 0) + 1;
    if (isFlagged[i]) removed[key] = (removed[key] ?? 0) + 1;
    perClass[labels[i]].total++;
    if (isFlagged[i]) perClass[labels[i]].removed++;
  }
  const groups: [string, (t: number) => boolean][] = attacks.map((a, k) => [
    a.id,
    (t: number) => t === k,
  ]);
  if (attacks.length > 0) groups.push(['all', (t: number) => t >= 0]);
  for (const [name, isPos] of groups) {
    const s: number[] = [];
    const lab: number[] = [];
    for (const i of judged) {
      if (truth[i] === -1 || isPos(truth[i])) {
        s.push(scores[i]);
        lab.push(truth[i] === -1 ? 0 : 1);
      }
    }
    aurocs[name] = auroc(s, lab);
    roc[name] = rocCurve(s, lab);
    if (name !== 'all') removed[name] ??= 0;
  }
  const removedFraction: Record<string, number> = {};
  for (const key of Object.keys(removed))
    removedFraction[key] = sizes[key] ? removed[key] / sizes[key] : 0;
  return { auroc: aurocs, roc, removed, removedFraction, perClass, flagged };
}

/** Clean accuracy and per-attack ASR of one model (rates in [0, 1]). */
export interface ModelEvaluation {
  cleanAccuracy: number;
  asr: Record<string, number>;
  /** ASR with α / m doubled, blending attacks only. */
  asrBoosted: Record<string, number>;
}

/** Mean of the values (NaN when empty). */
export function averageOf(r: Record<string, number>): number {
  const v = Object.values(r);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
}

/** The report of a run; the CLI writes it as JSON and the app renders and exports it. */
export interface Report {
  tool: 'BaDLoss Lab';
  createdAt: string;
  dataset: { name: string; classes: string[]; train: number; test: number; fingerprint?: string };
  mode: RunConfig['mode'];
  cleanAccuracy: { undefended: number; defended: number };
  asr: { undefended: Record<string, number>; defended: Record<string, number> };
  asrBoosted: { undefended: Record<string, number>; defended: Record<string, number> };
  averageAsr: { undefended: number; defended: number };
  detection: {
    method: string;
    k?: number;
    threshold: number;
    auroc: Record<string, number>;
    removed: Record<string, number>;
    removedFraction: Record<string, number>;
    perClass: { class: string; removed: number; total: number }[];
    /** Benchmark mode: per class, clean rows removed and judged. */
    perClassClean?: { class: string; removed: number; total: number }[];
    /** Names of the classes that lost disproportionately many rows (see DetectionSummary). */
    classWarnings?: string[];
    flaggedCount: number;
  };
  attacks: {
    id: AttackId;
    name: string;
    target: number;
    ratio: number;
    strength: number;
    count: number;
  }[];
  probes: { n: number; backdoorLabel: number };
  training: {
    undefended: { epoch: number; loss: number; accuracy: number }[];
    defended: { epoch: number; loss: number; accuracy: number }[];
  };
  config: RunConfig;
  /** Every defense's detection and (when retrained) its model, BaDLoss first (SPEC §10). */
  defenses?: Partial<Record<DefenseName, DefenseComparison>>;
  /** One sentence: which defense did best and by how much (empty when there is nothing to compare). */
  comparison?: string;
}

export interface ReportInput {
  datasetName: string;
  classes: string[];
  trainCount: number;
  testCount: number;
  config: RunConfig;
  attacks: ResolvedAttack[];
  probes: { n: number; backdoorLabel: number };
  summary: DetectionSummary;
  undefended: ModelEvaluation;
  defended: ModelEvaluation;
  historyUndefended: { epoch: number; loss: number; accuracy: number }[];
  historyDefended: { epoch: number; loss: number; accuracy: number }[];
  /** SHA-256 of the prepared training set (see splitFingerprint). */
  fingerprint?: string;
  createdAt?: Date;
  defenses?: Partial<Record<DefenseName, DefenseComparison>>;
}

/** Assembles the report (rates as fractions in [0, 1]). */
export function buildReport(r: ReportInput): Report {
  const s = r.summary;
  return {
    tool: 'BaDLoss Lab',
    createdAt: (r.createdAt ?? new Date()).toISOString(),
    dataset: {
      name: r.datasetName,
      classes: r.classes,
      train: r.trainCount,
      test: r.testCount,
      ...(r.fingerprint ? { fingerprint: r.fingerprint } : {}),
    },
    mode: r.config.mode,
    cleanAccuracy: { undefended: r.undefended.cleanAccuracy, defended: r.defended.cleanAccuracy },
    asr: { undefended: r.undefended.asr, defended: r.defended.asr },
    asrBoosted: { undefended: r.undefended.asrBoosted, defended: r.defended.asrBoosted },
    averageAsr: { undefended: averageOf(r.undefended.asr), defended: averageOf(r.defended.asr) },
    detection: {
      method: s.method,
      k: s.k,
      threshold: s.threshold,
      auroc: s.auroc,
      removed: s.removed,
      removedFraction: s.removedFraction,
      perClass: s.perClass.map((c, i) => ({ class: r.classes[i] ?? String(i), ...c })),
      ...(s.perClassClean
        ? {
            perClassClean: s.perClassClean.map((c, i) => ({
              class: r.classes[i] ?? String(i),
              ...c,
            })),
          }
        : {}),
      classWarnings: (s.classWarnings ?? []).map((c) => r.classes[c] ?? String(c)),
      flaggedCount: s.flagged.length,
    },
    attacks: r.attacks.map((a) => ({
      id: a.id,
      name: ATTACK_NAMES[a.id],
      target: a.target,
      ratio: a.ratio,
      strength: a.strength,
      count: a.indices.length,
    })),
    probes: r.probes,
    training: { undefended: r.historyUndefended, defended: r.historyDefended },
    config: r.config,
    ...(r.defenses
      ? {
          defenses: r.defenses,
          comparison: bestDefenseSentence(r.defenses, averageOf(r.undefended.asr)),
        }
      : {}),
  };
}

/** CSV of flagged rows: index, score, label, and (benchmark) the attack that poisoned it. */
export function flaggedCsv(
  summary: DetectionSummary,
  scores: Float32Array,
  labels: Uint8Array,
  classes: string[],
  truthName?: (i: number) => string,
): string {
  const lines = ['index,score,label,class' + (truthName ? ',truth' : '')];
  const rows = [...summary.flagged].sort((a, b) => scores[b] - scores[a] || a - b);
  for (const i of rows) {
    const cls = (classes[labels[i]] ?? '').replaceAll('"', '""');
    lines.push(
      `${i},${scores[i].toFixed(6)},${labels[i]},"${cls}"` + (truthName ? `,${truthName(i)}` : ''),
    );
  }
  return lines.join('\n') + '\n';
}

const esc = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const pct = (x: number | undefined) =>
  x === undefined || Number.isNaN(x) ? '—' : `${(100 * x).toFixed(2)}%`;

/** A self-contained HTML report (inline CSS, no scripts, no external requests). */
export function reportHtml(r: Report): string {
  const ids = Object.keys(r.asr.undefended);
  const head = ids.map((id) => `<th>${esc(id)}</th>`).join('');
  const row = (name: string, which: 'undefended' | 'defended') =>
    `<tr><th>${name}</th><td>${pct(r.cleanAccuracy[which])}</td>${ids.map((id) => `<td>${pct(r.asr[which][id])}</td>`).join('')}<td>${pct(r.averageAsr[which])}</td></tr>`;
  const auroc = Object.entries(r.detection.auroc)
    .map(
      ([k, v]) =>
        `<tr><th>${esc(k)}</th><td>${Number.isNaN(v) ? '—' : v.toFixed(3)}</td><td>${r.detection.removed[k] ?? '—'}</td></tr>`,
    )
    .join('');
  const perClass = r.detection.perClass
    .map(
      (c) =>
        `<tr><th>${esc(c.class)}</th><td>${c.removed}</td><td>${c.total}</td><td>${pct(c.total ? c.removed / c.total : 0)}</td></tr>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>BaDLoss Lab report — ${esc(r.dataset.name)}</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1b2430}table{border-collapse:collapse;margin:0.5rem 0 1.5rem}th,td{padding:.3rem .7rem;border-bottom:1px solid #d9dee5;text-align:right}th:first-child{text-align:left}pre{background:#f6f7f9;padding:1rem;overflow:auto}</style>
</head><body>
<h1>BaDLoss Lab report</h1>
<p>${esc(r.dataset.name)} · ${r.dataset.train} training / ${r.dataset.test} test images · ${r.mode} mode · ${esc(r.createdAt)}</p>
<h2>Clean accuracy and attack success rate</h2>
<table><tr><th></th><th>clean acc</th>${head}<th>avg ASR</th></tr>${row('No defense', 'undefended')}${row('BaDLoss', 'defended')}</table>
<h2>Detection (${esc(r.detection.method)}${r.detection.k ? `, k = ${r.detection.k}` : ''}, threshold ${r.detection.threshold})</h2>
<table><tr><th>group</th><th>AUROC</th><th>removed</th></tr>${auroc}</table>
<h2>Removal per class</h2>
${r.detection.classWarnings?.length ? `<p><strong>Warning:</strong> ${r.detection.classWarnings.map(esc).join(', ')} lost a much larger fraction than the other classes (at least twice the overall fraction and 10 points more).</p>` : ''}
<table><tr><th>class</th><th>removed</th><th>of</th><th>fraction</th></tr>${perClass}</table>
<h2>Configuration</h2>
<pre>${esc(JSON.stringify(r.config, null, 2))}</pre>
</body></html>
`;
}
