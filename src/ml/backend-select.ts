/**
 * Choosing the compute backend by measurement — the parts that know nothing of tfjs, so they are
 * unit-tested with fake candidates and shared by the worker and the CLI.
 *
 * A backend is a pluggable *candidate*: it says whether it can run here and times one small
 * training step. The fastest measured candidate wins; the figures are cached per device by the
 * page (the worker has no localStorage), keyed by `deviceKey`.
 */

import { BackendUnavailableError } from '../core/errors.ts';

/** Bump when the measured step changes, so cached choices are measured again. */
export const MEASURE_VERSION = 1;

/**
 * How long a software candidate may take to finish its warm-up and timed step (ms) before it is
 * cut off; hardware candidates get `HARDWARE_CAP_FACTOR` times as long (a real GPU compiles its
 * shaders on first use, and cutting it off would lose the fastest backend).
 */
export const STEP_CAP_MS = 3000;
export const HARDWARE_CAP_FACTOR = 4;

/** A candidate this many times slower than the best so far is cut off after its warm-up. */
export const CUT_OFF_FACTOR = 10;

/** Limits for one candidate's timing: see `timeStep`. */
export interface StepBudget {
  /** Stop after the warm-up step when it took longer than this (ms)… */
  capMs: number;
  /** …or when its rate (images/s, warm-up included) is below this. */
  cutBelow: number;
}

/** The result of `timeStep`: images per second through one training step. */
export interface StepTiming {
  imagesPerSecond: number;
  /** True when only the warm-up step ran (a lower bound: it includes compilation). */
  cutOff: boolean;
}

/** What the status bar says about a candidate (from `describe`, once it is available). */
export interface CandidateDescription {
  /** e.g. "WebGPU (software)", "WebGL · ANGLE (…)", "CPU", "WASM · 2 threads". */
  label: string;
  device?: string;
  /** A software rasterizer/adapter (SwiftShader, llvmpipe, a fallback adapter). */
  software: boolean;
}

/**
 * A compute backend the trainer can run on. `available` resolves to null when it can run here,
 * else to why not; `timeStep` (called only when available) times a warm-up step and then one
 * training step of a tiny model on it, leaving nothing allocated; `activate` makes it the one
 * the trainer uses from now on. To add a backend (the WebAssembly engine), write one of these and
 * list it in `src/ml/backend.ts` (`trainerCandidates`).
 */
export interface BackendCandidate {
  name: string;
  available(): Promise<string | null>;
  describe(): Promise<CandidateDescription>;
  timeStep(budget: StepBudget): Promise<StepTiming>;
  activate(): Promise<void>;
}

/** One candidate's line in a measurement. */
export interface CandidateResult {
  name: string;
  label: string;
  device?: string;
  software: boolean;
  /** Why it cannot run here (then it was not timed). */
  unavailable?: string;
  /** Why its timing failed (it is then never chosen over a timed one). */
  error?: string;
  /** Images per second through a training step of the tiny model (absent when not timed). */
  imagesPerSecond?: number;
  /** The rate is a warm-up estimate (a lower bound): it was cut off after its warm-up step. */
  cutOff?: boolean;
  /** Not timed: its steps did not finish within this many ms (so it was stopped). */
  timedOutMs?: number;
}

/**
 * Runs one candidate's `timeStep` where it can be abandoned (a throwaway worker in the browser):
 * resolves to null when it has not finished within `deadlineMs`.
 */
export type IsolatedTimer = (
  name: string,
  budget: StepBudget,
  deadlineMs: number,
) => Promise<StepTiming | null>;

/** A measurement as cached by the page (localStorage, per device key). */
export interface BackendMeasurement {
  version: number;
  /** `deviceKey` of the device measured. */
  key: string;
  /** Candidate names in the order measured: a new candidate invalidates the cache. */
  candidates: string[];
  results: CandidateResult[];
  chosen: string;
  /** Epoch milliseconds. */
  measuredAt: number;
}

/** What identifies "this device" for the cache: a change in any of these means measure again. */
export interface DeviceFacts {
  userAgent: string;
  /** navigator.hardwareConcurrency. */
  threads: number;
  crossOriginIsolated: boolean;
  /** WebGPU adapter vendor / architecture / device / description, '' without one. */
  adapter: string;
}

/** The cache key of a device: its facts and the measurement version, as one string. */
export function deviceKey(f: DeviceFacts): string {
  return JSON.stringify([
    MEASURE_VERSION,
    f.userAgent,
    f.threads,
    f.crossOriginIsolated,
    f.adapter,
  ]);
}

/**
 * The facts that key the per-device cache, read in this context (the worker, or Node).
 */
export async function deviceFacts(): Promise<DeviceFacts> {
  const nav = globalThis.navigator as Navigator | undefined;
  let adapter = '';
  const info = (await gpuAdapter())?.info;
  if (info)
    adapter = [info.vendor, info.architecture, info.device, info.description]
      .filter((s) => s && s.length > 0)
      .join(' / ');
  return {
    userAgent: nav?.userAgent ?? `node ${globalThis.process?.version ?? ''}`,
    threads: nav?.hardwareConcurrency ?? 1,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    adapter,
  };
}

