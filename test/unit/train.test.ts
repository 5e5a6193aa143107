import { describe, expect, it } from 'vitest';
import { cpuTf } from './tf-setup.ts';
import { Trainer, type TrainConfig } from '../../src/ml/train.ts';
import { ResNet } from '../../src/ml/resnet.ts';
import { createTfjsEngine } from '../../src/ml/tfjs-engine.ts';
import { createWasmEngine } from '../../src/ml/wasm-engine-node.ts';
import type { TrainingEngine } from '../../src/ml/engine.ts';
import { generateDemoDataset } from '../../src/core/demo.ts';
import { accuracy } from '../../src/core/metrics.ts';

const demo = generateDemoDataset({ seed: 3, train: 600, test: 300 });
const train = demo.splits.train!;
const test = demo.splits.test!;
const base: TrainConfig = {
  model: 'resnet8',
  width: 0.5,
  epochs: 3,
  batchSize: 64,
  lr: 3e-3,
  weightDecay: 1e-4,
  augment: false,
  seed: 5,
  record: 'eval',
};

describe('ResNet family', () => {
  it('builds every model with the expected output shape and parameter counts', async () => {
    const tf = await cpuTf();
    const counts: Record<string, number> = {};
    for (const name of ['resnet8', 'resnet20', 'resnet18', 'resnet50'] as const) {
      const m = new ResNet(tf, {
        name,
        width: name.startsWith('resnet5') || name === 'resnet18' ? 0.125 : 1,
        numClasses: 10,
        seed: 1,
      });
      const out = tf.tidy(() => m.apply(tf.zeros([2, 32, 32, 3]), false));
      expect(out.shape).toEqual([2, 10]);
      out.dispose();
      counts[name] = m.parameterCount;
      m.dispose();
    }
    // ResNet-20 (16/32/64, option-B shortcuts) has ≈ 0.27 M parameters
    const r20 = new ResNet(tf, { name: 'resnet20', width: 1, numClasses: 10, seed: 1 });
    expect(r20.parameterCount).toBeGreaterThan(0.26e6);
    expect(r20.parameterCount).toBeLessThan(0.29e6);
    r20.dispose();
    expect(counts.resnet20).toBeGreaterThan(counts.resnet8);
    expect(counts.resnet50).toBeGreaterThan(counts.resnet18);
  });
  it('initializes identically from the same seed', async () => {
    const tf = await cpuTf();
    const a = new ResNet(tf, { name: 'resnet8', width: 0.5, numClasses: 10, seed: 9 });
    const b = new ResNet(tf, { name: 'resnet8', width: 0.5, numClasses: 10, seed: 9 });
    const wa = await a.getWeights();
    const wb = await b.getWeights();
    expect(Object.keys(wa)).toEqual(Object.keys(wb));
    for (const k of Object.keys(wa)) expect(wa[k]).toEqual(wb[k]);
    a.dispose();
    b.dispose();
  });
});

const engines: [string, () => Promise<TrainingEngine>][] = [
  ['tfjs CPU', async () => createTfjsEngine(await cpuTf())],
  ['wasm, 2 threads', async () => createWasmEngine({ threads: 2 })],
];

