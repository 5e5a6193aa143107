import { InvalidOptionError } from '../errors.ts';
import { toRanks } from './clean-distance.ts';
import { byScore } from '../metrics.ts';

/**
 * Probe-calibrated decisions: turning a raw suspicion score into a removal decision with a known
 * clean false-positive rate, per class, and capping removal per class.
 *
 * The clean probes are a random sample of trusted clean examples, scored exactly like every other
 * row (each leaving itself out). Under that exchangeability, the conformal p-value of a row,
 *   p(x) = (1 + #{clean probes j of its calibration group : s_j ≥ s(x)}) / (n_group + 1),
 * is super-uniform for clean rows, so rejecting p ≤ α removes at most a fraction α of the clean
 * rows in expectation (Vovk et al., "Algorithmic Learning in a Random World", ch. 2 and 4;
 * calibrating within each class is their "Mondrian" variant, which bounds the rate in every class
 * separately — a hard or minority class cannot lose more than its share).
 */

/**
 * Conformal suspicion scores: 1 − p(x) with p as above, for every row in `rows` (NaN elsewhere).
 * `raw`: per-row raw score (higher = more suspicious); for the clean probes it must be their
 * leave-one-out score. `groupOf[i]`: calibration group of row i (the class, or 0 for all); a
 * group with fewer than `minGroup` clean probes falls back to the pooled calibration (a group of
 * m probes cannot reject below p = 1/(m+1), so it would never flag). Flag ⇔ score > 1 − α.
 * Returns the scores and which groups used the pooled calibration.
 */
export function conformalScores(
  raw: ArrayLike<number>,
  cleanRows: readonly number[],
  rows: readonly number[],
  groupOf: (i: number) => number,
  minGroup: number,
): { scores: Float32Array; pooledGroups: number[] } {
  if (cleanRows.length === 0)
    throw new InvalidOptionError('calibration needs at least one clean probe');
  const sortedAll = Float64Array.from(cleanRows, (r) => raw[r]).sort();
  const byGroup = new Map<number, number[]>();
  for (const r of cleanRows) {
    const g = groupOf(r);
    const list = byGroup.get(g) ?? [];
    list.push(raw[r]);
    byGroup.set(g, list);
  }
  const sorted = new Map<number, Float64Array>();
  const pooledGroups = new Set<number>();
  for (const [g, list] of byGroup)
    if (list.length >= minGroup) sorted.set(g, Float64Array.from(list).sort());
  const scores = new Float32Array(raw.length).fill(NaN);
  for (const i of rows) {
    const g = groupOf(i);
    let ref = sorted.get(g);
    if (!ref) {
      pooledGroups.add(g);
      ref = sortedAll;
    }
    // #{s_j ≥ s} = m − (index of the first s_j ≥ s)
    const atLeast = ref.length - lowerBound(ref, raw[i]);
    scores[i] = 1 - (1 + atLeast) / (ref.length + 1);
  }
  return { scores, pooledGroups: [...pooledGroups].sort((a, b) => a - b) };
}

/**
 * "Either score is unusual": per row, the largest of several raw scores' ranks in [0, 1] among
 * all rows of its group (probes included; ties share their mean rank). The ranks are one function
 * of the whole data set, the same for a clean probe as for a clean row, so calibrating their
 * maximum on the clean probes (`conformalScores`) keeps the conformal guarantee: flagging at level
 * α removes about α of the clean rows — where a union of separate tests at α each would remove up
 * to α per score — and a row only one score finds unusual is still caught. (Conformal p-values as
 * the first stage would not do: every score's top clean probe ties with the most extreme rows, so
 * with K scores no row could get p below (K + 1)/(m + 1).) The k-NN score sees rows that behave like
 * the backdoor probes; the clean distance rows that behave like no clean probe, whatever their
 * trigger (docs/detection.md). `groupOf` as for `conformalScores`; when any group has fewer than
 * `minGroup` clean probes (so the second stage pools it), ranks are taken over all rows instead.
 */
