import { dct2Into } from '../attacks/dct.ts';
import { IMAGE_BYTES, IMAGE_SIZE, CHANNELS } from '../dataset.ts';
import { InvalidOptionError } from '../errors.ts';
import { PROBE_BACKDOOR, PROBE_CLEAN } from '../probes.ts';
import { Rng } from '../rng.ts';
import {
  checkInputs,
  checkOption,
  wholeAtLeast,
  judgedRows,
  requireImages,
  type DefenseInputs,
  type DefenseResult,
  type FrequencyDetails,
} from './types.ts';

/** Length of one image's frequency feature vector: 3 channels × 32 × 32 DCT coefficients. */
export const FREQUENCY_FEATURES = IMAGE_BYTES;

/**
 * Frequency features of image `row` of an N × 32 × 32 × 3 uint8 NHWC buffer, written to `out`
 * (3072 values): out[c·1024 + k·32 + l] = ln(1 + |X_c[k][l]|), X_c the orthonormal 2-D DCT-II of
 * channel c (pixel values 0–255, so X_c[0][0] = 32·mean). ln(1 + ·) keeps zero coefficients finite.
 */
export function dctLogMagnitude(images: Uint8Array, row: number, out: Float64Array): void {
  const S = IMAGE_SIZE;
  const plane = S * S;
  const block = scratchBlock();
  for (let c = 0; c < CHANNELS; c++) {
    dct2Into(images, S, block, row * IMAGE_BYTES + c, CHANNELS);
    const o = c * plane;
    for (let i = 0; i < plane; i++) out[o + i] = Math.log1p(Math.abs(block[i]));
  }
}
let blockBuf: Float64Array | undefined;
const scratchBlock = () => (blockBuf ??= new Float64Array(IMAGE_SIZE * IMAGE_SIZE));

/** Options of Frequency analysis (training is full-batch Adam on standardized features). */
export interface FrequencyOptions {
  /** 'logistic' (default, see DEFAULT_FREQUENCY_MODEL) or 'mlp' (one hidden ReLU layer). */
  model?: 'logistic' | 'mlp';
  /** Full-batch Adam steps (default 300). */
  steps?: number;
  /** Adam step size (default 0.01). */
  learningRate?: number;
  /** L2 penalty λ/2·‖W‖² on the weights (default 0.01). */
  l2?: number;
  /** Hidden units of the MLP (default 16). */
  hidden?: number;
  /** Remove rows whose P(triggered) exceeds this (default 0.5). */
  threshold?: number;
}

/**
 * The default classifier: logistic regression. Measured with `BENCH_PART=quality npx tsx
 * bench/defenses.ts` (demo set, 5,000 images, all seven attacks at their default ratios, 100
 * probes per kind, seed 0), detection AUROC logistic / MLP (16 hidden units):
 *   mirrored-patch probes: patch 1.000 / 1.000, single-pix 0.680 / 0.689, blend-r 0.581 / 0.587,
 *     blend-p 0.497 / 0.490, sinusoid 0.381 / 0.390, warping 0.067 / 0.064, frequency 0.527 /
 *     0.521, all 0.271 / 0.270; training 3.7 s / 23.7 s;
 *   rotated-sinusoid probes: all 0.556 / 0.539 (the logistic model ahead on every attack).
 * The two separate the triggers equally well within ±0.04 and the MLP costs 3–6× the time, so
 * the linear model is the default. Why no gain: with 2n ≈ 200–500 training images against 3,072
 * features both fit their training probes perfectly, and what transfers to an attacker's trigger
 * is "extra energy at these frequencies" — linear in the log-magnitudes; the hidden layer only
 * adds room to fit the probes' own content. (The mirrored patch transfers perfectly because
 * flipping both axes multiplies DCT coefficient (k, l) by (−1)^(k+l): the magnitudes are the
 * patch's own. Warping scores below chance: resampling removes high-frequency energy.)
 */
export const DEFAULT_FREQUENCY_MODEL: 'logistic' | 'mlp' = 'logistic';

/** A trained classifier over standardized frequency features: P(triggered) of one image. */
interface Classifier {
  prob(z: Float64Array): number;
}

