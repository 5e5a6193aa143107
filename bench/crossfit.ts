/**
 * `npx tsx bench/crossfit.ts`: do the warping's poisons stand out to a model that never trained on
 * them? (docs/detection.md, "Held-out losses, and a larger easiness budget"). A diagnostic, not a
 * detector. For each seed it prepares the multi-attack setting (bench/detection-data.ts: six
 * attacks at default ratios, the probe bank, ResNet-8 ×0.5, ten epochs; BENCH_DATA for natural
 * images) and cross-fits: a model trained on the even rows scores the odd ones and one trained on
 * the odd rows the even ones, so every row is scored by a model that never saw it (each model
 * did see the other half of every attack's poisons). Per recipe
 * (BENCH_RECIPES, default "paper,jitter": the probationary model's recipe, and the retraining's
 * sub-pixel jitter and random stripes on top) it prints, per attack, the AUROC of its poisons
 * against the clean rows of its target class for
 * - the held-out loss (the row's loss under its label),
 * - the sharpening gap (the loss of the unsharp-masked image, λ = 1, minus its loss as it is: the
 *   warping's test images lose their backdoor when sharpened, bench/sharpen.ts),
 * - the mirror gap (the mirrored image's loss minus its loss as it is),
 * and the held-out loss's AUROC against all clean rows. An AUROC far from 0.5 either way
 * separates; 0.5 is chance. BENCH_SEEDS (default "0,6"). About two minutes a seed and recipe
 * with two threads.
 */
import { subsetSplit } from '../src/core/dataset.ts';
import { DEFAULT_PROBE_TRIGGER, prepareExperiment } from '../src/core/experiment.ts';
import { PROBE_NONE } from '../src/core/probes.ts';
import { RETRAIN_STRIPES } from '../src/core/run.ts';
import { trainConfigOf } from '../src/ml/run.ts';
import { Trainer } from '../src/ml/train.ts';
import { aurocText, benchConfig, benchDataset, sharpened, theEngine } from './detection-data.ts';

const seeds = (process.env.BENCH_SEEDS ?? '0,6').split(',').map(Number);
const recipes = (process.env.BENCH_RECIPES ?? 'paper,jitter').split(',');
for (const r of recipes)
  if (r !== 'paper' && r !== 'jitter')
    throw new Error(`BENCH_RECIPES: unknown recipe "${r}"; known: paper, jitter`);
const log = (s: string) => process.stdout.write(s + '\n');

log(
  '| seed | recipe | attack | held-out loss (its class / all clean) | sharpening gap (its class) | mirror gap (its class) |',
);
log('|---|---|---|---|---|---|');
for (const seed of seeds) {
  const cfg = benchConfig(seed, DEFAULT_PROBE_TRIGGER);
  const p = prepareExperiment(await benchDataset(seed), cfg);
  const n = p.train.count;
  const kind = p.probes.probeKind;
  for (const recipe of recipes) {
    const loss = new Float32Array(n);
    const sharpGap = new Float32Array(n);
    const mirrorGap = new Float32Array(n);
    for (const half of [0, 1]) {
      const fit = [...Array(n).keys()].filter((i) => i % 2 !== half);
      const held = [...Array(n).keys()].filter((i) => i % 2 === half);
      const tc = trainConfigOf(cfg, 'probationary');
      const trainer = await Trainer.create(
        theEngine(),
        recipe === 'jitter' ? { ...tc, jitter: true, waves: { ...RETRAIN_STRIPES } } : tc,
        subsetSplit(p.train, fit),
        p.numClasses,
      );
      try {
        while (!trainer.done) await trainer.trainEpoch();
        const split = subsetSplit(p.train, held);
        const asIs = await trainer.perExampleLosses(split);
        const sharp = await trainer.perExampleLosses(sharpened(split, 1));
        const mirrored = await trainer.perExampleLosses(split, undefined, true);
        held.forEach((row, j) => {
          loss[row] = asIs[j];
          sharpGap[row] = sharp[j] - asIs[j];
          mirrorGap[row] = mirrored[j] - asIs[j];
        });
      } finally {
        trainer.dispose();
      }
    }
    const cleanRows = [...Array(n).keys()].filter((i) => kind[i] === PROBE_NONE && p.truth[i] < 0);
    p.attacks.forEach((a, k) => {
      const pois = [...Array(n).keys()].filter((i) => p.truth[i] === k && kind[i] === PROBE_NONE);
      const cls = cleanRows.filter((i) => p.train.labels[i] === a.target);
      log(
        `| ${seed} | ${recipe} | ${a.id} | ${aurocText(loss, pois, cls)} / ${aurocText(loss, pois, cleanRows)} | ${aurocText(sharpGap, pois, cls)} | ${aurocText(mirrorGap, pois, cls)} |`,
      );
    });
  }
}
process.exit(0);
