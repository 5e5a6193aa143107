import { describe, expect, it } from 'vitest';
import { createWasmEngine } from '../../src/ml/wasm-engine-node.ts';
import { generateDemoDataset } from '../../src/core/demo.ts';
import { preset, type RunConfig } from '../../src/core/experiment.ts';
import { runInMemory } from '../../src/ml/run.ts';
import { Trainer } from '../../src/ml/train.ts';

/**
 * BaDLoss works end to end on the WebAssembly engine: the demo set poisoned with the patch and the
 * random blend at 5% each, a small ResNet, 10 epochs. The patch must be detected (AUROC ≥ 0.9)
 * and retraining without the flagged examples must at least halve the patch's success rate.
 */
describe('efficacy (demo set, patch + blend-r at 5%)', () => {
  it('detects the patch poisons and retraining halves their attack success', async () => {
    // The "tiny" preset is exactly this setting: patch and blend-r at 5%, ResNet-8 ×0.25, 8 epochs
    // on the 5,000 demo images (fewer images or epochs and the backdoor often never takes hold).
    const cfg: RunConfig = preset('tiny');
    expect(cfg.attacks).toEqual([
      { id: 'patch', ratio: 0.05 },
      { id: 'blend-r', ratio: 0.05 },
    ]);
    expect(cfg.train.epochs).toBeLessThanOrEqual(10);
    const lines: string[] = [];
    const engine = await createWasmEngine({});
    const { run } = await runInMemory(
      generateDemoDataset({ seed: 0 }),
      cfg,
      (c, split, numClasses, ckpt) => Trainer.create(engine, c, split, numClasses, ckpt),
      { log: (l) => lines.push(l) },
    );
    const report = run.report!;
    lines.push(
      `patch ASR ${report.asr.undefended.patch} → ${report.asr.defended.patch}; clean accuracy ${report.cleanAccuracy.undefended} → ${report.cleanAccuracy.defended}; removed ${JSON.stringify(report.detection.removed)}`,
    );
    console.log(lines.join('\n'));
    expect(report.detection.auroc.patch).toBeGreaterThanOrEqual(0.9);
    expect(report.asr.undefended.patch).toBeGreaterThan(0.2);
    expect(report.asr.defended.patch).toBeLessThan(report.asr.undefended.patch / 2);
    expect(report.cleanAccuracy.defended).toBeGreaterThan(0.8);
  }, 900_000);
});
