import { stageDone, type RunRecord, type Stage } from '../core/run.ts';

/** The workflow's steps, in order. */
export const STEPS = ['data', 'attacks', 'probes', 'train', 'detect', 'retrain', 'report'] as const;
export type StepId = (typeof STEPS)[number];

/**
 * Which steps are finished, for the step navigation's done-marks: a dataset chosen; the attacks
 * and probes built into the stored run (`current`: the run matches the draft settings); the
 * probationary model trained; detection run (both rounds, with a second one); the defended model (and the separate baseline, when
 * asked for) trained; the report built.
 */
export function stepsDone(
  rec: RunRecord | null,
  datasetChosen: boolean,
  current: boolean,
): Record<StepId, boolean> {
  // The stages are core's (the one place the sequence is written); a step groups some of them.
  const done = (...stages: Stage[]) => !!rec && stages.every((s) => stageDone(rec, s));
  return {
    data: datasetChosen,
    attacks: done('prepare') && current,
    probes: done('prepare') && current,
    train: done('probationary'),
    detect: done('detect', 'recheck'),
    retrain: done('retrain', 'baseline'),
    report: done('report'),
  };
}

/**
 * The step named in a URL: `?step=` (current links), else `#…&step=` (older links), else null.
 * Unknown names are ignored.
 */
export function stepFromUrl(search: string, hash: string): StepId | null {
  const q = new URLSearchParams(search).get('step');
  const h = /(?:^#|&)step=([a-z]+)/.exec(hash)?.[1];
  for (const s of [q, h]) if (s && (STEPS as readonly string[]).includes(s)) return s as StepId;
  return null;
}

/** The URL with `?step=` set, keeping every other query parameter and the hash (the run link). */
export function urlWithStep(href: string, step: StepId): string {
  const u = new URL(href);
  u.searchParams.set('step', step);
  return u.pathname + u.search + u.hash;
}
