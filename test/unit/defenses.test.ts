import { describe, expect, it } from 'vitest';
import { dct2, dct2Into } from '../../src/core/attacks/dct.ts';
import { makeTrigger } from '../../src/core/attacks/triggers.ts';
import { IMAGE_BYTES } from '../../src/core/dataset.ts';
import { generateDemoDataset } from '../../src/core/demo.ts';
import { detect } from '../../src/core/detect/index.ts';
import { probeRowsFromKinds } from '../../src/core/detect/knn.ts';
import {
  ablIsolation,
  activationClustering,
  dctLogMagnitude,
  DEFENSE_NAMES,
  frequencyAnalysis,
  parseDefenseList,
  runDefenses,
  spectralSignatures,
  summarizeDefense,
  type DefenseInputs,
} from '../../src/core/defenses/index.ts';
import {
  covariance,
  jacobiEigen,
  principalAxes,
  silhouette,
  topEigenvectors,
  twoMeans,
} from '../../src/core/defenses/linalg.ts';
import { auroc } from '../../src/core/metrics.ts';
import {
  PROBE_BACKDOOR,
  PROBE_CLEAN,
  PROBE_MISLABELED,
  PROBE_NONE,
} from '../../src/core/probes.ts';
import { summarizeDetection } from '../../src/core/report.ts';
import { Rng } from '../../src/core/rng.ts';

/** Inputs with only what a test sets; no probes unless given. */
function inputs(n: number, over: Partial<DefenseInputs> = {}): DefenseInputs {
  return {
    labels: new Uint8Array(n),
    numClasses: 1,
    probeKind: new Uint8Array(n),
    seed: 1,
    ...over,
  };
}

const unitRandom = (rng: Rng, d: number) => {
  const u = Float64Array.from({ length: d }, () => rng.normal());
  const norm = Math.hypot(...u);
  return u.map((x) => x / norm);
};

