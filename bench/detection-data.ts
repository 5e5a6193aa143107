/**
 * The stored runs the detection ablation (`bench/detection.ts`) reads: one probationary training
 * per (dataset seed, probe trigger), its trajectories and its undefended evaluation kept under
 * bench/results/detection-cache/, and retrainings cached by the exact set of rows they drop, so
 * detection variants are compared without training again.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { IMAGE_SIZE, subsetSplit, type Dataset, type ImageSplit } from '../src/core/dataset.ts';
import { generateDemoDataset } from '../src/core/demo.ts';
import { loadDatasetFiles } from '../src/core/formats/load.ts';
import {
  DEFAULT_PROBE_TRIGGER,
  keptRows,
  prepareExperiment,
  type Prepared,
  type RunConfig,
} from '../src/core/experiment.ts';
import { detect, easinessTest, flaggedRows, type DetectOptions } from '../src/core/detect/index.ts';
import { probeRowsFromKinds, type Trajectories } from '../src/core/detect/knn.ts';
import type { ProbeTrigger } from '../src/core/probes.ts';
import { auroc } from '../src/core/metrics.ts';
import { averageOf, type ModelEvaluation } from '../src/core/report.ts';
import { RETRAIN_STRIPES, type TrainConfig } from '../src/core/run.ts';
import { evaluateModel, retrainRows, trainConfigOf } from '../src/ml/run.ts';
import { Trainer } from '../src/ml/train.ts';
import { createWasmEngine } from '../src/ml/wasm-engine-node.ts';
import { nodeDecoder } from '../src/cli/node-decoder.ts';
import type { TrainingEngine } from '../src/ml/engine.ts';

export const CACHE = join(import.meta.dirname, 'results', 'detection-cache');

/** The product owner's scale: 6,000 training / 1,000 test images, every attack but FTrojan at its default ratio. */
export const SCALE = { train: 6000, test: 1000 };

/**
 * BENCH_DATA: comma-separated dataset files (anything the CLI reads: the CIFAR-10 binary batches,
 * a GTSRB or image-folder zip) to measure on instead of the demo set — natural images, of which
 * each seed draws its own SCALE subsample (the CLI's --limit-train / --limit-test). Unset: the
 * demo set generated at SCALE with the seed. Cached runs and retrainings are keyed by it.
 */
const DATA_FILES = process.env.BENCH_DATA ? process.env.BENCH_DATA.split(',') : [];
/**
 * A tag for the cache keys: '' for the demo set (so its old keys still hit), else the files' names
 * and sizes hashed — two different files with the same name and size would share a cache.
 */
const DATA_TAG = DATA_FILES.length
  ? 'd' +
    createHash('sha256')
      .update(JSON.stringify(DATA_FILES.map((f) => [basename(f), statSync(f).size])))
      .digest('hex')
      .slice(0, 8)
  : '';

/**
 * The measured setting: 250 probes of each kind, ResNet-8 ×0.5 for 10 epochs, batch 64, AdamW with
 * the demo presets' peak learning rate 5e-3 (BENCH_LR; at the CLI's 1e-3 no 1% backdoor takes hold
 * on the demo set in 10 epochs).
 */
export function benchConfig(seed: number, trigger: ProbeTrigger): RunConfig {
  const jitter = benchJitter(false);
  const stripes = benchStripes(false);
  const steps = benchMatchSteps(false);
  const reweight = benchReweight(false);
  return {
    mode: 'benchmark',
    attacks: ['patch', 'single-pix', 'blend-r', 'blend-p', 'sinusoid', 'warping'].map((id) => ({
      id: id as RunConfig['attacks'][number]['id'],
    })),
    probes: { n: 250, trigger, trusted: 'train-untouched' },
    train: {
      model: 'resnet8',
      width: 0.5,
      epochs: 10,
      batchSize: 64,
      lr: Number(process.env.BENCH_LR ?? 5e-3),
      weightDecay: 1e-4,
      augment: false,
      record: 'eval',
    },
    detect: { method: 'knn', k: 'auto', threshold: 0.1 },
    separateBaseline: false,
    ...(jitter ? { retrainJitter: true } : {}),
    ...(stripes ? { retrainStripes: true } : {}),
    ...(steps ? { retrainMatchSteps: true } : {}),
    ...(reweight ? { retrainReweight: true } : {}),
    ...(DATA_FILES.length ? { limit: { ...SCALE } } : {}),
    seed,
  };
}

/**
 * BENCH_JITTER=on|off: retrain with sub-pixel jitter (RunConfig.retrainJitter). The ablation's
 * scripts retrain as the paper does unless it is on; bench/targets.ts measures the default (on).
 */
