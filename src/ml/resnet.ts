import type * as tfType from '@tensorflow/tfjs';
import { InvalidOptionError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';

type Tf = typeof tfType;
type Tensor4D = tfType.Tensor4D;

export const MODEL_NAMES = ['resnet8', 'resnet20', 'resnet18', 'resnet50'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export interface ModelConfig {
  name: ModelName;
  /** Channel multiplier (1 = the standard widths); widths are rounded, at least 4. */
  width: number;
  numClasses: number;
  /** Seed of the weight initialization. */
  seed: number;
}

interface Arch {
  widths: number[];
  blocks: number[];
  bottleneck: boolean;
}

/** CIFAR-stem ResNets: 3×3 stride-1 stem, no max-pool (as in the paper's reference code). */
const ARCHS: Record<ModelName, Arch> = {
  resnet8: { widths: [16, 32, 64], blocks: [1, 1, 1], bottleneck: false },
  resnet20: { widths: [16, 32, 64], blocks: [3, 3, 3], bottleneck: false },
  resnet18: { widths: [64, 128, 256, 512], blocks: [2, 2, 2, 2], bottleneck: false },
  resnet50: { widths: [64, 128, 256, 512], blocks: [3, 4, 6, 3], bottleneck: true },
};

export function isModelName(s: string): s is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(s);
}

/** Batch statistics collected by a training-mode forward pass, to update running averages. */
/** `n` = values per channel the statistics were taken over (B·H·W). */
export type BnStats = {
  name: string;
  n: number;
  mean: tfType.Tensor1D;
  variance: tfType.Tensor1D;
}[];

const BN_EPS = 1e-5;
let nextModelId = 0;
/** Running-average momentum, PyTorch's convention: running = (1 − m)·running + m·batch. */
const BN_MOMENTUM = 0.1;

/** One convolution (no bias) followed by BatchNorm: HWIO weights `${name}.w` [k, k, cin, cout]. */
export interface ConvSpec {
  name: string;
  k: number;
  cin: number;
  cout: number;
  stride: number;
}

/** One residual block: its convolutions in order (2 basic, 3 bottleneck) and optional projection. */
export interface BlockSpec {
  prefix: string;
  convs: ConvSpec[];
  shortcut: ConvSpec | null;
}

/** A named parameter or buffer with its shape and initial values. */
export interface TensorSpec {
  name: string;
  shape: number[];
  values: Float32Array;
}

/**
 * The architecture of a model as plain data (no tfjs): stem, blocks, head width, and every
 * parameter and BatchNorm buffer in the fixed order of checkpoints, with its seeded initial value
 * (He-normal convolutions, uniform ±1/√D FC weights, zero FC bias, γ = 1, β = 0, running mean 0,
 * running variance 1). Every engine starts from these values, so runs match across engines.
 */
export interface ResNetLayout {
  stem: ConvSpec;
  blocks: BlockSpec[];
  /** Width of the penultimate (GAP) features, D. */
  featureDim: number;
  numClasses: number;
  params: TensorSpec[];
  buffers: TensorSpec[];
}

/** Builds the layout (and initial values) of `config`; throws InvalidOptionError on a bad config. */
export function resnetLayout(config: ModelConfig): ResNetLayout {
  if (!isModelName(config.name))
    throw new InvalidOptionError(
      `unknown model "${config.name}"; choose one of ${MODEL_NAMES.join(', ')}`,
    );
  if (!(config.width > 0 && config.width <= 8))
    throw new InvalidOptionError(`width multiplier ${config.width} must be in (0, 8]`);
  const arch = ARCHS[config.name];
  const rng = new Rng(config.seed).fork('init');
  const w = (c: number) => Math.max(4, Math.round(c * config.width));
  const params: TensorSpec[] = [];
  const buffers: TensorSpec[] = [];
  const addParam = (
    name: string,
    shape: number[],
    scale: number,
    kind: 'normal' | 'uniform' | 'zeros' | 'ones',
  ) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (kind === 'normal') for (let i = 0; i < size; i++) values[i] = rng.normal() * scale;
    else if (kind === 'uniform')
      for (let i = 0; i < size; i++) values[i] = (rng.float() * 2 - 1) * scale;
    else if (kind === 'ones') values.fill(1);
    params.push({ name, shape, values });
  };
  const conv = (spec: ConvSpec): ConvSpec => {
    addParam(
      `${spec.name}.w`,
      [spec.k, spec.k, spec.cin, spec.cout],
      Math.sqrt(2 / (spec.k * spec.k * spec.cin)),
      'normal',
    );
    addParam(`${spec.name}.g`, [spec.cout], 0, 'ones');
    addParam(`${spec.name}.b`, [spec.cout], 0, 'zeros');
    buffers.push({
      name: `${spec.name}.rm`,
      shape: [spec.cout],
      values: new Float32Array(spec.cout),
    });
    buffers.push({
      name: `${spec.name}.rv`,
      shape: [spec.cout],
      values: new Float32Array(spec.cout).fill(1),
    });
    return spec;
  };
  let cin = 3;
  const stemWidth = w(arch.widths[0]);
  const stem = conv({ name: 'stem', k: 3, cin, cout: stemWidth, stride: 1 });
  cin = stemWidth;
  const blocks: BlockSpec[] = [];
  arch.widths.forEach((width, s) => {
    const mid = w(width);
    const cout = arch.bottleneck ? mid * 4 : mid;
    for (let b = 0; b < arch.blocks[s]; b++) {
      const stride = b === 0 && s > 0 ? 2 : 1;
      const p = `s${s}b${b}`;
      const convs = arch.bottleneck
        ? [
            conv({ name: `${p}.c1`, k: 1, cin, cout: mid, stride: 1 }),
            conv({ name: `${p}.c2`, k: 3, cin: mid, cout: mid, stride }),
            conv({ name: `${p}.c3`, k: 1, cin: mid, cout, stride: 1 }),
          ]
        : [
            conv({ name: `${p}.c1`, k: 3, cin, cout, stride }),
            conv({ name: `${p}.c2`, k: 3, cin: cout, cout, stride: 1 }),
          ];
      const shortcut =
        stride !== 1 || cin !== cout ? conv({ name: `${p}.sc`, k: 1, cin, cout, stride }) : null;
      blocks.push({ prefix: p, convs, shortcut });
      cin = cout;
    }
  });
  addParam('fc.w', [cin, config.numClasses], 1 / Math.sqrt(cin), 'uniform');
  addParam('fc.b', [config.numClasses], 0, 'zeros');
  return { stem, blocks, featureDim: cin, numClasses: config.numClasses, params, buffers };
}

