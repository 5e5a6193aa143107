import { InvalidOptionError } from '../core/errors.ts';
import { validateTrainRecipe } from '../core/config.ts';
import type { Checkpoint, EpochStats, TrainConfig, TrainProgress } from '../core/run.ts';
import { IMAGE_BYTES, IMAGE_SIZE, type ImageSplit } from '../core/dataset.ts';
import { Rng } from '../core/rng.ts';
import type { EngineModel, EvalResult, PendingStep, TrainingEngine } from './engine.ts';

export type { Checkpoint, EpochStats, TrainConfig, TrainProgress } from '../core/run.ts';

/** Loss clamp for trajectories (SPEC §4). */
export const LOSS_CLAMP = 100;
/** How many steps of losses to leave on the device before reading them back (no sync per step). */
const READBACK_EVERY = 8;

/** Validates a recipe, naming the bad value (the same limits as a run configuration). */
export function checkTrainConfig(c: TrainConfig): void {
  validateTrainRecipe(c);
  const w = c.classWeights;
  // Every weight > 0: a batch of zero-weight rows would divide its loss by zero.
  // Checked as the float32 the batch mask holds.
  if (
    w !== undefined &&
    !(w.length > 0 && w.every((x) => Math.fround(x) > 0 && Math.fround(x) < Infinity))
  )
    throw new InvalidOptionError(
      `train.classWeights = [${w.join(', ')}] is invalid: one finite weight > 0 per class`,
    );
  if (c.waves === undefined) return;
  const { max, share, cycles = WAVE_CYCLES, fine = 0 } = c.waves;
  if (!(max >= 0 && max <= 255))
    throw new InvalidOptionError(
      `train.waves.max = ${max} is invalid: must be 0–255 (pixel units)`,
    );
  if (!(share >= 0 && share <= 1))
    throw new InvalidOptionError(`train.waves.share = ${share} is invalid: must be 0–1`);
  if (!(cycles >= 1 && cycles <= IMAGE_SIZE / 2))
    throw new InvalidOptionError(
      `train.waves.cycles = ${cycles} is invalid: must be 1–${IMAGE_SIZE / 2} (cycles per image)`,
    );
  if (!(fine >= 0 && fine <= 255))
    throw new InvalidOptionError(
      `train.waves.fine = ${fine} is invalid: must be 0–255 (pixel units)`,
    );
}

/** The stripes' highest frequency, cycles per image, where `TrainConfig.waves.cycles` is absent. */
export const WAVE_CYCLES = 8;

/**
 * One random plane wave: amplitude uniform in [0, max], `from`–`to` cycles per image, a uniform
 * direction and phase (four draws, always all four); undefined at amplitude 0.
 */
function drawWave(aug: Rng, max: number, from: number, to: number): Wave | undefined {
  const a = aug.float() * max;
  const k = (2 * Math.PI * (from + (to - from) * aug.float())) / IMAGE_SIZE;
  const theta = Math.PI * aug.float();
  const phase = 2 * Math.PI * aug.float();
  return a > 0 ? { a, kx: k * Math.cos(theta), ky: k * Math.sin(theta), phase } : undefined;
}

/** Per-channel mean and standard deviation of uint8 images, in [0, 1] units. */
export function channelStats(images: Uint8Array): { mean: number[]; std: number[] } {
  const sum = [0, 0, 0];
  const sq = [0, 0, 0];
  const n = images.length / 3;
  for (let i = 0; i < images.length; i += 3)
    for (let c = 0; c < 3; c++) {
      const v = images[i + c] / 255;
      sum[c] += v;
      sq[c] += v * v;
    }
  const mean = sum.map((s) => s / n);
  const std = sq.map((s, c) => Math.sqrt(Math.max(s / n - mean[c] ** 2, 1e-6)));
  return { mean, std };
}

/** How one image is placed in a batch: mirrored, shifted by whole pixels, then by a fraction. */
export interface Placement {
  /** Mirror left–right. */
  flip: boolean;
  /** Whole-pixel shift (the crop): output (x, y) reads source (x + dx, y + dy); outside is zero. */
  dx: number;
  dy: number;
  /** Sub-pixel jitter in [0, 1): bilinear between the pixel and its next neighbour on each axis. */
  fx: number;
  fy: number;
  /** A faint plane wave added after the resampling, clamped to 0–255 (absent = none). */
  wave?: Wave;
  /** A second, finer one added with it (`TrainConfig.waves.fine`; absent = none). */
  fine?: Wave;
}

