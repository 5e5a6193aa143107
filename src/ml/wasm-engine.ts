import { InvalidOptionError } from '../core/errors.ts';
import { IMAGE_SIZE } from '../core/dataset.ts';
import type {
  EngineModel,
  EngineModelConfig,
  EvalResult,
  ModelState,
  NamedArrays,
  PendingStep,
  StepResult,
  TrainBatch,
  TrainingEngine,
} from './engine.ts';
import {
  describeModel,
  resnetLayout,
  type ConvSpec,
  type ResNetLayout,
  type TensorSpec,
} from './resnet.ts';
import { ENGINE_WASM_BASE64 } from './wasm/engine-wasm.ts';

/** The C kernels of src/ml/wasm/engine.c (pointers are byte offsets into the shared memory). */
interface Kernels {
  __stack_pointer: WebAssembly.Global;
  __heap_base: WebAssembly.Global;
  set_threads(n: number): void;
  helper_loop(tid: number): void;
  pool_stop(): void;
  exp_f64(x: number): number;
  log_f64(x: number): number;
  conv_forward(...a: number[]): void;
  conv_dgrad_col(...a: number[]): void;
  conv_wgrad(...a: number[]): void;
  pack_panels(w: number, K: number, n: number, scale: number, out: number): void;
  pack_transposed(w: number, K: number, cout: number, out: number): void;
  pack_flipped(w: number, KH: number, KW: number, cin: number, cout: number, out: number): void;
  bn_train_forward(...a: number[]): void;
  bn_train_backward(...a: number[]): void;
  affine_forward(...a: number[]): void;
  relu_backward(g: number, y: number, n: number): void;
  head_forward(...a: number[]): void;
  softmax_ce(...a: number[]): number;
  head_backward(...a: number[]): void;
  adamw(...a: number[]): void;
  bn_running_update(...a: number[]): void;
  fold_bn(...a: number[]): void;
  conv3x3_winograd(...a: number[]): void;
  conv3x3_winograd4(...a: number[]): void;
  winograd4_pack(w: number, cin: number, cout: number, scale: number, u: number): void;
  winograd_pack(w: number, cin: number, cout: number, scale: number, u: number): void;
  flip_kernel(w: number, KH: number, KW: number, cin: number, cout: number, out: number): void;
}

/**
 * Starts helper thread `tid`: a worker that instantiates `module` on `memory`, sets its stack
 * pointer to `stackTop`, reports 'ready', then blocks in `helper_loop(tid)` until `pool_stop`.
 */
export type HelperSpawner = (init: HelperInit) => Promise<HelperHandle>;
export interface HelperInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  tid: number;
  stackTop: number;
}
export interface HelperHandle {
  /** Ends the worker (after pool_stop has released it). */
  terminate(): void;
}

/**
 * The body of a helper worker, for both runtimes: `post` reports to the parent. Kept as source
 * text so that it can start as a blob Web Worker or an eval'd Node worker without a bundler entry.
 */
export const HELPER_BODY = `
function runHelper(data, post) {
  const inst = new WebAssembly.Instance(data.module, { env: { memory: data.memory } });
  inst.exports.__stack_pointer.value = data.stackTop;
  post('ready');
  inst.exports.helper_loop(data.tid);
  post('stopped');
}`;

const BN_EPS = 1e-5;
/** Partial sums of a reduction (engine.c's GROUPS): results do not depend on the thread count. */
const GROUPS = 8;
/** Winograd scratch per thread, in units of (input + output channel stride): max(16·24, 36·12). */
const WINO_SCRATCH = 36 * 12;
const PAGE = 65536;
const HELPER_STACK = 1 << 20;
const WASM_MAX_BYTES = 2 ** 32 - PAGE;

let compiled: WebAssembly.Module | null = null;
/** The engine's module, compiled once per thread of JavaScript. */
export function engineModule(): WebAssembly.Module {
  if (!compiled) {
    const bin = atob(ENGINE_WASM_BASE64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    compiled = new WebAssembly.Module(bytes);
  }
  return compiled;
}

/** Whether this JavaScript context can share memory between threads (SharedArrayBuffer + isolation). */
export function canShareMemory(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  const iso = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
  return iso !== false;
}

/**
 * The WebAssembly engine with `threads` threads (the caller + threads − 1 helpers started by
 * `spawn`). Falls back to one thread when memory cannot be shared or no spawner is given.
 */
export function createWasmEngineWith(
  threads: number,
  spawn?: HelperSpawner,
  options: WasmEngineOptions = {},
): TrainingEngine {
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 64))
    throw new InvalidOptionError(`threads ${threads} must be a whole number in 1–64`);
  const n = spawn && canShareMemory() ? threads : 1;
  return {
    name: 'wasm',
    threads: n,
    createModel: (config) => WasmModel.create(config, n, spawn, options.winograd ?? 'eval'),
  };
}

