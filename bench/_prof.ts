import * as tf from '@tensorflow/tfjs';
import { registerFastCpuKernels as registerFastCpuConv } from '../src/ml/fast-cpu.ts';
import { Trainer } from '../src/ml/train.ts';
import { generateDemoDataset } from '../src/core/demo.ts';
await tf.setBackend('cpu');
registerFastCpuConv(tf);
const ds = generateDemoDataset({ seed: 1, train: 64, test: 64 });
const tr = new Trainer(
  tf,
  {
    model: 'resnet8',
    width: 1,
    epochs: 2,
    batchSize: 64,
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
const prof = await tf.profile(async () => {
  await tr.trainEpoch();
});
const agg = new Map<string, number>();
for (const k of prof.kernels) agg.set(k.name, (agg.get(k.name) ?? 0) + (k.kernelTimeMs as number));
console.log(
  [...agg]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([n, t]) => `${n}: ${t.toFixed(0)} ms`)
    .join('\n'),
);
