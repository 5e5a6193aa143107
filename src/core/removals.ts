import { PROBE_NONE } from './probes.ts';
import type { RemovalSummary } from './report.ts';

/**
 * The removal counts of a detection at one threshold — flagged ⇔ score > threshold, probes never
 * judged — without the ROC and AUROC, which do not depend on the threshold. O(N): what a live
 * threshold slider recounts for 50,000 examples (a full summary sorts every group's scores).
 * `truth[i]` = index into `attackIds` or −1.
 */
export function countRemovals(
  scores: ArrayLike<number>,
  threshold: number,
  truth: Int8Array,
  probeKind: Uint8Array,
  attackIds: readonly string[],
  labels: Uint8Array,
  numClasses: number,
): Pick<RemovalSummary, 'removed' | 'removedFraction' | 'perClass' | 'flagged'> {
  const removed: Record<string, number> = { clean: 0, total: 0 };
  const sizes: Record<string, number> = { clean: 0, total: 0 };
  for (const id of attackIds) removed[id] = sizes[id] = 0;
  const perClass = Array.from({ length: numClasses }, () => ({ removed: 0, total: 0 }));
  const flagged: number[] = [];
  for (let i = 0; i < truth.length; i++) {
    if (probeKind[i] !== PROBE_NONE) continue;
    const key = truth[i] >= 0 ? attackIds[truth[i]] : 'clean';
    const out = scores[i] > threshold;
    sizes[key]++;
    sizes.total++;
    perClass[labels[i]].total++;
    if (out) {
      flagged.push(i);
      removed[key]++;
      removed.total++;
      perClass[labels[i]].removed++;
    }
  }
  const removedFraction: Record<string, number> = {};
  for (const key of Object.keys(removed))
    removedFraction[key] = sizes[key] ? removed[key] / sizes[key] : 0;
  return { removed, removedFraction, perClass, flagged };
}