describe('linear algebra', () => {
  it('covariance matches a hand-computed case', () => {
    // rows (1,2), (3,6), (5,4) (row 1 of the matrix is skipped): mean (3,4);
    // deviations (−2,−2), (0,2), (2,0) ⇒ Σ/(n−1) = [[8, 4], [4, 8]] / 2
    const v = Float32Array.from([1, 2, 99, 99, 3, 6, 5, 4]);
    const { mean, cov } = covariance(v, 2, [0, 2, 3]);
    expect(Array.from(mean)).toEqual([3, 4]);
    expect(Array.from(cov)).toEqual([4, 2, 2, 4]);
  });

  it('Jacobi eigen-decomposition of a hand-worked 3 × 3 matrix', () => {
    // [[2,1,0],[1,2,0],[0,0,5]]: λ = 5 (e₃), 3 ((1,1,0)/√2), 1 ((1,−1,0)/√2)
    const { values, vectors } = jacobiEigen([2, 1, 0, 1, 2, 0, 0, 0, 5], 3);
    expect(values[0]).toBeCloseTo(5, 12);
    expect(values[1]).toBeCloseTo(3, 12);
    expect(values[2]).toBeCloseTo(1, 12);
    const col = (k: number) => [0, 1, 2].map((i) => vectors[i * 3 + k]);
    expect(Math.abs(col(0)[2])).toBeCloseTo(1, 12);
    expect(Math.abs(col(1)[0] * Math.SQRT2)).toBeCloseTo(1, 12);
    expect(col(1)[0] * col(1)[1]).toBeCloseTo(0.5, 12); // same sign
    expect(col(2)[0] * col(2)[1]).toBeCloseTo(-0.5, 12); // opposite signs
  });

  it('Lanczos agrees with the full Jacobi decomposition', () => {
    const rng = new Rng(5);
    const D = 14;
    const rows = 60;
    const x = Float32Array.from({ length: rows * D }, (_, i) => rng.normal() * (1 + (i % D)));
    const { cov } = covariance(x, D, [...Array(rows).keys()]);
    const full = jacobiEigen(cov, D);
    const top = topEigenvectors(cov, D, 3, new Rng(1));
    for (let k = 0; k < 3; k++) {
      expect(top.values[k]).toBeCloseTo(full.values[k], 8);
      let dot = 0;
      for (let d = 0; d < D; d++) dot += top.vectors[k * D + d] * full.vectors[d * D + k];
      expect(Math.abs(dot)).toBeCloseTo(1, 8);
    }
  });

  /** Max |VVᵀ − I| over k unit rows of length D. */
  const orthoError = (v: Float64Array, k: number, D: number) => {
    let e = 0;
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += v[i * D + d] * v[j * D + d];
        e = Math.max(e, Math.abs(dot - (i === j ? 1 : 0)));
      }
    return e;
  };

  it('Lanczos handles a repeated top eigenvalue and a rank-deficient matrix', () => {
    // diag(5, 5, 5, 1, 1, 0.5): the top three vectors span e₁…e₃, whatever their rotation
    const D = 6;
    const c = new Float64Array(D * D);
    [5, 5, 5, 1, 1, 0.5].forEach((v, i) => (c[i * D + i] = v));
    const top = topEigenvectors(c, D, 3, new Rng(3));
    for (const v of top.values) expect(v).toBeCloseTo(5, 10);
    expect(orthoError(top.vectors, 3, D)).toBeLessThan(1e-10);
    for (let i = 0; i < 3; i++)
      for (let d = 3; d < D; d++) expect(Math.abs(top.vectors[i * D + d])).toBeLessThan(1e-8);
    // covariance of 3 rows in ℝ⁶ has rank 2: asking for 4 gives two zero eigenvalues and
    // still four orthonormal directions
    const x = Float32Array.from([1, 2, 0, 0, 1, 0, 3, -1, 2, 0, 0, 1, 0, 0, 1, 5, 2, 2]);
    const { cov } = covariance(x, D, [0, 1, 2]);
    const full = jacobiEigen(cov, D);
    const low = topEigenvectors(cov, D, 4, new Rng(4));
    expect(low.values[0]).toBeCloseTo(full.values[0], 10);
    expect(low.values[1]).toBeCloseTo(full.values[1], 10);
    expect(low.values[2]).toBeCloseTo(0, 10);
    expect(low.values[3]).toBeCloseTo(0, 10);
    expect(orthoError(low.vectors, 4, D)).toBeLessThan(1e-8);
  });

  it('principal axes from the rows equal the eigenvectors of the formed covariance', () => {
    // D = 40 and k = 10: Lanczos runs past D/4 steps, so it starts implicit (R̂ᵀR̂x) and
    // switches to the formed covariance mid-run.
    const rng = new Rng(6);
    const D = 40;
    const rows = [...Array(300).keys()].filter((i) => i % 3 !== 1);
    const x = Float32Array.from(
      { length: 300 * D },
      (_, i) => (rng.normal() * 4) / (1 + (i % D)) + 1,
    );
    const pa = principalAxes(x, D, rows, 10, new Rng(1));
    const { mean, cov } = covariance(x, D, rows);
    const full = jacobiEigen(cov, D);
    for (let d = 0; d < D; d++) expect(pa.mean[d]).toBeCloseTo(mean[d], 10);
    for (let k = 0; k < 10; k++) {
      expect(pa.values[k]).toBeCloseTo(full.values[k], 8);
      let dot = 0;
      for (let d = 0; d < D; d++) dot += pa.vectors[k * D + d] * full.vectors[d * D + k];
      expect(Math.abs(dot)).toBeCloseTo(1, 6);
    }
  });

  it('silhouette matches hand-worked cases', () => {
    // 1-D points 0, 1 | 10, 12:
    // s(0) = (11 − 1)/11, s(1) = (10 − 1)/10, s(10) = (9.5 − 2)/9.5, s(12) = (11.5 − 2)/11.5
    const x = Float64Array.from([0, 1, 10, 12]);
    const expected = (10 / 11 + 9 / 10 + 7.5 / 9.5 + 9.5 / 11.5) / 4;
    expect(silhouette(x, 4, 1, Uint8Array.from([0, 0, 1, 1]))).toBeCloseTo(expected, 12);
    // a singleton cluster contributes 0: points 0, 1 | 5 ⇒ (4/5 + 3/4 + 0) / 3
    expect(silhouette(Float64Array.from([0, 1, 5]), 3, 1, Uint8Array.from([0, 0, 1]))).toBeCloseTo(
      (0.8 + 0.75) / 3,
      12,
    );
    // 2-D, distances by Pythagoras: (0,0), (0,2) | (3,0): s = [(3−2)/3, (√13−2)/√13, 0] / 3
    const s2 = silhouette(Float64Array.from([0, 0, 0, 2, 3, 0]), 3, 2, Uint8Array.from([0, 0, 1]));
    expect(s2).toBeCloseTo((1 / 3 + (Math.sqrt(13) - 2) / Math.sqrt(13)) / 3, 12);
    expect(silhouette(x, 4, 1, Uint8Array.from([1, 1, 1, 1]))).toBeNaN();
  });

  it('2-means splits two separated groups and is deterministic from the seed', () => {
    const rng = new Rng(2);
    const n = 60;
    const x = new Float64Array(n * 2);
    for (let i = 0; i < n; i++) x.set([rng.normal() + (i < 20 ? 10 : 0), rng.normal()], i * 2);
    const a = twoMeans(x, n, 2, new Rng(7));
    const b = twoMeans(x, n, 2, new Rng(7));
    expect(Array.from(a.assignment)).toEqual(Array.from(b.assignment));
    for (let i = 1; i < n; i++) expect(a.assignment[i] === a.assignment[0]).toBe(i < 20);
  });
});

