/**
 * `npx tsx bench/mirror.ts`: what the mirror test sees (docs/detection.md, "The mirror test").
 * For each seed it trains the probationary model of the multi-attack setting
 * (bench/detection-data.ts: six attacks at default ratios, the probe bank, ResNet-8 ×0.5, ten
 * epochs; BENCH_DATA for natural images) and prints, per attack, the AUROC of its poisons against
 * the clean rows (and against the clean rows of its target class) for two per-row scores: the
 * last epoch's loss (what the k-NN and the easiness test read) and the mirror gap (the loss with
 * the image mirrored minus the loss as it is, `mirrorGaps`). Then what the mirror test alone
 * flags at budgets 0.01 / 0.02 / 0.03: the clean rows' share and each attack's poisons.
 * BENCH_SEEDS (default "0,1"). About a minute a seed with two threads.
 */
import { mirroredSplit, mirrorGaps, mirrorTest } from '../src/core/detect/mirror.ts';
import { probeRowsFromKinds } from '../src/core/detect/knn.ts';
import { flaggedRows } from '../src/core/detect/index.ts';
import { PROBE_NONE } from '../src/core/probes.ts';
import { aurocText, probationaryModel } from './detection-data.ts';

const seeds = (process.env.BENCH_SEEDS ?? '0,1').split(',').map(Number);
const BUDGETS = [0.01, 0.02, 0.03];
const log = (s: string) => process.stdout.write(s + '\n');

log(
  '| seed | attack | AUROC of the last loss (all clean / its class) | AUROC of the mirror gap | flagged by the mirror test at ' +
    BUDGETS.join(' / ') +
    ' |',
);
log('|---|---|---|---|---|');
for (const seed of seeds) {
  const { p, trainer } = await probationaryModel(seed);
  let gap: Float32Array;
  let last: Float32Array;
  try {
    last = await trainer.perExampleLosses(p.train);
    gap = mirrorGaps(last, await trainer.perExampleLosses(mirroredSplit(p.train)));
  } finally {
    trainer.dispose();
  }
  const n = p.train.count;
  const kind = p.probes.probeKind;
  const clean = [...Array(n).keys()].filter((i) => kind[i] === PROBE_NONE && p.truth[i] < 0);
  const context = { labels: p.train.labels, numClasses: p.numClasses };
  const probes = probeRowsFromKinds(kind);
  const flags = BUDGETS.map(
    (a) => new Set(flaggedRows(mirrorTest(gap, probes, a, context), 1 - a)),
  );
  const share = (rows: number[], f: Set<number>) => rows.filter((i) => f.has(i)).length;
  p.attacks.forEach((a, k) => {
    const pois = [...Array(n).keys()].filter((i) => p.truth[i] === k);
    const cls = clean.filter((i) => p.train.labels[i] === a.target);
    log(
      `| ${seed} | ${a.id} | ${aurocText(last, pois, clean)} / ${aurocText(last, pois, cls)} | ${aurocText(gap, pois, clean)} / ${aurocText(gap, pois, cls)} | ${flags.map((f) => share(pois, f)).join(' / ')} of ${pois.length} |`,
    );
  });
  log(
    `| ${seed} | clean rows | | | ${flags.map((f) => `${((100 * share(clean, f)) / clean.length).toFixed(1)}%`).join(' / ')} of ${clean.length} |`,
  );
}
process.exit(0);
