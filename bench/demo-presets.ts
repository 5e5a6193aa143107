/**
 * `npx tsx bench/demo-presets.ts`: the classroom presets' measurement of docs/detection.md. For
 * each seed (BENCH_SEEDS, default "0,1") it trains the preset's probationary model on the demo
 * set (BENCH_PRESET: tiny, the default, or quick), runs the default detection and retrains
 * without the flagged rows — through the run orchestrator the app and the CLI use, as
 * test/unit/efficacy.test.ts does — then prints the undefended and retrained clean accuracy and
 * ASR, the AUROC and the removals. The exploration lines of docs/detection.md are this script with the
 * preset changed:
 *   BENCH_ATTACKS=patch:0.015,blend-r:0.03,blend-p:0.01,warping:0.1   other attacks and ratios
 *   BENCH_PROBES=100  BENCH_BANK=patch,sinusoid,blend-r,warping        other probes
 *   BENCH_ALPHA=0.15                                                   another clean-removal budget
 *   BENCH_SECOND_ROUND=off (or a budget like 0.05)                     one detection round, or another α2
 *   BENCH_FEATURES=loss+log                                            the losses and their logarithms
 *   BENCH_JITTER=off                                                   retrain without the sub-pixel jitter
 *                                                                      (as the preset numbers measured before it)
 *   BENCH_STRIPES=on|off                                               retrain with random stripes or without
 *                                                                      (default: as the preset does)
 *   BENCH_STEPS=on|off                                                 retrain for as many steps as the first
 *                                                                      model or for the same epochs (default:
 *                                                                      as the preset does)
 *   BENCH_REWEIGHT=on|off                                              retrain with the classes reweighted to the
 *                                                                      test split's frequencies or without
 *                                                                      (default: as the preset does)
 *   BENCH_WAVES=24[,0.5[,16[,24]]]                                     stripes up to 24 (on half the images;
 *                                                                      up to 16 cycles; with a fine wave up to
 *                                                                      24) instead of RETRAIN_STRIPES, where
 *                                                                      the preset retrains with stripes
 * About a minute per seed for tiny with two threads (BENCH_THREADS).
 */
import { generateDemoDataset } from '../src/core/demo.ts';
import { preset, type RunConfig } from '../src/core/experiment.ts';
import type { AttackId } from '../src/core/attacks/triggers.ts';
import type { TrajectoryFeatures } from '../src/core/detect/index.ts';
import type { TrainingEngine } from '../src/ml/engine.ts';
import { runInMemory } from '../src/ml/run.ts';
import { Trainer } from '../src/ml/train.ts';
import { createWasmEngine } from '../src/ml/wasm-engine-node.ts';
import {
  benchJitter,
  benchMatchSteps,
  benchReweight,
  benchStripes,
  benchWaves,
  withWaves,
} from './detection-data.ts';

const env = process.env;
const log = (s: string) => process.stdout.write(s + '\n');
const pct = (x: number) => (100 * x).toFixed(1);

function config(seed: number): RunConfig {
  const { retrainJitter, retrainStripes, retrainMatchSteps, retrainReweight, ...base } = preset(
    env.BENCH_PRESET === 'quick' ? 'quick' : 'tiny',
  );
  return {
    ...base,
    ...(retrainJitter && benchJitter(true) ? { retrainJitter } : {}),
    ...(benchStripes(!!retrainStripes) ? { retrainStripes: true } : {}),
    ...(benchMatchSteps(!!retrainMatchSteps) ? { retrainMatchSteps: true } : {}),
    ...(benchReweight(!!retrainReweight) ? { retrainReweight: true } : {}),
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
    detect: {
      ...base.detect,
      ...(env.BENCH_ALPHA ? { targetFpr: Number(env.BENCH_ALPHA) } : {}),
      ...(env.BENCH_FEATURES ? { features: env.BENCH_FEATURES as TrajectoryFeatures } : {}),
      ...(env.BENCH_SECOND_ROUND
        ? {
            secondRound:
              env.BENCH_SECOND_ROUND === 'off' ? undefined : Number(env.BENCH_SECOND_ROUND),
          }
        : {}),
    },
  };
}

// BENCH_WAVES: other stripes on the retrainings, where the preset retrains with stripes.
const waves = benchWaves();

const engine = (await createWasmEngine({
  threads: Number(env.BENCH_THREADS ?? 2),
})) as TrainingEngine;
for (const seed of (env.BENCH_SEEDS ?? '0,1').split(',').map(Number)) {
  const t0 = performance.now();
  const cfg = config(seed);
  // The run orchestrator the app and the CLI use: prepare → probationary → detect → (second
  // round) → retrain.
  const { run } = await runInMemory(generateDemoDataset({ seed }), cfg, (c, split, n, ck) =>
    Trainer.create(engine, withWaves(c, waves), split, n, ck),
  );
  const r = run.report!;
  const asr = (which: 'undefended' | 'defended') =>
    cfg.attacks.map((a) => `${a.id} ${pct(r.asr[which][a.id])}`).join(', ');
  log(
    `seed ${seed}: undefended clean ${pct(r.cleanAccuracy.undefended)}%, ASR ${asr('undefended')}\n` +
      `  detection: k ${r.detection.k}, AUROC ${Object.entries(r.detection.auroc)
        .map(([a, x]) => `${a} ${x.toFixed(2)}`)
        .join(', ')}; removed clean ${pct(r.detection.removedFraction.clean)}%, ${cfg.attacks
        .map((a) => `${a.id} ${pct(r.detection.removedFraction[a.id])}%`)
        .join(', ')}${
        r.detection.secondRound
          ? ` (first round ${r.detection.secondRound.firstRound.flagged} rows, second ${r.detection.secondRound.secondRound.flagged})`
          : ''
      }\n` +
      `  retrained: clean ${pct(r.cleanAccuracy.defended)}%, ASR ${asr('defended')} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
  );
}
process.exit(0);