/** Where the engine uses Winograd convolutions (see WasmEngineOptions.winograd). */
export type WinogradMode = 'eval' | 'all' | 'none';

export interface WasmEngineOptions {
  /**
   * Where 3×3 stride-1 convolutions run as Winograd convolutions instead of the direct implicit
   * GEMM: 'eval' (default: evaluation passes, F(4×4, 3×3) up to 32 input channels and F(2×2, 3×3)
   * above, 1.5–3× fewer cycles; training then sums in the same order as tfjs, so the two
   * engines' training runs agree closely), 'all' (also F(2×2, 3×3) in the training forward pass
   * and input gradients: ~1.3× faster training, rounding differs from tfjs by ~1e-6 relative),
   * or 'none'.
   */
  winograd?: WinogradMode;
}

/** A region of the shared memory: byte offset and length in floats. */
interface Region {
  ptr: number;
  len: number;
}

/** Per-convolution layout: geometry and the regions it uses. */
interface ConvPlan {
  spec: ConvSpec;
  H: number;
  W: number;
  OH: number;
  OW: number;
  padT: number;
  padL: number;
  /** Channel strides: input rows (ldx) and output rows (ld = 8·nb). */
  ldx: number;
  ld: number;
  nb: number;
  K: number;
  w: Region;
  g: Region;
  b: Region;
  rm: Region;
  rv: Region;
  dw: Region;
  dg: Region;
  db: Region;
  packed: Region;
  packedBack: Region;
  gammaP: Region;
  betaP: Region;
  mean: Region;
  variance: Region;
  invstd: Region;
  foldPacked: Region;
  /** Winograd F(2×2,3×3) for this conv in training (forward, input gradient) / in evaluation? */
  wino: boolean;
  /** 0 = direct, 2 = F(2×2, 3×3), 4 = F(4×4, 3×3) (fewer multiplications, a little more rounding). */
  winoEval: 0 | 2 | 4;
  /** Transformed filters: forward, evaluation (BN folded) and input-gradient (flipped). */
  wU: Region;
  wUfold: Region;
  wUback: Region;
  /** The flipped, transposed kernel in HWIO form (input-gradient filters). */
  flipped: Region;
  foldScale: Region;
  foldBias: Region;
  /** Conv output before BatchNorm (training) [M][ld]. */
  z: Region;
  /** BatchNorm output (after the ReLU when it has one) [M][ld]. */
  out: Region;
}

interface BlockPlan {
  convs: ConvPlan[];
  shortcut: ConvPlan | null;
  input: Region;
  output: Region;
}

/**
 * A ResNet in WebAssembly memory, for a fixed batch size: every buffer (parameters, AdamW state,
 * activations, gradients, scratch) is laid out once at creation, so nothing grows while training.
 */
class WasmModel implements EngineModel {
  readonly config: EngineModelConfig;
  readonly parameterCount: number;
  readonly featureDim: number;
  readonly threads: number;
  private readonly k: Kernels;
  private readonly wasmMemory: WebAssembly.Memory;
  private readonly f32: Float32Array;
  private readonly i32: Int32Array;
  private readonly helpers: HelperHandle[];
  private readonly layout: ResNetLayout;
  private readonly stem: ConvPlan;
  private readonly blocks: BlockPlan[];
  private readonly convs: ConvPlan[];
  private readonly named = new Map<string, { p: Region; m?: Region; v?: Region }>();
  private readonly P: Region;
  private readonly G: Region;
  private readonly Mo: Region;
  private readonly V: Region;
  private readonly x: Region;
  private readonly labels: Region;
  private readonly mask: Region;
  private readonly pooled: Region;
  private readonly logits: Region;
  private readonly dlogits: Region;
  private readonly ce: Region;
  private readonly correct: Region;
  private readonly fc: { w: Region; b: Region; dw: Region; db: Region };
  private readonly grads: [Region, Region, Region];
  private readonly sTemp: Region;
  private readonly zero: Region;
  private readonly wPart: Region;
  private readonly colBuf: Region;
  private readonly bnPart: Region;
  private readonly bnScratch: Region;
  private readonly winoScratch: Region;
  private readonly bytes: number;
  private foldedVersion = -1;
  private version = 0;
  private disposed = false;

