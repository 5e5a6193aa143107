import { underfit, UNDERFIT_LOSS, type ProbeFit } from './detect/fit.ts';
import type { DetectOptions } from './detect/index.ts';
import { DEFAULT_DETECT } from './experiment.ts';
import type { DetectionSummary, Report } from './report.ts';
import type { RunRecord } from './run.ts';

/**
 * An attack "took hold" when the undefended model's ASR reached this bar (rate in [0, 1]). Below
 * it the backdoor was never learned, so a low ASR after the defense proves nothing.
 */
export const TOOK_HOLD_ASR = 0.2;
/** Changes of a rate smaller than this (2 percentage points) count as "no effect". */
export const NO_EFFECT_TOLERANCE = 0.02;
/** Fewer probes of a kind than this make the detector's neighbours unreliable (SPEC §3 uses 250). */
export const MIN_PROBES = 20;
/** A best leave-one-out AUROC below this means the probes' trajectories barely separate. */
export const MIN_LOO_AUROC = 0.6;

/** What a change means for the user: better, worse, no effect (within tolerance), or unknown. */
export type Tone = 'better' | 'worse' | 'same' | 'unknown';

/**
 * Classifies a change of a rate from `before` to `after` (both in [0, 1]); `lowerIsBetter` for
 * ASR, not for accuracy. |after − before| ≤ `tol` is 'same'; NaN on either side is 'unknown'.
 */
export function changeTone(
  before: number,
  after: number,
  lowerIsBetter: boolean,
  tol = NO_EFFECT_TOLERANCE,
): Tone {
  if (!Number.isFinite(before) || !Number.isFinite(after)) return 'unknown';
  const d = after - before;
  if (Math.abs(d) <= tol) return 'same';
  return d < 0 === lowerIsBetter ? 'better' : 'worse';
}

/** The verdict on one attack. Rates in [0, 1]; `caught` of `poisoned` training examples were removed. */
export interface AttackVerdict {
  id: string;
  name: string;
  tookHold: boolean;
  before: number;
  after: number;
  tone: Tone;
  caught: number;
  poisoned: number;
  sentence: string;
}

/**
 * Detection warnings that advise rather than stop the Detect step's "retrain" button: the
 * detection still means what it says, it could be sharper.
 */
const ADVISORY_CAVEATS: readonly Caveat['kind'][] = [
  'few-probes',
  'easiness-idle',
  'mirror-idle',
  'mirror-skipped',
  'underfit',
];

/** A warning with what to do about it. */
export interface Caveat {
  kind:
    | 'never-took-hold'
    | 'few-probes'
    | 'easiness-idle'
    | 'mirror-idle'
    | 'mirror-skipped'
    | 'underfit'
    | 'loo-chance'
    | 'most-flagged'
    | 'class-hit'
    | 'no-ground-truth'
    | 'probe-source'
    | 'no-test';
  text: string;
  action?: string;
}

export interface Verdict {
  /** One sentence: did the defense work? */
  headline: string;
  tone: Tone;
  attacks: AttackVerdict[];
  /** What the defense removed and what it did to clean accuracy, in plain sentences. */
  sentences: string[];
  caveats: Caveat[];
}

