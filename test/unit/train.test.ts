import { describe, expect, it } from 'vitest';
import { cpuTf } from './tf-setup.ts';
import {
  Trainer,
  WAVE_CYCLES,
  writeNormalized,
  type Placement,
  type TrainConfig,
} from '../../src/ml/train.ts';
import { Rng } from '../../src/core/rng.ts';
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

describe('writeNormalized: how an image is placed in a batch', () => {
  const S = 32;
  const unit = { mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] }; // output = the raw value
  const none: Placement = { flip: false, dx: 0, dy: 0, fx: 0, fy: 0 };
  const place = (img: Uint8Array, at: Partial<Placement>, norm = unit) => {
    const out = new Float32Array(S * S * 3);
    writeNormalized(out, 0, img, 0, norm, { ...none, ...at });
    return out;
  };
  const px = (a: ArrayLike<number>, x: number, y: number, c = 0) => a[(y * S + x) * 3 + c];
  const random = (seed: number) => {
    const r = new Rng(seed);
    return Uint8Array.from({ length: S * S * 3 }, () => r.int(256));
  };

  it('without jitter writes the normalized pixels; a constant image stays constant under any jitter', () => {
    const img = random(1);
    const norm = { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] };
    const out = place(img, {}, norm);
    for (let i = 0; i < img.length; i += 97)
      expect(out[i]).toBeCloseTo((img[i] / 255 - norm.mean[i % 3]) / norm.std[i % 3], 5);
    const flat = new Uint8Array(S * S * 3).fill(77);
    for (const [fx, fy] of [
      [0.3, 0.9],
      [0.5, 0.5],
      [0.99, 0.01],
    ])
      for (const v of place(flat, { fx, fy })) expect(v).toBeCloseTo(77, 4);
  });

  it('bilinear: half a pixel both ways is the mean of each 2×2 block; the last row and column repeat', () => {
    const img = random(2);
    const out = place(img, { fx: 0.5, fy: 0.5 });
    for (const [x, y] of [
      [0, 0],
      [10, 3],
      [30, 30],
    ])
      for (let c = 0; c < 3; c++) {
        const mean =
          (px(img, x, y, c) +
            px(img, x + 1, y, c) +
            px(img, x, y + 1, c) +
            px(img, x + 1, y + 1, c)) /
          4;
        expect(px(out, x, y, c)).toBeCloseTo(mean, 4);
      }
    // the bottom-right corner has no neighbour: it stays; the last column mixes only vertically
    expect(px(out, 31, 31)).toBeCloseTo(px(img, 31, 31), 4);
    expect(px(out, 31, 5)).toBeCloseTo((px(img, 31, 5) + px(img, 31, 6)) / 2, 4);
  });

  it('a ramp moves by the jitter: the sampled position is x + fx', () => {
    const ramp = new Uint8Array(S * S * 3);
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++) ramp.fill(4 * x + 2, (y * S + x) * 3, (y * S + x) * 3 + 3);
    const out = place(ramp, { fx: 0.25, fy: 0.7 });
    for (let x = 0; x < S - 1; x++) expect(px(out, x, 9)).toBeCloseTo(4 * (x + 0.25) + 2, 4);
  });

  it('flipped: the same as jittering the mirrored image; cropped: reads the shifted pixels, zero outside', () => {
    const img = random(3);
    const mirrored = new Uint8Array(img.length);
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++)
        for (let c = 0; c < 3; c++) mirrored[(y * S + x) * 3 + c] = px(img, S - 1 - x, y, c);
    expect(Array.from(place(img, { flip: true, fx: 0.4, fy: 0.2 }))).toEqual(
      Array.from(place(mirrored, { fx: 0.4, fy: 0.2 })),
    );
    const shifted = place(img, { dx: 3, dy: -2, fx: 0.5 });
    expect(px(shifted, 4, 5)).toBeCloseTo((px(img, 7, 3) + px(img, 8, 3)) / 2, 4);
    expect(px(shifted, 4, 0)).toBeCloseTo(0, 6); // source row −2: the crop's zero padding
    expect(px(shifted, 30, 9)).toBeCloseTo(0, 6); // source column 33
  });

  it('a wave adds a·cos(kx·x + ky·y + phase) to every channel, clamped to 0–255', () => {
    const gray = new Uint8Array(S * S * 3).fill(100);
    const wave = { a: 20, kx: (2 * Math.PI * 6) / S, ky: 0, phase: 0 };
    const out = place(gray, { wave });
    for (let y = 0; y < S; y += 7)
      for (let x = 0; x < S; x++)
        for (let c = 0; c < 3; c++)
          expect(px(out, x, y, c)).toBeCloseTo(100 + 20 * Math.cos((2 * Math.PI * 6 * x) / S), 3);
    // a diagonal wave with a phase: constant along x + y = const
    const diag = place(gray, { wave: { a: 30, kx: 0.4, ky: 0.4, phase: 1 } });
    expect(px(diag, 3, 9)).toBeCloseTo(px(diag, 9, 3), 4);
    expect(px(diag, 0, 0)).toBeCloseTo(100 + 30 * Math.cos(1), 3);
    // the bright and dark ends clamp, as a stored image would
    const bright = place(new Uint8Array(S * S * 3).fill(250), { wave });
    expect(px(bright, 0, 0)).toBe(255);
    const dark = place(new Uint8Array(S * S * 3).fill(5), { wave: { ...wave, phase: Math.PI } });
    expect(px(dark, 0, 0)).toBe(0);
    // after the resampling: jittered and waved = jittered, plus the wave
    const img = random(4);
    const j = place(img, { fx: 0.3, fy: 0.6 });
    const jw = place(img, { fx: 0.3, fy: 0.6, wave: { a: 10, kx: 0.2, ky: 0.7, phase: 2 } });
    for (const [x, y] of [
      [2, 5],
      [17, 29],
    ]) {
      const want = Math.min(255, Math.max(0, px(j, x, y) + 10 * Math.cos(0.2 * x + 0.7 * y + 2)));
      expect(px(jw, x, y)).toBeCloseTo(want, 3);
    }
    // a fine wave adds to the first before the one clamp; alone it acts as a wave
    const nyquist = { a: 8, kx: Math.PI, ky: 0, phase: 0 };
    const both = place(gray, { wave, fine: nyquist });
    for (const x of [0, 1, 5, 6])
      expect(px(both, x, 4)).toBeCloseTo(
        100 + 20 * Math.cos((2 * Math.PI * 6 * x) / S) + 8 * (x % 2 ? -1 : 1),
        3,
      );
    expect(Array.from(place(gray, { fine: nyquist }))).toEqual(
      Array.from(place(gray, { wave: nyquist })),
    );
    const clipped = place(new Uint8Array(S * S * 3).fill(250), { wave, fine: nyquist });
    expect(px(clipped, 0, 0)).toBe(255);
    // one clamp after both waves: 250 + 18.5 − 8, not min(255, 268.5) − 8
    expect(px(clipped, 1, 0)).toBeCloseTo(250 + 20 * Math.cos((2 * Math.PI * 6) / S) - 8, 3);
  });
});

