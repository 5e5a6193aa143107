import { describe, expect, it } from 'vitest';
import { conformalScores } from '../../src/core/detect/calibrate.ts';
import {
  detect,
  easinessScores,
  flaggedRows,
  LOG_FLOOR,
  unionOfTests,
  type DetectOptions,
} from '../../src/core/detect/index.ts';
import type { ProbeRows, Trajectories } from '../../src/core/detect/knn.ts';
import { Rng } from '../../src/core/rng.ts';

/** Rows whose loss is `loss[i]` at every epoch. */
function flat(loss: number[], epochs: number): Trajectories {
  const losses = new Float32Array(loss.length * epochs);
  loss.forEach((l, i) => losses.fill(l, i * epochs, (i + 1) * epochs));
  return { n: loss.length, epochs, losses };
}

describe('easiness scores', () => {
  it('are a robust z-score of −mean ln(loss + floor) within the class (hand-worked)', () => {
    // Class 0: losses 1, 0.5, 0.25, 0.01; class 1: 0.1, 0.1, 0.1 (MAD 0 ⇒ divided by 1e-6).
    const loss = [1, 0.5, 0.25, 0.01, 0.1, 0.1, 0.1];
    const t = flat(loss, 10);
    const z = easinessScores(t, { labels: [0, 0, 0, 0, 1, 1, 1], numClasses: 2 });
    const x = loss.map((l) => -Math.log(Math.fround(l) + LOG_FLOOR));
    // class 0, sorted x: x0 < x1 < x2 < x3; the upper middle (index 2 of 4) is the median
    const med = x[2];
    const dev = [0, 1, 2, 3].map((i) => Math.abs(x[i] - med)).sort((a, b) => a - b);
    const mad = dev[2];
    for (const i of [0, 1, 2, 3]) expect(z[i]).toBeCloseTo((x[i] - med) / mad, 10);
    for (const i of [4, 5, 6]) expect(z[i]).toBe(0);
  });

  it('ignore the first fifth of the epochs (warm-up)', () => {
    const a = flat([1, 0.5, 0.2], 10);
    const b = { ...a, losses: a.losses.slice() };
    for (let i = 0; i < 3; i++) b.losses.fill(9, i * 10, i * 10 + 2); // epochs 1–2 differ
    expect(Array.from(easinessScores(b))).toEqual(Array.from(easinessScores(a)));
  });

  it('find rows learned far better than their class, not an easy class', () => {
    const rng = new Rng(3);
    // Class 0 is hard (loss ≈ 1), class 1 easy (loss ≈ 0.05); rows 0–4 of class 0 are planted
    // poisons, learned like the easy class.
    const labels = Array.from({ length: 200 }, (_, i) => (i < 100 ? 0 : 1));
    const loss = labels.map((c, i) => (c === 0 && i >= 5 ? 1 : 0.05) * (0.8 + 0.4 * rng.float()));
    const z = easinessScores(flat(loss, 10), { labels, numClasses: 2 });
    const top = [...z.keys()].sort((i, j) => z[j] - z[i]).slice(0, 5);
    expect(top.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
    // pooled (no labels) the easy class would crowd them out
    const pooled = easinessScores(flat(loss, 10));
    const topPooled = [...pooled.keys()].sort((i, j) => pooled[j] - pooled[i]).slice(0, 5);
    expect(topPooled.some((i) => i >= 100)).toBe(true);
  });
});

describe('unionOfTests', () => {
  const rng = new Rng(11);
  const a = Float32Array.from({ length: 2000 }, () => rng.float());
  const b = Float32Array.from({ length: 2000 }, () => rng.float());

  it('flags exactly the rows either test flags at its own budget', () => {
    for (const [alpha, beta] of [
      [0.1, 0.02],
      [0.12, 0.03],
      [0.3, 0.3],
    ]) {
      const u = unionOfTests(a, alpha, b, beta);
      const t = 1 - (alpha + beta);
      for (let i = 0; i < a.length; i++) expect(u[i] > t).toBe(a[i] > 1 - alpha || b[i] > 1 - beta);
    }
  });

  it('moving its threshold scales both budgets alike', () => {
    const [alpha, beta] = [0.1, 0.02];
    const u = unionOfTests(a, alpha, b, beta);
    for (const budget of [0.06, 0.2, 0.5]) {
      const [a2, b2] = [(budget * alpha) / (alpha + beta), (budget * beta) / (alpha + beta)];
      let differ = 0;
      for (let i = 0; i < a.length; i++)
        if (u[i] > 1 - budget !== (a[i] > 1 - a2 || b[i] > 1 - b2)) differ++;
      // float32 rounding may move a row lying on the cut; none here
      expect(differ).toBe(0);
    }
  });

  it('decides rows on the conformal grid and at the float32 neighbours of each cut as either test alone', () => {
    // Conformal scores take the values 1 − j/(m + 1); the cuts 1 − α and 1 − β lie on or between
    // them, and float32 rounding of the combined score must not move a row across. With α = 1/8
    // a score of exactly 1 − α (unflagged) gives s = 1 − (α + β), which rounds up in float32.
    for (const [alpha, beta] of [
      [0.08, 0.02],
      [0.125, 0.02],
    ]) {
      const grid: number[] = [];
      for (const m1 of [250, 251, 26, 8]) for (let j = 1; j <= m1; j++) grid.push(1 - j / m1);
      for (const cut of [1 - alpha, 1 - beta]) {
        const bits = new Uint32Array(Float32Array.of(cut).buffer);
        for (const d of [-2, -1, 0, 1, 2])
          grid.push(new Float32Array(new Uint32Array([bits[0] + d]).buffer)[0]);
      }
      const a = Float32Array.from(grid.flatMap((x) => grid.map(() => x)));
      const b = Float32Array.from(grid.flatMap(() => grid));
      const u = unionOfTests(a, alpha, b, beta);
      const t = 1 - (alpha + beta);
      let wrong = 0;
      for (let i = 0; i < a.length; i++)
        if (u[i] > t !== (a[i] > 1 - alpha || b[i] > 1 - beta)) wrong++;
      expect(wrong).toBe(0);
      expect(u.every((x) => x >= 0 && x <= 1)).toBe(true);
    }
  });

  it('keeps NaN (probes) and refuses budgets adding up to 1', () => {
    const u = unionOfTests(Float32Array.of(NaN, 0.5), 0.1, Float32Array.of(0.2, NaN), 0.1);
    expect(Number.isNaN(u[0]) && Number.isNaN(u[1])).toBe(true);
    expect(() => unionOfTests(a, 0.6, b, 0.4)).toThrow(/add up to 1/);
  });
});

describe('detect with the easiness test', () => {
  // 40 clean probes, 40 anomalous probes (loss high), 400 rows of two classes; rows 0–9 are
  // learned at once (loss 0.01) — no probe behaves like them.
  const rng = new Rng(5);
  const n = 480;
  const labels = Array.from({ length: n }, (_, i) => i % 2);
  const loss = Array.from({ length: n }, (_, i) => {
    if (i < 10) return 0.01;
    if (i >= 440) return 3 + rng.float();
    return 0.5 + rng.float();
  });
  const t = flat(loss, 10);
  for (let i = 0; i < t.losses.length; i++) t.losses[i] *= 0.9 + 0.2 * rng.float();
  const probes: ProbeRows = {
    clean: Array.from({ length: 40 }, (_, j) => 400 + j),
    anomalous: Array.from({ length: 40 }, (_, j) => 440 + j),
  };
  const context = { labels, numClasses: 2 };
  const base: DetectOptions = { method: 'knn', k: 5, threshold: 'auto', targetFpr: 0.1 };

  it('removes the k-NN test’s rows and the easiness test’s, and the threshold is the summed budget', () => {
    const knn = detect(t, probes, base, context);
    const both = detect(t, probes, { ...base, easiness: 0.05 }, context);
    const rows = [...Array(n).keys()].filter((i) => i < 400);
    const easy = conformalScores(easinessScores(t, context), probes.clean, rows, () => 0, 1);
    const easyFlags = rows.filter((i) => easy.scores[i] > 1 - 0.05);
    const union = [...new Set([...flaggedRows(knn.scores, knn.threshold), ...easyFlags])].sort(
      (x, y) => x - y,
    );
    expect(flaggedRows(both.scores, both.threshold)).toEqual(union);
    expect(both.threshold).toBeCloseTo(1 - 0.15, 12);
    expect(both.calibration?.easiness).toBe(0.05);
    // the planted rows: the easiness test finds them, the k-NN alone does not
    for (let i = 0; i < 10; i++) expect(both.scores[i]).toBeGreaterThan(both.threshold);
    expect(flaggedRows(knn.scores, knn.threshold).filter((i) => i < 10)).toEqual([]);
    for (const r of [...probes.clean, ...probes.anomalous]) expect(both.scores[r]).toBeNaN();
  });

  it('rejects a budget outside (0, 1)', () => {
    expect(() => detect(t, probes, { ...base, easiness: 0 }, context)).toThrow(/easiness 0/);
    expect(() => detect(t, probes, { ...base, easiness: 1.5 }, context)).toThrow(/easiness 1.5/);
  });
});