/**
 * Frequency analysis (Zeng et al., 2021; SPEC §10): a small classifier on the standardized
 * log-magnitude DCT of every channel (`dctLogMagnitude`; mean and standard deviation per feature
 * from the training probes) learns to tell the clean probes' images (0) from the backdoor probes'
 * images (1) — the same probes BaDLoss uses. Trained by full-batch Adam on the mean binary
 * cross-entropy + λ/2·‖W‖² from a seeded start, so it is deterministic from `seed`. Score of a
 * non-probe row = P(triggered); rows above `threshold` (0.5) are removed. The images of all N
 * rows are transformed one at a time, so memory stays O(probes × 3072).
 */
export function frequencyAnalysis(
  inp: DefenseInputs,
  opts: FrequencyOptions = {},
): DefenseResult<FrequencyDetails> {
  const n = checkInputs(inp);
  const images = requireImages(inp, 'Frequency analysis');
  const model = opts.model ?? DEFAULT_FREQUENCY_MODEL;
  if (model !== 'logistic' && model !== 'mlp')
    throw new InvalidOptionError(
      `frequency model "${String(model)}" is unknown; use logistic or mlp`,
    );
  const threshold = checkOption(
    opts.threshold ?? 0.5,
    (v) => v >= 0 && v <= 1,
    'frequency threshold',
    'in [0, 1]',
  );
  const settings = {
    steps: checkOption(opts.steps ?? 300, wholeAtLeast(1), 'training steps', 'a whole number ≥ 1'),
    lr: checkOption(opts.learningRate ?? 0.01, (v) => v > 0, 'learning rate', 'positive'),
    l2: checkOption(opts.l2 ?? 0.01, (v) => v >= 0, 'L2 penalty', '≥ 0'),
  };
  const hidden = checkOption(
    opts.hidden ?? 16,
    wholeAtLeast(1),
    'hidden units',
    'a whole number ≥ 1',
  );
  const clean: number[] = [];
  const triggered: number[] = [];
  inp.probeKind.forEach((k, i) => {
    if (k === PROBE_CLEAN) clean.push(i);
    else if (k === PROBE_BACKDOOR) triggered.push(i);
  });
  if (clean.length === 0 || triggered.length === 0)
    throw new InvalidOptionError(
      `Frequency analysis trains on clean and backdoor probes, but there are ${clean.length} clean and ${triggered.length} backdoor probes; add probes or leave it out`,
    );
  const F = FREQUENCY_FEATURES;
  const train = [...clean, ...triggered];
  const m = train.length;
  const X = new Float64Array(m * F);
  const y = new Float64Array(m);
  const feat = new Float64Array(F);
  train.forEach((r, j) => {
    dctLogMagnitude(images, r, feat);
    X.set(feat, j * F);
    y[j] = j >= clean.length ? 1 : 0;
  });
  const mu = new Float64Array(F);
  const sd = new Float64Array(F);
  for (let j = 0; j < m; j++) for (let f = 0; f < F; f++) mu[f] += X[j * F + f] / m;
  for (let j = 0; j < m; j++) for (let f = 0; f < F; f++) sd[f] += (X[j * F + f] - mu[f]) ** 2 / m;
  for (let f = 0; f < F; f++) sd[f] = sd[f] > 1e-12 ? Math.sqrt(sd[f]) : 1;
  for (let j = 0; j < m; j++)
    for (let f = 0; f < F; f++) X[j * F + f] = (X[j * F + f] - mu[f]) / sd[f];
  const rng = new Rng(inp.seed).fork('frequency');
  const clf =
    model === 'logistic'
      ? trainLogistic(X, y, m, F, settings)
      : trainMlp(X, y, m, F, { ...settings, hidden }, rng);
  let correct = 0;
  for (let j = 0; j < m; j++)
    if (clf.prob(X.subarray(j * F, (j + 1) * F)) > 0.5 === (y[j] === 1)) correct++;
  const scores = new Float32Array(n).fill(NaN);
  const removed: number[] = [];
  for (const i of judgedRows(inp.probeKind)) {
    dctLogMagnitude(images, i, feat);
    for (let f = 0; f < F; f++) feat[f] = (feat[f] - mu[f]) / sd[f];
    const p = clf.prob(feat);
    scores[i] = p;
    if (scores[i] > threshold) removed.push(i);
  }
  return {
    name: 'frequency',
    scores,
    removed,
    threshold,
    details: {
      kind: 'frequency',
      model,
      trainClean: clean.length,
      trainTriggered: triggered.length,
      trainAccuracy: correct / m,
      threshold,
    },
  };
}