describe('training with sub-pixel jitter', () => {
  // 200 demo images, two epochs on the WebAssembly engine: the trajectories a recipe gives
  const small = {
    count: 200,
    images: train.images.subarray(0, 200 * 3072),
    labels: train.labels.subarray(0, 200),
  };
  const engineP = createWasmEngine({ threads: 2 });
  const losses = async (c: TrainConfig) => {
    const t = await Trainer.create(await engineP, c, small, 10);
    await t.trainEpoch();
    await t.trainEpoch();
    const out = Array.from(t.trajectories);
    t.dispose();
    return out;
  };

  it('changes what is learned, resumes exactly, and leaves a recipe without it as it was', async () => {
    const engine = await engineP;
    const cfg = { ...base, epochs: 2, augment: true };
    const plain = await losses(cfg);
    // the flip-and-crop stream is the one from before the jitter existed (values from bd18227)
    const before = [
      [0.35293060541152954, 0.23426055908203125],
      [2.2527318000793457, 2.2301735877990723],
      [3.3087215423583984, 2.868835687637329],
      [3.7014496326446533, 2.475269079208374],
    ];
    [0, 1, 77, 199].forEach((row, j) =>
      before[j].forEach((v, e) => expect(plain[row * 2 + e]).toBeCloseTo(v, 5)),
    );
    expect(await losses({ ...cfg, jitter: false })).toEqual(plain);
    const jittered = await losses({ ...cfg, jitter: true });
    expect(jittered).not.toEqual(plain);
    // without flip and crop too (the presets' recipe)
    const still = { ...cfg, augment: false };
    expect(await losses({ ...still, jitter: true })).not.toEqual(await losses(still));
    // interrupted after one epoch and resumed from the checkpoint: the same trajectories
    const a = await Trainer.create(engine, { ...cfg, jitter: true }, small, 10);
    await a.trainEpoch();
    const ckpt = await a.checkpoint();
    a.dispose();
    const b = await Trainer.create(engine, { ...cfg, jitter: true }, small, 10, ckpt);
    await b.trainEpoch();
    expect(Array.from(b.trajectories)).toEqual(jittered);
    b.dispose();
  });

  it('random stripes (waves) change what is learned and resume exactly; share 0 and max 0 train alike', async () => {
    const engine = await engineP;
    const cfg = { ...base, epochs: 2, jitter: true };
    const waves = { max: 24, share: 0.5 };
    const striped = await losses({ ...cfg, waves });
    expect(striped).not.toEqual(await losses(cfg));
    // alone, without jitter or flip-and-crop (--retrain-jitter off --retrain-stripes on)
    const bare = { ...base, epochs: 2 };
    expect(await losses({ ...bare, waves })).not.toEqual(await losses(bare));
    // no wave drawn: the same pixels, though the waves' draws still move the random stream
    const noWave = await losses({ ...cfg, waves: { max: 24, share: 0 } });
    expect(await losses({ ...cfg, waves: { max: 0, share: 1 } })).toEqual(noWave);
    const a = await Trainer.create(engine, { ...cfg, waves }, small, 10);
    await a.trainEpoch();
    const ckpt = await a.checkpoint();
    a.dispose();
    const b = await Trainer.create(engine, { ...cfg, waves }, small, 10, ckpt);
    await b.trainEpoch();
    expect(Array.from(b.trajectories)).toEqual(striped);
    b.dispose();
    await expect(
      Trainer.create(engine, { ...cfg, waves: { max: 300, share: 1 } }, small, 10),
    ).rejects.toThrow(/train\.waves\.max = 300 is invalid: must be 0–255/);
    await expect(
      Trainer.create(engine, { ...cfg, waves: { max: 10, share: 1.5 } }, small, 10),
    ).rejects.toThrow(/train\.waves\.share = 1\.5 is invalid/);
    // the frequencies' top: the default's 8 cycles trains bit for bit as no cycles given; 16 not
    expect(await losses({ ...cfg, waves: { ...waves, cycles: WAVE_CYCLES } })).toEqual(striped);
    expect(await losses({ ...cfg, waves: { ...waves, cycles: 16 } })).not.toEqual(striped);
    // a fine wave on the same images: changes what is learned; fine 0 draws nothing
    const fine = await losses({ ...cfg, waves: { ...waves, fine: 24 } });
    expect(fine).not.toEqual(striped);
    // the same nine draws either way; only the first puts the fine wave on the pixels
    expect(await losses({ ...cfg, waves: { max: 0, share: 1, fine: 24 } })).not.toEqual(
      await losses({ ...cfg, waves: { max: 0, share: 0, fine: 24 } }),
    );
    expect(await losses({ ...cfg, waves: { ...waves, fine: 0 } })).toEqual(striped);
    await expect(
      Trainer.create(engine, { ...cfg, waves: { ...waves, fine: -1 } }, small, 10),
    ).rejects.toThrow('train.waves.fine = -1 is invalid: must be 0–255');
    for (const cycles of [0, 17, Number.NaN])
      await expect(
        Trainer.create(engine, { ...cfg, waves: { ...waves, cycles } }, small, 10),
      ).rejects.toThrow(`train.waves.cycles = ${cycles} is invalid: must be 1–16`);
  });

  it('class weights scale each row of the loss: all 1 or all 2 train as none; others change what is learned', async () => {
    const engine = await engineP;
    const cfg = { ...base, epochs: 2 };
    const plain = await losses(cfg);
    expect(await losses({ ...cfg, classWeights: Array(10).fill(1) })).toEqual(plain);
    // the loss is Σ w·CE / Σ w: doubling every weight is exact in floats and changes nothing
    expect(await losses({ ...cfg, classWeights: Array(10).fill(2) })).toEqual(plain);
    const weighted = await losses({ ...cfg, classWeights: [0.5, 1, 1, 1, 1, 1, 1, 1, 1, 2] });
    expect(weighted).not.toEqual(plain);
    // the epoch reports the plain mean of its rows' training losses, not the weighted objective
    const t = await Trainer.create(
      engine,
      { ...cfg, epochs: 1, record: 'train', classWeights: [0.25, 1, 1, 1, 1, 1, 1, 1, 1, 4] },
      small,
      10,
    );
    const stats = (await t.trainEpoch())!;
    const mean = Array.from(t.trajectories).reduce((s, x) => s + x, 0) / small.count;
    expect(stats.loss).toBeCloseTo(mean, 5);
    t.dispose();
    await expect(
      Trainer.create(engine, { ...cfg, classWeights: [1, 0, 1, 1, 1, 1, 1, 1, 1, 1] }, small, 10),
    ).rejects.toThrow(
      /train\.classWeights = \[1, 0, .*\] is invalid: one finite weight > 0 per class/,
    );
    await expect(
      Trainer.create(engine, { ...cfg, classWeights: [1, 1] }, small, 10),
    ).rejects.toThrow(/train\.classWeights has 2 weights for 10 classes/);
  });
});
