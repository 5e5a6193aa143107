import { describe, expect, it } from 'vitest';
import { auroc, rocCurve } from '../../src/core/metrics.ts';
import { knnScores, leaveOneOutAuroc, type Trajectories } from '../../src/core/detect/knn.ts';
import { cleanDistanceScores, toRanks } from '../../src/core/detect/clean-distance.ts';
import {
  detect,
  flaggedRows,
  LOG_FLOOR,
  LOG_WEIGHT,
  trajectoryFeatures,
} from '../../src/core/detect/index.ts';
import { Rng } from '../../src/core/rng.ts';

function randomTrajectories(n: number, epochs: number, seed: number): Trajectories {
  const rng = new Rng(seed);
  const losses = Float32Array.from({ length: n * epochs }, () => rng.float() * 5);
  return { n, epochs, losses };
}

function bruteDist(t: Trajectories, a: number, b: number): number {
  let s = 0;
  for (let e = 0; e < t.epochs; e++)
    s += (t.losses[a * t.epochs + e] - t.losses[b * t.epochs + e]) ** 2;
  return Math.sqrt(s);
}

function bruteKnn(
  t: Trajectories,
  q: number,
  clean: number[],
  anom: number[],
  k: number,
  exclude = -1,
): number {
  const refs = [...clean.map((r) => ({ r, a: 0 })), ...anom.map((r) => ({ r, a: 1 }))].filter(
    (x) => x.r !== exclude,
  );
  refs.sort((x, y) => bruteDist(t, q, x.r) - bruteDist(t, q, y.r));
  return refs.slice(0, k).reduce((s, x) => s + x.a, 0) / k;
}

describe('AUROC', () => {
  it('matches hand-worked cases, ties counted half', () => {
    expect(auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])).toBe(0);
    // one positive tied with one negative: pairs (p=0.5 vs n=0.5) = ½, (0.5 vs 0.1) = 1, (0.9 vs both) = 2 ⇒ 3.5/4
    expect(auroc([0.5, 0.9, 0.5, 0.1], [1, 1, 0, 0])).toBe(0.875);
    // all tied ⇒ 0.5
    expect(auroc([1, 1, 1, 1], [1, 0, 1, 0])).toBe(0.5);
    // NaN scores are skipped; one class empty ⇒ NaN
    expect(auroc([NaN, 0.2, 0.3], [1, 0, 1])).toBe(1);
    expect(auroc([0.2, 0.3], [0, 0])).toBeNaN();
  });
  it('equals the pairwise probability on random data', () => {
    const rng = new Rng(9);
    const s = Array.from({ length: 200 }, () => Math.floor(rng.float() * 10) / 10);
    const l = s.map(() => (rng.float() < 0.3 ? 1 : 0));
    let num = 0;
    let den = 0;
    for (let i = 0; i < s.length; i++)
      for (let j = 0; j < s.length; j++)
        if (l[i] === 1 && l[j] === 0) {
          den++;
          num += s[i] > s[j] ? 1 : s[i] === s[j] ? 0.5 : 0;
        }
    expect(auroc(s, l)).toBeCloseTo(num / den, 12);
    // the area under the ROC curve is the same number
    const roc = rocCurve(s, l);
    let area = 0;
    for (let i = 1; i < roc.fpr.length; i++)
      area += ((roc.fpr[i] - roc.fpr[i - 1]) * (roc.tpr[i] + roc.tpr[i - 1])) / 2;
    expect(area).toBeCloseTo(num / den, 12);
    expect(roc.fpr.at(-1)).toBe(1);
    expect(roc.tpr.at(-1)).toBe(1);
  });
});