/** `a · cos(kx·x + ky·y + phase)` in 0–255 units over output pixel coordinates (x: column). */
export interface Wave {
  a: number;
  kx: number;
  ky: number;
  phase: number;
}

/**
 * Writes one HWC uint8 image, placed (mirror, crop, jitter), striped (wave) and normalized per channel, into
 * `dst` at `out`. The jitter resamples the image bilinearly at a fraction (fx, fy) of a pixel —
 * a blur of random strength and direction, as much as a warping trigger's resampling makes — so
 * a model retrained with it cannot tell a warped image by its smoothness (docs/detection.md,
 * "Retraining with sub-pixel jitter"). The next neighbour is taken in the output's direction
 * (mirrored when flipped); past the image's edge the edge pixel repeats. A `wave` is then added
 * (random stripes, so a stripe-pattern trigger stops pointing to one class: "Retraining with
 * random stripes") and the value clamped to 0–255 as a stored image would be.
 */
export function writeNormalized(
  dst: Float32Array,
  out: number,
  src: Uint8Array,
  base: number,
  norm: { mean: number[]; std: number[] },
  at: Placement,
): void {
  const S = IMAGE_SIZE;
  const { mean, std } = norm;
  const { flip, dx, dy, fx, fy } = at;
  const w00 = (1 - fx) * (1 - fy);
  const w01 = fx * (1 - fy);
  const w10 = (1 - fx) * fy;
  const w11 = fx * fy;
  const resample = fx !== 0 || fy !== 0;
  const wave = at.wave;
  const fine = at.fine;
  const striped = !!wave || !!fine;
  for (let y = 0; y < S; y++) {
    const sy = y + dy;
    const down = (Math.min(sy + 1, S - 1) - sy) * S * 3;
    for (let x = 0; x < S; x++) {
      const sx = (flip ? S - 1 - x : x) + dx;
      const o = out + (y * S + x) * 3;
      if (sy < 0 || sy >= S || sx < 0 || sx >= S) {
        for (let c = 0; c < 3; c++) dst[o + c] = -mean[c] / std[c];
        continue;
      }
      const p = base + (sy * S + sx) * 3;
      if (!resample && !striped) {
        for (let c = 0; c < 3; c++) dst[o + c] = (src[p + c] / 255 - mean[c]) / std[c];
        continue;
      }
      const right = ((flip ? Math.max(sx - 1, 0) : Math.min(sx + 1, S - 1)) - sx) * 3;
      let add = wave ? wave.a * Math.cos(wave.kx * x + wave.ky * y + wave.phase) : 0;
      if (fine) add += fine.a * Math.cos(fine.kx * x + fine.ky * y + fine.phase);
      for (let c = 0; c < 3; c++) {
        let v =
          w00 * src[p + c] +
          w01 * src[p + right + c] +
          w10 * src[p + down + c] +
          w11 * src[p + down + right + c];
        if (striped) v = Math.min(255, Math.max(0, v + add));
        dst[o + c] = (v / 255 - mean[c]) / std[c];
      }
    }
  }
}

/**
 * The training loop (SPEC §4) on any TrainingEngine (tfjs on WebGPU/WebGL/CPU, or our
 * WebAssembly engine): a ResNet trained with AdamW (decoupled weight decay) and a per-step cosine
 * schedule from `lr` to 0, seeded shuffling, fixed batch shapes (the last batch is padded with
 * repeats whose loss is masked out), losses read back asynchronously every few steps. After every
 * epoch it appends one column of per-example losses to the trajectory matrix. Build one with
 * `await Trainer.create(engine, config, data, numClasses, checkpoint?)`.
 */
export class Trainer {
  readonly model: EngineModel;
  readonly engine: TrainingEngine;
  readonly config: TrainConfig;
  readonly count: number;
  readonly numClasses: number;
  /** count × epochs, row-major. */
  readonly trajectories: Float32Array;
  readonly history: EpochStats[] = [];
  epoch = 0;
  step = 0;
  private readonly data: ImageSplit;
  private rng: Rng;
  private readonly norm: { mean: number[]; std: number[] };
  private readonly batchBuf: Float32Array;
  private startTime = 0;
  private imagesSeen = 0;
  private warmedUp = false;

