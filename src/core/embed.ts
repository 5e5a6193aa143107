/**
 * 2-D PCA embedding of trajectories (rows of an N × E matrix, row-major): the projections onto
 * the two leading eigenvectors of the E × E covariance (power iteration with deflation,
 * deterministic start). Returns N × 2, row-major, and the variance explained by each axis.
 * PCA rather than t-SNE/UMAP: exact, instant for 50,000 rows, and its axes mean something
 * ("overall loss level", "learned early vs late").
 */
export function pca2(
  losses: Float32Array,
  n: number,
  epochs: number,
): { coords: Float32Array; explained: [number, number] } {
  const E = epochs;
  const mean = new Float64Array(E);
  for (let i = 0; i < n; i++) for (let e = 0; e < E; e++) mean[e] += losses[i * E + e] / n;
  const cov = new Float64Array(E * E);
  for (let i = 0; i < n; i++)
    for (let a = 0; a < E; a++) {
      const da = losses[i * E + a] - mean[a];
      for (let b = a; b < E; b++) cov[a * E + b] += da * (losses[i * E + b] - mean[b]);
    }
  for (let a = 0; a < E; a++)
    for (let b = a; b < E; b++) cov[b * E + a] = cov[a * E + b] /= Math.max(1, n - 1);
  let total = 0;
  for (let a = 0; a < E; a++) total += cov[a * E + a];
  const vecs: Float64Array[] = [];
  const vals: number[] = [];
  const work = cov.slice();
  for (let k = 0; k < Math.min(2, E); k++) {
    let v = new Float64Array(E).map((_, i) => 1 + i / E);
    let lambda = 0;
    for (let it = 0; it < 200; it++) {
      const w = new Float64Array(E);
      for (let a = 0; a < E; a++) for (let b = 0; b < E; b++) w[a] += work[a * E + b] * v[b];
      const norm = Math.hypot(...w);
      if (norm === 0) break;
      lambda = norm;
      v = w.map((x) => x / norm);
    }
    vecs.push(v);
    vals.push(lambda);
    for (let a = 0; a < E; a++) for (let b = 0; b < E; b++) work[a * E + b] -= lambda * v[a] * v[b];
  }
  while (vecs.length < 2) {
    vecs.push(new Float64Array(E));
    vals.push(0);
  }
  const coords = new Float32Array(n * 2);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < 2; k++) {
      let s = 0;
      for (let e = 0; e < E; e++) s += (losses[i * E + e] - mean[e]) * vecs[k][e];
      coords[i * 2 + k] = s;
    }
  return { coords, explained: [total ? vals[0] / total : 0, total ? vals[1] / total : 0] };
}