export function benchJitter(fallback: boolean): boolean {
  return benchOnOff('BENCH_JITTER', fallback);
}

/** BENCH_STRIPES=on|off: retrain with random stripes (RunConfig.retrainStripes), as benchJitter. */
export function benchStripes(fallback: boolean): boolean {
  return benchOnOff('BENCH_STRIPES', fallback);
}

/**
 * BENCH_STEPS=on|off: retrain for as many steps as the first model (RunConfig.retrainMatchSteps),
 * as benchJitter.
 */
export function benchMatchSteps(fallback: boolean): boolean {
  return benchOnOff('BENCH_STEPS', fallback);
}

/**
 * BENCH_REWEIGHT=on|off: retrain with the classes reweighted to the test split's frequencies
 * (RunConfig.retrainReweight), as benchJitter.
 */
export function benchReweight(fallback: boolean): boolean {
  return benchOnOff('BENCH_REWEIGHT', fallback);
}

/**
 * BENCH_WAVES=<max 0–255>[,<share>[,<cycles 1–16>[,<fine 0–255>]]]: other stripes than
 * RETRAIN_STRIPES, or undefined. `withWaves` puts them in place of the stripes on the recipes
 * trainConfigOf gives stripes (the retrainings).
 */
export function benchWaves(): Waves | undefined {
  const [max, share = '1', cycles, fine] = (process.env.BENCH_WAVES ?? '').split(',');
  if (!max) return undefined;
  return {
    max: Number(max),
    share: Number(share),
    ...(cycles ? { cycles: Number(cycles) } : {}),
    ...(fine ? { fine: Number(fine) } : {}),
  };
}

type Waves = NonNullable<TrainConfig['waves']>;

/** `c` with `waves` in place of its stripes, where it has stripes and `waves` is set. */
export function withWaves<T extends { waves?: Waves }>(c: T, waves: Waves | undefined): T {
  return c.waves && waves ? { ...c, waves } : c;
}

function benchOnOff(name: string, fallback: boolean): boolean {
  const v = process.env[name];
  if (v === undefined) return fallback;
  if (v !== 'on' && v !== 'off') throw new Error(`${name}=${v} must be on or off`);
  return v === 'on';
}

/** A cache file's key: `parts` hashed, with the BENCH_DATA tag among them when it is set. */
export function cacheKey(parts: unknown[]): string {
  return createHash('sha256')
    .update(JSON.stringify(DATA_TAG ? [...parts, DATA_TAG] : parts))
    .digest('hex')
    .slice(0, 20);
}

let loaded: Promise<Dataset> | undefined;
/** The dataset a seed measures on: BENCH_DATA's files (loaded once), or the demo set. */
export async function benchDataset(seed: number): Promise<Dataset> {
  if (!DATA_FILES.length) return generateDemoDataset({ seed, ...SCALE });
  loaded ??= loadDatasetFiles(
    DATA_FILES.map((f) => ({ name: basename(f), bytes: new Uint8Array(readFileSync(f)) })),
    { decode: nodeDecoder, name: DATA_FILES.map((f) => basename(f)).join(', ') },
  );
  return loaded;
}

let engine: TrainingEngine | undefined;
export function theEngine(): TrainingEngine {
  engine ??= createWasmEngine({ threads: Number(process.env.BENCH_THREADS ?? 2) });
  return engine;
}

export interface StoredRun {
  cfg: RunConfig;
  prepared: Prepared;
  trajectories: Float32Array;
  epochs: number;
  undefended: ModelEvaluation;
  seconds: number;
}

/** A stored run's file name stem: the data tag (BENCH_DATA), the seed and the probe trigger. */
export const keyOf = (seed: number, trigger: ProbeTrigger) =>
  `${DATA_TAG ? `${DATA_TAG}-` : ''}s${seed}-${Array.isArray(trigger) ? trigger.join('+') : trigger}`;

/** A cached float32 array, or undefined when the file is missing or not `length` values long (cut short). */
export function loadF32(file: string, length: number): Float32Array | undefined {
  if (!existsSync(file)) return undefined;
  const b = readFileSync(file);
  const out = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  return out.length === length ? out : undefined;
}

