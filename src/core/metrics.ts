/**
 * Area under the ROC curve of `scores` (higher = more suspicious) for the binary `labels`
 * (1 = positive). Equals the Mann–Whitney probability P(score⁺ > score⁻) with ties counted half.
 * Entries with a NaN score are skipped. Returns NaN when either class is empty.
 */
/**
 * `rows` ordered by score, highest first, ties by the lower row; unscored rows (NaN: probes)
 * after every scored one, by row.
 */
export function byScore(rows: Iterable<number>, scores: ArrayLike<number>): number[] {
  return [...rows].sort((a, b) => {
    const na = Number.isNaN(scores[a]);
    const nb = Number.isNaN(scores[b]);
    if (na !== nb) return na ? 1 : -1;
    return (na ? 0 : scores[b] - scores[a]) || a - b;
  });
}

export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx: number[] = [];
  for (let i = 0; i < scores.length; i++) if (!Number.isNaN(scores[i])) idx.push(i);
  idx.sort((a, b) => scores[a] - scores[b]);
  let pos = 0;
  let rankSum = 0;
  for (let s = 0; s < idx.length;) {
    let e = s;
    while (e + 1 < idx.length && scores[idx[e + 1]] === scores[idx[s]]) e++;
    const midRank = (s + e) / 2 + 1; // average 1-based rank of the tie group
    for (let j = s; j <= e; j++) {
      if (labels[idx[j]]) {
        pos++;
        rankSum += midRank;
      }
    }
    s = e + 1;
  }
  const neg = idx.length - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** A ROC curve: false- and true-positive rates at every distinct threshold, from (0,0) to (1,1). */
export interface RocCurve {
  fpr: number[];
  tpr: number[];
}

/** ROC curve of scores vs binary labels (ties move both rates at once: a diagonal step). */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): RocCurve {
  const idx: number[] = [];
  for (let i = 0; i < scores.length; i++) if (!Number.isNaN(scores[i])) idx.push(i);
  idx.sort((a, b) => scores[b] - scores[a]);
  let P = 0;
  for (const i of idx) if (labels[i]) P++;
  const N = idx.length - P;
  const fpr = [0];
  const tpr = [0];
  let tp = 0;
  let fp = 0;
  for (let s = 0; s < idx.length;) {
    let e = s;
    while (e + 1 < idx.length && scores[idx[e + 1]] === scores[idx[s]]) e++;
    for (let j = s; j <= e; j++)
      if (labels[idx[j]]) tp++;
      else fp++;
    fpr.push(N ? fp / N : 0);
    tpr.push(P ? tp / P : 0);
    s = e + 1;
  }
  return { fpr, tpr };
}

/** Top-1 accuracy: fraction of i with predictions[i] = labels[i]. */
export function accuracy(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (labels.length === 0) return NaN;
  let c = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) c++;
  return c / labels.length;
}

/** Value at quantile q ∈ [0, 1] of the finite values (linear interpolation). */
export function quantile(values: ArrayLike<number>, q: number): number {
  const v = Array.from(values)
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const pos = q * (v.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(v.length - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}