describe('Spectral Signatures', () => {
  it('matches a hand-computed 2-D case; probes neither scored nor counted', () => {
    // Class 0 = rows 0–4 (offset by (10, 5)), deviations (3,0), (−1,0), (−2,0), (0,1), (0,−1):
    // covariance diag(3.5, 0.5) ⇒ v = ±(1,0), raw scores 9, 1, 4, 0, 0 ⇒ ranks 1, 0.5, 0.75,
    // 0.125, 0.125 (ties share); 15% of 5 rounds to 1 ⇒ row 0 removed. Rows 5–6 are probes far
    // away in class 0: were they counted, the mean and the direction would move.
    const dev = [3, 0, -1, 0, -2, 0, 0, 1, 0, -1, 100, 300, -50, 200];
    const values = Float32Array.from(dev, (v, i) => v + (i < 10 ? (i % 2 ? 5 : 10) : 0));
    const probeKind = Uint8Array.from([0, 0, 0, 0, 0, PROBE_BACKDOOR, PROBE_MISLABELED]);
    const res = spectralSignatures(inputs(7, { features: { dim: 2, values }, probeKind }));
    expect(Array.from(res.scores.subarray(0, 5))).toEqual([1, 0.5, 0.75, 0.125, 0.125]);
    expect(res.scores[5]).toBeNaN();
    expect(res.scores[6]).toBeNaN();
    expect(res.removed).toEqual([0]);
    expect(res.details.perClass[0].topEigenvalue).toBeCloseTo(3.5, 10);
  });

  it('finds poisons planted along one direction, per class', () => {
    const rng = new Rng(11);
    const D = 20;
    const u = unitRandom(rng, D);
    const n = 1000;
    const labels = new Uint8Array(n);
    const values = new Float32Array(n * D);
    const poison = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % 2;
      poison[i] = labels[i] === 1 && i % 40 === 1 ? 1 : 0; // 25 of the 500 in class 1
      for (let d = 0; d < D; d++) values[i * D + d] = rng.normal() + (poison[i] ? 6 * u[d] : 0);
    }
    const res = spectralSignatures(
      inputs(n, { features: { dim: D, values }, labels, numClasses: 2 }),
    );
    const class1 = [...Array(n).keys()].filter((i) => labels[i] === 1);
    expect(
      auroc(
        class1.map((i) => res.scores[i]),
        class1.map((i) => poison[i]),
      ),
    ).toBeGreaterThan(0.97);
    // 15% of each class: 75 rows of each; nearly every poison among them
    expect(res.removed.length).toBe(150);
    expect(res.removed.filter((i) => poison[i]).length).toBeGreaterThanOrEqual(24);
  });
});

