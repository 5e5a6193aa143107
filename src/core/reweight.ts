/**
 * Class reweighting for the retraining (`RunConfig.retrainReweight`). A dirty-label attack adds
 * its poisons to its target class, so that class grows — by half or more when the attack poisons
 * 10% of the data — and a model trained on it sends many more images there, triggered or not: on
 * CIFAR-10 the warping's target class drew 13–21% of the clean test images of other classes,
 * about half of what that attack's ASR measures (docs/detection.md, "Reweighting the classes").
 * Weighting every training row's loss by how often its class occurs in a clean reference (the
 * test split) over how often it occurs in the kept rows — the standard correction for a shifted
 * label distribution — takes that pull away without dropping a row, and leaves a dataset whose
 * classes were as frequent as in the reference as it is.
 */

/**
 * The class frequencies of `labels` (a clean reference, the test split), with one pseudo-count
 * per class so a class the reference happens to lack keeps a small share instead of none.
 * Undefined when there are no labels: nothing to reweight to.
 */
export function classPrior(labels: ArrayLike<number>, numClasses: number): number[] | undefined {
  if (labels.length === 0) return undefined;
  const n = new Array<number>(numClasses).fill(1);
  for (let i = 0; i < labels.length; i++) n[labels[i]]++;
  const total = labels.length + numClasses;
  return n.map((c) => c / total);
}

/**
 * The most a class is weighted: a class the detection nearly emptied would otherwise give its few
 * rows most of each batch's gradient (one row of a 5,000-row, 10-class set: weight 500). Never
 * reached on CIFAR-10 seeds 0 and 6 (weights 0.48–1.44, bench/reweight.ts).
 */
export const MAX_CLASS_WEIGHT = 4;

/**
 * Per-class loss weights that give the rows `labels` the class frequencies `prior`: class c's
 * weight is prior[c] / (its share of `labels`), at most MAX_CLASS_WEIGHT; unclamped they average
 * 1 over the rows (each batch's loss is normalized by its weights' sum anyway). A class without
 * rows gets weight 1 (never used).
 */
export function priorWeights(labels: ArrayLike<number>, prior: number[]): number[] {
  const n = new Array<number>(prior.length).fill(0);
  for (let i = 0; i < labels.length; i++) n[labels[i]]++;
  const present = prior.reduce((s, q, c) => (n[c] > 0 ? s + q : s), 0);
  return n.map((count, c) =>
    count > 0 ? Math.min(MAX_CLASS_WEIGHT, prior[c] / present / (count / labels.length)) : 1,
  );
}