export function eitherScores(
  raws: readonly ArrayLike<number>[],
  cleanRows: readonly number[],
  n: number,
  groupOf: (i: number) => number,
  minGroup: number,
): Float32Array {
  const members = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const g = groupOf(i);
    const list = members.get(g) ?? [];
    list.push(i);
    members.set(g, list);
  }
  const probesIn = new Map<number, number>();
  for (const r of cleanRows) probesIn.set(groupOf(r), (probesIn.get(groupOf(r)) ?? 0) + 1);
  const pooled = [...members.keys()].some((g) => (probesIn.get(g) ?? 0) < minGroup);
  const groups = pooled ? [[...Array(n).keys()]] : [...members.values()];
  const out = new Float32Array(n).fill(-Infinity);
  for (const raw of raws)
    for (const rows of groups) {
      const ranks = toRanks(Float64Array.from(rows, (i) => raw[i]));
      rows.forEach((i, j) => (out[i] = Math.max(out[i], ranks[j])));
    }
  return out;
}

/** First index j with a[j] ≥ x in an ascending array (a.length when none). */
export function lowerBound(a: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The adaptive threshold on a raw score: the smallest t such that at most a fraction `alpha` of
 * the clean probes' (leave-one-out) scores exceed t — the Neyman–Pearson choice, catching as many
 * anomalous probes as any threshold with that clean false-positive rate. Returns t, the clean
 * probes' false-positive rate and the anomalous probes' detection rate at t.
 */
export function adaptiveThreshold(
  cleanScores: ArrayLike<number>,
  anomalousScores: ArrayLike<number>,
  alpha: number,
): { threshold: number; cleanFpr: number; anomalousTpr: number } {
  if (!(alpha >= 0 && alpha <= 1))
    throw new InvalidOptionError(`target false-positive rate ${alpha} must be in [0, 1]`);
  const c = Float64Array.from(cleanScores).sort();
  if (c.length === 0) throw new InvalidOptionError('the adaptive threshold needs clean probes');
  const allowed = Math.floor(alpha * c.length);
  // Exceeding t: the values strictly above it. t = c[m − allowed − 1] lets exactly the
  // `allowed` largest through, or fewer when that value is tied with larger ones.
  const threshold = allowed >= c.length ? -Infinity : c[c.length - allowed - 1];
  const above = (v: ArrayLike<number>) => {
    let n = 0;
    for (let i = 0; i < v.length; i++) if (v[i] > threshold) n++;
    return v.length ? n / v.length : NaN;
  };
  return { threshold, cleanFpr: above(c), anomalousTpr: above(anomalousScores) };
}

/** Per class: rows removed, rows judged, and how many flagged rows the cap spared. */
export interface ClassRemoval {
  removed: number;
  total: number;
  spared: number;
}

/**
 * Caps removal per class: within each class (by `labels`), at most ⌊maxFraction · total⌋ of the
 * judged rows (`rows`) may have score > threshold — or `allowed(c, total)` rows, when given (a
 * later detection round: what the cap leaves after the earlier rounds' removals); the
 * lowest-scoring excess rows (ties: higher index first) get their score lowered to the threshold
 * (the largest float32 not above it), so "score > threshold" and the cap agree. Mutates
 * `scores`; returns the per-class counts after the cap.
 */
export function capPerClass(
  scores: Float32Array,
  threshold: number,
  rows: readonly number[],
  labels: ArrayLike<number>,
  numClasses: number,
  maxFraction: number,
  allowed: (c: number, total: number) => number = (_c, total) => Math.floor(maxFraction * total),
): ClassRemoval[] {
  if (!(maxFraction > 0 && maxFraction <= 1))
    throw new InvalidOptionError(`maxClassFraction ${maxFraction} must be in (0, 1]`);
  const flagged: number[][] = Array.from({ length: numClasses }, () => []);
  const out: ClassRemoval[] = Array.from({ length: numClasses }, () => ({
    removed: 0,
    total: 0,
    spared: 0,
  }));
  for (const i of rows) {
    const c = labels[i];
    out[c].total++;
    if (scores[i] > threshold) flagged[c].push(i);
  }
  flagged.forEach((list, c) => {
    const most = Math.max(0, allowed(c, out[c].total));
    if (list.length > most) {
      const atThreshold = float32AtMost(threshold);
      for (const i of byScore(list, scores).slice(most)) scores[i] = atThreshold;
      out[c].spared = list.length - most;
    }
    out[c].removed = Math.min(list.length, most);
  });
  return out;
}

/** The largest float32 value ≤ x (a float32 score set to it never exceeds x). */
export function float32AtMost(x: number): number {
  const f = Math.fround(x);
  if (f <= x || !Number.isFinite(f)) return f;
  const buf = new Float32Array([f]);
  const bits = new Int32Array(buf.buffer);
  if (f > 0) bits[0]--;
  else if (f < 0) bits[0]++;
  else return -Number.MIN_VALUE;
  return buf[0];
}

/**
 * The minority-class warning rule: a class is flagged when it loses at least twice the overall
 * removed fraction AND at least 10 points more (r_c ≥ 2·r and r_c − r ≥ 0.10) — both, so that
 * neither a tiny overall rate nor a uniformly high one raises it. Returns the flagged classes.
 */
export function disproportionateClasses(
  perClass: readonly { removed: number; total: number }[],
): number[] {
  let removed = 0;
  let total = 0;
  for (const c of perClass) {
    removed += c.removed;
    total += c.total;
  }
  const r = total ? removed / total : 0;
  const out: number[] = [];
  perClass.forEach((c, i) => {
    const rc = c.total ? c.removed / c.total : 0;
    if (c.total > 0 && rc >= 2 * r && rc - r >= 0.1) out.push(i);
  });
  return out;
}

/**
 * A per-row statistic as a robust z-score within its class: minus the median over the class's
 * rows, over their median absolute deviation (one group without labels; the upper median of an
 * even count). It makes the classes comparable before one calibration on all clean probes — a
 * class has too few of them for a budget of 0.02. The easiness and mirror tests use it.
 */
export function classRobustZ(
  x: Float64Array,
  context?: { labels: ArrayLike<number>; numClasses: number },
): Float64Array {
  const n = x.length;
  const groups = context?.numClasses ?? 1;
  const members: number[][] = Array.from({ length: groups }, () => []);
  for (let i = 0; i < n; i++) members[context ? context.labels[i] : 0].push(i);
  const z = new Float64Array(n);
  const median = (v: Float64Array) => {
    v.sort();
    return v[v.length >> 1];
  };
  for (const rows of members) {
    if (rows.length === 0) continue;
    const med = median(Float64Array.from(rows, (i) => x[i]));
    const mad = median(Float64Array.from(rows, (i) => Math.abs(x[i] - med))) || 1e-6;
    for (const i of rows) z[i] = (x[i] - med) / mad;
  }
  return z;
}

/**
 * A one-sided test on a per-row z-score (`classRobustZ`), calibrated on all clean probes
 * together: conformal scores 1 − p for every row but the probes (NaN there); flag ⇔ score >
 * 1 − α. The easiness and mirror tests are this on their own statistic.
 */
export function calibratedZTest(
  z: ArrayLike<number>,
  probes: { clean: number[]; anomalous: number[] },
): Float32Array {
  const isProbe = new Uint8Array(z.length);
  for (const r of [...probes.clean, ...probes.anomalous]) isProbe[r] = 1;
  const rows = [...Array(z.length).keys()].filter((i) => !isProbe[i]);
  return conformalScores(z, probes.clean, rows, () => 0, 1).scores;
}
