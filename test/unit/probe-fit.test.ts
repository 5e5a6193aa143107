import { describe, expect, it } from 'vitest';
import { probeFit, underfit, UNDERFIT_LOSS } from '../../src/core/detect/fit.ts';
import {
  PROBE_BACKDOOR,
  PROBE_CLEAN,
  PROBE_MISLABELED,
  PROBE_NONE,
} from '../../src/core/probes.ts';

describe('probe fit', () => {
  it("is each probe kind's median loss after the last epoch (hand-worked)", () => {
    // 3 epochs; row i's losses are [9, 9, last[i]]: only the last epoch counts.
    const last = [0.1, 0.3, 0.2, 5, 1, 2, 3, 4, 2.5, 7];
    const kind = [
      PROBE_CLEAN,
      PROBE_CLEAN,
      PROBE_CLEAN, // clean: 0.1, 0.3, 0.2 → 0.2
      PROBE_NONE, // never counted
      PROBE_BACKDOOR,
      PROBE_BACKDOOR,
      PROBE_BACKDOOR,
      PROBE_BACKDOOR, // 1, 2, 3, 4 → 2.5 (even: the middle two's mean)
      PROBE_MISLABELED,
      PROBE_MISLABELED, // 2.5, 7 → 4.75
    ];
    const losses = new Float32Array(last.length * 3).fill(9);
    last.forEach((l, i) => (losses[i * 3 + 2] = l));
    const fit = probeFit({ n: last.length, epochs: 3, losses }, kind);
    expect(fit.clean).toBeCloseTo(0.2, 6);
    expect(fit.backdoor).toBeCloseTo(2.5, 6);
    expect(fit.mislabeled).toBeCloseTo(4.75, 6);
  });

  it('a kind without probes is NaN, and only the clean probes decide underfit', () => {
    const losses = Float32Array.from([0.5, 0.9, 3]);
    const fit = probeFit({ n: 3, epochs: 1, losses }, [PROBE_CLEAN, PROBE_CLEAN, PROBE_BACKDOOR]);
    expect(fit.mislabeled).toBeNaN();
    expect(fit.clean).toBeCloseTo(0.7, 6);
    expect(underfit(fit)).toBe(true);
    expect(underfit({ ...fit, clean: UNDERFIT_LOSS })).toBe(false);
    expect(underfit({ ...fit, clean: 0.2, backdoor: 9, mislabeled: 9 })).toBe(false);
    expect(underfit(undefined)).toBe(false);
    expect(underfit({ clean: NaN, backdoor: 1, mislabeled: 1 })).toBe(false);
  });

  it('a diverged model (NaN losses) reads as underfit', () => {
    const losses = Float32Array.from([NaN, NaN, 0.1, 2]);
    const kinds = [PROBE_CLEAN, PROBE_CLEAN, PROBE_CLEAN, PROBE_BACKDOOR];
    const fit = probeFit({ n: 4, epochs: 1, losses }, kinds);
    expect(fit.clean).toBe(Infinity);
    expect(underfit(fit)).toBe(true);
  });
});
