import type { RunConfig } from '../core/experiment.ts';
import { validateRunConfig } from '../core/config.ts';

/**
 * A run is a link: the hash holds the run id (when stored in this browser) and the whole
 * configuration as base64url JSON, so `#run=…&cfg=…` reproduces a demo setup anywhere.
 */
export function encodeConfig(config: RunConfig, runId?: string): string {
  const json = JSON.stringify(config);
  const b64 = btoa(String.fromCharCode(...new TextEncoder().encode(json)))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '');
  return `#${runId ? `run=${runId}&` : ''}cfg=${b64}`;
}

/** Reads the hash; an unreadable or invalid configuration is ignored (the defaults apply). */
export function decodeConfig(hash: string): { runId?: string; config?: RunConfig } {
  const params = new Map(
    hash
      .replace(/^#/, '')
      .split('&')
      .filter((p) => p.includes('='))
      .map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as [string, string]),
  );
  const out: { runId?: string; config?: RunConfig } = {};
  const run = params.get('run');
  if (run && /^[0-9a-f-]{36}$/.test(run)) out.runId = run;
  const cfg = params.get('cfg');
  if (cfg) {
    try {
      const bin = atob(cfg.replaceAll('-', '+').replaceAll('_', '/'));
      const parsed: unknown = JSON.parse(
        new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))),
      );
      out.config = validateRunConfig(parsed);
    } catch {
      // a damaged link falls back to the defaults
    }
  }
  return out;
}
