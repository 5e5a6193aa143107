import type * as tfType from '@tensorflow/tfjs';
import { generateDemoDataset } from '../core/demo.ts';
import type { ImageSplit } from '../core/dataset.ts';
import {
  chooseBackend,
  deviceFacts,
  deviceKey,
  gpuAdapter,
  type BackendCandidate,
  type BackendMeasurement,
  type ChooseOptions,
  type StepBudget,
  type StepTiming,
} from './backend-select.ts';
import { registerFastCpuKernels } from './fast-cpu.ts';
import { Trainer, type TrainConfig } from './train.ts';
import type { TrainingEngine } from './engine.ts';
import { createTfjsEngine } from './tfjs-engine.ts';

/** The tfjs backends the app bundles. */
export type BackendName = 'webgpu' | 'webgl' | 'cpu';
export const TFJS_BACKENDS: readonly BackendName[] = ['webgpu', 'webgl', 'cpu'];

/** Which backend is in use, on what, why, and how it compared with the others here. */
export interface BackendInfo {
  /** Candidate name: 'wasm' (our engine) | 'webgpu' | 'webgl' | 'cpu' (tfjs). */
  name: string;
  /** e.g. "WebGPU (software) · google / swiftshader" or "CPU". */
  label: string;
  /** Adapter vendor and architecture (WebGPU) or renderer (WebGL), when known. */
  device?: string;
  /** A software adapter or rasterizer. */
  software: boolean;
  /** One line per backend that could not run (or be used), "WEBGPU: why". */
  fallbackReasons: string[];
  /** navigator.hardwareConcurrency: threads a multithreaded engine may use. */
  threads: number;
  /** Whether this context is cross-origin isolated (SharedArrayBuffer, so worker threads). */
  crossOriginIsolated: boolean;
  /** Chosen by `?backend=` rather than by measurement. */
  forced: boolean;
  /** The measurement behind the choice (cached or new), for the status bar. */
  measurement?: BackendMeasurement;
  /** True when `measurement` is new: the page stores it under `deviceKey`. */
  measuredNow: boolean;
  deviceKey: string;
}

/** The step every candidate times: ResNet-8 at width 0.25, batch 16, demo images. */
export const PROBE_STEP = { model: 'resnet8', width: 0.25, batchSize: 16 } as const;

let probeData: ImageSplit | null = null;

/**
 * Times training steps of the probe model (`PROBE_STEP`) with the tfjs backend that is active
 * now: one warm-up step (kernels compile), then — unless the warm-up took longer than
 * `budget.capMs` or ran below `budget.cutBelow` images/s — one timed step. Images per second;
 * every tensor is disposed.
 */
export async function timeEngineStep(
  engine: TrainingEngine,
  budget: StepBudget,
): Promise<StepTiming> {
  probeData ??= generateDemoDataset({ seed: 1, train: PROBE_STEP.batchSize, test: 1 }).splits
    .train!;
  const cfg: TrainConfig = {
    ...PROBE_STEP,
    epochs: 2,
    lr: 1e-3,
    weightDecay: 1e-4,
    augment: false,
    seed: 1,
    record: 'train',
  };
  const tr = await Trainer.create(engine, cfg, probeData, 10);
  try {
    let t0 = performance.now();
    await tr.trainEpoch();
    const warmMs = performance.now() - t0;
    const warmRate = (PROBE_STEP.batchSize * 1000) / warmMs;
    if (warmMs > budget.capMs || warmRate < budget.cutBelow)
      return { imagesPerSecond: warmRate, cutOff: true };
    t0 = performance.now();
    await tr.trainEpoch();
    return {
      imagesPerSecond: (PROBE_STEP.batchSize * 1000) / (performance.now() - t0),
      cutOff: false,
    };
  } finally {
    tr.dispose();
  }
}

async function activateTfjs(tf: typeof tfType, name: BackendName): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`tfjs could not switch to ${name}`);
  await tf.ready();
  if (name === 'cpu') registerFastCpuKernels(tf);
}

/** A tfjs backend as a measurable candidate (`tf` is passed in: the worker's or Node's). */
export function tfjsCandidate(tf: typeof tfType, name: BackendName): BackendCandidate {
  return {
    name,
    available: () => tryBackend(tf, name),
    async describe() {
      const device = await describeDevice(tf, name);
      const software =
        name === 'webgpu'
          ? await isSoftwareAdapter()
          : name === 'webgl' && /swiftshader|llvmpipe|software|softpipe/i.test(device ?? '');
      const base = name === 'webgpu' ? 'WebGPU' : name === 'webgl' ? 'WebGL' : 'CPU';
      const label = `${base}${software ? ' (software)' : ''}`;
      return { label: device ? `${label} · ${device}` : label, device, software };
    },
    async timeStep(budget) {
      await activateTfjs(tf, name);
      return timeEngineStep(createTfjsEngine(tf), budget);
    },
    activate: () => activateTfjs(tf, name),
  };
}

/**
 * Our WebAssembly engine (SIMD, threads over shared memory) as a measurable candidate;
 * `create` builds it for this runtime (a browser worker or Node). Threads need
 * SharedArrayBuffer: a page that is not cross-origin isolated runs it on one thread.
 */