/** Writes a float32 array whole or not at all (a temporary file renamed into place). */
export function saveF32(file: string, data: Float32Array): void {
  writeFileSync(`${file}.part`, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  renameSync(`${file}.part`, file);
}

/** Rows a detection flags on `t` (probes, by `kinds`, never). */
export function flaggedAt(
  t: Trajectories,
  kinds: Uint8Array,
  labels: Uint8Array,
  numClasses: number,
  opts: DetectOptions,
): number[] {
  const det = detect(t, probeRowsFromKinds(kinds), opts, { labels, numClasses });
  return flaggedRows(det.scores, det.threshold);
}

/**
 * The undefended ASR from which an attack counts in "every attack halved": BENCH_HOLD, default
 * 0.05 — the bar every table in docs/detection.md used. On the demo set an attack that never took
 * hold sits near 0%; on CIFAR-10 at this scale, retrained without a single poison
 * (bench/oracle.ts), the model still sends 1–7% of triggered test images to such an attack's
 * target, by chance, and no removal halves that. 0.2 is the bar of the product's verdict
 * (TOOK_HOLD_ASR in src/core/verdict.ts).
 */
const HOLD_TEXT = process.env.BENCH_HOLD?.trim() || '0.05';
export const HOLD = Number(HOLD_TEXT);
if (!(HOLD >= 0 && HOLD <= 1))
  throw new Error(`BENCH_HOLD=${HOLD_TEXT}: give an ASR in [0, 1], e.g. 0.2`);

/**
 * Issue #12's four targets for one retrained run: average ASR ≤ 10%, clean accuracy at most 3
 * points below the undefended model's, at most 15% of the clean rows removed, and every attack
 * that took hold (≥ HOLD undefended) at most half its undefended ASR. Returns the four verdicts
 * and the attacks not halved.
 */
export function targetChecks(
  undefended: Pick<ModelEvaluation, 'cleanAccuracy' | 'asr'>,
  defended: Pick<ModelEvaluation, 'cleanAccuracy' | 'asr'>,
  cleanRemoved: number,
): { ok: boolean[]; notHalved: string[] } {
  const u = undefended.asr;
  const d = defended.asr;
  const notHalved = Object.keys(u).filter((a) => u[a] >= HOLD && d[a] > u[a] / 2);
  const ok = [
    averageOf(d) <= 0.1,
    undefended.cleanAccuracy - defended.cleanAccuracy <= 0.03,
    cleanRemoved <= 0.15,
    notHalved.length === 0,
  ];
  return { ok, notHalved };
}

/**
 * The easiness test's flags at budget α — the product's (`easinessTest` in src/core/detect): rows
 * learned far better than their class, probes never.
 */
export function easinessFlags(
  t: Trajectories,
  kinds: Uint8Array,
  labels: ArrayLike<number>,
  numClasses: number,
  alpha: number,
): number[] {
  return flaggedRows(
    easinessTest(t, probeRowsFromKinds(kinds), alpha, { labels, numClasses }),
    1 - alpha,
  );
}

/**
 * A change to the prepared set before training (an experiment the run configuration cannot
 * express, e.g. extra probes): applied in place, cached under its own name. It may change rows'
 * images, labels and `probes.probeKind` (what detection and retraining read); `probes.indices`
 * and `probes.bank` keep what the configuration made.
 */
export interface PreparedVariant {
  name: string;
  apply: (prepared: Prepared) => void;
}

/**
 * A seed's prepared setting (default probes) and its probationary model, trained now and not
 * cached: for the benches that question the model itself (bench/mirror.ts, bench/sharpen.ts).
 * The caller disposes the trainer.
 */
export async function probationaryModel(seed: number): Promise<{ p: Prepared; trainer: Trainer }> {
  const cfg = benchConfig(seed, DEFAULT_PROBE_TRIGGER);
  const p = prepareExperiment(await benchDataset(seed), cfg);
  const trainer = await Trainer.create(
    theEngine(),
    trainConfigOf(cfg, 'probationary'),
    p.train,
    p.numClasses,
  );
  try {
    while (!trainer.done) await trainer.trainEpoch();
  } catch (e) {
    trainer.dispose();
    throw e;
  }
  return { p, trainer };
}

/** The probationary run of a setting: from the cache, or trained now and cached. */
export async function probationary(
  seed: number,
  trigger: ProbeTrigger,
  log: (s: string) => void,
  variant?: PreparedVariant,
): Promise<StoredRun> {
  mkdirSync(CACHE, { recursive: true });
  const cfg = benchConfig(seed, trigger);
  const prepared = prepareExperiment(await benchDataset(seed), cfg);
  variant?.apply(prepared);
  const key = keyOf(seed, trigger) + (variant ? `-${variant.name}` : '');
  const meta = join(CACHE, `${key}.json`);
  const bin = join(CACHE, `${key}.f32`);
  const m = existsSync(meta) ? JSON.parse(readFileSync(meta, 'utf8')) : undefined;
  const trajectories = m && loadF32(bin, prepared.train.count * m.epochs);
  if (m && trajectories) {
    return {
      cfg,
      prepared,
      trajectories,
      epochs: m.epochs,
      undefended: m.undefended,
      seconds: m.seconds,
    };
  }
  const t0 = performance.now();
  const tc = trainConfigOf(cfg, 'probationary');
  const trainer = await Trainer.create(theEngine(), tc, prepared.train, prepared.numClasses);
  try {
    while (!trainer.done) {
      const s = await trainer.trainEpoch();
      log(
        `  ${key} epoch ${s!.epoch + 1}: loss ${s!.loss.toFixed(3)} (${s!.imagesPerSecond.toFixed(0)} img/s)`,
      );
    }
    const undefended = await evaluateModel(trainer, prepared.test, prepared.triggered);
    const seconds = (performance.now() - t0) / 1000;
    saveF32(bin, trainer.trajectories);
    writeFileSync(meta, JSON.stringify({ epochs: tc.epochs, undefended, seconds }));
    return {
      cfg,
      prepared,
      trajectories: trainer.trajectories.slice(),
      epochs: tc.epochs,
      undefended,
      seconds,
    };
  } finally {
    trainer.dispose();
  }
}

/**
 * The model retrained without `flagged` (and without backdoor / mislabeled probes), cached by the
 * rows dropped. `reseed` j > 0 retrains the same rows with another seed (the run's retraining
 * seed + 1000·j): how much of an outcome is the removal and how much the retraining's luck.
 */
export async function retrained(
  run: StoredRun,
  flagged: number[],
  log: (s: string) => void,
  reseed = 0,
): Promise<ModelEvaluation & { seconds: number }> {
  const kept = keptRows(flagged, run.prepared.probes.probeKind);
  const key = cacheKey([
    run.cfg.seed,
    run.cfg.probes.trigger,
    kept,
    ...(reseed ? [reseed] : []),
    ...(run.cfg.retrainJitter ? ['jitter'] : []),
    ...(run.cfg.retrainStripes ? ['stripes', RETRAIN_STRIPES.max, RETRAIN_STRIPES.share] : []),
    ...(run.cfg.retrainMatchSteps ? ['steps'] : []),
    ...(run.cfg.retrainReweight ? ['reweight'] : []),
  ]);
  const file = join(CACHE, `retrain-${key}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const t0 = performance.now();
  const split = subsetSplit(run.prepared.train, kept);
  const tc = trainConfigOf(run.cfg, 'retrain', retrainRows(run.prepared, split));
  const trainer = await Trainer.create(
    theEngine(),
    { ...tc, seed: tc.seed + 1000 * reseed },
    split,
    run.prepared.numClasses,
  );
  try {
    while (!trainer.done) await trainer.trainEpoch();
    const ev = await evaluateModel(trainer, run.prepared.test, run.prepared.triggered);
    const res = { ...ev, seconds: (performance.now() - t0) / 1000 };
    writeFileSync(file, JSON.stringify(res));
    log(`  retrained on ${kept.length} rows in ${res.seconds.toFixed(0)} s`);
    return res;
  } finally {
    trainer.dispose();
  }
}

/** Every image of `split` unsharp-masked (the 3×3 mean over the pixels inside the image), rounded. */
export function sharpened(split: ImageSplit, lambda: number): ImageSplit {
  const S = IMAGE_SIZE;
  const src = split.images;
  const out = new Uint8Array(src.length);
  for (let i = 0; i < split.count; i++) {
    const base = i * S * S * 3;
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++)
        for (let c = 0; c < 3; c++) {
          let sum = 0;
          let n = 0;
          for (let yy = Math.max(0, y - 1); yy <= Math.min(S - 1, y + 1); yy++)
            for (let xx = Math.max(0, x - 1); xx <= Math.min(S - 1, x + 1); xx++) {
              sum += src[base + (yy * S + xx) * 3 + c];
              n++;
            }
          const at = base + (y * S + x) * 3 + c;
          const v = src[at] + lambda * (src[at] - sum / n);
          out[at] = Math.min(255, Math.max(0, Math.round(v)));
        }
  }
  return { count: split.count, images: out, labels: split.labels };
}

/** AUROC of `pos` rows against `neg` rows under `score` (higher = more suspicious). */
export function aurocOf(score: ArrayLike<number>, pos: number[], neg: number[]): number {
  const rows = [...pos, ...neg];
  return auroc(
    rows.map((r) => score[r]),
    rows.map((_, j) => (j < pos.length ? 1 : 0)),
  );
}

/** `aurocOf`, printed to two decimals (the diagnostics' tables). */
export const aurocText = (score: ArrayLike<number>, pos: number[], neg: number[]): string =>
  aurocOf(score, pos, neg).toFixed(2);
