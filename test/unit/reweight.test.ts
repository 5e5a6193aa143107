import { describe, expect, it } from 'vitest';
import { classPrior, MAX_CLASS_WEIGHT, priorWeights } from '../../src/core/reweight.ts';
import { Rng } from '../../src/core/rng.ts';

describe('classPrior', () => {
  it('is the class frequencies with one pseudo-count per class', () => {
    // 6 labels over 3 classes: counts 3, 2, 1 (+1 each) over 6 + 3
    expect(classPrior([0, 0, 0, 1, 1, 2], 3)).toEqual([4 / 9, 3 / 9, 2 / 9]);
    // a class the reference lacks keeps a small share, not none
    expect(classPrior([0, 1], 3)).toEqual([2 / 5, 2 / 5, 1 / 5]);
    expect(classPrior([], 3)).toBeUndefined();
  });
});

describe('priorWeights', () => {
  it('gives the rows the prior: oracle values', () => {
    // a balanced set whose class 1 an attack doubled: 100, 200, 100 rows, to a uniform prior
    const labels = [...Array(100).fill(0), ...Array(200).fill(1), ...Array(100).fill(2)];
    const w = priorWeights(labels, [1 / 3, 1 / 3, 1 / 3]);
    expect(w[0]).toBeCloseTo(4 / 3, 12);
    expect(w[1]).toBeCloseTo(2 / 3, 12);
    expect(w[2]).toBeCloseTo(4 / 3, 12);
    // rows already at the prior: every weight 1
    for (const x of priorWeights([0, 1, 1, 2, 2, 2], [1 / 6, 2 / 6, 3 / 6]))
      expect(x).toBeCloseTo(1, 12);
  });

  it('clamps a class the rows nearly lack at MAX_CLASS_WEIGHT', () => {
    // 1 row of class 1 among 100, to a uniform prior: 0.5 / 0.01 = 50, clamped
    const labels = [...Array(99).fill(0), 1];
    const w = priorWeights(labels, [0.5, 0.5]);
    expect(w[0]).toBeCloseTo(0.5 / 0.99, 12);
    expect(w[1]).toBe(MAX_CLASS_WEIGHT);
  });

  it('weights average 1 over the rows and each class weighs its prior share (property)', () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 50; trial++) {
      const C = 2 + rng.int(9);
      const labels = Array.from({ length: 20 + rng.int(500) }, () => rng.int(C));
      const raw = Array.from({ length: C }, () => 0.05 + rng.float());
      const prior = raw.map((x) => x / raw.reduce((s, y) => s + y, 0));
      const w = priorWeights(labels, prior);
      const n = new Array<number>(C).fill(0);
      for (const l of labels) n[l]++;
      for (const x of w) expect(x).toBeLessThanOrEqual(MAX_CLASS_WEIGHT);
      if (w.includes(MAX_CLASS_WEIGHT)) continue; // clamped: below
      const total = labels.reduce((s, l) => s + w[l], 0);
      expect(total / labels.length).toBeCloseTo(1, 9);
      // a present class's total weight is its prior share among the present classes
      const present = prior.reduce((s, q, c) => (n[c] ? s + q : s), 0);
      for (let c = 0; c < C; c++) {
        if (n[c]) expect((n[c] * w[c]) / total).toBeCloseTo(prior[c] / present, 9);
        else expect(w[c]).toBe(1);
        expect(w[c]).toBeGreaterThan(0);
      }
    }
  });
});
