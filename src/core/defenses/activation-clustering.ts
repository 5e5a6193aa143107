import { Rng } from '../rng.ts';
import { principalAxes, silhouette, twoMeans } from './linalg.ts';
import {
  checkInputs,
  checkOption,
  wholeAtLeast,
  judgedRows,
  requireFeatures,
  type ActivationClusteringDetails,
  type DefenseInputs,
  type DefenseResult,
} from './types.ts';

/** Options of Activation Clustering. */
export interface ActivationClusteringOptions {
  /** PCA dimensions (default 10). */
  dims?: number;
  /** k-means++ restarts, best inertia kept (default 10). */
  starts?: number;
  /** Remove the smaller cluster when the silhouette exceeds this (default 0.10). */
  silhouetteThreshold?: number;
  /** Silhouette on at most this many rows of a class (seeded sample; default 10,000). */
  silhouetteSample?: number;
}

/**
 * Activation Clustering (Chen et al., 2018; SPEC §10). For each label y, over the non-probe rows
 * labeled y: centre the features, project them onto the top `dims` (10) principal axes (PCA; the
 * original uses ICA), split them by 2-means (seeded k-means++, best of `starts` = 10), and take
 * the mean silhouette s_y of that split. If s_y > 0.10 the smaller cluster is removed (equal
 * sizes: the cluster without the class's first row). Score: s_y for members of the smaller
 * cluster, 0 for the rest (so removal ⇔ score > 0.10). Classes of fewer than 3 rows score 0 and
 * lose nothing. The silhouette is exact (O(n_y²)) up to `silhouetteSample` rows, beyond that it is
 * taken on a seeded sample, as scikit-learn's `sample_size` does.
 *
 * Probes are left out of the class statistics as well as the verdict (the method does not know
 * them; backdoor probes would form their own cluster in their label's class).
 */
export function activationClustering(
  inp: DefenseInputs,
  opts: ActivationClusteringOptions = {},
): DefenseResult<ActivationClusteringDetails> {
  const n = checkInputs(inp);
  const f = requireFeatures(inp, 'Activation Clustering');
  const dims = Math.min(
    checkOption(opts.dims ?? 10, wholeAtLeast(1), 'PCA dimensions', 'a whole number ≥ 1'),
    f.dim,
  );
  const starts = checkOption(
    opts.starts ?? 10,
    wholeAtLeast(1),
    'k-means starts',
    'a whole number ≥ 1',
  );
  const threshold = checkOption(
    opts.silhouetteThreshold ?? 0.1,
    (v) => v >= -1 && v <= 1,
    'silhouette threshold',
    'in [−1, 1]',
  );
  const sampleCap = checkOption(
    opts.silhouetteSample ?? 10_000,
    wholeAtLeast(2),
    'silhouette sample',
    'a whole number ≥ 2',
  );
  const D = f.dim;
  const byClass: number[][] = Array.from({ length: inp.numClasses }, () => []);
  for (const i of judgedRows(inp.probeKind)) byClass[inp.labels[i]].push(i);
  const scores = new Float32Array(n).fill(NaN);
  const removed: number[] = [];
  const perClass: ActivationClusteringDetails['perClass'] = [];
  const rng = new Rng(inp.seed).fork('activation-clustering');
  byClass.forEach((rows, label) => {
    const classRng = rng.fork(`class-${label}`);
    if (rows.length === 0) return;
    for (const r of rows) scores[r] = 0;
    if (rows.length < 3) {
      perClass.push({
        label,
        count: rows.length,
        silhouette: NaN,
        smallerCluster: 0,
        removed: false,
      });
      return;
    }
    const m = rows.length;
    const { mean, vectors } = principalAxes(f.values, D, rows, dims, classRng.fork('pca'));
    const x = new Float64Array(m * dims);
    const centred = new Float64Array(D);
    rows.forEach((r, j) => {
      for (let d = 0; d < D; d++) centred[d] = f.values[r * D + d] - mean[d];
      for (let k = 0; k < dims; k++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += centred[d] * vectors[k * D + d];
        x[j * dims + k] = s;
      }
    });
    const { assignment } = twoMeans(x, m, dims, classRng.fork('kmeans'), starts);
    let s: number;
    if (m <= sampleCap) s = silhouette(x, m, dims, assignment);
    else {
      const pick = classRng.fork('silhouette').sample([...Array(m).keys()], sampleCap);
      const xs = new Float64Array(sampleCap * dims);
      const as = new Uint8Array(sampleCap);
      pick.forEach((j, t) => {
        xs.set(x.subarray(j * dims, (j + 1) * dims), t * dims);
        as[t] = assignment[j];
      });
      s = silhouette(xs, sampleCap, dims, as);
    }
    let size1 = 0;
    for (let j = 0; j < m; j++) size1 += assignment[j];
    const size0 = m - size1;
    const small = size0 < size1 ? 0 : size1 < size0 ? 1 : 1 - assignment[0];
    const isRemoved = s > threshold;
    rows.forEach((r, j) => {
      if (assignment[j] !== small) return;
      scores[r] = Number.isNaN(s) ? 0 : s;
      if (isRemoved) removed.push(r);
    });
    perClass.push({
      label,
      count: m,
      silhouette: s,
      smallerCluster: small === 0 ? size0 : size1,
      removed: isRemoved,
    });
  });
  removed.sort((a, b) => a - b);
  return {
    name: 'activation-clustering',
    scores,
    removed,
    threshold,
    details: { kind: 'activation-clustering', dims, silhouetteThreshold: threshold, perClass },
  };
}