/** What the report alone does not hold. */
export interface VerdictExtras {
  /** Leave-one-out AUROC per candidate k (k-NN only). */
  looAuroc?: { k: number; auroc: number }[];
  /** Probes actually placed, per kind. */
  probeCounts?: { clean: number; backdoor: number; mislabeled: number };
  /** Name of the separately uploaded trusted dataset (probes.trusted = 'dataset'). */
  trustedName?: string;
  /** How far the probationary model fit its probes (the detection record's). */
  probeFit?: ProbeFit;
  /** The trajectories file of a run recorded elsewhere (no model was retrained here). */
  recordedElsewhere?: string;
}

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '—');
const pts = (d: number) => `${Math.abs(100 * d).toFixed(1)} points`;
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * Warnings about a detection that hold before any retraining (the Detect and Retrain steps show
 * them, the verdict and the command line's log repeat them): a probationary model far from
 * fitting its data (`underfit`), too few clean probes for the easiness or mirror test to flag
 * anything, a mirror test skipped for want of the model,
 * fewer than MIN_PROBES probes of a kind, a best leave-one-out AUROC below MIN_LOO_AUROC, more
 * than half of the `judged` examples `flagged`. Each says what to do; `detect` (the run's
 * detection settings, when known) decides which settings the advice can name.
 */
export function detectionCaveats(d: {
  flagged: number;
  judged: number;
  looAuroc?: { k: number; auroc: number }[];
  probeCounts?: { clean: number; backdoor: number; mislabeled: number };
  detect?: Pick<DetectOptions, 'method' | 'threshold' | 'easiness' | 'mirror'>;
  probeFit?: ProbeFit;
  /** The mirror test was asked for but skipped: the run has no model here to measure its gaps. */
  mirrorSkipped?: boolean;
}): Caveat[] {
  const out: Caveat[] = [];
  const fit = d.probeFit;
  const easiness = d.detect?.easiness;
  // probeFit reads a loss that is not a number as infinite: the training diverged.
  if (fit && underfit(fit) && !Number.isFinite(fit.clean))
    out.push({
      kind: 'underfit',
      text: 'The probationary model diverged: its recorded losses for the clean probes are not numbers, so the trajectories say nothing about the data.',
      action: 'Train the probationary model again at a lower learning rate, then detect again.',
    });
  else if (fit && underfit(fit)) {
    const f = fit;
    const nats = (x: number) => x.toFixed(2);
    const longer = 'train the probationary model longer or at a higher learning rate';
    // The easiness test needs the calibrated k-NN threshold (the configuration refuses it else).
    const calibrated = d.detect?.method === 'knn' && d.detect.threshold === 'auto';
    const budget = DEFAULT_DETECT.easiness;
    const easinessAdvice = calibrated
      ? `Turn on the "learned too easily" test (on the Detect step; --easiness ${budget} on the command line)`
      : `Use the k-NN with the calibrated threshold and turn on the "learned too easily" test (on the Detect step; --method knn --threshold auto --easiness ${budget} on the command line)`;
    const anomalous =
      Number.isFinite(f.backdoor) && Number.isFinite(f.mislabeled)
        ? ` The backdoor probes end at ${nats(f.backdoor)} and the mislabeled ones at ${nats(f.mislabeled)}.`
        : '';
    out.push({
      kind: 'underfit',
      text: `The probationary model is far from fitting its data: after its last epoch the median clean probe still has a loss of ${nats(f.clean)} (its own label gets ${pct(Math.exp(-f.clean))} of the probability; a fitted model is well under ${nats(UNDERFIT_LOSS)}).${anomalous} BaDLoss tells poisons apart by how fast they are learned next to clean data; this early, an attack the network learns faster than the rest of its class may resemble no probe, and a detector that compares rows with the probes misses it.`,
      action:
        easiness || !d.detect
          ? `${longer.charAt(0).toUpperCase()}${longer.slice(1)}, then detect again.`
          : `${easinessAdvice}: on CIFAR-10 at this stage it removed almost three times as many of the poisons that took hold. Or ${longer}.`,
    });
  }
  const pc = d.probeCounts;
  const tests = [
    { kind: 'easiness-idle', name: '"learned too easily"', budget: easiness },
    { kind: 'mirror-idle', name: '"breaks when mirrored"', budget: d.detect?.mirror },
  ] as const;
  for (const t of tests) {
    if (!pc || !t.budget || (t.kind === 'mirror-idle' && d.mirrorSkipped)) continue;
    // Its p-value is calibrated on the clean probes: with m of them it cannot go below 1/(m + 1).
    const need = easinessProbesNeeded(t.budget);
    if (pc.clean < need)
      out.push({
        kind: t.kind,
        text: `The ${t.name} test needs at least ${need} clean probes to remove anything at its budget of ${pct(t.budget)}; with ${pc.clean} it removed nothing.`,
        action: 'Add trusted examples and raise the number of probes, or raise its budget.',
      });
  }
  if (d.mirrorSkipped && d.detect?.mirror)
    out.push({
      kind: 'mirror-skipped',
      text: 'The "breaks when mirrored" test did not run: it needs the probationary model, which was trained elsewhere or not kept with this run, to measure each example\'s loss on its mirrored image.',
      action:
        'Train the probationary model here (or open the run file it was exported as) to use it.',
    });
  if (pc) {
    const fewest = Math.min(pc.clean, pc.backdoor, pc.mislabeled);
    if (fewest < MIN_PROBES)
      out.push({
        kind: 'few-probes',
        text: `Only ${fewest} probes of a kind (fewer than ${MIN_PROBES}): the detector's vote rests on very few examples and its scores are coarse.`,
        action: 'Add trusted examples and raise the number of probes (the paper uses 250).',
      });
  }
  const loo = d.looAuroc?.filter((x) => Number.isFinite(x.auroc)) ?? [];
  if (loo.length > 0) {
    const best = Math.max(...loo.map((x) => x.auroc));
    if (best < MIN_LOO_AUROC)
      out.push({
        kind: 'loo-chance',
        text: `The probes' own trajectories barely separate (best leave-one-out AUROC ${best.toFixed(2)}, 0.5 is chance): the scores are close to guesses.`,
        action: 'Train longer, add probes, or use another detection method.',
      });
  }
  if (d.judged > 0 && d.flagged / d.judged > 0.5)
    out.push({
      kind: 'most-flagged',
      text: `More than half of the examples were flagged (${pct(d.flagged / d.judged)}): retraining on what is left throws most of the data away.`,
      action: 'Raise the threshold on the Detect step, or add probes and detect again.',
    });
  return out;
}

/** A warning as one line of a log: "warning: <text> <action>". */
export function caveatLine(c: Caveat): string {
  return `warning: ${c.text}${c.action ? ` ${c.action}` : ''}`;
}

/** Whether warnings should hold the Detect step's retrain button back (any not advisory). */
export function blocksRetrain(caveats: readonly Caveat[]): boolean {
  return caveats.some((c) => !ADVISORY_CAVEATS.includes(c.kind));
}

/**
 * A stored run's detection warnings (`detectionCaveats` on its record): removals from `summary`
 * (default: the stored detection's; the Detect step passes the threshold it explores) and the
 * probe fit from `fit` (default: the stored one).
 */
export function runDetectionCaveats(
  r: Pick<RunRecord, 'config' | 'prepared' | 'detection'>,
  summary: DetectionSummary | undefined = r.detection?.summary,
  fit: ProbeFit | undefined = r.detection?.probeFit,
): Caveat[] {
  if (!summary || !r.prepared) return [];
  return detectionCaveats({
    flagged: summary.flagged.length,
    judged: summary.perClass.reduce((s, c) => s + c.total, 0),
    looAuroc: r.detection?.looAuroc,
    probeCounts: r.prepared.probes,
    detect: r.config.detect,
    probeFit: fit,
    mirrorSkipped:
      !!r.detection?.calibration &&
      r.config.detect.mirror !== undefined &&
      r.detection.calibration.mirror === undefined,
  });
}

/** The fewest clean probes with which a conformal test at level α can flag a row: 1/(m + 1) < α. */
export function easinessProbesNeeded(alpha: number): number {
  let m = Math.max(0, Math.floor(1 / alpha) - 2);
  while (1 / (m + 1) >= alpha) m++;
  return m;
}

/** Where the probes' trusted examples came from, in words. */
export function probeSourceText(r: Pick<Report, 'config'>, trustedName?: string): string {
  switch (r.config.probes.trusted) {
    case 'test':
      return 'the test split (held out from evaluation)';
    case 'dataset':
      return `the separately uploaded trusted dataset${trustedName ? ` “${trustedName}”` : ''}`;
    default:
      return r.config.mode === 'audit'
        ? 'the training data under audit itself (not vetted)'
        : 'training images no attack touched';
  }
}

/**
 * Turns a report into plain sentences (SPEC §6): which attacks took hold (undefended ASR ≥
 * TOOK_HOLD_ASR) and which never did — those are not counted as a success of the defense — what
 * the defense removed (poisons caught per attack, clean examples lost, as counts and %), what it
 * did to each ASR and to clean accuracy (tones with NO_EFFECT_TOLERANCE), and caveats: attacks
 * that never took hold, fewer than MIN_PROBES probes of a kind, a best leave-one-out AUROC below
 * MIN_LOO_AUROC, more than half flagged, a class hit much harder than the others (≥ 3× the
 * overall rate and ≥ 20 points above it, classes of ≥ 10 examples, attack targets excluded), and
 * in audit mode the absence of ground truth and where the probes came from.
 */
export function verdictOf(r: Report, extras: VerdictExtras = {}): Verdict {
  const det = r.detection;
  const caveats: Caveat[] = [];
  const sentences: string[] = [];
  const accBefore = r.cleanAccuracy.undefended;
  const accAfter = r.cleanAccuracy.defended;
  const accTone = changeTone(accBefore, accAfter, false);
  const judged = det.perClass.reduce((s, c) => s + c.total, 0);
  const flagged = det.removed.total ?? det.flaggedCount;

  const attacks: AttackVerdict[] = r.attacks.map((a) => {
    const before = r.asr.undefended[a.id] ?? NaN;
    const after = r.asr.defended[a.id] ?? NaN;
    const tookHold = Number.isFinite(before) && before >= TOOK_HOLD_ASR;
    const tone = changeTone(before, after, true);
    const caught = det.removed[a.id] ?? 0;
    const poisoned = a.count;
    const caughtText = `${caught} of its ${poisoned} poisoned examples were removed (${pct(poisoned ? caught / poisoned : NaN)})`;
    let sentence: string;
    if (!Number.isFinite(before))
      sentence = `${a.name}: its ASR could not be measured; ${caughtText}.`;
    else if (!tookHold)
      sentence = `${a.name} never took hold: without the defense only ${pct(before)} of triggered test images went to its target (the bar is ${pct(TOOK_HOLD_ASR)}), so its ASR of ${pct(after)} after the defense says nothing about the defense; ${caughtText}.`;
    else if (tone === 'better')
      sentence = `${a.name} took hold (ASR ${pct(before)} without the defense); BaDLoss brought it down to ${pct(after)}${after < TOOK_HOLD_ASR ? '' : ' — lower, but the backdoor still works'}; ${caughtText}.`;
    else if (tone === 'worse')
      sentence = `${a.name} took hold (ASR ${pct(before)}) and got worse after the defense (${pct(after)}); ${caughtText}.`;
    else
      sentence = `${a.name} took hold (ASR ${pct(before)}) and the defense did not change it (${pct(after)}); ${caughtText}.`;
    return { id: a.id, name: a.name, tookHold, before, after, tone, caught, poisoned, sentence };
  });

  const held = attacks.filter((a) => a.tookHold);
  const never = attacks.filter((a) => Number.isFinite(a.before) && !a.tookHold);
  const stopped = held.filter((a) => a.tone === 'better' && a.after < TOOK_HOLD_ASR);

  // What was removed.
  const cleanLost = det.removed.clean ?? 0;
  const cleanFrac = det.removedFraction.clean ?? NaN;
  if (r.mode === 'benchmark') {
    sentences.push(
      `The detector flagged ${plural(flagged, 'training example')} of ${judged} (${pct(judged ? flagged / judged : NaN)}); ${plural(cleanLost, 'clean example')} were among them (${pct(cleanFrac)} of the clean data lost).`,
    );
  } else {
    sentences.push(
      `The detector flagged ${plural(flagged, 'example')} of your ${judged} (${pct(judged ? flagged / judged : NaN)}) as suspicious; they were left out of retraining.`,
    );
  }
  sentences.push(...attacks.map((a) => a.sentence));
  if (accTone !== 'unknown')
    sentences.push(
      accTone === 'same'
        ? `Clean accuracy stayed about the same: ${pct(accBefore)} without the defense, ${pct(accAfter)} with it.`
        : `Clean accuracy went ${accAfter > accBefore ? 'up' : 'down'} by ${pts(accAfter - accBefore)}: ${pct(accBefore)} without the defense, ${pct(accAfter)} with it.`,
    );

  // Headline.
  let headline: string;
  let tone: Tone;
  if (r.mode === 'audit') {
    headline = `Audit: ${plural(flagged, 'example')} of ${judged} (${pct(judged ? flagged / judged : NaN)}) look suspicious. There is no ground truth, so they are candidates to inspect, not proven poisons.`;
    tone = 'unknown';
  } else if (attacks.length === 0) {
    headline = 'No attacks were injected, so there is nothing to defend against.';
    tone = 'unknown';
  } else if (held.length === 0) {
    headline = `No attack took hold (every undefended ASR is below ${pct(TOOK_HOLD_ASR)}), so this run cannot show whether the defense works. Train longer, poison more, or use a larger model.`;
    tone = 'unknown';
  } else if (judged > 0 && flagged / judged > 0.5) {
    // Removing most of the data "stops" any attack; that is not a working defense.
    headline = `The detector removed ${pct(flagged / judged)} of the training data, so ${held.length === 1 ? 'the attack is' : 'the attacks are'} gone along with most clean examples: this is not a working defense. Raise the threshold or add probes, and detect again.`;
    tone = 'worse';
  } else if (stopped.length === held.length) {
    headline = `BaDLoss stopped ${held.length === 1 ? 'the attack' : `all ${held.length} attacks`} that took hold${accTone === 'worse' ? `, at a cost of ${pts(accAfter - accBefore)} of clean accuracy` : ''}.`;
    tone = accTone === 'worse' ? 'same' : 'better';
  } else if (stopped.length > 0 || held.some((a) => a.tone === 'better')) {
    headline = `BaDLoss weakened ${held.filter((a) => a.tone === 'better').length} of ${held.length} attacks that took hold and stopped ${stopped.length}.`;
    tone = 'same';
  } else {
    headline = `BaDLoss did not stop the ${held.length === 1 ? 'attack' : `${held.length} attacks`} that took hold.`;
    tone = 'worse';
  }

  // Caveats.
  for (const a of never)
    caveats.push({
      kind: 'never-took-hold',
      text: `${a.name} never took hold (undefended ASR ${pct(a.before)} < ${pct(TOOK_HOLD_ASR)}); it is not counted as a success of the defense.`,
      action: 'Train for more epochs or raise its poison ratio.',
    });
  if (!Number.isFinite(accBefore) || !Number.isFinite(accAfter))
    caveats.push({
      kind: 'no-test',
      text: 'There were no test images left to evaluate on, so clean accuracy (and ASR) could not be measured.',
      action: 'Import a dataset with a test split (or a train/ and test/ folder in the zip).',
    });
  caveats.push(...detectionCaveats({ flagged, judged, detect: r.config.detect, ...extras }));
  const overall = judged ? flagged / judged : 0;
  const targets = new Set(r.mode === 'benchmark' ? r.attacks.map((a) => a.target) : []);
  const hit = det.perClass
    .map((c, i) => ({ ...c, i, f: c.total ? c.removed / c.total : 0 }))
    .filter((c) => !targets.has(c.i) && c.total >= 10 && c.f >= 3 * overall && c.f - overall >= 0.2)
    .sort((a, b) => b.f - a.f);
  if (hit.length > 0)
    caveats.push({
      kind: 'class-hit',
      text: `${hit.map((c) => `${c.class} lost ${pct(c.f)}`).join(', ')} of its examples, against ${pct(overall)} overall: the defense hits ${hit.length === 1 ? 'this class' : 'these classes'} much harder.`,
      action: 'Look at the flagged examples of that class before trusting the cleaned data.',
    });
  if (r.mode === 'audit') {
    caveats.push({
      kind: 'no-ground-truth',
      text: 'Audit mode: nobody knows which examples are poisoned, so there is no AUROC and no ASR — only the flagged list, the removal per class and clean accuracy.',
    });
    const untrusted = r.config.probes.trusted === 'train-untouched';
    caveats.push({
      kind: 'probe-source',
      text: `Probes were made from ${probeSourceText(r, extras.trustedName)}.${untrusted ? ' If that data is poisoned, so are the clean probes, and the detector learns the wrong thing.' : ''}`,
      ...(untrusted
        ? { action: 'Choose the test split or upload a trusted dataset on the Probes step.' }
        : {}),
    });
  }
  return { headline, tone, attacks, sentences, caveats };
}