  static async create(
    config: EngineModelConfig,
    threads: number,
    spawn: HelperSpawner | undefined,
    winograd: WinogradMode,
  ): Promise<WasmModel> {
    const module = engineModule();
    // a probe instance reads where the heap starts (the same for every instance of the module)
    const probeMem = sharedMemory(32);
    const probe = new WebAssembly.Instance(module, { env: { memory: probeMem } });
    const heapBase = (probe.exports.__heap_base as WebAssembly.Global).value as number;
    const layout = resnetLayout(config);
    const plan = new Planner(heapBase, layout, config.batchSize, threads, winograd);
    const total = plan.end + threads * HELPER_STACK;
    if (total > WASM_MAX_BYTES)
      throw new InvalidOptionError(
        `${config.name} ×${config.width} at batch ${config.batchSize} needs ${(total / 2 ** 30).toFixed(1)} GiB, more than WebAssembly's 4 GiB: use a smaller batch or width, or the tfjs engine`,
      );
    const pages = Math.ceil(total / PAGE);
    const memory = sharedMemory(pages);
    const inst = new WebAssembly.Instance(module, { env: { memory } });
    const helpers: HelperHandle[] = [];
    try {
      for (let t = 1; t < threads; t++)
        helpers.push(
          await spawn!({ module, memory, tid: t, stackTop: plan.end + t * HELPER_STACK }),
        );
    } catch (e) {
      (inst.exports as unknown as Kernels).pool_stop();
      for (const h of helpers) h.terminate();
      throw e;
    }
    return new WasmModel(
      config,
      layout,
      plan,
      inst.exports as unknown as Kernels,
      memory,
      helpers,
      threads,
      pages * PAGE,
    );
  }

  private constructor(
    config: EngineModelConfig,
    layout: ResNetLayout,
    plan: Planner,
    k: Kernels,
    memory: WebAssembly.Memory,
    helpers: HelperHandle[],
    threads: number,
    bytes: number,
  ) {
    this.config = config;
    this.layout = layout;
    this.k = k;
    this.wasmMemory = memory;
    this.helpers = helpers;
    this.threads = threads;
    this.bytes = bytes;
    this.f32 = new Float32Array(memory.buffer);
    this.i32 = new Int32Array(memory.buffer);
    k.set_threads(threads);
    this.stem = plan.stem;
    this.blocks = plan.blocks;
    this.convs = plan.convs;
    this.P = plan.regions.P;
    this.G = plan.regions.G;
    this.Mo = plan.regions.Mo;
    this.V = plan.regions.V;
    this.x = plan.regions.x;
    this.labels = plan.regions.labels;
    this.mask = plan.regions.mask;
    this.pooled = plan.regions.pooled;
    this.logits = plan.regions.logits;
    this.dlogits = plan.regions.dlogits;
    this.ce = plan.regions.ce;
    this.correct = plan.regions.correct;
    this.grads = plan.grads;
    this.sTemp = plan.regions.sTemp;
    this.zero = plan.regions.zero;
    this.wPart = plan.regions.wPart;
    this.colBuf = plan.regions.colBuf;
    this.bnPart = plan.regions.bnPart;
    this.bnScratch = plan.regions.bnScratch;
    this.winoScratch = plan.regions.winoScratch;
    this.fc = plan.fc;
    for (const [name, r] of plan.named) this.named.set(name, r);
    this.featureDim = layout.featureDim;
    this.parameterCount = layout.params.reduce((s, p) => s + p.values.length, 0);
    for (const t of [...layout.params, ...layout.buffers])
      this.view(this.named.get(t.name)!.p).set(t.values);
  }

  describe(): string {
    return describeModel(this.config, this.parameterCount);
  }

  memory(): { bytes: number; tensors: number } {
    return { bytes: this.wasmMemory.buffer.byteLength, tensors: 0 };
  }

