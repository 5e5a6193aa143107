/**
 * `npx tsx bench/demo-presets.ts`: the classroom presets' measurement of docs/detection.md. For
 * each seed (BENCH_SEEDS, default "0,1") it trains the preset's probationary model on the demo
 * set (BENCH_PRESET: tiny, the default, or quick), runs the default detection (labels passed, as
 * the orchestrator does) and retrains without the flagged rows, then prints the undefended and
 * retrained clean accuracy and ASR, the AUROC and the removals — the same path as
 * test/unit/efficacy.test.ts. The exploration lines of docs/detection.md are this script with the
 * preset changed:
 *   BENCH_ATTACKS=patch:0.015,blend-r:0.03,blend-p:0.01,warping:0.1   other attacks and ratios
 *   BENCH_PROBES=100  BENCH_BANK=patch,sinusoid,blend-r,warping        other probes
 *   BENCH_ALPHA=0.15                                                   another clean-removal budget
 * About a minute per seed for tiny with two threads (BENCH_THREADS).
 */
import { subsetSplit, type ImageSplit } from '../src/core/dataset.ts';
import { generateDemoDataset } from '../src/core/demo.ts';
import { detect, flaggedRows } from '../src/core/detect/index.ts';
import { probeRowsFromKinds } from '../src/core/detect/knn.ts';
import { keptRows, prepareExperiment, preset, type RunConfig } from '../src/core/experiment.ts';
import { summarizeDetection } from '../src/core/report.ts';
import type { AttackId } from '../src/core/attacks/triggers.ts';
import type { TrainingEngine } from '../src/ml/engine.ts';
import { evaluateModel, trainConfigOf } from '../src/ml/run.ts';
import { Trainer } from '../src/ml/train.ts';
import { createWasmEngine } from '../src/ml/wasm-engine-node.ts';

const env = process.env;
const log = (s: string) => process.stdout.write(s + '\n');
const pct = (x: number) => (100 * x).toFixed(1);

function config(seed: number): RunConfig {
  const base = preset(env.BENCH_PRESET === 'quick' ? 'quick' : 'tiny');
  return {
    ...base,
    seed,
    attacks: env.BENCH_ATTACKS
      ? env.BENCH_ATTACKS.split(',').map((s) => {
          const [id, ratio] = s.split(':');
          return { id: id as AttackId, ratio: Number(ratio) };
        })
      : base.attacks,
    probes: {
      ...base.probes,
      n: Number(env.BENCH_PROBES ?? base.probes.n),
      trigger: env.BENCH_BANK ? (env.BENCH_BANK.split(',') as AttackId[]) : base.probes.trigger,
    },
    detect: env.BENCH_ALPHA ? { ...base.detect, targetFpr: Number(env.BENCH_ALPHA) } : base.detect,
  };
}

const engine = (await createWasmEngine({
  threads: Number(env.BENCH_THREADS ?? 2),
})) as TrainingEngine;
for (const seed of (env.BENCH_SEEDS ?? '0,1').split(',').map(Number)) {
  const t0 = performance.now();
  const cfg = config(seed);
  const p = prepareExperiment(generateDemoDataset({ seed }), cfg);
  const train = async (phase: 'probationary' | 'retrain', split: ImageSplit) => {
    const t = await Trainer.create(engine, trainConfigOf(cfg, phase), split, p.numClasses);
    try {
      while (!t.done) await t.trainEpoch();
      return {
        trajectories: t.trajectories.slice(),
        ev: await evaluateModel(t, p.test, p.triggered),
      };
    } finally {
      t.dispose();
    }
  };
  const asr = (ev: { asr: Record<string, number> }) =>
    cfg.attacks.map((a) => `${a.id} ${pct(ev.asr[a.id])}`).join(', ');
  const prob = await train('probationary', p.train);
  const det = detect(
    { n: p.train.count, epochs: cfg.train.epochs, losses: prob.trajectories },
    probeRowsFromKinds(p.probes.probeKind),
    cfg.detect,
    { labels: p.train.labels, numClasses: p.numClasses },
  );
  const s = summarizeDetection(
    det,
    p.truth,
    p.probes.probeKind,
    p.attacks,
    p.train.labels,
    p.numClasses,
  );
  const re = await train(
    'retrain',
    subsetSplit(p.train, keptRows(flaggedRows(det.scores, det.threshold), p.probes.probeKind)),
  );
  log(
    `seed ${seed}: undefended clean ${pct(prob.ev.cleanAccuracy)}%, ASR ${asr(prob.ev)}\n` +
      `  detection: k ${det.k}, AUROC ${Object.entries(s.auroc)
        .map(([a, x]) => `${a} ${x.toFixed(2)}`)
        .join(', ')}; removed clean ${pct(s.removedFraction.clean)}%, ${cfg.attacks
        .map((a) => `${a.id} ${pct(s.removedFraction[a.id])}%`)
        .join(', ')}\n` +
      `  retrained: clean ${pct(re.ev.cleanAccuracy)}%, ASR ${asr(re.ev)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
  );
}
process.exit(0);
