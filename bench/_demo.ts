import { setupNodeTf } from '../src/cli/node-tf.ts';
import { Trainer } from '../src/ml/train.ts';
import { generateDemoDataset } from '../src/core/demo.ts';
import { accuracy } from '../src/core/metrics.ts';
const tf = await setupNodeTf();
const t0 = performance.now();
const ds = generateDemoDataset({ seed: 0 });
console.log('demo generated in', ((performance.now() - t0) / 1000).toFixed(2), 's');
const tr = new Trainer(
  tf,
  {
    model: 'resnet8',
    width: 0.5,
    epochs: 3,
    batchSize: 64,
    lr: 3e-3,
    weightDecay: 1e-4,
    augment: false,
    seed: 1,
    record: 'train',
  },
  ds.splits.train!,
  10,
);
for (let e = 0; e < 3; e++) {
  const s = await tr.trainEpoch();
  console.log(
    'epoch',
    e + 1,
    s?.loss.toFixed(3),
    s?.accuracy.toFixed(3),
    'test acc',
    accuracy(await tr.predict(ds.splits.test!), ds.splits.test!.labels).toFixed(3),
  );
}