describe('k-NN detector', () => {
  it('matches brute force on random trajectories', () => {
    const t = randomTrajectories(300, 7, 1);
    const clean = [0, 5, 9, 20, 33, 41, 50, 77, 80, 99, 120, 130];
    const anom = [1, 2, 3, 150, 160, 170, 180, 190, 200, 210];
    const res = knnScores(t, { clean, anomalous: anom }, 5);
    const probes = new Set([...clean, ...anom]);
    for (let i = 0; i < t.n; i++) {
      if (probes.has(i)) expect(res.scores[i]).toBeNaN();
      else expect(res.scores[i]).toBeCloseTo(bruteKnn(t, i, clean, anom, 5), 6);
    }
  });

  it('leave-one-out AUROC matches brute force', () => {
    const t = randomTrajectories(60, 4, 2);
    const clean = [...Array(25).keys()];
    const anom = [...Array(20).keys()].map((i) => 30 + i);
    const refs = [...clean, ...anom];
    const isAnom = Uint8Array.from(refs, (_, j) => (j >= clean.length ? 1 : 0));
    const got = leaveOneOutAuroc(t, refs, isAnom, [1, 3, 7]);
    for (const { k, auroc: a } of got) {
      const s = refs.map((r) => bruteKnn(t, r, clean, anom, k, r));
      expect(a).toBeCloseTo(auroc(s, isAnom), 10);
    }
  });

  it('chooses the k that maximizes leave-one-out AUROC on a constructed case', () => {
    // Two tight clean pairs... and an anomalous group of 4: with k = 1 every probe's nearest
    // other probe is of its own kind (AUROC 1); with k = 9 (all others) clean probes see 4/9
    // anomalous and anomalous ones 3/9 (AUROC 0).
    const pts = [0, 0.1, 0.2, 50, 50.1, 50.2, 100, 100.1, 100.2, 100.3, 7];
    const t: Trajectories = { n: pts.length, epochs: 1, losses: Float32Array.from(pts) };
    const res = knnScores(
      t,
      { clean: [0, 1, 2, 3, 4, 5], anomalous: [6, 7, 8, 9] },
      'auto',
      [1, 9],
    );
    expect(res.looAuroc).toEqual([
      { k: 1, auroc: 1 },
      { k: 9, auroc: 0 },
    ]);
    expect(res.k).toBe(1);
    expect(res.scores[10]).toBe(0); // nearest probe of 7 is clean (0.2)
  });

  it('flags rows with score above the threshold', () => {
    expect(flaggedRows([0, 0.1, 0.2, NaN, 1], 0.1)).toEqual([2, 4]);
  });

  it('rejects inconsistent inputs', () => {
    const t = randomTrajectories(10, 3, 1);
    expect(() =>
      detect({ ...t, n: 11 }, { clean: [0], anomalous: [1] }, { method: 'knn' }),
    ).toThrow(/expected 11 × 3/);
    expect(() => detect(t, { clean: [0, 12], anomalous: [1] }, { method: 'knn', k: 1 })).toThrow(
      /probe row 12 is outside/,
    );
    expect(() => detect(t, { clean: [0, 2], anomalous: [1] }, { method: 'knn', k: 5 })).toThrow(
      /k = 5/,
    );
    expect(() =>
      detect(
        t,
        { clean: [0, 2], anomalous: [1] },
        {
          method: 'knn',
          k: 1,
          features: 'log' as never,
        },
      ),
    ).toThrow(/features "log" is invalid: must be one of loss, loss\+log/);
  });
});