describe('Activation Clustering', () => {
  /** Class 0: 300 Gaussian rows plus 40 shifted by 8 along a direction; class 1: one Gaussian. */
  function plantedRun() {
    const rng = new Rng(3);
    const D = 16;
    const u = unitRandom(rng, D);
    const n = 640;
    const labels = new Uint8Array(n);
    const planted = new Uint8Array(n);
    const values = new Float32Array(n * D);
    for (let i = 0; i < n; i++) {
      labels[i] = i < 340 ? 0 : 1;
      planted[i] = i < 40 ? 1 : 0;
      for (let d = 0; d < D; d++) values[i * D + d] = rng.normal() + (planted[i] ? 8 * u[d] : 0);
    }
    return { features: { dim: D, values }, labels, planted, n };
  }

  it('removes a planted small cluster and leaves a unimodal class alone', () => {
    const { features, labels, planted, n } = plantedRun();
    const res = activationClustering(inputs(n, { features, labels, numClasses: 2 }));
    const [c0, c1] = res.details.perClass;
    expect(c0.silhouette).toBeGreaterThan(0.1);
    expect(c0.removed).toBe(true);
    expect(c0.smallerCluster).toBe(40);
    expect(res.removed).toEqual([...Array(n).keys()].filter((i) => planted[i]));
    for (let i = 0; i < 40; i++) expect(res.scores[i]).toBeCloseTo(c0.silhouette, 6);
    for (let i = 40; i < 340; i++) expect(res.scores[i]).toBe(0);
    expect(c1.silhouette).toBeLessThanOrEqual(0.1);
    expect(c1.removed).toBe(false);
    for (let i = 340; i < n; i++) expect(res.scores[i]).toBeLessThanOrEqual(0.1);
    expect(res.threshold).toBe(0.1);
  });

  it('the silhouette it reports is the silhouette of its own split', () => {
    // 1-D features with two groups; PCA to 1 dimension is the centred coordinate itself,
    // so the silhouette is the hand-worked one of 0, 1 | 10, 12 (translation-invariant).
    const values = Float32Array.from([0, 1, 10, 12]);
    const res = activationClustering(inputs(4, { features: { dim: 1, values } }));
    const expected = (10 / 11 + 9 / 10 + 7.5 / 9.5 + 9.5 / 11.5) / 4;
    expect(res.details.perClass[0].silhouette).toBeCloseTo(expected, 12);
    // equal sizes: the cluster without the class's first row counts as the smaller one
    expect(res.removed).toEqual([2, 3]);
  });
});

describe('frequency features', () => {
  it('the fast DCT equals the reference matrix DCT (the FTrojan oracle)', () => {
    const rng = new Rng(8);
    for (const n of [8, 32]) {
      const x = Float64Array.from({ length: n * n }, () => rng.float() * 255);
      const want = dct2(x, n);
      const got = new Float64Array(n * n);
      dct2Into(x, n, got);
      for (let i = 0; i < n * n; i++) expect(got[i]).toBeCloseTo(want[i], 9);
    }
  });

  it('are ln(1 + |DCT|) of each channel, read in place from an NHWC buffer', () => {
    const images = generateDemoDataset({ seed: 4, train: 3, test: 1 }).splits.train!.images;
    const out = new Float64Array(IMAGE_BYTES);
    dctLogMagnitude(images, 2, out);
    for (let c = 0; c < 3; c++) {
      const plane = Float64Array.from(
        { length: 1024 },
        (_, i) => images[2 * IMAGE_BYTES + i * 3 + c],
      );
      const X = dct2(plane, 32);
      for (let i = 0; i < 1024; i++)
        expect(out[c * 1024 + i]).toBeCloseTo(Math.log1p(Math.abs(X[i])), 9);
    }
    // DC term of an orthonormal 32 × 32 DCT is 32 × the channel mean
    const mean =
      [...Array(1024).keys()].reduce((s, i) => s + images[2 * IMAGE_BYTES + i * 3], 0) / 1024;
    expect(out[0]).toBeCloseTo(Math.log1p(32 * mean), 9);
  });
});