let adapter: Promise<GPUAdapter | null> | null = null;

/** This context's WebGPU adapter, requested once (each request is a round trip to the GPU process). */
export function gpuAdapter(): Promise<GPUAdapter | null> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  return (adapter ??= gpu ? gpu.requestAdapter().catch(() => null) : Promise.resolve(null));
}

/** A cached measurement is used only for the same device key, version and candidate list. */
export function cacheUsable(
  m: BackendMeasurement | null | undefined,
  key: string,
  candidates: string[],
): m is BackendMeasurement {
  return (
    !!m &&
    m.version === MEASURE_VERSION &&
    m.key === key &&
    m.candidates.length === candidates.length &&
    m.candidates.every((c, i) => c === candidates[i]) &&
    m.results.some((r) => r.name === m.chosen)
  );
}

/**
 * The candidate to use: the highest measured images/s (on equal rates a hardware backend before
 * a software one, then list order). Without any timing, the first available hardware candidate,
 * then the first available software one — so a software adapter is never chosen over a faster
 * or an untimed hardware backend. Null when nothing can run.
 */
export function pickFastest(results: CandidateResult[]): string | null {
  let best: CandidateResult | null = null;
  for (const r of results) {
    if (r.unavailable || r.error || !(r.imagesPerSecond! > 0)) continue;
    if (
      !best ||
      r.imagesPerSecond! > best.imagesPerSecond! ||
      (r.imagesPerSecond === best.imagesPerSecond && best.software && !r.software)
    )
      best = r;
  }
  if (best) return best.name;
  const usable = results.filter((r) => !r.unavailable);
  return (usable.find((r) => !r.software) ?? usable[0])?.name ?? null;
}

/**
 * Times every available candidate in order; never throws (failures are recorded). One slower
 * than the best so far by `CUT_OFF_FACTOR`, or whose warm-up exceeds `capMs`, stops after its
 * warm-up. With an `isolated` timer, a candidate still running after `capMs` (software) or
 * `HARDWARE_CAP_FACTOR`·`capMs` (hardware) is stopped and left untimed.
 */
export async function measureCandidates(
  candidates: BackendCandidate[],
  capMs = STEP_CAP_MS,
  isolated?: IsolatedTimer,
): Promise<CandidateResult[]> {
  const results: CandidateResult[] = [];
  let best = 0;
  for (const c of candidates) {
    const r = await inspect(c);
    results.push(r);
    if (r.unavailable) continue;
    try {
      const budget = { capMs, cutBelow: best / CUT_OFF_FACTOR };
      const deadline = r.software ? capMs : HARDWARE_CAP_FACTOR * capMs;
      const t = isolated ? await isolated(c.name, budget, deadline) : await c.timeStep(budget);
      if (!t) {
        r.timedOutMs = deadline;
        continue;
      }
      r.imagesPerSecond = t.imagesPerSecond;
      if (t.cutOff) r.cutOff = true;
      best = Math.max(best, t.imagesPerSecond);
    } catch (e) {
      r.error = e instanceof Error ? e.message : String(e);
    }
  }
  return results;
}

/** A candidate's availability and description, never throwing. */
export async function inspect(c: BackendCandidate): Promise<CandidateResult> {
  let why: string | null;
  try {
    why = await c.available();
  } catch (e) {
    why = e instanceof Error ? e.message : String(e);
  }
  if (why !== null)
    return { name: c.name, label: c.name.toUpperCase(), software: false, unavailable: why };
  try {
    const d = await c.describe();
    return { name: c.name, ...d };
  } catch {
    return { name: c.name, label: c.name.toUpperCase(), software: false };
  }
}

/** A rate for people: "180 img/s", "3.4 img/s", "0.42 img/s". */
export function formatRate(ips: number): string {
  const digits = ips >= 10 ? 0 : ips >= 1 ? 1 : 2;
  return `${ips.toFixed(digits)} img/s`;
}

/**
 * The status bar's account of a measurement: "fastest here: 180 img/s; WebGPU (software)
 * ≥ 3.1 img/s (cut off after its warm-up); WebGL: unavailable". The chosen one comes first; a
 * cut-off rate is a lower bound (its warm-up step includes compilation).
 */
export function describeMeasurement(m: Pick<BackendMeasurement, 'results' | 'chosen'>): string {
  const chosen = m.results.find((r) => r.name === m.chosen);
  const parts: string[] = [];
  if (chosen?.imagesPerSecond) parts.push(`fastest here: ${formatRate(chosen.imagesPerSecond)}`);
  for (const full of m.results) {
    if (full === chosen) continue;
    // the device names are in the Diagnostics table; here the kind is enough
    const r = { ...full, label: full.label.split(' · ')[0] };
    if (r.unavailable) parts.push(`${r.label}: unavailable`);
    else if (r.error) parts.push(`${r.label}: failed (${r.error})`);
    else if (r.timedOutMs !== undefined)
      parts.push(`${r.label}: no step within ${r.timedOutMs / 1000} s (stopped)`);
    else if (r.imagesPerSecond !== undefined)
      parts.push(
        `${r.label} ${r.cutOff ? '≥ ' : ''}${formatRate(r.imagesPerSecond)}${r.cutOff ? ' (cut off after its warm-up)' : ''}`,
      );
  }
  return parts.join('; ');
}

