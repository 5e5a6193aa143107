import type * as tfType from '@tensorflow/tfjs';
import { InvalidOptionError } from '../core/errors.ts';
import { validateTrainRecipe } from '../core/config.ts';
import type { Checkpoint, EpochStats, TrainConfig, TrainProgress } from '../core/run.ts';
import { IMAGE_BYTES, IMAGE_SIZE, type ImageSplit } from '../core/dataset.ts';
import { Rng } from '../core/rng.ts';
import { makeVariable, ResNet, type BnStats } from './resnet.ts';

type Tf = typeof tfType;

export type { Checkpoint, EpochStats, TrainConfig, TrainProgress } from '../core/run.ts';

/** Loss clamp for trajectories (SPEC §4). */
export const LOSS_CLAMP = 100;
const BETA1 = 0.9;
const BETA2 = 0.999;
const ADAM_EPS = 1e-8;
/** How many steps of losses to leave on the device before reading them back (no sync per step). */
const READBACK_EVERY = 8;

/** Validates a recipe, naming the bad value (the same limits as a run configuration). */
export function checkTrainConfig(c: TrainConfig): void {
  validateTrainRecipe(c);
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

/**
 * The training engine (SPEC §4): a ResNet trained with AdamW (decoupled weight decay) and a
 * per-step cosine schedule from `lr` to 0, seeded shuffling, fixed batch shapes (the last batch is
 * padded with repeats whose loss is masked out), one `tf.tidy` per step, losses read back
 * asynchronously every few steps. After every epoch it appends one column of per-example losses
 * to the trajectory matrix. `tf` is whatever tfjs the caller set up (CPU in Node, WebGPU in a
 * worker).
 */
export class Trainer {
  readonly model: ResNet;
  readonly config: TrainConfig;
  readonly count: number;
  readonly numClasses: number;
  /** count × epochs, row-major. */
  readonly trajectories: Float32Array;
  readonly history: EpochStats[] = [];
  epoch = 0;
  step = 0;
  private readonly tf: Tf;
  private readonly data: ImageSplit;
  private rng: Rng;
  private readonly m = new Map<string, tfType.Variable>();
  private readonly v = new Map<string, tfType.Variable>();
  private readonly norm: { mean: number[]; std: number[] };
  private readonly batchBuf: Float32Array;
  private startTime = 0;
  private imagesSeen = 0;
  private warmedUp = false;

  constructor(
    tf: Tf,
    config: TrainConfig,
    data: ImageSplit,
    numClasses: number,
    checkpoint?: Checkpoint,
  ) {
    checkTrainConfig(config);
    if (data.count < 1) throw new InvalidOptionError('the training set is empty');
    this.tf = tf;
    this.config = config;
    this.data = data;
    this.count = data.count;
    this.numClasses = numClasses;
    this.model = new ResNet(tf, {
      name: config.model,
      width: config.width,
      numClasses,
      seed: config.seed,
    });
    for (const [name, p] of this.model.params) {
      this.m.set(name, makeVariable(tf, tf.zerosLike(p), false));
      this.v.set(name, makeVariable(tf, tf.zerosLike(p), false));
    }
    this.norm = channelStats(data.images);
    this.batchBuf = new Float32Array(config.batchSize * IMAGE_BYTES);
    this.trajectories = new Float32Array(data.count * config.epochs);
    this.rng = new Rng(config.seed).fork('train');
    if (checkpoint) this.restore(checkpoint);
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
    const tf = this.tf;
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
    const pending: {
      loss: tfType.Tensor;
      correct: tfType.Tensor;
      perExample?: tfType.Tensor;
      idx: Uint32Array;
      real: number;
    }[] = [];
    const drain = async () => {
      for (const p of pending.splice(0)) {
        const [l, c] = await Promise.all([p.loss.data(), p.correct.data()]);
        lossSum += l[0] * p.real;
        correct += c[0];
        if (p.perExample) {
          const pe = await p.perExample.data();
          for (let j = 0; j < p.real; j++)
            this.trajectories[p.idx[j] * this.config.epochs + epochCol] = Math.min(
              pe[j],
              LOSS_CLAMP,
            );
          p.perExample.dispose();
        }
        p.loss.dispose();
        p.correct.dispose();
      }
    };
    for (let s = 0; s < steps; s++) {
      if (shouldStop && (await shouldStop())) {
        await drain();
        return null;
      }
      const idx = order.subarray(s * B, Math.min((s + 1) * B, this.count));
      const real = idx.length;
      const { x, y, mask, labels } = this.makeBatch(
        idx,
        order,
        this.config.augment ? augRng : null,
      );
      const lr = this.learningRate(this.step);
      const out = tf.tidy(() => {
        const stats: BnStats = [];
        let logitsKept: tfType.Tensor | null = null;
        const { value, grads } = tf.variableGrads(() => {
          const logits = this.model.apply(x, true, stats);
          logitsKept = tf.keep(logits);
          const ce = tf.losses.softmaxCrossEntropy(
            y,
            logits,
            undefined,
            undefined,
            tf.Reduction.NONE,
          );
          return tf.div(tf.sum(tf.mul(ce, mask)), tf.sum(mask)) as tfType.Scalar;
        }, [...this.model.params.values()]);
        this.applyAdamW(grads, lr);
        this.model.updateRunningStats(stats);
        for (const st of stats) {
          st.mean.dispose();
          st.variance.dispose();
        }
        const logits = logitsKept as unknown as tfType.Tensor2D;
        const hit = tf.mul(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'), mask);
        const res = {
          loss: value,
          correct: tf.sum(hit),
          perExample: fromTrain ? perExampleLoss(tf, logits, labels) : undefined,
        };
        logits.dispose();
        return res;
      });
      x.dispose();
      y.dispose();
      mask.dispose();
      labels.dispose();
      this.step++;
      seen += real;
      this.imagesSeen += real;
      pending.push({ ...out, idx: Uint32Array.from(idx), real });
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
    const mem = tf.memory();
    const stats: EpochStats = {
      epoch: this.epoch,
      loss: lossSum / seen,
      accuracy: correct / seen,
      seconds,
      imagesPerSecond: seen / seconds,
      tensors: mem.numTensors,
      bytes: mem.numBytes,
    };
    this.history.push(stats);
    this.epoch++;
    return stats;
  }

  /** Loss of every example of `split` in evaluation mode (clamped at 100), in order. */
  async perExampleLosses(
    split: ImageSplit,
    onBatch?: (done: number) => void,
  ): Promise<Float32Array> {
    const out = new Float32Array(split.count);
    await this.forEachEvalBatch(split, async (logits, labels, start, real) => {
      const l = this.tf.tidy(() => perExampleLoss(this.tf, logits, labels));
      const v = await l.data();
      l.dispose();
      for (let j = 0; j < real; j++) out[start + j] = Math.min(v[j], LOSS_CLAMP);
      onBatch?.(start + real);
    });
    return out;
  }

  /** Top-1 predictions of the model (evaluation mode) for every image of `split`. */
  async predict(split: ImageSplit, onBatch?: (done: number) => void): Promise<Uint8Array> {
    const out = new Uint8Array(split.count);
    await this.forEachEvalBatch(split, async (logits, _labels, start, real) => {
      const a = this.tf.argMax(logits, 1);
      const v = await a.data();
      a.dispose();
      for (let j = 0; j < real; j++) out[start + j] = v[j];
      onBatch?.(start + real);
    });
    return out;
  }

  /** A checkpoint of the current state (call between epochs). */
  async checkpoint(): Promise<Checkpoint> {
    const read = async (m: Map<string, tfType.Variable>) => {
      const o: Record<string, Float32Array> = {};
      for (const [k, v] of m) o[k] = (await v.data()) as Float32Array;
      return o;
    };
    return {
      version: 1,
      config: this.config,
      numClasses: this.numClasses,
      count: this.count,
      epoch: this.epoch,
      step: this.step,
      rngState: this.rng.state(),
      weights: await this.model.getWeights(),
      optimizer: { m: await read(this.m), v: await read(this.v) },
      trajectories: this.trajectories.slice(),
      history: this.history.map((h) => ({ ...h })),
    };
  }

  dispose(): void {
    this.model.dispose();
    for (const v of [...this.m.values(), ...this.v.values()]) v.dispose();
  }

  private restore(c: Checkpoint): void {
    if (c.count !== this.count || c.numClasses !== this.numClasses) {
      throw new InvalidOptionError(
        `checkpoint is for ${c.count} examples × ${c.numClasses} classes, not ${this.count} × ${this.numClasses}`,
      );
    }
    this.model.setWeights(c.weights);
    for (const [name, m] of this.m) {
      const mv = c.optimizer.m[name];
      const vv = c.optimizer.v[name];
      if (!mv || !vv)
        throw new InvalidOptionError(`checkpoint is missing optimizer state for ${name}`);
      this.tf.tidy(() => {
        m.assign(this.tf.tensor(mv, m.shape));
        this.v.get(name)!.assign(this.tf.tensor(vv, m.shape));
      });
    }
    this.epoch = c.epoch;
    this.step = c.step;
    this.rng = new Rng(c.rngState);
    this.trajectories.set(c.trajectories);
    this.history.push(...c.history);
  }

  /** AdamW: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; p ← p − lr·(m̂/(√v̂ + ε) + wd·p). */
  private applyAdamW(grads: tfType.NamedTensorMap, lr: number): void {
    const tf = this.tf;
    const t = this.step + 1;
    const bc1 = 1 - BETA1 ** t;
    const bc2 = 1 - BETA2 ** t;
    const wd = this.config.weightDecay;
    for (const [name, p] of this.model.params) {
      const g = grads[p.name];
      if (!g) continue;
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      const m1 = tf.add(tf.mul(m, BETA1), tf.mul(g, 1 - BETA1));
      const v1 = tf.add(tf.mul(v, BETA2), tf.mul(tf.square(g), 1 - BETA2));
      m.assign(m1);
      v.assign(v1);
      const update = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), ADAM_EPS));
      p.assign(tf.sub(p, tf.mul(tf.add(update, tf.mul(p, wd)), lr)));
    }
  }

  private makeBatch(idx: Uint32Array, order: Uint32Array, aug: Rng | null) {
    const tf = this.tf;
    const B = this.config.batchSize;
    const labels = new Int32Array(B);
    const mask = new Float32Array(B);
    for (let j = 0; j < B; j++) {
      // pad with repeats of the epoch's first examples: real images keep BatchNorm statistics sane
      const i = j < idx.length ? idx[j] : order[j - idx.length];
      labels[j] = this.data.labels[i];
      mask[j] = j < idx.length ? 1 : 0;
      this.writeImage(i, j, aug);
    }
    return {
      x: tf.tensor4d(this.batchBuf, [B, IMAGE_SIZE, IMAGE_SIZE, 3]),
      y: tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), this.numClasses)),
      mask: tf.tensor1d(mask),
      labels: tf.tensor1d(labels, 'int32'),
    };
  }

  /** Normalizes image i of the training data into slot j of the batch buffer (with augmentation). */
  private writeImage(i: number, j: number, aug: Rng | null, split: ImageSplit = this.data): void {
    const S = IMAGE_SIZE;
    const src = split.images;
    const base = i * IMAGE_BYTES;
    const out = j * IMAGE_BYTES;
    const { mean, std } = this.norm;
    const flip = aug ? aug.int(2) === 1 : false;
    const dy = aug ? aug.int(9) - 4 : 0;
    const dx = aug ? aug.int(9) - 4 : 0;
    for (let y = 0; y < S; y++) {
      const sy = y + dy;
      for (let x = 0; x < S; x++) {
        const sx = (flip ? S - 1 - x : x) + dx;
        const o = out + (y * S + x) * 3;
        if (sy < 0 || sy >= S || sx < 0 || sx >= S) {
          for (let c = 0; c < 3; c++) this.batchBuf[o + c] = -mean[c] / std[c];
        } else {
          const p = base + (sy * S + sx) * 3;
          for (let c = 0; c < 3; c++) this.batchBuf[o + c] = (src[p + c] / 255 - mean[c]) / std[c];
        }
      }
    }
  }

  private async forEachEvalBatch(
    split: ImageSplit,
    fn: (
      logits: tfType.Tensor2D,
      labels: tfType.Tensor1D,
      start: number,
      real: number,
    ) => Promise<void>,
  ): Promise<void> {
    const tf = this.tf;
    const B = this.config.batchSize;
    for (let start = 0; start < split.count; start += B) {
      const real = Math.min(B, split.count - start);
      const labels = new Int32Array(B);
      for (let j = 0; j < B; j++) {
        const i = start + (j < real ? j : 0);
        labels[j] = split.labels[i];
        this.writeImage(i, j, null, split);
      }
      const x = tf.tensor4d(this.batchBuf, [B, IMAGE_SIZE, IMAGE_SIZE, 3]);
      const lab = tf.tensor1d(labels, 'int32');
      const logits = tf.tidy(() => this.model.apply(x, false));
      x.dispose();
      try {
        await fn(logits, lab, start, real);
      } finally {
        logits.dispose();
        lab.dispose();
      }
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

/** Per-example cross-entropy −log softmax(logits)[label], [B]. */
export function perExampleLoss(
  tf: Tf,
  logits: tfType.Tensor2D,
  labels: tfType.Tensor1D,
): tfType.Tensor1D {
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.sum(tf.mul(logp, tf.oneHot(labels, logits.shape[1])), 1)) as tfType.Tensor1D;
}
