import * as tf from '@tensorflow/tfjs';
import { registerFastCpuKernels } from '../src/ml/fast-cpu.ts';
import { Trainer } from '../src/ml/train.ts';
import { createTfjsEngine } from '../src/ml/tfjs-engine.ts';
import { generateDemoDataset } from '../src/core/demo.ts';
await tf.setBackend('cpu');
registerFastCpuKernels(tf);
const B = Number(process.argv[2] ?? 32);
const W = Number(process.argv[3] ?? 0.25);
const ds = generateDemoDataset({ seed: 1, train: B * 8, test: 64 });
const tr = await Trainer.create(
  createTfjsEngine(tf),
  {
    model: 'resnet8',
    width: W,
    epochs: 3,
    batchSize: B,
    lr: 1e-3,
    weightDecay: 1e-4,
    augment: false,
    seed: 1,
    record: 'train',
  },
  ds.splits.train!,
  10,
);
await tr.trainEpoch();
const t0 = performance.now();
const prof = await tf.profile(async () => {
  await tr.trainEpoch();
});
const total = performance.now() - t0;
const agg = new Map<string, number>();
let sum = 0;
for (const k of prof.kernels) {
  agg.set(k.name, (agg.get(k.name) ?? 0) + (k.kernelTimeMs as number));
  sum += k.kernelTimeMs as number;
}
console.log(
  `wall ${total.toFixed(0)} ms, kernels ${sum.toFixed(0)} ms, ${prof.kernels.length} kernel calls, ${((B * 8) / (total / 1000)).toFixed(0)} img/s (profiled)`,
);
console.log(
  [...agg]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([n, t]) => `${n}: ${t.toFixed(0)} ms`)
    .join('\n'),
);