  trainStep(batch: TrainBatch): PendingStep {
    this.check();
    const B = this.config.batchSize;
    if (batch.x.length !== B * IMAGE_SIZE * IMAGE_SIZE * 3 || batch.labels.length !== B)
      throw new InvalidOptionError(
        `batch of ${batch.labels.length} labels / ${batch.x.length} values does not match batch size ${B}`,
      );
    const k = this.k;
    this.view(this.x).set(batch.x);
    this.i32.set(batch.labels, this.labels.ptr >> 2);
    this.view(this.mask).set(batch.mask);
    for (const c of this.convs) this.pack(c);
    // forward, training mode
    this.convTrain(this.stem, this.x, true, 0);
    for (const bl of this.blocks) {
      let h = bl.input;
      bl.convs.forEach((c, i) => {
        if (i < bl.convs.length - 1) {
          this.convTrain(c, h, true, 0);
          h = c.out;
        }
      });
      let res = bl.input;
      if (bl.shortcut) {
        this.convTrain(bl.shortcut, bl.input, false, 0);
        res = bl.shortcut.out;
      }
      this.convTrain(bl.convs[bl.convs.length - 1], h, true, res.ptr);
    }
    const last = this.blocks.length ? this.blocks[this.blocks.length - 1].output : this.stem.out;
    const lastConv = this.blocks.length
      ? this.blocks[this.blocks.length - 1].convs.at(-1)!
      : this.stem;
    const P = lastConv.OH * lastConv.OW;
    const C = this.layout.numClasses;
    const D = this.featureDim;
    k.head_forward(
      last.ptr,
      B,
      P,
      lastConv.ld,
      D,
      this.fc.w.ptr,
      this.fc.b.ptr,
      C,
      this.pooled.ptr,
      this.logits.ptr,
    );
    const loss = k.softmax_ce(
      this.logits.ptr,
      this.labels.ptr,
      this.mask.ptr,
      B,
      C,
      this.ce.ptr,
      this.dlogits.ptr,
      this.correct.ptr,
    );
    const correct = this.i32[this.correct.ptr >> 2];
    const perExample = batch.perExample ? this.view(this.ce).slice() : undefined;
    // backward
    const [X, Y, Z] = this.grads;
    k.head_backward(
      this.pooled.ptr,
      this.dlogits.ptr,
      B,
      P,
      lastConv.ld,
      D,
      this.fc.w.ptr,
      C,
      this.fc.dw.ptr,
      this.fc.db.ptr,
      X.ptr,
    );
    for (let i = this.blocks.length - 1; i >= 0; i--) {
      const bl = this.blocks[i];
      const M = B * bl.convs.at(-1)!.OH * bl.convs.at(-1)!.OW;
      const lastC = bl.convs.at(-1)!;
      k.relu_backward(X.ptr, bl.output.ptr, M * lastC.ld);
      // X = g (gradient at the block's sum); the last conv's BN backward into Y
      this.bnBackward(lastC, X, 0, Y);
      if (bl.shortcut) this.bnBackward(bl.shortcut, X, 0, X);
      // Y holds dz of the last conv; walk the main path back
      let dz = Y;
      let free = Z;
      for (let j = bl.convs.length - 1; j >= 1; j--) {
        const c = bl.convs[j];
        const prev = bl.convs[j - 1];
        this.wgrad(c, prev.out, dz);
        this.dgrad(c, dz, free, 0);
        // free now holds d(prev.out); BN backward through prev's ReLU, in place
        this.bnBackward(prev, free, prev.out.ptr, free);
        const t = dz;
        dz = free;
        free = t;
      }
      const first = bl.convs[0];
      this.wgrad(first, bl.input, dz);
      if (bl.shortcut) {
        this.wgrad(bl.shortcut, bl.input, X);
        this.dgrad(bl.shortcut, X, free, 0);
        this.dgrad(first, dz, X, free.ptr);
      } else {
        this.dgrad(first, dz, X, X.ptr);
      }
    }
    this.bnBackward(this.stem, X, this.stem.out.ptr, X);
    this.wgrad(this.stem, this.x, X);
    const t = batch.t;
    k.adamw(
      this.P.ptr,
      this.Mo.ptr,
      this.V.ptr,
      this.G.ptr,
      this.P.len,
      batch.lr,
      batch.weightDecay,
      1 - 0.9 ** t,
      1 - 0.999 ** t,
    );
    for (const c of this.convs) {
      const cnt = B * c.OH * c.OW;
      k.bn_running_update(
        c.rm.ptr,
        c.rv.ptr,
        c.mean.ptr,
        c.variance.ptr,
        c.spec.cout,
        cnt > 1 ? cnt / (cnt - 1) : 1,
      );
    }
    this.version++;
    const result: StepResult = { loss, correct, perExample };
    return { read: () => Promise.resolve(result) };
  }