export function wasmCandidate(create: () => TrainingEngine, tf?: typeof tfType): BackendCandidate {
  let engine: TrainingEngine | null = null;
  const get = () => (engine ??= create());
  return {
    name: 'wasm',
    async available() {
      if (typeof WebAssembly !== 'object') return 'WebAssembly is missing';
      try {
        get();
        return null;
      } catch (e) {
        return e instanceof Error ? e.message : String(e);
      }
    },
    async describe() {
      const t = get().threads;
      return { label: `WASM · ${t} thread${t === 1 ? '' : 's'}`, software: false };
    },
    timeStep: (budget) => timeEngineStep(get(), budget),
    // The trainer builds its models on the engine when 'wasm' is chosen; tfjs still starts (on
    // its CPU backend) for the self-test and the memory figures.
    activate: async () => {
      if (tf) await activateTfjs(tf, 'cpu');
    },
  };
}

/**
 * Every backend the trainer worker can choose from, in the order they are measured (the fast,
 * cheap-to-start ones first, so slow ones are cut off early).
 *
 * THE PLACE TO REGISTER THE WEBASSEMBLY ENGINE: put its candidate first in this list, e.g.
 *   `wasmEngineCandidate()` from src/ml/wasm/…, implementing BackendCandidate (name 'wasm';
 *   available(): null or why not; describe(): { label: `WASM · ${threads} threads`, software:
 *   false }; timeStep(budget): a warm-up and a timed step of PROBE_STEP; activate()).
 * The candidate list is part of the cache key, so every device measures again once it is added.
 */
export function trainerCandidates(
  tf: typeof tfType,
  wasm?: () => TrainingEngine,
): BackendCandidate[] {
  return [
    ...(wasm ? [wasmCandidate(wasm, tf)] : []),
    tfjsCandidate(tf, 'cpu'),
    tfjsCandidate(tf, 'webgl'),
    tfjsCandidate(tf, 'webgpu'),
  ];
}

/**
 * The API of a throwaway measuring worker (workers/measure.worker.ts): times one candidate and
 * is then terminated — the only way to stop a step that runs too long.
 */
export function createMeasureApi(tf: typeof tfType, wasm?: () => TrainingEngine) {
  return {
    /** Resolves once tfjs is loaded, so the worker's start-up is not counted. */
    ready(): boolean {
      return true;
    },
    async time(name: string, budget: StepBudget): Promise<StepTiming> {
      const c = trainerCandidates(tf, wasm).find((x) => x.name === name);
      if (!c) throw new Error(`no backend "${name}" in this build`);
      const why = await c.available();
      if (why !== null) throw new Error(why);
      return c.timeStep(budget);
    },
  };
}
export type MeasureApi = ReturnType<typeof createMeasureApi>;

/** What Node can run on (the CLI, `npm run bench`): our WebAssembly engine and tfjs's CPU. */
export function nodeCandidates(tf: typeof tfType, wasm?: () => TrainingEngine): BackendCandidate[] {
  return [...(wasm ? [wasmCandidate(wasm, tf)] : []), tfjsCandidate(tf, 'cpu')];
}

/**
 * Chooses and activates the trainer's backend (`chooseBackend` over `candidates`, default
 * `trainerCandidates`): `forced` if it can run, else the cached choice for this device, else the
 * fastest measured. Says which, why the others were not, and the figures.
 */
export async function selectBackend(
  tf: typeof tfType,
  opts: ChooseOptions = {},
  candidates: BackendCandidate[] = trainerCandidates(tf),
): Promise<BackendInfo> {
  const facts = await deviceFacts();
  const key = deviceKey(facts);
  const choice = await chooseBackend(candidates, key, opts);
  return {
    name: choice.chosen.name,
    label: choice.chosen.label,
    device: choice.chosen.device,
    software: choice.chosen.software,
    fallbackReasons: choice.reasons,
    threads: facts.threads,
    crossOriginIsolated: facts.crossOriginIsolated,
    forced: choice.forced,
    measurement: choice.measurement,
    measuredNow: choice.measuredNow,
    deviceKey: key,
  };
}

async function isSoftwareAdapter(): Promise<boolean> {
  const adapter = await gpuAdapter();
  if (!adapter) return false;
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const text = [info.vendor, info.architecture, info.device, info.description].join(' ');
  return info.isFallbackAdapter === true || /swiftshader|fallback|llvmpipe|software/i.test(text);
}

async function tryBackend(tf: typeof tfType, name: BackendName): Promise<string | null> {
  if (name === 'webgpu') {
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) return 'navigator.gpu is missing (this browser or context has no WebGPU)';
    const adapter = await gpuAdapter();
    if (!adapter) return 'no WebGPU adapter (the GPU is blocklisted or WebGPU is disabled)';
  }
  if (!tf.findBackendFactory(name)) return 'backend not registered in this build';
  try {
    const ok = await tf.setBackend(name);
    if (!ok) return 'initialization failed';
    await tf.ready();
    // A real computation: some drivers initialize and then fail on first use.
    const sum = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)));
    const v = await sum.data();
    sum.dispose();
    if (v[0] !== 3) return `self-check computed ${v[0]} instead of 3`;
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

async function describeDevice(tf: typeof tfType, name: BackendName): Promise<string | undefined> {
  if (name === 'webgpu') {
    const adapter = await gpuAdapter();
    const info = adapter?.info;
    if (!info) return undefined;
    return (
      [info.vendor, info.architecture, info.device, info.description]
        .filter((s) => s && s.length > 0)
        .join(' / ') || undefined
    );
  }
  if (name === 'webgl') {
    const gl = (tf.backend() as unknown as { gpgpu?: { gl?: WebGLRenderingContext } }).gpgpu?.gl;
    if (!gl) return undefined;
    // The unmasked renderer names software rasterizers (SwiftShader); RENDERER is "WebKit WebGL".
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const r = gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER);
    return typeof r === 'string' ? r : undefined;
  }
  return undefined;
}
