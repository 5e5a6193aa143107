/**
 * Records the instant demo the app ships (`public/demo-run.badloss`): the quick preset on the
 * built-in demo set (seed 0), every compared defense computed and retrained, run by our own
 * orchestrator on the WebAssembly engine in Node. Rerun after changing the preset, the demo set
 * or the detector:  npm run record-demo
 */
import { writeFileSync } from 'node:fs';
import { generateDemoDataset } from '../src/core/demo.ts';
import { preset } from '../src/core/experiment.ts';
import { BASELINE_NAMES, MemoryRunStore } from '../src/core/run.ts';
import { RunOrchestrator } from '../src/ml/run.ts';
import { Trainer } from '../src/ml/train.ts';
import { createWasmEngine } from '../src/ml/wasm-engine-node.ts';
import { wasmNearest } from '../src/ml/fast-knn.ts';

const OUT = 'public/demo-run.badloss';
const ds = generateDemoDataset({ seed: 0 });
const engine = createWasmEngine({});
const runs = new RunOrchestrator({
  store: new MemoryRunStore(),
  loadDataset: async () => ds,
  createTrainer: (cfg, split, n, ck) => Trainer.create(engine, cfg, split, n, ck),
  nearest: wasmNearest,
  newId: () => 'recorded-quick-demo',
});
const config = {
  ...preset('quick'),
  defenses: [...BASELINE_NAMES],
  retrainDefenses: [...BASELINE_NAMES],
};
const t0 = Date.now();
const created = await runs.createRun({
  datasetId: 'demo',
  datasetName: ds.name,
  config,
  name: 'Recorded demo: the quick preset, every defense',
});
const run = await runs.runAll(created.id, {
  log: (l) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${l}\n`),
});
const bytes = await runs.exportBundle(run.id);
writeFileSync(OUT, bytes);
process.stderr.write(
  `${OUT}: ${(bytes.length / 1024).toFixed(0)} kB, recorded in ${((Date.now() - t0) / 1000).toFixed(0)} s\n${run.report?.comparison ?? ''}\n`,
);