  async evaluate(x: Float32Array): Promise<EvalResult> {
    this.check();
    const B = this.config.batchSize;
    if (x.length !== B * IMAGE_SIZE * IMAGE_SIZE * 3)
      throw new InvalidOptionError(`evaluate: ${x.length} values is not ${B} images`);
    const k = this.k;
    if (this.foldedVersion !== this.version) {
      for (const c of this.convs)
        k.fold_bn(
          c.w.ptr,
          c.K,
          c.spec.cout,
          c.g.ptr,
          c.b.ptr,
          c.rm.ptr,
          c.rv.ptr,
          BN_EPS,
          c.foldScale.ptr,
          c.foldPacked.ptr,
          c.foldBias.ptr,
          c.ld,
        );
      for (const c of this.convs)
        if (c.winoEval === 2)
          k.winograd_pack(c.w.ptr, c.spec.cin, c.spec.cout, c.foldScale.ptr, c.wUfold.ptr);
        else if (c.winoEval === 4)
          k.winograd4_pack(c.w.ptr, c.spec.cin, c.spec.cout, c.foldScale.ptr, c.wUfold.ptr);
      this.foldedVersion = this.version;
    }
    this.view(this.x).set(x);
    this.convEval(this.stem, this.x, this.stem.out, true, 0);
    for (const bl of this.blocks) {
      let h = bl.input;
      bl.convs.forEach((c, i) => {
        if (i < bl.convs.length - 1) {
          this.convEval(c, h, c.out, true, 0);
          h = c.out;
        }
      });
      let res = bl.input;
      if (bl.shortcut) {
        this.convEval(bl.shortcut, bl.input, this.sTemp, false, 0);
        res = this.sTemp;
      }
      this.convEval(bl.convs.at(-1)!, h, bl.output, true, res.ptr);
    }
    const lastConv = this.blocks.length ? this.blocks.at(-1)!.convs.at(-1)! : this.stem;
    const last = this.blocks.length ? this.blocks.at(-1)!.output : this.stem.out;
    const C = this.layout.numClasses;
    k.head_forward(
      last.ptr,
      B,
      lastConv.OH * lastConv.OW,
      lastConv.ld,
      this.featureDim,
      this.fc.w.ptr,
      this.fc.b.ptr,
      C,
      this.pooled.ptr,
      this.logits.ptr,
    );
    return { logits: this.view(this.logits).slice(), features: this.view(this.pooled).slice() };
  }

  async getState(): Promise<ModelState> {
    this.check();
    const weights: NamedArrays = {};
    const m: NamedArrays = {};
    const v: NamedArrays = {};
    for (const t of [...this.layout.params, ...this.layout.buffers]) {
      const r = this.named.get(t.name)!;
      weights[t.name] = this.view(r.p).slice();
      if (r.m) m[t.name] = this.view(r.m).slice();
      if (r.v) v[t.name] = this.view(r.v).slice();
    }
    return { weights, m, v };
  }

  setState(state: ModelState): void {
    this.check();
    const put = (t: TensorSpec, src: NamedArrays, r: Region, what: string) => {
      const a = src[t.name];
      if (!a || a.length !== r.len)
        throw new InvalidOptionError(
          `checkpoint does not match the model: ${what} ${t.name} is ${a ? a.length : 'missing'}, expected ${r.len} values`,
        );
      return a;
    };
    // validate everything first: a bad state leaves the model untouched
    const writes: [Region, Float32Array][] = [];
    for (const t of this.layout.params) {
      const r = this.named.get(t.name)!;
      writes.push([r.p, put(t, state.weights, r.p, 'weight')]);
      writes.push([r.m!, put(t, state.m, r.m!, 'optimizer state')]);
      writes.push([r.v!, put(t, state.v, r.v!, 'optimizer state')]);
    }
    for (const t of this.layout.buffers) {
      const r = this.named.get(t.name)!;
      writes.push([r.p, put(t, state.weights, r.p, 'buffer')]);
    }
    for (const [r, a] of writes) this.view(r).set(a);
    this.version++;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.k.pool_stop();
    for (const h of this.helpers) h.terminate();
  }

  private check(): void {
    if (this.disposed) throw new InvalidOptionError('the model was disposed');
  }

  private view(r: Region): Float32Array {
    return this.f32.subarray(r.ptr >> 2, (r.ptr >> 2) + r.len);
  }

  private pack(c: ConvPlan): void {
    const k = this.k;
    const s = c.spec;
    if (c.wino) {
      k.winograd_pack(c.w.ptr, s.cin, s.cout, 0, c.wU.ptr);
      k.flip_kernel(c.w.ptr, 3, 3, s.cin, s.cout, c.flipped.ptr);
      k.winograd_pack(c.flipped.ptr, s.cout, s.cin, 0, c.wUback.ptr);
    } else {
      k.pack_panels(c.w.ptr, c.K, s.cout, 0, c.packed.ptr);
      if (s.stride === 1) k.pack_flipped(c.w.ptr, s.k, s.k, s.cin, s.cout, c.packedBack.ptr);
      else k.pack_transposed(c.w.ptr, c.K, s.cout, c.packedBack.ptr);
    }
    this.view(c.gammaP).set(this.view(c.g));
    this.view(c.betaP).set(this.view(c.b));
  }

