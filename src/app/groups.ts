import { PROBE_BACKDOOR, PROBE_CLEAN, PROBE_MISLABELED, PROBE_NONE } from '../core/probes.ts';
import { ATTACK_NAMES, type AttackId } from '../core/attacks/triggers.ts';
import type { DetectionContext } from '../core/run.ts';

/** A group of training rows drawn in one colour: clean, each attack, each probe kind. */
export interface Group {
  key: string;
  label: string;
  color: string;
  rows: number[];
}

/** Names short enough for a gallery caption under a 72-px tile (full names are in tooltips). */
export const ATTACK_SHORT_NAMES: Record<AttackId, string> = {
  patch: 'patch',
  'single-pix': 'single pixel',
  'blend-r': 'random blend',
  'blend-p': 'dimple blend',
  sinusoid: 'sinusoid',
  warping: 'warping',
  frequency: 'frequency',
};

const ATTACK_COLORS = ['#e63946', '#f4a261', '#2a9d8f', '#9b5de5', '#f15bb5', '#00bbf9', '#8d6e63'];

/** Splits the rows of a run into groups by ground truth (when known) and probe kind. */
export function groupsOf(ctx: DetectionContext): Group[] {
  const clean: number[] = [];
  const byAttack = ctx.attackIds.map(() => [] as number[]);
  const probes: Record<number, number[]> = {
    [PROBE_CLEAN]: [],
    [PROBE_BACKDOOR]: [],
    [PROBE_MISLABELED]: [],
  };
  for (let i = 0; i < ctx.n; i++) {
    const k = ctx.probeKind[i];
    if (k !== PROBE_NONE) probes[k].push(i);
    else if (ctx.truth[i] >= 0) byAttack[ctx.truth[i]].push(i);
    else clean.push(i);
  }
  return [
    {
      key: 'clean',
      label: ctx.attackIds.length ? 'clean' : 'your examples',
      color: '#4c78a8',
      rows: clean,
    },
    ...ctx.attackIds.map((id, k) => ({
      key: id,
      label: ATTACK_NAMES[id as AttackId] ?? id,
      color: ATTACK_COLORS[k % ATTACK_COLORS.length],
      rows: byAttack[k],
    })),
    { key: 'probe-clean', label: 'clean probes', color: '#1d3557', rows: probes[PROBE_CLEAN] },
    {
      key: 'probe-backdoor',
      label: 'backdoor probes',
      color: '#111111',
      rows: probes[PROBE_BACKDOOR],
    },
    {
      key: 'probe-mislabeled',
      label: 'mislabeled probes',
      color: '#999999',
      rows: probes[PROBE_MISLABELED],
    },
  ].filter((g) => g.rows.length > 0);
}

/** Per epoch: mean, 10th and 90th percentile of the group's losses (first `epochs` columns). */
export function bundle(
  ctx: DetectionContext,
  rows: number[],
  epochs: number,
): { mean: number[]; lo: number[]; hi: number[] } {
  const mean: number[] = [];
  const lo: number[] = [];
  const hi: number[] = [];
  const vals = new Float32Array(rows.length);
  for (let e = 0; e < epochs; e++) {
    let s = 0;
    rows.forEach((r, j) => {
      vals[j] = ctx.trajectories[r * ctx.epochs + e];
      s += vals[j];
    });
    const sorted = vals.slice().sort();
    mean.push(s / rows.length);
    lo.push(sorted[Math.floor(0.1 * (rows.length - 1))]);
    hi.push(sorted[Math.ceil(0.9 * (rows.length - 1))]);
  }
  return { mean, lo, hi };
}