  /** A trainer for `data` on `engine`, fresh or continuing `checkpoint`. */
  static async create(
    engine: TrainingEngine,
    config: TrainConfig,
    data: ImageSplit,
    numClasses: number,
    checkpoint?: Checkpoint,
  ): Promise<Trainer> {
    checkTrainConfig(config);
    if (data.count < 1) throw new InvalidOptionError('the training set is empty');
    if (config.classWeights && config.classWeights.length !== numClasses)
      throw new InvalidOptionError(
        `train.classWeights has ${config.classWeights.length} weights for ${numClasses} classes`,
      );
    const model = await engine.createModel({
      name: config.model,
      width: config.width,
      numClasses,
      seed: config.seed,
      batchSize: config.batchSize,
    });
    const tr = new Trainer(engine, model, config, data, numClasses);
    if (checkpoint) {
      try {
        tr.restore(checkpoint);
      } catch (e) {
        model.dispose();
        throw e;
      }
    }
    return tr;
  }

  private constructor(
    engine: TrainingEngine,
    model: EngineModel,
    config: TrainConfig,
    data: ImageSplit,
    numClasses: number,
  ) {
    this.engine = engine;
    this.model = model;
    this.config = config;
    this.data = data;
    this.count = data.count;
    this.numClasses = numClasses;
    this.norm = channelStats(data.images);
    this.batchBuf = new Float32Array(config.batchSize * IMAGE_BYTES);
    this.trajectories = new Float32Array(data.count * config.epochs);
    this.rng = new Rng(config.seed).fork('train');
  }

  get done(): boolean {
    return this.epoch >= this.config.epochs;
  }

  /** Steps per epoch (the last batch padded to the full batch size). */
  get stepsPerEpoch(): number {
    return Math.ceil(this.count / this.config.batchSize);
  }

  /** Learning rate at global step t: lr·½(1 + cos(π·t/T)), T = epochs·stepsPerEpoch. */
  learningRate(t: number): number {
    const total = this.config.epochs * this.stepsPerEpoch;
    return this.config.lr * 0.5 * (1 + Math.cos((Math.PI * Math.min(t, total)) / total));
  }

  /**
   * Trains one epoch, records its trajectory column, and returns its statistics.
   * `shouldStop` is polled between steps; when it returns true the epoch is abandoned (the model
   * is then mid-epoch: restore the last checkpoint to continue exactly).
   */
  async trainEpoch(
    onProgress?: (p: TrainProgress) => void,
    shouldStop?: () => boolean | Promise<boolean>,
  ): Promise<EpochStats | null> {
    if (this.done) throw new InvalidOptionError('the run has finished all its epochs');
    const { batchSize: B } = this.config;
    if (this.startTime === 0) this.startTime = performance.now();
    const t0 = performance.now();
    const order = this.rng.permutation(this.count);
    const augRng = this.rng.fork(`aug:${this.epoch}`);
    const steps = this.stepsPerEpoch;
    const epochCol = this.epoch;
    const fromTrain = this.config.record === 'train';
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    const pending: { step: PendingStep; idx: Uint32Array; real: number }[] = [];
    const drain = async () => {
      for (const p of pending.splice(0)) {
        const r = await p.step.read();
        // With class weights the step's loss is the weighted one; the epoch reports the plain mean
        // (every retraining records its per-example losses), comparable with an unweighted model's.
        if (this.config.classWeights && r.perExample)
          for (let j = 0; j < p.real; j++) lossSum += r.perExample[j];
        else lossSum += r.loss * p.real;
        correct += r.correct;
        if (r.perExample)
          for (let j = 0; j < p.real; j++)
            this.trajectories[p.idx[j] * this.config.epochs + epochCol] = Math.min(
              r.perExample[j],
              LOSS_CLAMP,
            );
      }
    };
    for (let s = 0; s < steps; s++) {
      if (shouldStop && (await shouldStop())) {
        await drain();
        return null;
      }
      const idx = order.subarray(s * B, Math.min((s + 1) * B, this.count));
      const real = idx.length;
      const { labels, mask } = this.makeBatch(
        idx,
        order,
        this.config.augment || this.config.jitter || this.config.waves ? augRng : null,
      );
      const step = this.model.trainStep({
        x: this.batchBuf,
        labels,
        mask,
        lr: this.learningRate(this.step),
        weightDecay: this.config.weightDecay,
        t: this.step + 1,
        perExample: fromTrain,
      });
      this.step++;
      seen += real;
      this.imagesSeen += real;
      pending.push({ step, idx: Uint32Array.from(idx), real });
      if (!this.warmedUp) {
        // The first step compiles every kernel (WebGPU/WebGL shaders): wait for it, then start
        // the clock, so images/s and the ETA measure steady-state training.
        await drain();
        this.warmedUp = true;
        this.startTime = performance.now();
        this.imagesSeen = 0;
      }
      if (pending.length >= READBACK_EVERY || s === steps - 1) {
        await drain();
        await yieldToEventLoop();
        const ips = this.throughput();
        onProgress?.({
          phase: 'train',
          epoch: this.epoch,
          epochs: this.config.epochs,
          done: seen,
          total: this.count,
          imagesPerSecond: ips,
          etaSeconds: this.eta(ips, seen),
          loss: lossSum / seen,
          accuracy: correct / seen,
        });
      }
    }
    if (!fromTrain) {
      const col = await this.perExampleLosses(this.data, (done) => {
        const ips = this.throughput();
        onProgress?.({
          phase: 'record',
          epoch: this.epoch,
          epochs: this.config.epochs,
          done,
          total: this.count,
          imagesPerSecond: ips,
          etaSeconds: this.eta(ips, this.count),
        });
      });
      for (let i = 0; i < this.count; i++)
        this.trajectories[i * this.config.epochs + epochCol] = col[i];
    }
    const seconds = (performance.now() - t0) / 1000;
    const mem = this.model.memory();
    const stats: EpochStats = {
      epoch: this.epoch,
      loss: lossSum / seen,
      accuracy: correct / seen,
      seconds,
      imagesPerSecond: seen / seconds,
      tensors: mem.tensors,
      bytes: mem.bytes,
    };
    this.history.push(stats);
    this.epoch++;
    return stats;
  }