/** "ResNet-20 ×1 · 0.27 M parameters". */
export function describeModel(config: ModelConfig, parameterCount: number): string {
  const pretty = config.name.replace('resnet', 'ResNet-');
  return `${pretty} ×${config.width} · ${(parameterCount / 1e6).toFixed(2)} M parameters`;
}

/**
 * A ResNet (basic or bottleneck blocks) on NHWC float32 input [B, 32, 32, 3] → logits [B, C],
 * with BatchNorm and He-normal initialization drawn from `seed` (identical across backends).
 * Written with raw ops and named variables (not tf.layers) so the training loop controls
 * BatchNorm's running statistics, AdamW and checkpointing exactly.
 */
export class ResNet {
  readonly config: ModelConfig;
  /** Trainable parameters, by name, in a fixed order. */
  readonly params = new Map<string, tfType.Variable>();
  /** BatchNorm running means and variances (not trained). */
  readonly buffers = new Map<string, tfType.Variable>();
  private readonly tf: Tf;
  private readonly layout: ResNetLayout;
  private readonly convs: ConvSpec[] = [];
  /** tfjs variable names are global: a per-instance suffix lets several models coexist. */
  private readonly uid = `m${nextModelId++}`;

  constructor(tf: Tf, config: ModelConfig) {
    this.tf = tf;
    this.config = config;
    this.layout = resnetLayout(config);
    for (const c of [
      this.layout.stem,
      ...this.layout.blocks.flatMap((b) => [...b.convs, ...(b.shortcut ? [b.shortcut] : [])]),
    ])
      this.convs.push(c);
    for (const p of this.layout.params)
      this.params.set(
        p.name,
        makeVariable(tf, tf.tensor(p.values, p.shape), true, `${this.uid}/${p.name}`),
      );
    for (const p of this.layout.buffers)
      this.buffers.set(
        p.name,
        makeVariable(tf, tf.tensor(p.values, p.shape), false, `${this.uid}/${p.name}`),
      );
  }

  /** Number of trainable scalars. */
  get parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** Human-readable summary, e.g. "ResNet-20 ×1 · 0.27 M parameters". */
  describe(): string {
    return describeModel(this.config, this.parameterCount);
  }

  /**
   * Forward pass: x [B, 32, 32, 3] (normalized float32) → logits [B, numClasses]. In training
   * mode BatchNorm uses batch statistics and, if `stats` is given, pushes them (kept outside any
   * tidy) for `updateRunningStats`.
   */
  apply(x: Tensor4D, training: boolean, stats?: BnStats): tfType.Tensor2D {
    return this.head(this.features(x, training, stats));
  }