describe('trajectory features', () => {
  it('loss+log puts each row’s losses, then the weighted logarithms, side by side', () => {
    const t: Trajectories = { n: 2, epochs: 2, losses: Float32Array.from([2, 0, 100, 0.5]) };
    expect(trajectoryFeatures(t, 'loss')).toBe(t);
    const f = trajectoryFeatures(t, 'loss+log');
    expect(f.n).toBe(2);
    expect(f.epochs).toBe(4);
    const log = (v: number) => LOG_WEIGHT * Math.log(v + LOG_FLOOR);
    const want = [2, 0, log(2), log(0), 100, 0.5, log(100), log(0.5)];
    want.forEach((w, i) => expect(f.losses[i]).toBeCloseTo(w, 5));
    // the raw half is untouched, and the log half keeps the losses' order
    expect(Array.from(f.losses.subarray(4, 6))).toEqual([100, 0.5]);
    expect(f.losses[6]).toBeGreaterThan(f.losses[7]);
  });

  it('detect on loss+log is detect on the transformed trajectories', () => {
    const t = randomTrajectories(120, 6, 7);
    const probes = {
      clean: [...Array(30).keys()],
      anomalous: [...Array(30).keys()].map((i) => 30 + i),
    };
    const opts = { method: 'knn' as const, k: 'auto' as const, threshold: 'auto' as const };
    const a = detect(t, probes, { ...opts, features: 'loss+log' });
    const b = detect(trajectoryFeatures(t, 'loss+log'), probes, opts);
    expect(a.k).toBe(b.k);
    expect(Array.from(a.scores)).toEqual(Array.from(b.scores));
    // and it differs from the losses alone: the log half changes the neighbours
    const c = detect(t, probes, opts);
    expect(Array.from(a.scores)).not.toEqual(Array.from(c.scores));
  });

  it('separates a fast-learned poison from easy clean rows where raw losses do not', () => {
    // Every row starts alike (a noisy fall over the first three epochs); clean rows then settle
    // at 0.02–0.08, backdoor probes and poisons at 10⁻⁴–10⁻³; the mislabeled probes stay at 3–6.
    // Raw distances are dominated by the early noise, the log half by the gap at the low end.
    const rng = new Rng(3);
    const E = 8;
    const row = (kind: 'clean' | 'fast' | 'slow') =>
      Array.from({ length: E }, (_, e) => {
        if (kind === 'slow') return 3 + 3 * rng.float();
        if (e < 3) return 2.3 * Math.exp(-e) * (0.5 + rng.float());
        return kind === 'fast' ? 1e-4 + 1e-3 * rng.float() : 0.02 + 0.06 * rng.float();
      });
    const kinds = [
      ...Array(60).fill('clean'),
      ...Array(20).fill('fast'),
      ...Array(20).fill('slow'),
      ...Array(200).fill('clean'),
      ...Array(20).fill('fast'),
    ] as ('clean' | 'fast' | 'slow')[];
    const t: Trajectories = {
      n: kinds.length,
      epochs: E,
      losses: Float32Array.from(kinds.flatMap(row)),
    };
    const probes = {
      clean: [...Array(60).keys()],
      anomalous: [...Array(40).keys()].map((i) => 60 + i),
    };
    const rows = [...Array(220).keys()].map((i) => 100 + i);
    const labels = rows.map((r) => (kinds[r] === 'fast' ? 1 : 0));
    const aurocOf = (features: 'loss' | 'loss+log') => {
      const d = detect(t, probes, {
        method: 'knn',
        k: 10,
        threshold: 'auto',
        score: 'knn+distance',
        features,
      });
      return auroc(
        rows.map((r) => d.scores[r]),
        labels,
      );
    };
    const [raw, withLog] = [aurocOf('loss'), aurocOf('loss+log')];
    expect(withLog).toBeGreaterThan(0.95);
    expect(raw).toBeLessThan(0.9);
  });
});

describe('clean-distance detector', () => {
  it('ranks far-away trajectories highest', () => {
    const base = [1, 1, 1, 1, 1, 1, 1, 1, 5, 9];
    const t: Trajectories = { n: base.length, epochs: 1, losses: Float32Array.from(base) };
    const scores = cleanDistanceScores(t, [0, 1, 2, 3], 3);
    expect(scores[9]).toBe(1);
    expect(scores[8]).toBeGreaterThan(scores[5]);
    const res = detect(
      t,
      { clean: [0, 1, 2, 3], anomalous: [] },
      { method: 'clean-distance', rejectFraction: 0.2 },
    );
    expect(flaggedRows(res.scores, res.threshold)).toEqual([8, 9]);
  });
  it('toRanks shares ranks among ties', () => {
    expect(Array.from(toRanks([3, 1, 1, 2, 5]))).toEqual([0.75, 0.125, 0.125, 0.5, 1]);
  });
  it('no-probe fallback scores an outlier highest', () => {
    const rng = new Rng(4);
    const n = 40;
    const losses = new Float32Array(n * 3);
    for (let i = 0; i < n; i++)
      for (let e = 0; e < 3; e++) losses[i * 3 + e] = 2 - e * 0.5 + 0.1 * rng.normal();
    losses.set([0.1, 3, 0.1], 39 * 3);
    const res = detect(
      { n, epochs: 3, losses },
      { clean: [...Array(20).keys()], anomalous: [] },
      { method: 'no-probe' },
    );
    let best = 20;
    for (let i = 20; i < n; i++) if (res.scores[i] > res.scores[best]) best = i;
    expect(best).toBe(39);
  });
});

describe('PCA embedding', () => {
  it('recovers the dominant direction of variation', async () => {
    const { pca2 } = await import('../../src/core/embed.ts');
    const rng = new Rng(3);
    const n = 200;
    const losses = new Float32Array(n * 3);
    const t: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = rng.normal() * 5;
      t.push(a);
      losses.set([a + 0.01 * rng.normal(), -a + 0.01 * rng.normal(), 0.01 * rng.normal()], i * 3);
    }
    const { coords, explained } = pca2(losses, n, 3);
    expect(explained[0]).toBeGreaterThan(0.99);
    // first coordinate is ±√2·a (up to sign)
    const sign = Math.sign(coords[0] / t[0]);
    for (let i = 0; i < n; i += 17) expect(coords[i * 2] * sign).toBeCloseTo(Math.SQRT2 * t[i], 0);
  });
});