describe.each(engines)('training loop on the %s engine', (_name, makeEngine) => {
  it('learns the demo set, records trajectories matching an evaluation pass, keeps memory flat', async () => {
    const tf = await cpuTf();
    const engine = await makeEngine();
    const start = tf.memory().numTensors;
    const tr = await Trainer.create(engine, base, train, 10);
    const before = tr.model.memory();
    const after: { bytes: number; tensors: number }[] = [];
    for (let e = 0; e < base.epochs; e++) {
      const stats = await tr.trainEpoch();
      expect(stats?.epoch).toBe(e);
      expect({ bytes: stats!.bytes, tensors: stats!.tensors }).toEqual(tr.model.memory());
      after.push(tr.model.memory());
    }
    // flat: the same tensors and bytes after every epoch as before the first
    expect(after).toEqual([before, before, before]);
    expect(tr.trajectories.length).toBe(600 * 3);
    const last = await tr.perExampleLosses(train);
    for (let i = 0; i < 600; i += 37) expect(tr.trajectories[i * 3 + 2]).toBeCloseTo(last[i], 4);
    // the loss falls over epochs on average
    const meanCol = (e: number) =>
      train.labels.reduce((s, _, i) => s + tr.trajectories[i * 3 + e], 0) / 600;
    expect(meanCol(2)).toBeLessThan(meanCol(0));
    const acc = accuracy(await tr.predict(test), test.labels);
    // chance is 0.1; the demo set is hard on purpose (colour half the time a cue, distractor
    // textures): 600 images, 3 epochs reach about 0.34
    expect(acc).toBeGreaterThan(0.25);
    // penultimate features: N × D, and the same rows as a batch of their own
    const feats = await tr.features(test);
    expect(feats.length).toBe(test.count * tr.model.featureDim);
    const some = await tr.features({
      count: 3,
      images: test.images.subarray(5 * 3072, 8 * 3072),
      labels: test.labels.subarray(5, 8),
    });
    for (let i = 0; i < some.length; i++)
      expect(some[i]).toBeCloseTo(feats[5 * tr.model.featureDim + i], 4);
    tr.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('an interrupted and resumed run gives the same trajectories as an uninterrupted one', async () => {
    const engine = await makeEngine();
    const cfg = { ...base, epochs: 2, augment: true };
    const small = {
      count: 200,
      images: train.images.subarray(0, 200 * 3072),
      labels: train.labels.subarray(0, 200),
    };
    const full = await Trainer.create(engine, cfg, small, 10);
    await full.trainEpoch();
    await full.trainEpoch();
    const a = await Trainer.create(engine, cfg, small, 10);
    await a.trainEpoch();
    const ckpt = await a.checkpoint();
    // a pause mid-epoch abandons the epoch; resuming restarts it from the checkpoint
    let calls = 0;
    expect(await a.trainEpoch(undefined, () => ++calls > 1)).toBeNull();
    a.dispose();
    const b = await Trainer.create(engine, cfg, small, 10, ckpt);
    expect(b.epoch).toBe(1);
    await b.trainEpoch();
    expect(Array.from(b.trajectories)).toEqual(Array.from(full.trajectories));
    expect(b.history.map((h) => h.loss)).toEqual(full.history.map((h) => h.loss));
    full.dispose();
    b.dispose();
  });

  it('trains a set smaller than half a batch (padding repeats it cyclically)', async () => {
    const engine = await makeEngine();
    const tiny = {
      count: 5,
      images: train.images.subarray(0, 5 * 3072),
      labels: train.labels.subarray(0, 5),
    };
    const tr = await Trainer.create(engine, { ...base, epochs: 1, batchSize: 16 }, tiny, 10);
    const stats = await tr.trainEpoch();
    expect(Number.isFinite(stats!.loss)).toBe(true);
    expect(tr.trajectories.every((v) => Number.isFinite(v) && v > 0)).toBe(true);
    tr.dispose();
  });

  it('recording from the training pass fills every column', async () => {
    const engine = await makeEngine();
    const small = {
      count: 100,
      images: train.images.subarray(0, 100 * 3072),
      labels: train.labels.subarray(0, 100),
    };
    const tr = await Trainer.create(
      engine,
      { ...base, epochs: 1, record: 'train', batchSize: 32 },
      small,
      10,
    );
    await tr.trainEpoch();
    expect(tr.trajectories.every((v) => v > 0 && v <= 100)).toBe(true);
    tr.dispose();
  });
});

describe('training recipes', () => {
  it('rejects bad recipes with the value named', async () => {
    const tf = await cpuTf();
    const engine = createTfjsEngine(tf);
    await expect(Trainer.create(engine, { ...base, epochs: 0 }, train, 10)).rejects.toThrow(
      /train\.epochs = 0 is invalid: must be a whole number in 1–1000/,
    );
    await expect(Trainer.create(engine, { ...base, batchSize: 1.5 }, train, 10)).rejects.toThrow(
      /train\.batchSize = 1\.5 is invalid/,
    );
    await expect(
      Trainer.create(engine, { ...base, model: 'vgg' as 'resnet8' }, train, 10),
    ).rejects.toThrow(/model "vgg" is invalid; known: resnet8/);
  });
});