describe('Frequency analysis', () => {
  /** 600 demo images: rows 0–99 clean probes, 100–199 triggered probes, every other later row triggered. */
  function triggeredSet(attack: 'patch' | 'blend-r', model: 'logistic' | 'mlp', more = {}) {
    const split = generateDemoDataset({ seed: 2, train: 600, test: 1 }).splits.train!;
    const images = split.images.slice();
    const trigger = makeTrigger(attack, new Rng(5));
    const probeKind = new Uint8Array(600);
    const triggered = new Uint8Array(600);
    for (let i = 0; i < 600; i++) {
      if (i < 100) probeKind[i] = PROBE_CLEAN;
      else if (i < 200) probeKind[i] = PROBE_BACKDOOR;
      if ((i >= 100 && i < 200) || (i >= 200 && i % 2 === 1)) {
        triggered[i] = 1;
        const v = images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES);
        trigger(v, v);
      }
    }
    const res = frequencyAnalysis(
      inputs(600, { images, probeKind, labels: split.labels, numClasses: 10 }),
      { model, ...more },
    );
    const rows = [...Array(400).keys()].map((j) => 200 + j);
    return { res, rows, triggered };
  }

  for (const attack of ['patch', 'blend-r'] as const)
    it(`separates unseen images with and without the ${attack} trigger`, () => {
      const { res, rows, triggered } = triggeredSet(attack, 'logistic');
      const a = auroc(
        rows.map((i) => res.scores[i]),
        rows.map((i) => triggered[i]),
      );
      expect(a).toBeGreaterThan(0.95);
      expect(res.details.trainAccuracy).toBe(1);
      // removed ⇔ P(triggered) > 0.5, and mostly triggered images
      for (const i of rows) expect(res.removed.includes(i)).toBe(res.scores[i] > 0.5);
      expect(res.removed.filter((i) => triggered[i]).length).toBeGreaterThan(
        0.8 * res.removed.length,
      );
      for (let i = 0; i < 200; i++) expect(res.scores[i]).toBeNaN();
    });

  it('the MLP option trains and separates the blend trigger too', () => {
    const { res, rows, triggered } = triggeredSet('blend-r', 'mlp', { steps: 60, hidden: 4 });
    expect(res.details.model).toBe('mlp');
    expect(
      auroc(
        rows.map((i) => res.scores[i]),
        rows.map((i) => triggered[i]),
      ),
    ).toBeGreaterThan(0.9);
  });

  it('needs clean and backdoor probes', () => {
    const images = new Uint8Array(4 * IMAGE_BYTES);
    expect(() =>
      frequencyAnalysis(inputs(4, { images, probeKind: Uint8Array.from([1, 1, 0, 0]) })),
    ).toThrow(/1|0 backdoor probes/);
  });
});

describe('ABL isolation', () => {
  it('scores −(mean early loss) and removes the lowest-loss 15%', () => {
    // E = 8 ⇒ first round(1.6) = 2 epochs. 20 non-probe rows with early losses 0.1·(i + 1) for
    // both epochs, except rows 7 and 12 which start at 0.01 and 0.02; later epochs are noise that
    // must not matter. Rows 20–21 are probes with loss 0 (never judged).
    const n = 22;
    const E = 8;
    const losses = new Float32Array(n * E);
    const early = (i: number) => (i === 7 ? 0.01 : i === 12 ? 0.02 : i >= 20 ? 0 : 0.1 * (i + 1));
    for (let i = 0; i < n; i++)
      for (let e = 0; e < E; e++) losses[i * E + e] = e < 2 ? early(i) : 5 - i * 0.2;
    const probeKind = new Uint8Array(n);
    probeKind[20] = PROBE_CLEAN;
    probeKind[21] = PROBE_BACKDOOR;
    const res = ablIsolation(inputs(n, { trajectories: { n, epochs: E, losses }, probeKind }));
    expect(res.details.earlyEpochs).toBe(2);
    for (let i = 0; i < 20; i++) expect(res.scores[i]).toBeCloseTo(-early(i), 6);
    // round(0.15 · 20) = 3: rows 7, 12 and then row 0 (0.1)
    expect(res.removed).toEqual([0, 7, 12]);
    expect(res.details.lossCutoff).toBeCloseTo(0.1, 6);
    expect(res.scores[20]).toBeNaN();
    expect(res.scores[21]).toBeNaN();
  });

  it('uses at least one epoch', () => {
    const losses = Float32Array.from([1, 9, 2, 9, 3, 9]);
    const res = ablIsolation(inputs(3, { trajectories: { n: 3, epochs: 2, losses } }));
    expect(res.details.earlyEpochs).toBe(1); // max(1, round(0.4))
    expect(Array.from(res.scores)).toEqual([-1, -2, -3]);
  });
});

