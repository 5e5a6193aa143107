/**
 * `npx tsx bench/early-losses.ts`: would losses recorded inside the first epoch help the
 * detection? (docs/detection.md, "The dimple blend: which poisons survive, and losses inside the
 * first epoch".) Per dataset seed (BENCH_SEEDS, default "0,1,8,11,13,14,15,16,17": the seeds where
 * the dimple blend or the sinusoid survives the default, and 0), on
 * the stored probationary run of bench/detection.ts with the default's probe bank:
 *
 * 1. the same training again, step for step, with the losses of every row recorded in evaluation
 *    mode also after 1/8, 1/4, 1/2 and 3/4 of the first epoch — the extra passes read the model
 *    and change nothing, which is checked: the ten per-epoch columns must equal the stored run's
 *    bit for bit; the four columns are cached beside the run;
 * 2. the default's first round on the per-epoch losses (`default`) and on the four early columns
 *    followed by the per-epoch ones (`default+early`): AUROC of every attack (the scores the
 *    detection returns), the share of each attack's poisons and of the clean rows removed;
 * 3. the dimple blend's poisons removed by the family of the class they came from: the demo
 *    set's shape classes (disc, square, triangle, plus, ring, diagonal) or its full-image textures
 *    (stripes, checker, dots).
 *
 * Prints one Markdown row per (seed, variant) and, last, one JSON object with every figure.
 */
import { join } from 'node:path';
import { DEMO_CLASSES } from '../src/core/demo.ts';
import { detect, flaggedRows } from '../src/core/detect/index.ts';
import { probeRowsFromKinds, type Trajectories } from '../src/core/detect/knn.ts';
import { CLASSROOM_DETECT, DEFAULT_PROBE_TRIGGER } from '../src/core/experiment.ts';
import { detectionSummaryOf } from '../src/core/report.ts';
import { trainConfigOf } from '../src/ml/run.ts';
import { Trainer } from '../src/ml/train.ts';
import {
  CACHE,
  keyOf,
  loadF32,
  probationary,
  saveF32,
  theEngine,
  type StoredRun,
} from './detection-data.ts';

const log = (s: string) => process.stdout.write(s + '\n');
const seeds = (process.env.BENCH_SEEDS ?? '0,1,8,11,13,14,15,16,17').split(',').map(Number);
/** Where in the first epoch the extra columns are recorded (fractions of its steps). */
const EARLY = [0.125, 0.25, 0.5, 0.75];
/** The demo set's classes drawn over the whole image (the rest are shapes at one place). */
const TEXTURES = new Set(['h-stripes', 'v-stripes', 'checker', 'dots']);

/** The run's losses after 1/8 … 3/4 of the first epoch (EARLY.length × n, column-major): cached or recorded now. */
async function earlyColumns(run: StoredRun, seed: number): Promise<Float32Array> {
  const n = run.prepared.train.count;
  const file = join(CACHE, `${keyOf(seed, DEFAULT_PROBE_TRIGGER)}-early.f32`);
  const cached = loadF32(file, EARLY.length * n);
  if (cached) return cached;
  const t0 = performance.now();
  const p = run.prepared;
  const tr = await Trainer.create(
    theEngine(),
    trainConfigOf(run.cfg, 'probationary'),
    p.train,
    p.numClasses,
  );
  const out = new Float32Array(EARLY.length * n);
  try {
    const at = EARLY.map((f) => Math.floor(f * tr.stepsPerEpoch));
    let step = 0;
    // The epoch asks before every step whether to stop: the moment to read the model mid-epoch.
    await tr.trainEpoch(undefined, async () => {
      const j = at.indexOf(step++);
      if (j >= 0) out.set(await tr.perExampleLosses(p.train), j * n);
      return false;
    });
    while (!tr.done) await tr.trainEpoch();
    const same = tr.trajectories.every((v, i) => Object.is(v, run.trajectories[i]));
    if (!same)
      throw new Error(
        `seed ${seed}: the training with early recordings differs from the stored run — the extra passes must not change it`,
      );
  } finally {
    tr.dispose();
  }
  saveF32(file, out);
  log(
    `  seed ${seed}: early columns recorded in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  return out;
}

/** The early columns, then the per-epoch ones, row by row. */
function withEarly(run: StoredRun, early: Float32Array): Trajectories {
  const n = run.prepared.train.count;
  const E = run.epochs;
  const X = EARLY.length;
  const losses = new Float32Array(n * (X + E));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < X; j++) losses[i * (X + E) + j] = early[j * n + i];
    losses.set(run.trajectories.subarray(i * E, (i + 1) * E), i * (X + E) + X);
  }
  return { n, epochs: X + E, losses };
}

const pct = (x: number) => (100 * x).toFixed(0);
const rows: string[] = [];
const results: Record<string, unknown>[] = [];
for (const seed of seeds) {
  const run = await probationary(seed, DEFAULT_PROBE_TRIGGER, log);
  const p = run.prepared;
  const early = await earlyColumns(run, seed);
  const dimple = p.attacks.findIndex((a) => a.id === 'blend-p');
  for (const [name, t] of [
    ['default', { n: p.train.count, epochs: run.epochs, losses: run.trajectories }],
    ['default+early', withEarly(run, early)],
  ] as const) {
    const det = detect(t, probeRowsFromKinds(p.probes.probeKind), CLASSROOM_DETECT, {
      labels: p.train.labels,
      numClasses: p.numClasses,
    });
    const s = detectionSummaryOf(p, det);
    const flagged = new Set(flaggedRows(det.scores, det.threshold));
    const family = { shapes: [0, 0], textures: [0, 0] };
    p.truth.forEach((a, i) => {
      if (a !== dimple) return;
      const f = family[TEXTURES.has(DEMO_CLASSES[p.sourceLabels[i]]) ? 'textures' : 'shapes'];
      f[0]++;
      if (flagged.has(i)) f[1]++;
    });
    const ids = p.attacks.map((a) => a.id);
    const line = `| ${seed} | ${name} | ${[...ids, 'all'].map((a) => s.auroc[a].toFixed(2)).join(' / ')} | ${pct(s.removedFraction.clean)}% | ${ids.map((a) => pct(s.removedFraction[a])).join(' / ')} | ${family.shapes[1]} of ${family.shapes[0]} / ${family.textures[1]} of ${family.textures[0]} |`;
    log(line);
    rows.push(line);
    results.push({
      seed,
      variant: name,
      auroc: s.auroc,
      removedFraction: s.removedFraction,
      dimpleBySource: family,
      undefended: run.undefended.asr,
    });
  }
}
log(
  '\n| seed | variant | AUROC patch / single-pix / blend-r / blend-p / sinusoid / warping / all | clean removed | poisons removed (%) | dimple poisons removed: from shapes / from textures |',
);
log('| --- | --- | --- | --- | --- | --- |');
log(rows.join('\n'));
log(JSON.stringify(results));
