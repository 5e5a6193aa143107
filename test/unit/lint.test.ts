import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';

/** The layer guard: src/core, at every depth, imports nothing impure and touches no DOM global. */
describe('lint guard for src/core', () => {
  const eslint = new ESLint({ cwd: process.cwd() });
  const lint = async (code: string, filePath: string) => {
    const [res] = await eslint.lintText(code, { filePath });
    return res.messages.map((m) => `${m.ruleId}: ${m.message}`);
  };

  it('rejects tfjs, storage and engine imports from a nested core file', async () => {
    const msgs = await lint(
      [
        "import * as tf from '@tensorflow/tfjs';",
        "import { Trainer } from '../../ml/train.ts';",
        "import { IdbRunStore } from '../../../storage/runs.ts';",
        "import { readFileSync } from 'node:fs';",
        'export const x = [tf, Trainer, IdbRunStore, readFileSync];',
      ].join('\n'),
      'src/core/attacks/deep/fixture.ts',
    );
    expect(msgs.filter((m) => m.startsWith('no-restricted-imports'))).toHaveLength(4);
  });

  it('rejects DOM globals in core and allows them elsewhere', async () => {
    const code = 'export const w = document.title + String(localStorage.length);\n';
    expect(
      (await lint(code, 'src/core/detect/fixture.ts')).filter((m) =>
        m.startsWith('no-restricted-globals'),
      ),
    ).toHaveLength(2);
    expect(await lint(code, 'src/app/fixture.ts')).toEqual([]);
  });

  it('accepts a pure core file', async () => {
    const code = "import { auroc } from '../metrics.ts';\nexport const f = auroc;\n";
    expect(await lint(code, 'src/core/detect/fixture.ts')).toEqual([]);
  });
});
