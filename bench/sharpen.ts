/**
 * `npx tsx bench/sharpen.ts`: what the warping's backdoor is made of (docs/detection.md, "What the
 * warping plants: fine detail"). For each seed it trains the probationary model of the
 * multi-attack setting (bench/detection-data.ts: six attacks at default ratios, the probe bank,
 * ResNet-8 ×0.5, ten epochs; BENCH_DATA for natural images) and prints
 * - clean accuracy and each attack's ASR on the test images as they are and unsharp-masked
 *   (x + λ·(x − its 3×3 mean), λ = BENCH_SHARPEN, default 1);
 * - per attack, the AUROC of the sharpening gap (the loss of the unsharp-masked training image
 *   minus its loss as it is) of its poisons against all clean rows and against the clean rows of
 *   its target class, beside the last loss's.
 * A diagnostic, not a detector: nothing in the product sharpens. BENCH_SEEDS (default "0,6").
 * About a minute a seed with two threads.
 */
import type { ImageSplit } from '../src/core/dataset.ts';
import { PROBE_NONE } from '../src/core/probes.ts';
import { aurocText, probationaryModel, sharpened } from './detection-data.ts';

const seeds = (process.env.BENCH_SEEDS ?? '0,6').split(',').map(Number);
const LAMBDA = Number(process.env.BENCH_SHARPEN ?? 1);
if (!(LAMBDA > 0)) throw new Error(`BENCH_SHARPEN=${process.env.BENCH_SHARPEN} must be above 0`);
const log = (s: string) => process.stdout.write(s + '\n');
const pct = (x: number) => (100 * x).toFixed(1);

const hits = (pred: Uint8Array, labels: ArrayLike<number>) => {
  let k = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) k++;
  return pred.length ? k / pred.length : NaN;
};

log(`unsharp mask λ = ${LAMBDA}\n`);
log(
  '| seed | attack | ASR as is → sharpened | AUROC of the sharpening gap (all clean / its class) | AUROC of the last loss |',
);
log('|---|---|---|---|---|');
for (const seed of seeds) {
  const { p, trainer } = await probationaryModel(seed);
  let last: Float32Array;
  let sharp: Float32Array;
  const rate = async (s: ImageSplit) =>
    [
      hits(await trainer.predict(s), s.labels),
      hits(await trainer.predict(sharpened(s, LAMBDA)), s.labels),
    ]
      .map(pct)
      .join(' → ');
  const asr = new Map<string, string>();
  let clean: string;
  try {
    last = await trainer.perExampleLosses(p.train);
    sharp = await trainer.perExampleLosses(sharpened(p.train, LAMBDA));
    clean = await rate(p.test);
    for (const t of p.triggered) asr.set(t.attack, await rate(t.set));
  } finally {
    trainer.dispose();
  }
  const n = p.train.count;
  const kind = p.probes.probeKind;
  const cleanRows = [...Array(n).keys()].filter((i) => kind[i] === PROBE_NONE && p.truth[i] < 0);
  const gap = last.map((l, i) => sharp[i] - l);
  log(`| ${seed} | clean accuracy | ${clean} | | |`);
  p.attacks.forEach((a, k) => {
    const pois = [...Array(n).keys()].filter((i) => p.truth[i] === k);
    const cls = cleanRows.filter((i) => p.train.labels[i] === a.target);
    log(
      `| ${seed} | ${a.id} | ${asr.get(a.id) ?? '–'} | ${aurocText(gap, pois, cleanRows)} / ${aurocText(gap, pois, cls)} | ${aurocText(last, pois, cleanRows)} / ${aurocText(last, pois, cls)} |`,
    );
  });
}
process.exit(0);