interface TrainSettings {
  steps: number;
  lr: number;
  l2: number;
}

const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/** Adam state for one parameter vector (β₁ = 0.9, β₂ = 0.999, ε = 1e-8). */
class Adam {
  private m: Float64Array;
  private v: Float64Array;
  private t = 0;
  constructor(
    size: number,
    private lr: number,
  ) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }
  step(p: Float64Array, g: Float64Array): void {
    this.t++;
    const c1 = 1 - 0.9 ** this.t;
    const c2 = 1 - 0.999 ** this.t;
    for (let i = 0; i < p.length; i++) {
      this.m[i] = 0.9 * this.m[i] + 0.1 * g[i];
      this.v[i] = 0.999 * this.v[i] + 0.001 * g[i] * g[i];
      p[i] -= (this.lr * (this.m[i] / c1)) / (Math.sqrt(this.v[i] / c2) + 1e-8);
    }
  }
}

/** Logistic regression p = σ(w·z + b), zero start (the loss is convex, so no seed is needed). */
function trainLogistic(
  X: Float64Array,
  y: Float64Array,
  m: number,
  F: number,
  s: TrainSettings,
): Classifier {
  const w = new Float64Array(F + 1); // last entry: bias
  const g = new Float64Array(F + 1);
  const opt = new Adam(F + 1, s.lr);
  for (let step = 0; step < s.steps; step++) {
    g.fill(0);
    for (let j = 0; j < m; j++) {
      const o = j * F;
      let z = w[F];
      for (let f = 0; f < F; f++) z += w[f] * X[o + f];
      const d = (sigmoid(z) - y[j]) / m;
      for (let f = 0; f < F; f++) g[f] += d * X[o + f];
      g[F] += d;
    }
    for (let f = 0; f < F; f++) g[f] += s.l2 * w[f];
    opt.step(w, g);
  }
  return {
    prob(z) {
      let a = w[F];
      for (let f = 0; f < F; f++) a += w[f] * z[f];
      return sigmoid(a);
    },
  };
}

/** One hidden ReLU layer: p = σ(v·relu(W z + c) + b), He-normal start drawn from `rng`. */
function trainMlp(
  X: Float64Array,
  y: Float64Array,
  m: number,
  F: number,
  s: TrainSettings & { hidden: number },
  rng: Rng,
): Classifier {
  const H = s.hidden;
  // Parameters in one vector: W (H × F), c (H), v (H), b (1).
  const P = H * F + 2 * H + 1;
  const p = new Float64Array(P);
  const g = new Float64Array(P);
  const scaleW = Math.sqrt(2 / F);
  const scaleV = Math.sqrt(2 / H);
  for (let i = 0; i < H * F; i++) p[i] = rng.normal() * scaleW;
  for (let h = 0; h < H; h++) p[H * F + H + h] = rng.normal() * scaleV;
  const cOff = H * F;
  const vOff = cOff + H;
  const bOff = vOff + H;
  const act = new Float64Array(H);
  const forward = (z: Float64Array, o: number): number => {
    let out = p[bOff];
    for (let h = 0; h < H; h++) {
      let a = p[cOff + h];
      const wb = h * F;
      for (let f = 0; f < F; f++) a += p[wb + f] * z[o + f];
      act[h] = a > 0 ? a : 0;
      out += p[vOff + h] * act[h];
    }
    return out;
  };
  const opt = new Adam(P, s.lr);
  for (let step = 0; step < s.steps; step++) {
    g.fill(0);
    for (let j = 0; j < m; j++) {
      const o = j * F;
      const d = (sigmoid(forward(X, o)) - y[j]) / m;
      g[bOff] += d;
      for (let h = 0; h < H; h++) {
        g[vOff + h] += d * act[h];
        if (act[h] <= 0) continue;
        const dh = d * p[vOff + h];
        g[cOff + h] += dh;
        const wb = h * F;
        for (let f = 0; f < F; f++) g[wb + f] += dh * X[o + f];
      }
    }
    for (let i = 0; i < H * F; i++) g[i] += s.l2 * p[i];
    for (let h = 0; h < H; h++) g[vOff + h] += s.l2 * p[vOff + h];
    opt.step(p, g);
  }
  return { prob: (z) => sigmoid(forward(z, 0)) };
}
