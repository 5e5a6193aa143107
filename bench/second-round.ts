/**
 * `npx tsx bench/second-round.ts`: a second detection round, measured (docs/detection.md).
 *
 * Round 1 detects on the stored probationary run of bench/detection.ts (probes BENCH_TRIGGER,
 * default the default's bank; score BENCH_SCORE and features BENCH_FEATURES, default the
 * default's) at budget α1 (BENCH_A1, default "0.12,0.08"). Round 2 trains a second probationary
 * model on what round 1 kept — every probe included, seed + 3, same recipe — records its
 * trajectories, detects again at α2 (BENCH_A2, default "0,0.03,0.05"; 0 = no second round) and
 * removes the union; the model is retrained without it as in bench/detection.ts. The idea: with
 * half an attack's poisons gone, the rest are learned later and look more like the probes.
 * BENCH_SEEDS (default "0,1,2,3"). BENCH_E1 / BENCH_E2 (default 0: none) unite round 1 / round 2
 * with the easiness test at that budget (`easinessFlags`: rows learned far better than their
 * class, docs/detection.md); a row goes when either test flags it. BENCH_RESEEDS=n retrains each
 * removal n more times with other seeds and prints how often the four targets hold and the
 * spread of every attack's ASR — the retraining's own noise. BENCH_HOLD (default 0.05): the
 * undefended ASR from which an attack counts in "every attack halved" (bench/detection-data.ts).
 * Round-2 trajectories are cached beside the probationary runs (keyed, like them, by seed,
 * trigger and rows: the recipe is the bench's). Prints one Markdown row per (seed, α1, α2).
 */
import { join } from 'node:path';
import { subsetSplit } from '../src/core/dataset.ts';
import type { KnnScore, TrajectoryFeatures } from '../src/core/detect/index.ts';
import type { Trajectories } from '../src/core/detect/knn.ts';
import { CLASSROOM_DETECT, DEFAULT_PROBE_TRIGGER } from '../src/core/experiment.ts';
import type { ProbeTrigger } from '../src/core/probes.ts';
import { PROBE_NONE } from '../src/core/probes.ts';
import { averageOf } from '../src/core/report.ts';
import { trainConfigOf } from '../src/ml/run.ts';
import { Trainer } from '../src/ml/train.ts';
import {
  CACHE,
  cacheKey,
  easinessFlags,
  flaggedAt,
  HOLD,
  loadF32,
  probationary,
  retrained,
  saveF32,
  targetChecks,
  theEngine,
} from './detection-data.ts';

const log = (s: string) => process.stdout.write(s + '\n');
const list = (v: string | undefined, d: string) => (v ?? d).split(',').map(Number);
const seeds = list(process.env.BENCH_SEEDS, '0,1,2,3');
const a1s = list(process.env.BENCH_A1, '0.12,0.08');
const a2s = list(process.env.BENCH_A2, '0,0.03,0.05');
const [e1, e2] = [Number(process.env.BENCH_E1 ?? 0), Number(process.env.BENCH_E2 ?? 0)];
const reseeds = Number(process.env.BENCH_RESEEDS ?? 0);
const score = (process.env.BENCH_SCORE ?? CLASSROOM_DETECT.score) as KnnScore;
const features = (process.env.BENCH_FEATURES ?? CLASSROOM_DETECT.features) as TrajectoryFeatures;
const trigger: ProbeTrigger = process.env.BENCH_TRIGGER
  ? (process.env.BENCH_TRIGGER.split(',') as ProbeTrigger)
  : DEFAULT_PROBE_TRIGGER;
const triggerKey = Array.isArray(trigger) && trigger.length === 1 ? trigger[0] : trigger;
const ATT = ['patch', 'single-pix', 'blend-r', 'blend-p', 'sinusoid', 'warping'];
const pct = (x: number) => (100 * x).toFixed(1);

/**
 * Rows (of `t`) the default detection at budget α flags (none at α = 0), with the easiness test's
 * at αe when αe > 0; probes never.
 */
function flagged(
  t: Trajectories,
  kinds: Uint8Array,
  labels: Uint8Array,
  numClasses: number,
  alpha: number,
  alphaEasy: number,
) {
  // With a k-NN budget the product's detection does both tests (detect's `easiness`); without
  // one, the easiness test alone.
  if (!(alpha > 0))
    return alphaEasy > 0 ? easinessFlags(t, kinds, labels, numClasses, alphaEasy) : [];
  return flaggedAt(t, kinds, labels, numClasses, {
    ...CLASSROOM_DETECT,
    score,
    features,
    targetFpr: alpha,
    ...(alphaEasy > 0 ? { easiness: alphaEasy } : {}),
  });
}