  /** z = conv(x); out = BN(z) (+ res) (→ ReLU), batch statistics. */
  /** z = conv(x); out = BN(z) (+ res) (→ ReLU), batch statistics. */
  private convTrain(c: ConvPlan, x: Region, relu: boolean, res: number): void {
    const B = this.config.batchSize;
    const s = c.spec;
    this.runConv(
      c.wino,
      x.ptr,
      c.ldx,
      s.cin,
      c.H,
      c.W,
      c.OH,
      c.OW,
      s.stride,
      c.padT,
      c.padL,
      s.k,
      c.packed.ptr,
      c.wU.ptr,
      c.nb,
      c.z.ptr,
      c.ld,
      0,
      0,
      false,
    );
    this.k.bn_train_forward(
      c.z.ptr,
      B * c.OH * c.OW,
      c.ld,
      c.gammaP.ptr,
      c.betaP.ptr,
      c.mean.ptr,
      c.variance.ptr,
      c.invstd.ptr,
      res,
      relu ? 1 : 0,
      c.out.ptr,
      this.bnPart.ptr,
      this.bnScratch.ptr,
      BN_EPS,
    );
  }

  private convEval(c: ConvPlan, x: Region, out: Region, relu: boolean, res: number): void {
    const s = c.spec;
    this.runConv(
      c.winoEval,
      x.ptr,
      c.ldx,
      s.cin,
      c.H,
      c.W,
      c.OH,
      c.OW,
      s.stride,
      c.padT,
      c.padL,
      s.k,
      c.foldPacked.ptr,
      c.wUfold.ptr,
      c.nb,
      out.ptr,
      c.ld,
      c.foldBias.ptr,
      res,
      relu,
    );
  }

  /** y = act(conv(x) + bias + res): Winograd for 3×3 stride-1 layers, else the direct GEMM. */
  private runConv(
    wino: boolean | 0 | 2 | 4,
    x: number,
    ldx: number,
    cin: number,
    H: number,
    W: number,
    OH: number,
    OW: number,
    stride: number,
    padT: number,
    padL: number,
    k: number,
    panels: number,
    u: number,
    nb: number,
    y: number,
    ldy: number,
    bias: number,
    res: number,
    relu: boolean,
  ): void {
    const B = this.config.batchSize;
    if (wino)
      (wino === 4 ? this.k.conv3x3_winograd4 : this.k.conv3x3_winograd)(
        x,
        ldx,
        cin,
        H,
        W,
        B,
        OH,
        OW,
        padT,
        padL,
        u,
        nb,
        y,
        ldy,
        bias,
        res,
        res ? ldy : 0,
        relu ? 1 : 0,
        this.winoScratch.ptr,
        this.winoScratch.len / this.threads,
      );
    else
      this.k.conv_forward(
        x,
        ldx,
        cin,
        H,
        W,
        B,
        OH,
        OW,
        stride,
        padT,
        padL,
        k,
        k,
        panels,
        nb,
        y,
        ldy,
        bias,
        res,
        res ? ldy : 0,
        relu ? 1 : 0,
        this.zero.ptr,
      );
  }

  /** BN backward of conv c: g (masked by mask>0 when mask ≠ 0) → dz into out; dγ, dβ into G. */
  private bnBackward(c: ConvPlan, g: Region, mask: number, out: Region): void {
    const B = this.config.batchSize;
    this.k.bn_train_backward(
      g.ptr,
      mask,
      c.z.ptr,
      B * c.OH * c.OW,
      c.ld,
      c.spec.cout,
      c.mean.ptr,
      c.invstd.ptr,
      c.gammaP.ptr,
      out.ptr,
      c.dg.ptr,
      c.db.ptr,
      this.bnPart.ptr,
      this.bnScratch.ptr,
    );
  }

  private wgrad(c: ConvPlan, x: Region, dz: Region): void {
    const B = this.config.batchSize;
    const s = c.spec;
    this.k.conv_wgrad(
      x.ptr,
      c.ldx,
      s.cin,
      c.H,
      c.W,
      B,
      c.OH,
      c.OW,
      s.stride,
      c.padT,
      c.padL,
      s.k,
      s.k,
      dz.ptr,
      c.ld,
      c.nb,
      this.wPart.ptr,
      this.wPart.len / GROUPS,
      c.dw.ptr,
      s.cout,
    );
  }