describe('the defense registry', () => {
  /** A small run: demo images, synthetic features and trajectories, every probe kind. */
  function run(seed = 1): DefenseInputs {
    const n = 300;
    const split = generateDemoDataset({ seed: 6, train: n, test: 1 }).splits.train!;
    const images = split.images.slice();
    const probeKind = new Uint8Array(n);
    const probe = makeTrigger('patch', new Rng(1), { variant: 'probe' });
    for (let i = 0; i < 90; i++) {
      probeKind[i] = i < 30 ? PROBE_CLEAN : i < 60 ? PROBE_BACKDOOR : PROBE_MISLABELED;
      if (probeKind[i] === PROBE_BACKDOOR)
        probe(
          images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES),
          images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES),
        );
    }
    const rng = new Rng(2);
    const D = 6;
    const E = 5;
    const features = Float32Array.from({ length: n * D }, () => rng.normal());
    const losses = Float32Array.from({ length: n * E }, (_, i) => {
      const row = Math.floor(i / E);
      return probeKind[row] === PROBE_BACKDOOR || probeKind[row] === PROBE_MISLABELED
        ? 3 + rng.float()
        : rng.float() * 3;
    });
    return {
      labels: split.labels,
      numClasses: 10,
      probeKind,
      features: { dim: D, values: features },
      trajectories: { n, epochs: E, losses },
      images,
      seed,
    };
  }

  it('never scores or removes a probe, and is deterministic from the seed', () => {
    const inp = run();
    const a = runDefenses(DEFENSE_NAMES, inp, { badloss: { method: 'knn', k: 5 } });
    const b = runDefenses(DEFENSE_NAMES, run(), { badloss: { method: 'knn', k: 5 } });
    expect(a.map((r) => r.name)).toEqual([...DEFENSE_NAMES]);
    for (const [j, r] of a.entries()) {
      for (let i = 0; i < inp.labels.length; i++) {
        if (inp.probeKind[i] !== PROBE_NONE) expect(r.scores[i]).toBeNaN();
        else expect(Number.isNaN(r.scores[i])).toBe(false);
      }
      expect(r.removed.every((i) => inp.probeKind[i] === PROBE_NONE)).toBe(true);
      expect(r.removed).toEqual([...r.removed].sort((x, y) => x - y));
      expect(Array.from(b[j].scores)).toEqual(Array.from(r.scores));
      expect(b[j].removed).toEqual(r.removed);
    }
  });

  it('badloss in the registry is the detector of src/core/detect', () => {
    const inp = run();
    const [res] = runDefenses(['badloss'], inp, { badloss: { method: 'knn', k: 5 } });
    const det = detect(inp.trajectories!, probeRowsFromKinds(inp.probeKind), {
      method: 'knn',
      k: 5,
    });
    expect(Array.from(res.scores)).toEqual(Array.from(det.scores));
    const truth = new Int8Array(inp.labels.length).fill(-1);
    for (let i = 100; i < 300; i += 7) truth[i] = 0;
    const attacks = [{ id: 'patch' as const }];
    const s1 = summarizeDefense(res, truth, inp.probeKind, attacks, inp.labels, 10);
    const s2 = summarizeDetection(det, truth, inp.probeKind, attacks, inp.labels, 10);
    expect(s1.auroc).toEqual(s2.auroc);
    expect(s1.removed).toEqual(s2.removed);
    expect(s1.perClass).toEqual(s2.perClass);
    expect(s1.flagged).toEqual(s2.flagged);
    expect(s1.threshold).toBe(s2.threshold);
  });

  it('names a missing input', () => {
    const inp = run();
    expect(() => runDefenses(['spectral'], { ...inp, features: undefined })).toThrow(
      /Spectral Signatures needs the penultimate-layer features/,
    );
    expect(() => runDefenses(['abl'], { ...inp, trajectories: undefined })).toThrow(
      /ABL needs the loss trajectories/,
    );
    expect(() =>
      runDefenses(['activation-clustering'], {
        ...inp,
        features: { dim: 7, values: inp.features!.values },
      }),
    ).toThrow(/expected 300 rows × 7/);
  });

  it('rejects out-of-range options with the value', () => {
    const inp = run();
    expect(() => runDefenses(['abl'], inp, { abl: { removeFraction: 1.5 } })).toThrow(
      /removal fraction 1.5 must be in \[0, 1\]/,
    );
    expect(() =>
      runDefenses(['activation-clustering'], inp, { activationClustering: { dims: 0 } }),
    ).toThrow(/PCA dimensions must be a whole number ≥ 1, got 0/);
    expect(() => runDefenses(['frequency'], inp, { frequency: { steps: 2.5 } })).toThrow(
      /training steps must be a whole number ≥ 1, got 2.5/,
    );
  });

  it('parses the CLI list', () => {
    expect(parseDefenseList('all')).toEqual([...DEFENSE_NAMES]);
    expect(parseDefenseList('abl, spectral,abl')).toEqual(['abl', 'spectral']);
    expect(() => parseDefenseList('badloss,strip')).toThrow(/unknown defense "strip"/);
    expect(() => parseDefenseList(' ')).toThrow(/no defense named/);
  });
});

