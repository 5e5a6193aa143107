import type * as tfType from '@tensorflow/tfjs';

export type BackendName = 'webgpu' | 'webgl' | 'cpu';

/** Which tfjs backend is in use, on what, and why any better one was not. */
export interface BackendInfo {
  name: BackendName;
  /** e.g. "WebGPU · google / swiftshader" or "CPU (JavaScript)". */
  label: string;
  /** Adapter vendor and architecture (WebGPU) or renderer (WebGL), when known. */
  device?: string;
  /** One line per backend that was tried and failed, most preferred first. */
  fallbackReasons: string[];
}

const ORDER: BackendName[] = ['webgpu', 'webgl', 'cpu'];

/**
 * Picks the best tfjs backend available: WebGPU, else WebGL, else CPU (or starts from
 * `preferred` when given). Each failure is recorded with its reason. `tf` is passed in so the same
 * code serves the worker and Node (where only 'cpu' is registered).
 */
export async function selectBackend(
  tf: typeof tfType,
  preferred?: BackendName,
): Promise<BackendInfo> {
  const fallbackReasons: string[] = [];
  const start = preferred ? ORDER.indexOf(preferred) : 0;
  for (const name of ORDER.slice(start)) {
    const why = await tryBackend(tf, name);
    if (why === null) {
      const device = await describeDevice(tf, name);
      return { name, label: labelOf(name, device), device, fallbackReasons };
    }
    fallbackReasons.push(`${name.toUpperCase()}: ${why}`);
  }
  throw new Error(`no tfjs backend could start: ${fallbackReasons.join('; ')}`);
}

async function tryBackend(tf: typeof tfType, name: BackendName): Promise<string | null> {
  if (name === 'webgpu') {
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) return 'navigator.gpu is missing (this browser or context has no WebGPU)';
    const adapter = await gpu.requestAdapter().catch(() => null);
    if (!adapter) return 'no WebGPU adapter (the GPU is blocklisted or WebGPU is disabled)';
  }
  if (!tf.findBackendFactory(name)) return 'backend not registered in this build';
  try {
    const ok = await tf.setBackend(name);
    if (!ok) return 'initialization failed';
    await tf.ready();
    // A real computation: some drivers initialize and then fail on first use.
    const v = await tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2))).data();
    if (v[0] !== 3) return `self-check computed ${v[0]} instead of 3`;
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

async function describeDevice(tf: typeof tfType, name: BackendName): Promise<string | undefined> {
  if (name === 'webgpu') {
    const adapter = await navigator.gpu.requestAdapter().catch(() => null);
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
    const r = gl.getParameter(gl.RENDERER);
    return typeof r === 'string' ? r : undefined;
  }
  return typeof navigator === 'undefined' || !('hardwareConcurrency' in navigator)
    ? undefined
    : `${navigator.hardwareConcurrency} threads`;
}

function labelOf(name: BackendName, device?: string): string {
  const base = name === 'webgpu' ? 'WebGPU' : name === 'webgl' ? 'WebGL' : 'CPU';
  return device ? `${base} · ${device}` : base;
}
