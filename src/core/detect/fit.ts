import { PROBE_BACKDOOR, PROBE_CLEAN, PROBE_MISLABELED } from '../probes.ts';
import type { Trajectories } from './knn.ts';

/**
 * How far the probationary model fit its data: the median loss (nats) of each kind of probe
 * after the last epoch. Absent kinds are NaN.
 */
export interface ProbeFit {
  clean: number;
  backdoor: number;
  mislabeled: number;
}

/**
 * The probationary model is called underfit when the median clean probe's last loss is above
 * ln 2: its own label gets less than half the probability. BaDLoss tells poisons apart by how
 * fast they are learned next to clean rows; a model that has not yet fit the clean rows blurs
 * that. Measured (docs/detection.md, "Natural images"): on the demo set, twenty seeds, the median
 * clean probe ends at 0.13–0.24 nats; on CIFAR-10 at 6,000 images and ten epochs (44–51% clean
 * accuracy), eight seeds, at 0.99–1.35 — where the backdoor probes ended near the mislabeled ones
 * (median 1.7–2.4 against 2.8–3.1) and the k-NN alone removed 14% of the poisons of the attacks that took hold.
 */
export const UNDERFIT_LOSS = Math.LN2;

/**
 * The median last-epoch loss of each probe kind. `t.losses` is N × E, row-major, in nats (the
 * recorded trajectories); `probeKind` per row, as in `Prepared`. A loss that is not a number (a
 * diverged training) counts as infinite, so such a model reads as underfit.
 */
export function probeFit(t: Trajectories, probeKind: ArrayLike<number>): ProbeFit {
  const { n, epochs: E, losses } = t;
  const byKind = new Map<number, number[]>([
    [PROBE_CLEAN, []],
    [PROBE_BACKDOOR, []],
    [PROBE_MISLABELED, []],
  ]);
  for (let i = 0; i < n; i++) {
    const loss = losses[i * E + E - 1];
    byKind.get(probeKind[i])?.push(Number.isNaN(loss) ? Infinity : loss);
  }
  const median = (v: number[]) => {
    if (v.length === 0) return NaN;
    v.sort((a, b) => a - b);
    const h = v.length >> 1;
    return v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
  };
  return {
    clean: median(byKind.get(PROBE_CLEAN)!),
    backdoor: median(byKind.get(PROBE_BACKDOOR)!),
    mislabeled: median(byKind.get(PROBE_MISLABELED)!),
  };
}

/** The model did not fit its clean probes (median last loss above UNDERFIT_LOSS). */
export function underfit(fit: ProbeFit | undefined): boolean {
  return !!fit && fit.clean > UNDERFIT_LOSS;
}
