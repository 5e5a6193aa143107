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

interface ConvSpec {
  name: string;
  k: number;
  cin: number;
  cout: number;
  stride: number;
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
  private readonly arch: Arch;
  private readonly convs: ConvSpec[] = [];
  /** tfjs variable names are global: a per-instance suffix lets several models coexist. */
  private readonly uid = `m${nextModelId++}`;

  constructor(tf: Tf, config: ModelConfig) {
    if (!isModelName(config.name))
      throw new InvalidOptionError(
        `unknown model "${config.name}"; choose one of ${MODEL_NAMES.join(', ')}`,
      );
    if (!(config.width > 0 && config.width <= 8))
      throw new InvalidOptionError(`width multiplier ${config.width} must be in (0, 8]`);
    this.tf = tf;
    this.config = config;
    this.arch = ARCHS[config.name];
    const rng = new Rng(config.seed).fork('init');
    const w = (c: number) => Math.max(4, Math.round(c * config.width));
    const addConv = (spec: ConvSpec) => {
      this.convs.push(spec);
      const fanIn = spec.k * spec.k * spec.cin;
      this.addParam(
        `${spec.name}.w`,
        [spec.k, spec.k, spec.cin, spec.cout],
        rng,
        Math.sqrt(2 / fanIn),
      );
      this.addBn(spec.name, spec.cout);
    };
    let cin = 3;
    const stem = w(this.arch.widths[0]);
    addConv({ name: 'stem', k: 3, cin, cout: stem, stride: 1 });
    cin = stem;
    this.arch.widths.forEach((width, s) => {
      const mid = w(width);
      const cout = this.arch.bottleneck ? mid * 4 : mid;
      for (let b = 0; b < this.arch.blocks[s]; b++) {
        const stride = b === 0 && s > 0 ? 2 : 1;
        const p = `s${s}b${b}`;
        if (this.arch.bottleneck) {
          addConv({ name: `${p}.c1`, k: 1, cin, cout: mid, stride: 1 });
          addConv({ name: `${p}.c2`, k: 3, cin: mid, cout: mid, stride });
          addConv({ name: `${p}.c3`, k: 1, cin: mid, cout, stride: 1 });
        } else {
          addConv({ name: `${p}.c1`, k: 3, cin, cout, stride });
          addConv({ name: `${p}.c2`, k: 3, cin: cout, cout, stride: 1 });
        }
        if (stride !== 1 || cin !== cout) addConv({ name: `${p}.sc`, k: 1, cin, cout, stride });
        cin = cout;
      }
    });
    const bound = 1 / Math.sqrt(cin);
    this.addParam('fc.w', [cin, config.numClasses], rng, bound, 'uniform');
    this.addParam('fc.b', [config.numClasses], rng, 0, 'zeros');
  }

  /** Number of trainable scalars. */
  get parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** Human-readable summary, e.g. "ResNet-20 ×1 · 0.27 M parameters". */
  describe(): string {
    const pretty = this.config.name.replace('resnet', 'ResNet-');
    return `${pretty} ×${this.config.width} · ${(this.parameterCount / 1e6).toFixed(2)} M parameters`;
  }

  /**
   * Forward pass: x [B, 32, 32, 3] (normalized float32) → logits [B, numClasses]. In training
   * mode BatchNorm uses batch statistics and, if `stats` is given, pushes them (kept outside any
   * tidy) for `updateRunningStats`.
   */
  apply(x: Tensor4D, training: boolean, stats?: BnStats): tfType.Tensor2D {
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
    this.arch.widths.forEach((_, s) => {
      for (let b = 0; b < this.arch.blocks[s]; b++) {
        const p = `s${s}b${b}`;
        let out: Tensor4D;
        if (this.arch.bottleneck)
          out = conv(`${p}.c3`, conv(`${p}.c2`, conv(`${p}.c1`, h, true), true), false);
        else out = conv(`${p}.c2`, conv(`${p}.c1`, h, true), false);
        const shortcut = this.params.has(`${p}.sc.w`) ? conv(`${p}.sc`, h, false) : h;
        h = tf.relu(tf.add(out, shortcut)) as Tensor4D;
      }
    });
    const pooled = tf.mean(h, [1, 2]) as tfType.Tensor2D;
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

  private addBn(name: string, c: number): void {
    const tf = this.tf;
    this.params.set(`${name}.g`, makeVariable(tf, tf.ones([c]), true, `${this.uid}/${name}.g`));
    this.params.set(`${name}.b`, makeVariable(tf, tf.zeros([c]), true, `${this.uid}/${name}.b`));
    this.buffers.set(
      `${name}.rm`,
      makeVariable(tf, tf.zeros([c]), false, `${this.uid}/${name}.rm`),
    );
    this.buffers.set(`${name}.rv`, makeVariable(tf, tf.ones([c]), false, `${this.uid}/${name}.rv`));
  }

  private addParam(
    name: string,
    shape: number[],
    rng: Rng,
    scale: number,
    kind: 'normal' | 'uniform' | 'zeros' = 'normal',
  ): void {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (kind === 'normal') for (let i = 0; i < size; i++) values[i] = rng.normal() * scale;
    else if (kind === 'uniform')
      for (let i = 0; i < size; i++) values[i] = (rng.float() * 2 - 1) * scale;
    const tf = this.tf;
    this.params.set(name, makeVariable(tf, tf.tensor(values, shape), true, `${this.uid}/${name}`));
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