const rows: string[] = [];
const reseedRows: string[] = [];
/** Retrainings meeting all four targets, of all retrainings. */
const reseedMet = [0, 0];
/** Seeds meeting all four targets, per "α1/α2". */
const allFour = new Map<string, number>();
for (const a1 of a1s) for (const a2 of a2s) allFour.set(`${a1}/${a2}`, 0);
for (const seed of seeds) {
  const run = await probationary(seed, triggerKey, log);
  const p = run.prepared;
  const kinds = p.probes.probeKind;
  const cleanRows = p.truth.filter((a, i) => a < 0 && kinds[i] === PROBE_NONE).length;
  for (const a1 of a1s) {
    const f1 = flagged(
      { n: p.train.count, epochs: run.epochs, losses: run.trajectories },
      kinds,
      p.train.labels,
      p.numClasses,
      a1,
      e1,
    );
    const drop = new Set(f1);
    const rows2 = [...Array(p.train.count).keys()].filter((i) => !drop.has(i));
    const key = cacheKey([seed, triggerKey, rows2]);
    const bin = join(CACHE, `r2-${key}.f32`);
    let losses = loadF32(bin, rows2.length * run.epochs);
    if (!losses) {
      const t0 = performance.now();
      const cfg = { ...trainConfigOf(run.cfg, 'probationary'), seed: run.cfg.seed + 3 };
      const tr = await Trainer.create(theEngine(), cfg, subsetSplit(p.train, rows2), p.numClasses);
      try {
        while (!tr.done) await tr.trainEpoch();
        losses = tr.trajectories.slice();
      } finally {
        tr.dispose();
      }
      saveF32(bin, losses);
      log(
        `  seed ${seed} α1 ${a1}: round 2 trained in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
      );
    }
    const kinds2 = Uint8Array.from(rows2, (r) => kinds[r]);
    const labels2 = Uint8Array.from(rows2, (r) => p.train.labels[r]);
    for (const a2 of a2s) {
      const all = new Set(f1);
      if (a2 > 0 || e2 > 0)
        for (const j of flagged(
          { n: rows2.length, epochs: run.epochs, losses },
          kinds2,
          labels2,
          p.numClasses,
          a2,
          e2,
        ))
          all.add(rows2[j]);
      let clean = 0;
      const removed: Record<string, number> = {};
      for (const r of all) {
        const a = p.truth[r];
        if (a < 0) clean++;
        else removed[p.attacks[a].id] = (removed[p.attacks[a].id] ?? 0) + 1;
      }
      const ev = await retrained(run, [...all], log);
      const u = run.undefended;
      // Attacks that took hold (≥ 5% undefended) and were not halved; issue #12's four targets.
      const { ok, notHalved } = targetChecks(u, ev, clean / cleanRows);
      if (ok.every(Boolean)) allFour.set(`${a1}/${a2}`, allFour.get(`${a1}/${a2}`)! + 1);
      const line = `| ${seed} | ${a1} | ${a2 || (e2 > 0 ? 'easiness only' : '–')} | ${pct(clean / cleanRows)}% | ${ATT.map((a) => removed[a] ?? 0).join(' / ')} | ${pct(u.cleanAccuracy)} → ${pct(ev.cleanAccuracy)} | ${pct(averageOf(u.asr))} → ${pct(averageOf(ev.asr))} | ${notHalved.join(', ') || 'all halved'} | ${ok.every(Boolean) ? 'all four' : ok.map((b) => (b ? '✓' : '✗')).join('')} |`;
      log(line);
      rows.push(line);
      if (reseeds > 0) {
        // The same removals retrained with other seeds: the retraining's own spread.
        const evs = [ev];
        for (let j = 1; j <= reseeds; j++) evs.push(await retrained(run, [...all], log, j));
        const met = evs.filter((e) => targetChecks(u, e, clean / cleanRows).ok.every(Boolean));
        const spread = ATT.filter((a) => u.asr[a] >= HOLD).map((a) => {
          const v = evs.map((e) => e.asr[a]);
          return `${a} ${pct(u.asr[a])} → ${pct(Math.min(...v))}–${pct(Math.max(...v))}`;
        });
        const line2 = `| ${seed} | ${a1} | ${a2 || (e2 > 0 ? 'easiness only' : '–')} | ${met.length} of ${evs.length} | ${pct(Math.min(...evs.map((e) => averageOf(e.asr))))}–${pct(Math.max(...evs.map((e) => averageOf(e.asr))))} | ${spread.join(', ')} |`;
        log(line2);
        reseedRows.push(line2);
        reseedMet[0] += met.length;
        reseedMet[1] += evs.length;
      }
    }
  }
}
log(
  `\neasiness test: round 1 ${e1 || 'none'}, round 2 ${e2 || 'none'}; all four targets: ${[...allFour].map(([k, v]) => `α1/α2 ${k}: ${v} of ${seeds.length}`).join(', ')}`,
);
log(
  `\n| seed | α1 | α2 | clean removed | poisons removed ${ATT.join(' / ')} | clean acc | avg ASR | not halved | targets |`,
);
log('|---|---|---|---|---|---|---|---|---|');
log(rows.join('\n'));
if (reseedRows.length) {
  log(
    `\nThe same removals retrained with ${reseeds} more seeds: all four targets in ${reseedMet[0]} of ${reseedMet[1]} retrainings\n\n| seed | α1 | α2 | all four targets | avg ASR | ASR of each attack that took hold: undefended → lowest–highest |`,
  );
  log('|---|---|---|---|---|---|');
  log(reseedRows.join('\n'));
}