  /**
   * Loss of every example of `split` in evaluation mode (nats, clamped at 100), in order; with
   * `mirrored`, of each image mirrored left–right (flipped as the batch is written: no copy of
   * the split — core's `mirroredSplit` is the same images).
   */
  async perExampleLosses(
    split: ImageSplit,
    onBatch?: (done: number) => void,
    mirrored = false,
  ): Promise<Float32Array> {
    const out = new Float32Array(split.count);
    const C = this.numClasses;
    await this.forEachEvalBatch(split, mirrored, (r, start, real) => {
      for (let j = 0; j < real; j++)
        out[start + j] = Math.min(
          crossEntropy(r.logits, j * C, C, split.labels[start + j]),
          LOSS_CLAMP,
        );
      onBatch?.(start + real);
    });
    return out;
  }

  /** Top-1 predictions of the model (evaluation mode) for every image of `split`. */
  async predict(split: ImageSplit, onBatch?: (done: number) => void): Promise<Uint8Array> {
    const out = new Uint8Array(split.count);
    const C = this.numClasses;
    await this.forEachEvalBatch(split, false, (r, start, real) => {
      for (let j = 0; j < real; j++) {
        let arg = 0;
        for (let c = 1; c < C; c++) if (r.logits[j * C + c] > r.logits[j * C + arg]) arg = c;
        out[start + j] = arg;
      }
      onBatch?.(start + real);
    });
    return out;
  }

  /**
   * Penultimate features (evaluation mode: the global-average-pooled last block output) of every
   * image of `split`: Float32Array, count × D row-major, D = model.featureDim.
   */
  async features(split: ImageSplit, onBatch?: (done: number) => void): Promise<Float32Array> {
    const D = this.model.featureDim;
    const out = new Float32Array(split.count * D);
    await this.forEachEvalBatch(split, false, (r, start, real) => {
      out.set(r.features.subarray(0, real * D), start * D);
      onBatch?.(start + real);
    });
    return out;
  }

  /** A checkpoint of the current state (call between epochs). */
  async checkpoint(): Promise<Checkpoint> {
    const state = await this.model.getState();
    return {
      version: 1,
      config: this.config,
      numClasses: this.numClasses,
      count: this.count,
      epoch: this.epoch,
      step: this.step,
      rngState: this.rng.state(),
      weights: state.weights,
      optimizer: { m: state.m, v: state.v },
      trajectories: this.trajectories.slice(),
      history: this.history.map((h) => ({ ...h })),
    };
  }

  dispose(): void {
    this.model.dispose();
  }

  private restore(c: Checkpoint): void {
    if (c.count !== this.count || c.numClasses !== this.numClasses) {
      throw new InvalidOptionError(
        `checkpoint is for ${c.count} examples × ${c.numClasses} classes, not ${this.count} × ${this.numClasses}`,
      );
    }
    this.model.setState({ weights: c.weights, m: c.optimizer.m, v: c.optimizer.v });
    this.epoch = c.epoch;
    this.step = c.step;
    this.rng = new Rng(c.rngState);
    this.trajectories.set(c.trajectories);
    this.history.push(...c.history);
  }

