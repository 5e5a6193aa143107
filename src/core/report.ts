import type { ResolvedAttack } from './attacks/plan.ts';
import type { AttackId } from './attacks/triggers.ts';
import { ATTACK_NAMES } from './attacks/triggers.ts';
import type { Detection } from './detect/index.ts';
import { flaggedRows } from './detect/index.ts';
import { disproportionateClasses } from './detect/calibrate.ts';
import type { Prepared, RetrainOption, RunConfig } from './experiment.ts';
import { auroc, byScore, rocCurve, type RocCurve } from './metrics.ts';
import { PROBE_NONE } from './probes.ts';
import { DEFENSE_LABELS, type DefenseName } from './defenses/types.ts';
import { bestDefenseSentence, type DefenseComparison } from './comparison.ts';
import { GLOSSARY, type GlossaryKey } from './glossary.ts';
import { changeTone, probeSourceText, verdictOf, type VerdictExtras } from './verdict.ts';
import type { FlaggedEntry } from './exports.ts';

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
  /** The rows removed, when not the scores above the threshold (two detection rounds' union). */
  flagged: readonly number[] = flaggedRows(det.scores, threshold),
): DetectionSummary {
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

/** `summarizeDetection` against a prepared experiment's ground truth, probe kinds and labels. */
export function detectionSummaryOf(
  p: Pick<Prepared, 'truth' | 'probes' | 'attacks' | 'train' | 'numClasses'>,
  det: Detection,
  threshold = det.threshold,
  flagged?: readonly number[],
): DetectionSummary {
  return summarizeDetection(
    det,
    p.truth,
    p.probes.probeKind,
    p.attacks,
    p.train.labels,
    p.numClasses,
    threshold,
    flagged,
  );
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
    /**
     * With a second detection round: its budget, what each round removed (rows; per attack and
     * clean in `removed`), and the second round's AUROC on the rows it judged. The block's other
     * numbers are both rounds together; its AUROC is the first round's.
     */
    secondRound?: SecondRoundReport;
    /**
     * The tests united with the calibrated k-NN that ran, at their budgets as the run's settings
     * now say (a moved threshold scales them; a test the run could not do — the mirror test
     * without the model — is absent).
     */
    tests?: { easiness?: number; mirror?: number };
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

/** The report's account of a second detection round (see Report['detection']). */
export interface SecondRoundReport {
  targetFpr: number;
  /** The easiness test's budget in the second round, where it ran. */
  easiness?: number;
  /** The mirror test's budget in the second round, where it ran. */
  mirror?: number;
  firstRound: { flagged: number; removed: Record<string, number> };
  secondRound: { flagged: number; removed: Record<string, number>; auroc: Record<string, number> };
}

/** The second round's report block from the two rounds' summaries. */
export function secondRoundReport(
  targetFpr: number,
  first: DetectionSummary,
  second: DetectionSummary,
  easiness?: number,
  mirror?: number,
): SecondRoundReport {
  return {
    targetFpr,
    ...(easiness ? { easiness } : {}),
    ...(mirror ? { mirror } : {}),
    firstRound: { flagged: first.flagged.length, removed: first.removed },
    secondRound: { flagged: second.flagged.length, removed: second.removed, auroc: second.auroc },
  };
}

/** The tests united with a calibrated k-NN, by name, at their budgets (the set ones only). */
function extraTests(
  d: { easiness?: number; mirror?: number },
  words: (name: string, what: string, budget: string) => string,
): string[] {
  const p = (x: number) => `${+(100 * x).toFixed(1)}%`;
  const out: string[] = [];
  if (d.easiness)
    out.push(words('easiness', 'rows learned far better than their class', p(d.easiness)));
  if (d.mirror)
    out.push(words('mirror', 'rows whose loss jumps when the image is mirrored', p(d.mirror)));
  return out;
}

/**
 * The report's words for the tests united with the k-NN — the easiness and mirror tests at their
 * budgets (the HTML export and the Report step); '' without them.
 */
export function extraTestsText(d: { easiness?: number; mirror?: number }): string {
  const tests = extraTests(d, (name, what, b) => `the ${name} test (${what}) at ${b}`);
  return tests.length ? `, with ${tests.join(' and ')} of the clean data` : '';
}

/** The budgets of the tests united with a k-NN, in words (" (and 2% for …)"); '' without them. */
export function extraBudgetsText(d: { easiness?: number; mirror?: number }): string {
  const tests = extraTests(d, (name, _what, b) => `${b} for the ${name} test`);
  return tests.length ? ` (and ${tests.join(' and ')})` : '';
}

/** The retraining options of a run's configuration (RunConfig's retrain* flags). */
export type RetrainingOptions = Partial<Record<RetrainOption, boolean>>;

/** What the retraining adds to the first training's recipe, in a teacher's words (none: []). */
export function retrainingRecipe(c: RetrainingOptions): string[] {
  return [
    ...(c.retrainJitter ? ['each image blurred very slightly'] : []),
    ...(c.retrainStripes ? ['faint random stripes added to each image'] : []),
    ...(c.retrainMatchSteps ? ['more epochs to make up for the examples removed'] : []),
    ...(c.retrainReweight ? ['each class weighted to its share of the test set'] : []),
  ];
}

/** Words joined as a sentence lists them: "a", "a and b", "a, b and c". */
export function andList(words: string[]): string {
  return words.length > 2
    ? `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`
    : words.join(' and ');
}

/** The report's sentence on how the defended model was trained (the HTML export and the Report step). */
export function retrainingText(
  c: RetrainingOptions,
  recordedElsewhere?: string,
  epochs?: RetrainedEpochs,
): string {
  if (recordedElsewhere)
    return `This run was recorded elsewhere (${recordedElsewhere}) and not retrained here: the BaDLoss row is the model that recorded it; retrain there without the flagged rows to measure the defense.`;
  // What changes the images (the steps only make up for the rows removed).
  const how = retrainingRecipe({ ...c, retrainMatchSteps: false });
  const steps = !c.retrainMatchSteps
    ? ''
    : epochs && epochs.retrained > epochs.recipe
      ? ` It trained for ${epochs.retrained} epochs instead of the recipe's ${epochs.recipe} to make up for the examples removed: about as many training steps as the first model took.`
      : epochs && epochs.retrained === epochs.recipe
        ? ` It trained for the recipe's ${epochs.recipe} epochs: so few examples were removed that these are about as many training steps as the first model took.`
        : ' It trained for more epochs to make up for the examples removed: about as many training steps as the first model took.';
  if (!how.length)
    return `BaDLoss's model was retrained from scratch without the flagged examples, with the same recipe.${steps}`;
  const why = [
    ...(c.retrainJitter ? ['a warping trigger hides in such a blur'] : []),
    ...(c.retrainStripes ? ['a stripe-pattern trigger hides among such stripes'] : []),
    ...(c.retrainReweight
      ? ['a class that an attack filled with relabeled examples no longer draws predictions to it']
      : []),
  ];
  return `BaDLoss's model was retrained from scratch without the flagged examples, with ${andList(how)} (${why.join('; ')}), so the poisoned examples the detection missed plant less of their backdoor.${steps} The no-defense model was trained without ${how.length > 1 ? 'them' : 'it'}, so part of the change comes from the retraining recipe itself.`;
}

/** How long BaDLoss's model was retrained, beside the recipe's epochs. */
export interface RetrainedEpochs {
  recipe: number;
  retrained: number;
}

/**
 * The epochs of a report's retrained model against the recipe's, where they can differ (a
 * retraining that matched the first model's steps, `retrainMatchSteps`, and was trained here:
 * its training history has one entry per epoch); otherwise undefined.
 */
export function retrainedEpochs(r: Report): RetrainedEpochs | undefined {
  const retrained = r.training.defended.length;
  if (!r.config.retrainMatchSteps || !retrained) return undefined;
  return { recipe: r.config.train.epochs, retrained };
}

/** The report's sentence on a second detection round (the HTML export and the Report step). */
export function secondRoundText(s: SecondRoundReport): string {
  return `Two detection rounds: the first removed ${s.firstRound.flagged}; a second model, trained on what it kept, found ${s.secondRound.flagged} more at a clean-removal budget of ${+(100 * s.targetFpr).toFixed(1)}%${extraBudgetsText(s)}. The table counts both rounds; its AUROC is the first round's.`;
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
  /** With a second detection round (`summary` is then both rounds together). */
  secondRound?: SecondRoundReport;
  /** The tests united with the calibrated k-NN that ran, at their budgets (Report['detection'].tests). */
  tests?: { easiness?: number; mirror?: number };
  undefended: ModelEvaluation;
  defended: ModelEvaluation;
  historyUndefended: { epoch: number; loss: number; accuracy: number }[];
  historyDefended: { epoch: number; loss: number; accuracy: number }[];
  /** SHA-256 of the prepared training set (see splitFingerprint). */
  fingerprint?: string;
  createdAt?: Date;
  defenses?: Partial<Record<DefenseName, DefenseComparison>>;
}

/** The report's detection block: the summary's numbers, per class by name. */
function detectionFields(s: DetectionSummary, classes: string[]): Report['detection'] {
  return {
    method: s.method,
    k: s.k,
    threshold: s.threshold,
    auroc: s.auroc,
    removed: s.removed,
    removedFraction: s.removedFraction,
    perClass: s.perClass.map((c, i) => ({ class: classes[i] ?? String(i), ...c })),
    ...(s.perClassClean
      ? {
          perClassClean: s.perClassClean.map((c, i) => ({
            class: classes[i] ?? String(i),
            ...c,
          })),
        }
      : {}),
    classWarnings: (s.classWarnings ?? []).map((c) => classes[c] ?? String(c)),
    flaggedCount: s.flagged.length,
  };
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
      ...detectionFields(s, r.classes),
      ...(r.secondRound ? { secondRound: r.secondRound } : {}),
      ...(r.tests ? { tests: r.tests } : {}),
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
  for (const i of byScore(summary.flagged, scores)) {
    const cls = (classes[labels[i]] ?? '').replaceAll('"', '""');
    lines.push(
      `${i},${scores[i].toFixed(6)},${labels[i]},"${cls}"` + (truthName ? `,${truthName(i)}` : ''),
    );
  }
  return lines.join('\n') + '\n';
}

// ---- Self-contained HTML report (issue #13). Kept in one block at the end of the file. ----

const esc = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
const pct = (x: number | undefined) =>
  x === undefined || Number.isNaN(x) ? '—' : `${(100 * x).toFixed(1)}%`;
const abbr = (k: GlossaryKey) =>
  `<abbr title="${esc(GLOSSARY[k].text)}">${esc(GLOSSARY[k].term)}</abbr>`;

/** Extra material for the HTML report: the verdict's extras, thumbnails and the flagged list. */
export interface ReportHtmlOptions {
  extras?: VerdictExtras;
  /** The most suspicious examples as image data URLs (PNG), most suspicious first. */
  thumbnails?: { src: string; caption: string }[];
  /** The flagged examples (first rows are shown in a table; all of them are in the CSV export). */
  flagged?: FlaggedEntry[];
}

/**
 * A self-contained HTML report: the verdict first, then every table the app shows (accuracy and
 * ASR with the change coloured by meaning, detection per group including the clean row — the
 * false positives —, removal per class), thumbnails of the most suspicious examples as data URLs,
 * the flagged list, a glossary and the configuration. Inline CSS only: no scripts and no external
 * request.
 */
export function reportHtml(r: Report, opts: ReportHtmlOptions = {}): string {
  const v = verdictOf(r, opts.extras);
  const toneClass = (t: string) => `tone-${t}`;
  const attackName = (id: string) => r.attacks.find((a) => a.id === id)?.name ?? id;
  const ids = r.attacks.map((a) => a.id as string);
  const asrHead = ids
    .map((id) => `<th>${esc(attackName(id))}<br><small>${abbr('asr')} · ${esc(id)}</small></th>`)
    .join('');
  const row = (name: string, which: 'undefended' | 'defended') =>
    `<tr><th>${name}</th><td>${pct(r.cleanAccuracy[which])}</td>${ids.map((id) => `<td>${pct(r.asr[which][id])}</td>`).join('')}${ids.length ? `<td>${pct(r.averageAsr[which])}</td>` : ''}</tr>`;
  const change = (a: number, b: number, lowerIsBetter: boolean) => {
    const t = changeTone(a, b, lowerIsBetter);
    const d =
      Number.isFinite(a) && Number.isFinite(b)
        ? `${b - a >= 0 ? '+' : '−'}${Math.abs(100 * (b - a)).toFixed(1)} pts`
        : '—';
    const word = { better: 'better', worse: 'worse', same: 'no effect', unknown: '' }[t];
    return `<td class="${toneClass(t)}">${d}${word ? ` <small>(${word})</small>` : ''}</td>`;
  };
  const changeRow = `<tr><th>Change</th>${change(r.cleanAccuracy.undefended, r.cleanAccuracy.defended, false)}${ids
    .map((id) => {
      const av = v.attacks.find((a) => a.id === id);
      return av && !av.tookHold && Number.isFinite(av.before)
        ? `<td class="tone-unknown">never took hold</td>`
        : change(r.asr.undefended[id], r.asr.defended[id], true);
    })
    .join(
      '',
    )}${ids.length ? change(r.averageAsr.undefended, r.averageAsr.defended, true) : ''}</tr>`;
  const groupLabel = (k: string) =>
    k === 'clean'
      ? r.mode === 'audit'
        ? 'your examples (no ground truth)'
        : 'clean examples (removed = false positives)'
      : k === 'all'
        ? 'all poisons'
        : `${esc(attackName(k))} <small>(${esc(k)})</small>`;
  const groups = [...Object.keys(r.detection.removed).filter((k) => k !== 'total')];
  if (r.detection.auroc.all !== undefined) groups.push('all');
  const size = (k: string) => {
    if (k === 'all') return r.attacks.reduce((s, a) => s + a.count, 0);
    const f = r.detection.removedFraction[k];
    return f ? Math.round((r.detection.removed[k] ?? 0) / f) : undefined;
  };
  const detRows = groups
    .map((k) => {
      const removed =
        k === 'all'
          ? ids.reduce((s, id) => s + (r.detection.removed[id] ?? 0), 0)
          : (r.detection.removed[k] ?? 0);
      const of = size(k);
      const au = r.detection.auroc[k];
      return `<tr><th>${groupLabel(k)}</th><td>${removed}</td><td>${of ?? '—'}</td><td>${of ? pct(removed / of) : '—'}</td><td>${au === undefined || Number.isNaN(au) ? '—' : au.toFixed(3)}</td></tr>`;
    })
    .join('');
  const perClass = r.detection.perClass
    .map(
      (c) =>
        `<tr><th>${esc(c.class)}</th><td>${c.removed}</td><td>${c.total}</td><td>${pct(c.total ? c.removed / c.total : 0)}</td></tr>`,
    )
    .join('');
  const thumbs = (opts.thumbnails ?? [])
    .map(
      (t) =>
        `<figure><img src="${esc(t.src)}" width="64" height="64" alt="${esc(t.caption)}"><figcaption>${esc(t.caption)}</figcaption></figure>`,
    )
    .join('');
  const flagged = opts.flagged ?? [];
  const shown = flagged.slice(0, 200);
  const flaggedRows = shown
    .map(
      (e) =>
        `<tr><td>${e.rank}</td><th>${esc(e.source)}</th><td>${esc(e.class)}</td><td>${e.score.toFixed(3)}</td>${e.truth !== undefined ? `<td>${esc(e.truth)}</td>` : ''}</tr>`,
    )
    .join('');
  const hasTruth = shown.some((e) => e.truth !== undefined);
  const glossary = (Object.keys(GLOSSARY) as GlossaryKey[])
    .map((k) => `<dt>${esc(GLOSSARY[k].term)}</dt><dd>${esc(GLOSSARY[k].text)}</dd>`)
    .join('');
  const caveats = v.caveats
    .map((c) => `<li>${esc(c.text)}${c.action ? ` <b>${esc(c.action)}</b>` : ''}</li>`)
    .join('');
  const det = r.detection;
  const defenseSection = defensesHtml(r, ids, attackName);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>BaDLoss Lab report — ${esc(r.dataset.name)}</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem auto;max-width:64rem;color:#1b2430;padding:0 1rem}table{border-collapse:collapse;margin:0.5rem 0 1.5rem}th,td{padding:.3rem .7rem;border-bottom:1px solid #d9dee5;text-align:right;vertical-align:top}th:first-child,td:first-child{text-align:left}small{color:#5b6675;font-weight:normal}pre{background:#f6f7f9;padding:1rem;overflow:auto}.verdict{border-left:6px solid #5b6675;background:#f6f7f9;padding:.75rem 1rem;margin:1rem 0}.verdict.tone-better{border-color:#1e8449}.verdict.tone-worse{border-color:#c0392b}.verdict.tone-same{border-color:#b9770e}.headline{font-size:1.15rem;font-weight:600;margin:0 0 .5rem}td.tone-better{color:#1e8449}td.tone-worse{color:#c0392b}td.tone-same,td.tone-unknown{color:#5b6675}.caveats li{margin:.25rem 0}.thumbs{display:flex;flex-wrap:wrap;gap:.5rem}figure{margin:0;width:84px;font-size:11px;text-align:center;overflow-wrap:anywhere}img{image-rendering:pixelated;display:block;margin:0 auto}abbr{text-decoration:underline dotted}dt{font-weight:600;margin-top:.4rem}dd{margin:0 0 0 1rem;color:#5b6675}</style>
</head><body>
<h1>BaDLoss Lab report</h1>
<p>${esc(r.dataset.name)} · ${r.dataset.train} training / ${r.dataset.test} test images · ${r.mode === 'audit' ? 'audit of your own data' : 'benchmark (attacks injected by the app)'} · ${esc(r.createdAt)}</p>
<section class="verdict ${toneClass(v.tone)}" id="verdict">
<p class="headline">${esc(v.headline)}</p>
${v.sentences.map((x) => `<p>${esc(x)}</p>`).join('\n')}
${caveats ? `<p><b>Caveats</b></p><ul class="caveats">${caveats}</ul>` : ''}
</section>
<h2>Clean accuracy and attack success rate</h2>
<p><small>${abbr('cleanAccuracy')}: higher is better. ${abbr('asr')}: lower is better. Changes within ±2 points count as no effect. ${esc(retrainingText(r.config, opts.extras?.recordedElsewhere, retrainedEpochs(r)))}</small></p>
<table><tr><th></th><th>${abbr('cleanAccuracy')}</th>${asrHead}${ids.length ? '<th>average ASR</th>' : ''}</tr>${row('No defense', 'undefended')}${row('BaDLoss', 'defended')}${changeRow}</table>
<h2>Detection</h2>
<p><small>Method ${esc(det.method === 'knn' ? 'k-NN over the probes' : det.method)}${det.k ? `, ${abbr('k')} = ${det.k}` : ''}, ${abbr('threshold')} ${det.threshold}${extraTestsText(det.tests ?? r.config.detect)}. Probes from ${esc(probeSourceText(r, opts.extras?.trustedName))}.${det.secondRound ? ` ${esc(secondRoundText(det.secondRound))}` : ''}</small></p>
<table><tr><th>group</th><th>removed</th><th>of</th><th>share</th><th>${abbr('auroc')}</th></tr>${detRows}</table>
<h2>Removal per class</h2>
${r.detection.classWarnings?.length ? `<p><strong>Warning:</strong> ${r.detection.classWarnings.map(esc).join(', ')} lost a much larger fraction than the other classes (at least twice the overall fraction and 10 points more).</p>` : ''}
<table><tr><th>class</th><th>removed</th><th>of</th><th>fraction</th></tr>${perClass}</table>
${defenseSection}
${thumbs ? `<h2>The most suspicious examples</h2><div class="thumbs">${thumbs}</div>` : ''}
${flagged.length ? `<h2>Flagged examples (${flagged.length}${flagged.length > shown.length ? `, first ${shown.length} shown` : ''})</h2><table><tr><th>rank</th><th>source</th><th>class</th><th>score</th>${hasTruth ? '<th>truth</th>' : ''}</tr>${flaggedRows}</table>` : ''}
<h2>Terms</h2>
<dl>${glossary}</dl>
<h2>Configuration</h2>
<pre>${esc(JSON.stringify(r.config, null, 2))}</pre>
</body></html>
`;
}

// ---------------------------------------------------------------------------------------------
// Detection-only report: trajectories recorded outside the app (e.g. a PyTorch DDP run, see
// integrations/pytorch/) and scored here. No model was trained or evaluated by us, so there is no
// clean accuracy or ASR: the report says so instead of showing blanks.

/** One of the most suspicious rows, for the report's gallery. */
export interface SuspiciousRow {
  row: number;
  score: number;
  label: number;
  class: string;
  /** The attack that poisoned it (ground truth), or null. */
  truth: string | null;
  /** A data: URI of the image (PNG), when the training set was given. */
  thumbnail?: string;
}

/** The report of a detection on trajectories recorded elsewhere (rates in [0, 1]). */
export interface DetectionReport {
  tool: 'BaDLoss Lab';
  kind: 'detection-only';
  createdAt: string;
  dataset: { name: string; classes: string[]; train: number; fingerprint: string };
  trajectories: { file: string; rows: number; epochs: number };
  probes: { clean: number; anomalous: number };
  detection: Report['detection'];
  /** Poisoned rows per attack id (ground truth). */
  attackCounts: Record<string, number>;
  /** Non-probe rows with the highest scores, most suspicious first. */
  suspicious: SuspiciousRow[];
}

/** What buildDetectionReport needs: a detection, its summary against the truth file, and rows' labels. */
export interface DetectionReportInput {
  datasetName: string;
  classes: string[];
  fingerprint: string;
  trajectories: { file: string; rows: number; epochs: number };
  probes: { clean: number[]; anomalous: number[] };
  summary: DetectionSummary;
  /** Per row, NaN for probes. */
  scores: Float32Array;
  labels: Uint8Array;
  truthOf: (row: number) => string | null;
  /** How many of the most suspicious rows to list (default 48). */
  top?: number;
  thumbnail?: (row: number) => string;
  createdAt?: Date;
}

/** Assembles a detection-only report; the most suspicious rows are ordered by score, then row. */
export function buildDetectionReport(r: DetectionReportInput): DetectionReport {
  const s = r.summary;
  const judged: number[] = [];
  for (let i = 0; i < r.scores.length; i++) if (!Number.isNaN(r.scores[i])) judged.push(i);
  const ranked = byScore(judged, r.scores);
  const attackCounts: Record<string, number> = {};
  for (let i = 0; i < r.labels.length; i++) {
    const t = r.truthOf(i);
    if (t !== null) attackCounts[t] = (attackCounts[t] ?? 0) + 1;
  }
  return {
    tool: 'BaDLoss Lab',
    kind: 'detection-only',
    createdAt: (r.createdAt ?? new Date()).toISOString(),
    dataset: {
      name: r.datasetName,
      classes: r.classes,
      train: r.trajectories.rows,
      fingerprint: r.fingerprint,
    },
    trajectories: r.trajectories,
    probes: { clean: r.probes.clean.length, anomalous: r.probes.anomalous.length },
    detection: detectionFields(s, r.classes),
    attackCounts,
    suspicious: ranked.slice(0, r.top ?? 48).map((row) => ({
      row,
      score: r.scores[row],
      label: r.labels[row],
      class: r.classes[r.labels[row]] ?? String(r.labels[row]),
      truth: r.truthOf(row),
      ...(r.thumbnail ? { thumbnail: r.thumbnail(row) } : {}),
    })),
  };
}

/** A self-contained HTML page (inline CSS and images, no scripts) of a detection-only report. */
export function detectionReportHtml(r: DetectionReport): string {
  const d = r.detection;
  const groups = Object.keys(d.removed).filter((k) => k !== 'total');
  const groupRows = groups
    .map((k) => {
      const a = d.auroc[k];
      const size = k === 'clean' ? undefined : r.attackCounts[k];
      return `<tr><th>${esc(k)}</th><td>${a === undefined || Number.isNaN(a) ? '—' : a.toFixed(3)}</td><td>${d.removed[k] ?? 0}${size !== undefined ? ` of ${size}` : ''}</td><td>${pct(d.removedFraction[k])}</td></tr>`;
    })
    .join('');
  const overall =
    d.auroc.all !== undefined
      ? `<tr><th>all poisons</th><td>${Number.isNaN(d.auroc.all) ? '—' : d.auroc.all.toFixed(3)}</td><td></td><td></td></tr>`
      : '';
  const perClass = d.perClass
    .map(
      (c) =>
        `<tr><th>${esc(c.class)}</th><td>${c.removed}</td><td>${c.total}</td><td>${pct(c.total ? c.removed / c.total : 0)}</td></tr>`,
    )
    .join('');
  const gallery = r.suspicious
    .map(
      (s) =>
        `<figure>${s.thumbnail ? `<img src="${s.thumbnail}" width="64" height="64" alt="row ${s.row}">` : ''}<figcaption>#${s.row} · ${s.score.toFixed(3)}<br>${esc(s.class)}${s.truth ? ` · <b>${esc(s.truth)}</b>` : ''}</figcaption></figure>`,
    )
    .join('');
  const thumbNote = r.suspicious.some((s) => s.thumbnail)
    ? ''
    : '<p>No images: pass <code>--dataset &lt;train.bin&gt;</code> to show thumbnails.</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>BaDLoss Lab detection report — ${esc(r.dataset.name)}</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1b2430}table{border-collapse:collapse;margin:0.5rem 0 1.5rem}th,td{padding:.3rem .7rem;border-bottom:1px solid #d9dee5;text-align:right}th:first-child{text-align:left}.note{background:#fff6e0;border-left:4px solid #e0a800;padding:.6rem 1rem}.gallery{display:flex;flex-wrap:wrap;gap:.5rem}figure{margin:0;width:7rem;font-size:12px}img{image-rendering:pixelated;display:block}</style>
</head><body>
<h1>BaDLoss Lab detection report</h1>
<p>${esc(r.dataset.name)} · ${r.dataset.train} training rows · trajectories ${esc(r.trajectories.file)} (${r.trajectories.rows} × ${r.trajectories.epochs} epochs) · ${r.probes.clean} clean and ${r.probes.anomalous} anomalous probes · ${esc(r.createdAt)}</p>
<p class="note">Detection only: the model was trained outside BaDLoss Lab, so this report has no clean accuracy and no attack success rate. To measure them, retrain without the flagged rows and evaluate on a clean and a triggered test set.</p>
<h2>Detection (${esc(d.method)}${d.k ? `, k = ${d.k}` : ''}, threshold ${d.threshold})</h2>
<p>${d.flaggedCount} rows flagged.</p>
<table><tr><th>group</th><th>AUROC</th><th>removed</th><th>fraction</th></tr>${groupRows}${overall}</table>
<h2>Removal per class</h2>
<table><tr><th>class</th><th>removed</th><th>of</th><th>fraction</th></tr>${perClass}</table>
<h2>Most suspicious rows</h2>
${thumbNote}<div class="gallery">${gallery}</div>
<p>Training-set fingerprint (SHA-256): <code>${esc(r.dataset.fingerprint)}</code></p>
</body></html>
`;
}

/** The report's side-by-side comparison of defenses (Table 3 and Table 1 style), as HTML. */
function defensesHtml(r: Report, ids: string[], attackName: (id: string) => string): string {
  const names = (Object.keys(r.defenses ?? {}) as DefenseName[]).filter((d) => r.defenses![d]);
  if (names.length < 2) return '';
  const label = (d: DefenseName) => DEFENSE_LABELS[d];
  const retrained = names.filter((d) => r.defenses![d]!.cleanAccuracy !== undefined);
  const head = ids.map((id) => `<th>${esc(attackName(id))}</th>`).join('');
  const after = retrained.length
    ? `<h3>After retraining without each defense's removals</h3><table><tr><th></th><th>clean accuracy</th>${head}<th>average ASR</th></tr><tr><th>No defense</th><td>${pct(r.cleanAccuracy.undefended)}</td>${ids.map((id) => `<td>${pct(r.asr.undefended[id])}</td>`).join('')}<td>${pct(r.averageAsr.undefended)}</td></tr>${retrained
        .map((d) => {
          const x = r.defenses![d]!;
          return `<tr><th>${esc(label(d))}</th><td>${pct(x.cleanAccuracy)}</td>${ids.map((id) => `<td>${pct(x.asr?.[id])}</td>`).join('')}<td>${pct(x.averageAsr)}</td></tr>`;
        })
        .join('')}</table>`
    : '';
  const detection =
    r.mode === 'benchmark'
      ? `<h3>Detection ${abbr('auroc')} per attack</h3><table><tr><th></th>${head}<th>all poisons</th><th>clean removed</th></tr>${names
          .map((d) => {
            const x = r.defenses![d]!;
            const a = (k: string) => (Number.isFinite(x.auroc[k]) ? x.auroc[k].toFixed(3) : '—');
            return `<tr><th>${esc(label(d))}</th>${ids.map((id) => `<td>${a(id)}</td>`).join('')}<td>${a('all')}</td><td>${x.removed.clean ?? 0} (${pct(x.removedFraction.clean)})</td></tr>`;
          })
          .join('')}</table>`
      : '';
  return `<h2>Every defense side by side</h2>${r.comparison ? `<p><b>${esc(r.comparison)}</b></p>` : ''}${after}${detection}`;
}
