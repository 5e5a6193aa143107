import { describe, expect, it } from 'vitest';
import { countRemovals } from '../../src/core/removals.ts';
import { summarizeDetection } from '../../src/core/report.ts';
import { Rng } from '../../src/core/rng.ts';

describe('countRemovals (the live slider)', () => {
  it('counts exactly what the full summary counts, at every threshold', () => {
    const rng = new Rng(3);
    const n = 2000;
    const scores = new Float32Array(n).map(() => Math.round(rng.float() * 20) / 20); // ties
    const probeKind = new Uint8Array(n).map((_, i) => (i < 60 ? 1 + (i % 3) : 0));
    for (let i = 0; i < 60; i++) scores[i] = NaN;
    const truth = new Int8Array(n).map(() => (rng.float() < 0.2 ? rng.int(3) : -1));
    const labels = new Uint8Array(n).map(() => rng.int(5));
    const attacks = [{ id: 'patch' }, { id: 'blend-r' }, { id: 'warping' }] as const;
    for (const t of [0, 0.1, 0.5, 0.55, 1]) {
      const full = summarizeDetection(
        { method: 'knn', scores, threshold: t },
        truth,
        probeKind,
        attacks,
        labels,
        5,
      );
      const fast = countRemovals(
        scores,
        t,
        truth,
        probeKind,
        ['patch', 'blend-r', 'warping'],
        labels,
        5,
      );
      expect(fast.flagged).toEqual(full.flagged);
      expect(fast.removed).toEqual(full.removed);
      expect(fast.removedFraction).toEqual(full.removedFraction);
      expect(fast.perClass).toEqual(full.perClass);
    }
  });
});
