import type * as tfType from '@tensorflow/tfjs';
import { IMAGE_SIZE } from '../core/dataset.ts';
import { InvalidOptionError } from '../core/errors.ts';
import type {
  EngineModel,
  EngineModelConfig,
  EvalResult,
  ModelState,
  NamedArrays,
  PendingStep,
  TrainBatch,
  TrainingEngine,
} from './engine.ts';
import { makeVariable, ResNet, type BnStats } from './resnet.ts';

type Tf = typeof tfType;

const BETA1 = 0.9;
const BETA2 = 0.999;
const ADAM_EPS = 1e-8;

/**
 * The tfjs engine on whatever backend `tf` has active (WebGPU, WebGL or CPU): one `tf.tidy` per
 * step, results left on the device until `read` (no GPU sync per step).
 */
export function createTfjsEngine(tf: Tf): TrainingEngine {
  return {
    name: `tfjs-${tf.getBackend()}`,
    threads: 1,
    createModel: async (config) => new TfjsModel(tf, config),
  };
}

class TfjsModel implements EngineModel {
  readonly config: EngineModelConfig;
  readonly model: ResNet;
  private readonly tf: Tf;
  private readonly m = new Map<string, tfType.Variable>();
  private readonly v = new Map<string, tfType.Variable>();

  constructor(tf: Tf, config: EngineModelConfig) {
    this.tf = tf;
    this.config = config;
    this.model = new ResNet(tf, config);
    for (const [name, p] of this.model.params) {
      this.m.set(name, makeVariable(tf, tf.zerosLike(p), false));
      this.v.set(name, makeVariable(tf, tf.zerosLike(p), false));
    }
  }

  get parameterCount(): number {
    return this.model.parameterCount;
  }

  get featureDim(): number {
    return this.model.params.get('fc.w')!.shape[0];
  }

  describe(): string {
    return this.model.describe();
  }

  memory(): { bytes: number; tensors: number } {
    const m = this.tf.memory();
    return { bytes: m.numBytes, tensors: m.numTensors };
  }

  trainStep(batch: TrainBatch): PendingStep {
    const tf = this.tf;
    const B = this.config.batchSize;
    const C = this.config.numClasses;
    const x = tf.tensor4d(batch.x, [B, IMAGE_SIZE, IMAGE_SIZE, 3]);
    const out = tf.tidy(() => {
      const labels = tf.tensor1d(batch.labels, 'int32');
      const y = tf.oneHot(labels, C);
      const mask = tf.tensor1d(batch.mask);
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
      this.applyAdamW(grads, batch);
      this.model.updateRunningStats(stats);
      for (const st of stats) {
        st.mean.dispose();
        st.variance.dispose();
      }
      const logits = logitsKept as unknown as tfType.Tensor2D;
      // A count of real rows (mask > 0), whatever their loss weights, as the WebAssembly engine's.
      const hit = tf.mul(
        tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'),
        tf.cast(tf.greater(mask, 0), 'float32'),
      );
      const res = {
        loss: value,
        correct: tf.sum(hit),
        perExample: batch.perExample ? perExampleLoss(tf, logits, labels) : undefined,
      };
      logits.dispose();
      return res;
    });
    x.dispose();
    return {
      read: async () => {
        try {
          const [l, c] = await Promise.all([out.loss.data(), out.correct.data()]);
          const pe = out.perExample ? ((await out.perExample.data()) as Float32Array) : undefined;
          return { loss: l[0], correct: c[0], perExample: pe };
        } finally {
          out.loss.dispose();
          out.correct.dispose();
          out.perExample?.dispose();
        }
      },
    };
  }

  async evaluate(xs: Float32Array): Promise<EvalResult> {
    const tf = this.tf;
    const B = this.config.batchSize;
    const x = tf.tensor4d(xs, [B, IMAGE_SIZE, IMAGE_SIZE, 3]);
    const [logits, features] = tf.tidy(() => {
      const f = this.model.features(x, false);
      return [this.model.head(f), f];
    });
    x.dispose();
    try {
      return {
        logits: (await logits.data()) as Float32Array,
        features: (await features.data()) as Float32Array,
      };
    } finally {
      logits.dispose();
      features.dispose();
    }
  }

  async getState(): Promise<ModelState> {
    const read = async (m: Map<string, tfType.Variable>) => {
      const o: NamedArrays = {};
      for (const [k, v] of m) o[k] = (await v.data()) as Float32Array;
      return o;
    };
    return { weights: await this.model.getWeights(), m: await read(this.m), v: await read(this.v) };
  }

  setState(state: ModelState): void {
    for (const name of this.m.keys())
      if (!state.m[name] || !state.v[name])
        throw new InvalidOptionError(`checkpoint is missing optimizer state for ${name}`);
    this.model.setWeights(state.weights);
    for (const [name, m] of this.m) {
      this.tf.tidy(() => {
        m.assign(this.tf.tensor(state.m[name], m.shape));
        this.v.get(name)!.assign(this.tf.tensor(state.v[name], m.shape));
      });
    }
  }

  dispose(): void {
    this.model.dispose();
    for (const v of [...this.m.values(), ...this.v.values()]) v.dispose();
  }

  /** AdamW: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; p ← p − lr·(m̂/(√v̂ + ε) + wd·p). */
  private applyAdamW(grads: tfType.NamedTensorMap, batch: TrainBatch): void {
    const tf = this.tf;
    const bc1 = 1 - BETA1 ** batch.t;
    const bc2 = 1 - BETA2 ** batch.t;
    const { weightDecay: wd, lr } = batch;
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