describe('defense summary', () => {
  it('gives AUROC and removal numbers of a constructed case', () => {
    // 10 rows: 0–1 probes; patch poisons 2, 3; blend-r poison 4; clean 5–9.
    // scores: 2 → 0.9, 3 → 0.4, 4 → 0.6; clean 0.1, 0.2, 0.4, 0.5, 0.7.
    // patch vs clean: pairs won by 0.9: 5; by 0.4: 2 wins (0.1, 0.2) + ½ (tie with 0.4) ⇒ 7.5/10.
    // blend-r: 0.6 beats 0.1, 0.2, 0.4, 0.5 ⇒ 4/5. all: (7.5 + 4)/15.
    const scores = Float32Array.from([NaN, NaN, 0.9, 0.4, 0.6, 0.1, 0.2, 0.4, 0.5, 0.7]);
    const truth = Int8Array.from([-1, -1, 0, 0, 1, -1, -1, -1, -1, -1]);
    const probeKind = Uint8Array.from([1, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
    const labels = Uint8Array.from([0, 1, 1, 1, 1, 0, 0, 0, 1, 1]);
    const s = summarizeDefense(
      {
        name: 'abl',
        scores,
        removed: [2, 4, 9],
        details: { kind: 'abl', earlyEpochs: 1, removeFraction: 0.3, lossCutoff: 0 },
      },
      truth,
      probeKind,
      [{ id: 'patch' }, { id: 'blend-r' }],
      labels,
      2,
    );
    expect(s.defense).toBe('abl');
    expect(s.threshold).toBeUndefined();
    expect(s.auroc.patch).toBeCloseTo(0.75, 12);
    expect(s.auroc['blend-r']).toBeCloseTo(0.8, 12);
    expect(s.auroc.all).toBeCloseTo(11.5 / 15, 12);
    expect(s.removed).toEqual({ clean: 1, total: 3, patch: 1, 'blend-r': 1 });
    expect(s.removedFraction).toEqual({ clean: 0.2, total: 3 / 8, patch: 0.5, 'blend-r': 1 });
    // class 0: rows 5, 6, 7 (none removed); class 1: rows 2, 3, 4, 8, 9 (2, 4, 9 removed)
    expect(s.perClass).toEqual([
      { removed: 0, total: 3 },
      { removed: 3, total: 5 },
    ]);
    expect(s.roc.patch.fpr.at(-1)).toBe(1);
  });
});