  /** dx = input gradient of conv c from dz (+ res when res ≠ 0), into out. */
  private dgrad(c: ConvPlan, dz: Region, out: Region, res: number): void {
    const B = this.config.batchSize;
    const s = c.spec;
    const ldIn = c.ldx;
    if (s.stride === 1)
      this.runConv(
        c.wino,
        dz.ptr,
        c.ld,
        s.cout,
        c.OH,
        c.OW,
        c.H,
        c.W,
        1,
        s.k - 1 - c.padT,
        s.k - 1 - c.padL,
        s.k,
        c.packedBack.ptr,
        c.wUback.ptr,
        ldIn / 8,
        out.ptr,
        ldIn,
        0,
        res,
        false,
      );
    else
      this.k.conv_dgrad_col(
        dz.ptr,
        c.ld,
        s.cout,
        c.packedBack.ptr,
        Math.ceil(c.K / 8),
        out.ptr,
        ldIn,
        s.cin,
        c.H,
        c.W,
        B,
        c.OH,
        c.OW,
        s.stride,
        c.padT,
        c.padL,
        s.k,
        s.k,
        res,
        this.colBuf.ptr,
        this.colBuf.len / this.threads,
        this.zero.ptr,
      );
  }
}

/** A shared memory of exactly `pages` pages (the engine's module imports a shared memory). */
function sharedMemory(pages: number): WebAssembly.Memory {
  try {
    return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  } catch (e) {
    throw new InvalidOptionError(
      `the WebAssembly engine could not get ${((pages * PAGE) / 2 ** 20).toFixed(0)} MiB of shared memory (${e instanceof Error ? e.message : String(e)}); this browser may need a cross-origin-isolated page (COOP/COEP), or use the tfjs engine`,
    );
  }
}

const ceil8 = (n: number) => Math.ceil(n / 8) * 8;

/** Lays out every buffer of a model in the shared memory (byte offsets, 64-byte aligned). */
class Planner {
  end: number;
  readonly named = new Map<string, { p: Region; m?: Region; v?: Region }>();
  readonly convs: ConvPlan[] = [];
  readonly stem: ConvPlan;
  readonly blocks: BlockPlan[] = [];
  readonly grads: [Region, Region, Region];
  readonly fc: { w: Region; b: Region; dw: Region; db: Region };
  readonly regions: Record<
    | 'P'
    | 'G'
    | 'Mo'
    | 'V'
    | 'x'
    | 'labels'
    | 'mask'
    | 'pooled'
    | 'logits'
    | 'dlogits'
    | 'ce'
    | 'correct'
    | 'sTemp'
    | 'zero'
    | 'wPart'
    | 'colBuf'
    | 'bnPart'
    | 'bnScratch'
    | 'winoScratch',
    Region
  >;