/** What `chooseBackend` decided and on what grounds. */
export interface BackendChoice {
  chosen: CandidateResult;
  /** Forced by the caller (`?backend=`, `--backend`). */
  forced: boolean;
  /** The measurement the choice rests on (cached or new); absent for a forced choice without one. */
  measurement?: BackendMeasurement;
  /** True when `measurement` was taken now (the page then caches it). */
  measuredNow: boolean;
  /** One line per candidate that could not run or be used, "WEBGPU: why". */
  reasons: string[];
}

export interface ChooseOptions {
  /** Use this candidate if it can run (else measure and say why not). */
  forced?: string;
  /**
   * Measurements the page has cached (one per device key it has seen): the one `cacheUsable`
   * for this device, if any, is used. The page passes them all, so it need not compute the key
   * itself (that would mean asking for a GPU adapter on the main thread).
   */
  cached?: BackendMeasurement[];
  /** Ignore the cache and measure again. */
  remeasure?: boolean;
  capMs?: number;
  /** Time candidates in throwaway workers (see `IsolatedTimer`). */
  isolated?: IsolatedTimer;
}

/**
 * Picks and activates the backend to train on: the forced one if it can run; else the cached
 * choice for this device (`key`) if still available; else the fastest by `measureCandidates`
 * (a lone candidate is not timed). Shared by the trainer worker and the CLI.
 */
export async function chooseBackend(
  candidates: BackendCandidate[],
  key: string,
  opts: ChooseOptions = {},
): Promise<BackendChoice> {
  const names = candidates.map((c) => c.name);
  const reasons: string[] = [];
  const cached = opts.cached?.find((m) => cacheUsable(m, key, names));
  const tryUse = async (name: string): Promise<CandidateResult | null> => {
    const c = candidates.find((x) => x.name === name);
    if (!c) {
      reasons.push(
        `${name.toUpperCase()}: not a backend of this build (one of ${names.join(', ')})`,
      );
      return null;
    }
    const r = await inspect(c);
    if (r.unavailable) {
      reasons.push(`${name.toUpperCase()}: ${r.unavailable}`);
      return null;
    }
    try {
      await c.activate();
      return r;
    } catch (e) {
      reasons.push(`${name.toUpperCase()}: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    }
  };
  if (opts.forced && !opts.remeasure) {
    const r = await tryUse(opts.forced);
    if (r) return { chosen: r, forced: true, measurement: cached, measuredNow: false, reasons };
  }
  if (cached && !opts.remeasure) {
    const r = await tryUse(cached.chosen);
    if (r) {
      for (const x of cached.results)
        if (x.unavailable) reasons.push(`${x.name.toUpperCase()}: ${x.unavailable}`);
      return { chosen: r, forced: false, measurement: cached, measuredNow: false, reasons };
    }
  }
  const results =
    candidates.length === 1
      ? [await inspect(candidates[0])]
      : await measureCandidates(candidates, opts.capMs, opts.isolated);
  for (const r of results)
    if (r.unavailable && !reasons.some((x) => x.startsWith(`${r.name.toUpperCase()}:`)))
      reasons.push(`${r.name.toUpperCase()}: ${r.unavailable}`);
  const measurement = (chosen: string): BackendMeasurement => ({
    version: MEASURE_VERSION,
    key,
    candidates: names,
    results,
    chosen,
    measuredAt: Date.now(),
  });
  if (opts.forced && opts.remeasure) {
    const r = await tryUse(opts.forced);
    if (r)
      return {
        chosen: { ...r, ...results.find((x) => x.name === r.name) },
        forced: true,
        measurement: measurement(r.name),
        measuredNow: true,
        reasons,
      };
  }
  // Activation can still fail (a driver that times but will not restart): try the next best.
  const left = results.slice();
  for (;;) {
    const name = pickFastest(left);
    if (name === null)
      throw new BackendUnavailableError(
        `no compute backend could start here: ${reasons.join('; ') || 'none is registered'}`,
      );
    const c = candidates.find((x) => x.name === name)!;
    const r = left.find((x) => x.name === name)!;
    try {
      await c.activate();
      return {
        chosen: r,
        forced: false,
        measurement: measurement(name),
        measuredNow: true,
        reasons,
      };
    } catch (e) {
      r.error = e instanceof Error ? e.message : String(e);
      reasons.push(`${name.toUpperCase()}: ${r.error}`);
      left.splice(left.indexOf(r), 1);
    }
  }
}