  /** Penultimate features: the global-average-pooled last block output, [B, D]. */
  features(x: Tensor4D, training: boolean, stats?: BnStats): tfType.Tensor2D {
    const tf = this.tf;
    const conv = (name: string, input: Tensor4D, relu: boolean): Tensor4D => {
      const spec = this.convs.find((c) => c.name === name)!;
      const y = tf.conv2d(
        input,
        this.params.get(`${name}.w`) as tfType.Tensor4D,
        spec.stride,
        'same',
      );
      const z = this.bn(name, y, training, stats);
      return relu ? tf.relu(z) : z;
    };
    let h = conv('stem', x, true);
    for (const block of this.layout.blocks) {
      let out = h;
      block.convs.forEach((c, i) => {
        out = conv(c.name, out, i < block.convs.length - 1);
      });
      const shortcut = block.shortcut ? conv(block.shortcut.name, h, false) : h;
      h = tf.relu(tf.add(out, shortcut)) as Tensor4D;
    }
    return tf.mean(h, [1, 2]) as tfType.Tensor2D;
  }

  /** The classifier: features [B, D] → logits [B, C] = features·W + b. */
  head(pooled: tfType.Tensor2D): tfType.Tensor2D {
    const tf = this.tf;
    return tf.add(
      tf.matMul(pooled, this.params.get('fc.w') as tfType.Tensor2D),
      this.params.get('fc.b')!,
    );
  }

  /** running ← (1 − 0.1)·running + 0.1·batch (variance unbiased by n/(n−1), as PyTorch does). */
  updateRunningStats(stats: BnStats): void {
    const tf = this.tf;
    tf.tidy(() => {
      for (const s of stats) {
        const unbias = s.n > 1 ? s.n / (s.n - 1) : 1;
        const rm = this.buffers.get(`${s.name}.rm`)!;
        const rv = this.buffers.get(`${s.name}.rv`)!;
        rm.assign(tf.add(tf.mul(rm, 1 - BN_MOMENTUM), tf.mul(s.mean, BN_MOMENTUM)));
        rv.assign(tf.add(tf.mul(rv, 1 - BN_MOMENTUM), tf.mul(s.variance, BN_MOMENTUM * unbias)));
      }
    });
  }

  /** All variables (parameters and buffers) as named float arrays: a checkpoint's weights. */
  async getWeights(): Promise<Record<string, Float32Array>> {
    const out: Record<string, Float32Array> = {};
    for (const [name, v] of [...this.params, ...this.buffers])
      out[name] = (await v.data()) as Float32Array;
    return out;
  }

  /** Restores variables written by getWeights; names and sizes must match. */
  setWeights(weights: Record<string, Float32Array>): void {
    for (const [name, v] of [...this.params, ...this.buffers]) {
      const w = weights[name];
      if (!w || w.length !== v.size)
        throw new InvalidOptionError(
          `checkpoint does not match the model: ${name} is ${w ? w.length : 'missing'}, expected ${v.size} values`,
        );
      this.tf.tidy(() => v.assign(this.tf.tensor(w, v.shape)));
    }
  }

  dispose(): void {
    for (const v of [...this.params.values(), ...this.buffers.values()]) v.dispose();
    this.params.clear();
    this.buffers.clear();
  }

  private bn(name: string, y: Tensor4D, training: boolean, stats?: BnStats): Tensor4D {
    const tf = this.tf;
    const gamma = this.params.get(`${name}.g`)!;
    const beta = this.params.get(`${name}.b`)!;
    if (!training) {
      return tf.batchNorm(
        y,
        this.buffers.get(`${name}.rm`)!,
        this.buffers.get(`${name}.rv`)!,
        beta,
        gamma,
        BN_EPS,
      ) as Tensor4D;
    }
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    if (stats)
      stats.push({
        name,
        n: y.shape[0] * y.shape[1] * y.shape[2],
        mean: tf.keep(mean) as tfType.Tensor1D,
        variance: tf.keep(variance) as tfType.Tensor1D,
      });
    return tf.batchNorm(y, mean, variance, beta, gamma, BN_EPS) as Tensor4D;
  }
}

/**
 * A variable holding `init`'s values; `init` itself is disposed. (tf.variable shares the data
 * but leaves the initial tensor registered: one leaked tensor per variable otherwise.)
 */
export function makeVariable(
  tf: Tf,
  init: tfType.Tensor,
  trainable: boolean,
  name?: string,
): tfType.Variable {
  const v = tf.variable(init, trainable, name);
  init.dispose();
  return v;
}
