import { describe, expect, it } from 'vitest';
import { detect, flaggedRows, type DetectOptions } from '../../src/core/detect/index.ts';
import type { ProbeRows, Trajectories } from '../../src/core/detect/knn.ts';
import { mirroredSplit, mirrorGaps, mirrorTest } from '../../src/core/detect/mirror.ts';
import { IMAGE_BYTES } from '../../src/core/dataset.ts';
import { Rng } from '../../src/core/rng.ts';

describe('mirroredSplit', () => {
  const rng = new Rng(1);
  const count = 3;
  const images = Uint8Array.from({ length: count * IMAGE_BYTES }, () => rng.int(256));
  const split = { count, images, labels: Uint8Array.of(4, 1, 7) };

  it('moves pixel (y, x) of every channel to (y, 31 − x) and keeps the labels', () => {
    const m = mirroredSplit(split);
    const at = (a: Uint8Array, i: number, y: number, x: number, c: number) =>
      a[i * IMAGE_BYTES + (y * 32 + x) * 3 + c];
    for (let i = 0; i < count; i++)
      for (const [y, x] of [
        [0, 0],
        [0, 31],
        [5, 10],
        [31, 16],
        [17, 15],
      ])
        for (let c = 0; c < 3; c++)
          expect(at(m.images, i, y, x, c)).toBe(at(images, i, y, 31 - x, c));
    expect(m.labels).toBe(split.labels);
    expect(m.count).toBe(count);
  });

  it('is its own inverse, and leaves its input as it was', () => {
    const before = images.slice();
    expect(mirroredSplit(mirroredSplit(split)).images).toEqual(before);
    expect(images).toEqual(before);
  });
});

describe('mirrorGaps', () => {
  it('is the mirrored loss minus the plain loss, 0 where either is not finite', () => {
    const gap = mirrorGaps(Float32Array.of(0.5, 2, NaN, 1), Float32Array.of(3, 1, 1, Infinity));
    expect(Array.from(gap)).toEqual([2.5, -1, 0, 0]);
    expect(() => mirrorGaps(new Float32Array(2), new Float32Array(3))).toThrow(
      /2 plain .* 3 mirrored/,
    );
  });
});

/**
 * Two classes of 500 rows, their gaps ~ U(−0.5, 0.5) × the class's spread (class 1 moves five
 * times as much under a mirror); 50 clean probes per class drawn alike; rows 0–19 of class 0 are
 * planted poisons whose loss jumps by 3 nats.
 */
function planted() {
  const rng = new Rng(7);
  const n = 1100;
  const labels = Array.from({ length: n }, (_, i) => (i < 500 || (i >= 1000 && i < 1050) ? 0 : 1));
  const gap = Float32Array.from({ length: n }, (_, i) => {
    if (i < 20) return 3 + rng.float();
    return (rng.float() - 0.5) * (labels[i] === 0 ? 0.2 : 1);
  });
  const probes: ProbeRows = {
    clean: Array.from({ length: 100 }, (_, j) => 1000 + j),
    anomalous: [],
  };
  return { n, labels, gap, probes, context: { labels, numClasses: 2 } };
}

describe('mirrorTest', () => {
  it('flags the planted rows and about α of the clean rows of each class, never a probe', () => {
    const { n, labels, gap, probes, context } = planted();
    const alpha = 0.05;
    const s = mirrorTest(gap, probes, alpha, context);
    const flagged = flaggedRows(s, 1 - alpha);
    for (let i = 0; i < 20; i++) expect(flagged).toContain(i);
    for (const r of probes.clean) expect(s[r]).toBeNaN();
    for (const c of [0, 1]) {
      const clean = [...Array(1000).keys()].filter((i) => i >= 20 && labels[i] === c);
      const rate = clean.filter((i) => s[i] > 1 - alpha).length / clean.length;
      // the z-score within the class keeps the wide class from taking every flag
      expect(rate).toBeGreaterThan(0.01);
      expect(rate).toBeLessThan(0.12);
    }
    expect(s.length).toBe(n);
  });

  it('rejects a budget outside (0, 1)', () => {
    const { gap, probes } = planted();
    expect(() => mirrorTest(gap, probes, 0, undefined)).toThrow(/mirror 0 must be in \(0, 1\)/);
    expect(() => mirrorTest(gap, probes, 1, undefined)).toThrow(/mirror 1/);
  });
});

describe('detect with the mirror test', () => {
  // 40 clean and 40 anomalous probes (loss high), 400 rows of two classes: the k-NN sees rows
  // 400–439's trajectories as clean. Rows 0–9 are learned like clean rows but their loss jumps
  // when mirrored: only the mirror test finds them.
  const rng = new Rng(5);
  const n = 480;
  const labels = Array.from({ length: n }, (_, i) => i % 2);
  const E = 10;
  const losses = new Float32Array(n * E);
  for (let i = 0; i < n; i++) losses.fill((i >= 440 ? 3 : 0.5) + rng.float(), i * E, (i + 1) * E);
  const t: Trajectories = { n, epochs: E, losses };
  const mirrorGap = Float32Array.from({ length: n }, (_, i) =>
    i < 10 ? 4 : 0.3 * (rng.float() - 0.5),
  );
  const probes: ProbeRows = {
    clean: Array.from({ length: 40 }, (_, j) => 400 + j),
    anomalous: Array.from({ length: 40 }, (_, j) => 440 + j),
  };
  const base: DetectOptions = { method: 'knn', k: 5, threshold: 'auto', targetFpr: 0.1 };
  const context = { labels, numClasses: 2, mirrorGap };

  it('removes the k-NN’s rows and the mirror test’s, and the threshold is the summed budget', () => {
    const knn = detect(t, probes, { ...base, easiness: 0.02 }, context);
    const all = detect(t, probes, { ...base, easiness: 0.02, mirror: 0.05 }, context);
    const m = mirrorTest(mirrorGap, probes, 0.05, context);
    const union = [
      ...new Set([...flaggedRows(knn.scores, knn.threshold), ...flaggedRows(m, 1 - 0.05)]),
    ].sort((a, b) => a - b);
    expect(flaggedRows(all.scores, all.threshold)).toEqual(union);
    expect(all.threshold).toBeCloseTo(1 - 0.17, 12);
    expect(all.calibration).toMatchObject({ targetFpr: 0.1, easiness: 0.02, mirror: 0.05 });
    for (let i = 0; i < 10; i++) expect(all.scores[i]).toBeGreaterThan(all.threshold);
    expect(flaggedRows(knn.scores, knn.threshold).filter((i) => i < 10)).toEqual([]);
  });

  it('is skipped without the rows’ gaps, and refuses gaps of another length', () => {
    const without = detect(t, probes, { ...base, mirror: 0.05 }, { labels, numClasses: 2 });
    const knn = detect(t, probes, base, { labels, numClasses: 2 });
    expect(Array.from(without.scores)).toEqual(Array.from(knn.scores));
    expect(without.threshold).toBe(knn.threshold);
    expect(without.calibration).not.toHaveProperty('mirror');
    expect(() =>
      detect(t, probes, { ...base, mirror: 0.05 }, { ...context, mirrorGap: mirrorGap.slice(1) }),
    ).toThrow(/479 mirror gaps for 480 rows/);
  });
});
