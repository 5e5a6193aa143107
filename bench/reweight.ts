/**
 * `npx tsx bench/reweight.ts`: what the class reweighting of the retraining
 * (RunConfig.retrainReweight) changes, a diagnostic. For each seed (BENCH_SEEDS, default "0,6";
 * BENCH_DATA for natural images) it retrains with the default's retraining recipe (sub-pixel
 * jitter, random stripes, as many steps) on every row but the backdoor and mislabeled probes —
 * nothing removed, so the reweighting is seen apart from the detection — once as it is and once
 * with the classes reweighted to the test split's frequencies, and prints per attack its ASR
 * beside its target class's pull: the share of the clean test images of other classes that the
 * model gives that class without any trigger. An ASR near its pull is the class's prior, not the
 * trigger. Then the training rows per class, the weights, and how often the model predicts each
 * class on the clean test set.
 */
import { subsetSplit, type ImageSplit } from '../src/core/dataset.ts';
import { DEFAULT_PROBE_TRIGGER, keptRows, type Prepared } from '../src/core/experiment.ts';
import { priorWeights } from '../src/core/reweight.ts';
import { averageOf } from '../src/core/report.ts';
import { evaluateModel, retrainRows, trainConfigOf } from '../src/ml/run.ts';
import { Trainer } from '../src/ml/train.ts';
import { probationary, theEngine } from './detection-data.ts';

const seeds = (process.env.BENCH_SEEDS ?? '0,6').split(',').map(Number);
const log = (s: string) => process.stdout.write(s + '\n');
const pct = (x: number) => (100 * x).toFixed(1);

/** Trains `split` with the retraining's recipe (optionally reweighted) and prints what it predicts. */
async function measure(
  name: string,
  p: Prepared,
  split: ImageSplit,
  tc: Parameters<typeof Trainer.create>[1],
) {
  const t0 = performance.now();
  const trainer = await Trainer.create(theEngine(), tc, split, p.numClasses);
  try {
    while (!trainer.done) await trainer.trainEpoch();
    const pred = await trainer.predict(p.test);
    const ev = await evaluateModel(trainer, p.test, p.triggered);
    const perClass = new Array<number>(p.numClasses).fill(0);
    for (const c of pred) perClass[c]++;
    const attacks = p.attacks.map((a) => {
      let others = 0;
      let pulled = 0;
      let own = 0;
      let ownHit = 0;
      for (let i = 0; i < p.test.count; i++) {
        if (p.test.labels[i] === a.target) {
          own++;
          if (pred[i] === a.target) ownHit++;
        } else {
          others++;
          if (pred[i] === a.target) pulled++;
        }
      }
      const rate = (k: number, n: number) => (n ? pct(k / n) : 'n/a');
      return `${a.id} ${pct(ev.asr[a.id])} (pull ${rate(pulled, others)}, class ${a.target} recall ${rate(ownHit, own)})`;
    });
    log(
      `  ${name}: clean ${pct(ev.cleanAccuracy)}, average ASR ${pct(averageOf(ev.asr))} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
    );
    log(`    ASR: ${attacks.join('; ')}`);
    log(`    predicted per class on the clean test set: ${perClass.join(' ')}`);
  } finally {
    trainer.dispose();
  }
}

for (const seed of seeds) {
  const run = await probationary(seed, DEFAULT_PROBE_TRIGGER, log);
  const p = run.prepared;
  const cfg = {
    ...run.cfg,
    retrainJitter: true,
    retrainStripes: true,
    retrainMatchSteps: true,
    retrainReweight: false,
  };
  const kept = keptRows([], p.probes.probeKind);
  const split = subsetSplit(p.train, kept);
  const rows = new Array<number>(p.numClasses).fill(0);
  for (const l of split.labels) rows[l]++;
  const rowsOf = retrainRows(p, split);
  log(
    `seed ${seed}: undefended clean ${pct(run.undefended.cleanAccuracy)}, average ASR ${pct(averageOf(run.undefended.asr))}; targets ${p.attacks.map((a) => `${a.id} ${a.target}`).join(', ')}`,
  );
  log(
    `  rows per class ${rows.join(' ')}; weights ${priorWeights(split.labels, rowsOf.prior!)
      .map((w) => w.toFixed(2))
      .join(' ')}`,
  );
  await measure('retrained as it is', p, split, trainConfigOf(cfg, 'retrain', rowsOf));
  await measure(
    'retrained, classes reweighted',
    p,
    split,
    trainConfigOf({ ...cfg, retrainReweight: true }, 'retrain', rowsOf),
  );
}
process.exit(0);