  constructor(
    heapBase: number,
    layout: ResNetLayout,
    B: number,
    threads: number,
    winograd: WinogradMode,
  ) {
    this.end = Math.ceil(heapBase / 64) * 64;
    const alloc = (len: number): Region => {
      const r = { ptr: this.end, len };
      this.end += Math.ceil((len * 4) / 64) * 64;
      return r;
    };
    // flat parameters (and their gradients and AdamW moments) in checkpoint order
    const nParams = layout.params.reduce((s, p) => s + p.values.length, 0);
    const P = alloc(nParams);
    const G = alloc(nParams);
    const Mo = alloc(nParams);
    const V = alloc(nParams);
    const grad = new Map<string, Region>();
    let off = 0;
    for (const p of layout.params) {
      const len = p.values.length;
      const at = (r: Region) => ({ ptr: r.ptr + off * 4, len });
      this.named.set(p.name, { p: at(P), m: at(Mo), v: at(V) });
      grad.set(p.name, at(G));
      off += len;
    }
    for (const b of layout.buffers) this.named.set(b.name, { p: alloc(b.values.length) });
    const S = IMAGE_SIZE;
    const x = alloc(B * S * S * 3);
    let maxAct = 0;
    let maxK = 0;
    let maxCol = 0;
    let maxLd = 8;
    let maxWino = 0;
    const plan = (spec: ConvSpec, H: number, W: number, ldx: number, out?: Region): ConvPlan => {
      const OH = Math.ceil(H / spec.stride);
      const OW = Math.ceil(W / spec.stride);
      const padT = Math.floor(Math.max((OH - 1) * spec.stride + spec.k - H, 0) / 2);
      const padL = Math.floor(Math.max((OW - 1) * spec.stride + spec.k - W, 0) / 2);
      const ld = ceil8(spec.cout);
      const nb = ld / 8;
      const K = spec.k * spec.k * spec.cin;
      const M = B * OH * OW;
      const n = this.named;
      const fits = spec.k === 3 && spec.stride === 1 && ldx % 8 === 0;
      const wino = fits && winograd === 'all';
      // F(4×4) where its larger rounding stays small (≤ 32 input channels: ~1e-5), else F(2×2)
      const winoEval = !fits || winograd === 'none' ? 0 : spec.cin <= 32 ? 4 : 2;
      if (winoEval || wino) maxWino = Math.max(maxWino, ldx + ld);
      const c: ConvPlan = {
        spec,
        H,
        W,
        OH,
        OW,
        padT,
        padL,
        ldx,
        ld,
        nb,
        K,
        w: n.get(`${spec.name}.w`)!.p,
        g: n.get(`${spec.name}.g`)!.p,
        b: n.get(`${spec.name}.b`)!.p,
        rm: n.get(`${spec.name}.rm`)!.p,
        rv: n.get(`${spec.name}.rv`)!.p,
        dw: grad.get(`${spec.name}.w`)!,
        dg: grad.get(`${spec.name}.g`)!,
        db: grad.get(`${spec.name}.b`)!,
        packed: alloc(ld * K),
        packedBack:
          spec.stride === 1
            ? alloc(ceil8(spec.cin) * spec.k * spec.k * spec.cout)
            : alloc(ceil8(K) * spec.cout),
        gammaP: alloc(ld),
        betaP: alloc(ld),
        mean: alloc(ld),
        variance: alloc(ld),
        invstd: alloc(ld),
        foldPacked: alloc(ld * K),
        wino,
        winoEval,
        wU: alloc(wino ? 16 * spec.cin * ld : 0),
        wUfold: alloc(winoEval ? (winoEval === 4 ? 36 : 16) * spec.cin * ld : 0),
        wUback: alloc(wino ? 16 * spec.cout * ceil8(spec.cin) : 0),
        flipped: alloc(wino ? K * spec.cout : 0),
        foldScale: alloc(ld),
        foldBias: alloc(ld),
        z: alloc(M * ld),
        out: out ?? alloc(M * ld),
      };
      maxAct = Math.max(maxAct, M * ld, B * H * W * ceil8(spec.cin));
      maxK = Math.max(maxK, K * ld);
      maxLd = Math.max(maxLd, ld, ceil8(spec.cin));
      if (spec.stride !== 1) maxCol = Math.max(maxCol, OH * OW * ceil8(K));
      this.convs.push(c);
      return c;
    };
    this.stem = plan(layout.stem, S, S, 3);
    let h = this.stem.out;
    let H = S;
    let ld = this.stem.ld;
    for (const bs of layout.blocks) {
      const input = h;
      const convs: ConvPlan[] = [];
      let cur = { H, W: H, ld };
      bs.convs.forEach((spec) => {
        const c = plan(spec, cur.H, cur.W, cur.ld);
        convs.push(c);
        cur = { H: c.OH, W: c.OW, ld: c.ld };
      });
      const shortcut = bs.shortcut ? plan(bs.shortcut, H, H, ld) : null;
      const last = convs.at(-1)!;
      this.blocks.push({ convs, shortcut, input, output: last.out });
      h = last.out;
      H = last.OH;
      ld = last.ld;
    }
    const D = layout.featureDim;
    const C = layout.numClasses;
    this.fc = {
      w: this.named.get('fc.w')!.p,
      b: this.named.get('fc.b')!.p,
      dw: grad.get('fc.w')!,
      db: grad.get('fc.b')!,
    };
    this.grads = [alloc(maxAct), alloc(maxAct), alloc(maxAct)];
    this.regions = {
      P,
      G,
      Mo,
      V,
      x,
      labels: alloc(B),
      mask: alloc(B),
      pooled: alloc(B * D),
      logits: alloc(B * C),
      dlogits: alloc(B * C),
      ce: alloc(B),
      correct: alloc(1),
      sTemp: alloc(maxAct),
      zero: alloc(Math.max(maxLd, 8)),
      wPart: alloc(GROUPS * maxK),
      colBuf: alloc(threads * Math.max(maxCol, 8)),
      bnPart: alloc(GROUPS * 2 * maxLd * 2),
      bnScratch: alloc(3 * maxLd),
      winoScratch: alloc(threads * WINO_SCRATCH * maxWino),
    };
    if (maxLd > 1 << 14)
      throw new InvalidOptionError(
        `a layer with ${maxLd} channels is wider than the engine's 16384`,
      );
  }
}
