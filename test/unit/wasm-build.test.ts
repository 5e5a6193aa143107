import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function hasTool(name: string): boolean {
  try {
    execFileSync(name, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('the committed WebAssembly engine', () => {
  it('is exactly what scripts/build-wasm.sh builds from src/ml/wasm/engine.c', () => {
    // Not skipped without the compiler: the committed binary must be checked everywhere.
    for (const tool of ['clang-14', 'wasm-ld-14'])
      if (!hasTool(tool))
        throw new Error(
          `${tool} is missing, so the committed engine.wasm cannot be checked against its source: apt-get install clang-14 lld-14`,
        );
    const dir = mkdtempSync(join(tmpdir(), 'wasm-build-'));
    try {
      execFileSync('bash', ['scripts/build-wasm.sh', dir], { stdio: 'pipe' });
      for (const f of ['engine.wasm', 'engine-wasm.ts']) {
        const built = readFileSync(join(dir, f));
        const committed = readFileSync(join('src/ml/wasm', f));
        expect(
          built.equals(committed),
          `${f} differs from a fresh build: run npm run build:wasm`,
        ).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