  /** Fills the batch buffer with the images of `idx` (padded with the epoch's first examples). */
  private makeBatch(idx: Uint32Array, order: Uint32Array, aug: Rng | null) {
    const B = this.config.batchSize;
    const labels = new Int32Array(B);
    const mask = new Float32Array(B);
    for (let j = 0; j < B; j++) {
      // pad with repeats of the epoch's first examples (cyclically, when the whole set is smaller
      // than a batch): real images keep BatchNorm statistics sane
      const i = j < idx.length ? idx[j] : order[(j - idx.length) % order.length];
      labels[j] = this.data.labels[i];
      // The engines' loss is Σ mask·CE / Σ mask: a class weight scales the row's share of it.
      mask[j] = j < idx.length ? (this.config.classWeights?.[labels[j]] ?? 1) : 0;
      this.writeImage(i, j, aug);
    }
    return { labels, mask };
  }

  /**
   * Normalizes image i of `split` into slot j of the batch buffer. With `aug` (training only): the
   * recipe's flip and crop (`augment`), then its sub-pixel jitter (`jitter`) and its stripes
   * (`waves`). Without: as it is, or mirrored left–right (`mirror`, the mirror test's pass).
   */
  private writeImage(
    i: number,
    j: number,
    aug: Rng | null,
    split: ImageSplit = this.data,
    mirror = false,
  ): void {
    const crop = !!aug && this.config.augment;
    const jitter = !!aug && !!this.config.jitter;
    const flip = crop ? aug.int(2) === 1 : mirror;
    const dy = crop ? aug.int(9) - 4 : 0;
    const dx = crop ? aug.int(9) - 4 : 0;
    // Drawn after the flip and crop, so a recipe without jitter keeps its random stream.
    const fx = jitter ? aug.float() : 0;
    const fy = jitter ? aug.float() : 0;
    // Drawn last and always all five, so a recipe without waves keeps its stream and each image's
    // draws do not depend on whether the previous one got a wave.
    const waves = aug ? this.config.waves : undefined;
    let wave: Wave | undefined;
    let fine: Wave | undefined;
    if (aug && waves) {
      const on = aug.float() < waves.share;
      const top = waves.cycles ?? WAVE_CYCLES;
      wave = drawWave(aug, waves.max, 1, top);
      // The fine wave: from the first's top frequency up to the image's finest (16 cycles), drawn
      // after the first's five only when asked for, so recipes without it keep their stream.
      if (waves.fine) fine = drawWave(aug, waves.fine, top, IMAGE_SIZE / 2);
      if (!on) wave = fine = undefined;
    }
    writeNormalized(this.batchBuf, j * IMAGE_BYTES, split.images, i * IMAGE_BYTES, this.norm, {
      flip,
      dx,
      dy,
      fx,
      fy,
      ...(wave ? { wave } : {}),
      ...(fine ? { fine } : {}),
    });
  }

  private async forEachEvalBatch(
    split: ImageSplit,
    mirror: boolean,
    fn: (r: EvalResult, start: number, real: number) => void,
  ): Promise<void> {
    const B = this.config.batchSize;
    for (let start = 0; start < split.count; start += B) {
      const real = Math.min(B, split.count - start);
      for (let j = 0; j < B; j++)
        this.writeImage(start + (j < real ? j : 0), j, null, split, mirror);
      fn(await this.model.evaluate(this.batchBuf), start, real);
      if ((start / B) % READBACK_EVERY === READBACK_EVERY - 1) await yieldToEventLoop();
    }
  }

  private throughput(): number {
    const s = (performance.now() - this.startTime) / 1000;
    return s > 0 ? this.imagesSeen / s : 0;
  }

  /** Remaining seconds: remaining training images (+ recording passes) at the observed rate. */
  private eta(ips: number, seenThisEpoch: number): number {
    if (ips <= 0) return NaN;
    const epochsLeft = this.config.epochs - this.epoch;
    const perEpoch = this.count * (this.config.record === 'eval' ? 1.35 : 1); // eval pass ≈ ⅓ of a training pass
    return (epochsLeft * perEpoch - seenThisEpoch) / ips;
  }
}

/**
 * Lets queued events run (a pause request, a progress message). The WebAssembly engine computes
 * synchronously, so without this a worker would not see messages until the epoch ends.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Cross-entropy −log softmax(logits[off … off+C))[label] in nats, computed in float64. */
export function crossEntropy(logits: Float32Array, off: number, C: number, label: number): number {
  let mx = -Infinity;
  for (let c = 0; c < C; c++) mx = Math.max(mx, logits[off + c]);
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(logits[off + c] - mx);
  return mx + Math.log(s) - logits[off + label];
}
