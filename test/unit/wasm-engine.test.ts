import { describe, expect, it } from 'vitest';
import { cpuTf } from './tf-setup.ts';
import { createTfjsEngine } from '../../src/ml/tfjs-engine.ts';
import { createWasmEngine } from '../../src/ml/wasm-engine-node.ts';
import type { WinogradMode } from '../../src/ml/wasm-engine.ts';
import type {
  EngineModel,
  EngineModelConfig,
  ModelState,
  TrainBatch,
} from '../../src/ml/engine.ts';
import { Rng } from '../../src/core/rng.ts';

function batchOf(B: number, seed: number, t: number, C = 10, weighted = false): TrainBatch {
  const rng = new Rng(seed);
  return {
    x: Float32Array.from({ length: B * 3072 }, () => rng.normal()),
    labels: Int32Array.from({ length: B }, () => rng.int(C)),
    // the last example is padding: in the BatchNorm statistics, not in the loss; `weighted`: the
    // real rows carry class weights (0.5, 1.5, 2.5, …) as a reweighted retraining's do
    mask: Float32Array.from({ length: B }, (_, i) =>
      i < B - 1 ? (weighted ? 0.5 + (i % 3) : 1) : 0,
    ),
    lr: 2e-3,
    weightDecay: 1e-2,
    t,
    perExample: true,
  };
}

/** max |a − b| / max |b| over each named array. */
function worstRelative(a: Record<string, Float32Array>, b: Record<string, Float32Array>) {
  let worst = 0;
  let where = '';
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const name of Object.keys(b)) {
    let scale = 0;
    let d = 0;
    for (let i = 0; i < b[name].length; i++) {
      scale = Math.max(scale, Math.abs(b[name][i]));
      d = Math.max(d, Math.abs(a[name][i] - b[name][i]));
    }
    const r = d / (scale || 1);
    if (r > worst) [worst, where] = [r, name];
  }
  return { worst, where };
}

async function runSteps(model: EngineModel, steps: number, B: number) {
  const out = [];
  const C = model.config.numClasses;
  for (let t = 1; t <= steps; t++) out.push(await model.trainStep(batchOf(B, 10 + t, t, C)).read());
  return out;
}

describe('the wasm engine computes what the tfjs engine computes', () => {
  it('with loss weights: the same weighted loss, and both count correct rows, not weights', async () => {
    const cfg: EngineModelConfig = {
      name: 'resnet8',
      width: 0.25,
      numClasses: 3,
      seed: 6,
      batchSize: 16,
    };
    const tf = await cpuTf();
    const models = [
      await createTfjsEngine(tf).createModel(cfg),
      await createWasmEngine({ threads: 2 }).createModel(cfg),
      await createWasmEngine({ threads: 2 }).createModel(cfg),
    ];
    const [a, b, plain] = await Promise.all(
      models.map((m, j) => m.trainStep(batchOf(16, 21, 1, 3, j < 2)).read()),
    );
    // before the update: the same predictions, so the same count whatever the weights
    expect(a.correct).toBe(plain.correct);
    expect(b.correct).toBe(plain.correct);
    expect(Math.abs(b.loss - a.loss)).toBeLessThan(1e-4 * (1 + a.loss));
    // the weighted mean of the per-example losses
    const w = batchOf(16, 21, 1, 3, true).mask;
    let num = 0;
    let den = 0;
    for (let i = 0; i < 16; i++) [num, den] = [num + w[i] * plain.perExample![i], den + w[i]];
    expect(a.loss).toBeCloseTo(num / den, 4);
    for (const m of models) m.dispose();
  });

  // Training runs the direct convolutions (the same summation order as tfjs), so several steps
  // agree closely; evaluation runs Winograd. With Winograd in training too ('all'), rounding
  // differs (≈1e-6 relative) and sums of gradients with cancellation (β's) amplify it, so one
  // step is compared with a looser bound. (Adam's first step moves every weight by ±lr even where
  // the gradient is rounding noise, so later steps would compare slightly different weights.)
  const resnet8: EngineModelConfig = {
    name: 'resnet8',
    width: 0.5,
    numClasses: 10,
    seed: 3,
    batchSize: 8,
  };
  const cases: [string, EngineModelConfig, number, WinogradMode, number][] = [
    ['ResNet-8 ×0.5', resnet8, 3, 'eval', 2e-3],
    ['ResNet-8 ×0.5, Winograd in training', resnet8, 1, 'all', 2e-2],
    [
      'ResNet-20 ×0.3',
      { name: 'resnet20', width: 0.3, numClasses: 7, seed: 4, batchSize: 5 },
      2,
      'eval',
      2e-3,
    ],
    [
      'ResNet-50 ×0.1',
      { name: 'resnet50', width: 0.1, numClasses: 10, seed: 5, batchSize: 4 },
      1,
      'eval',
      2e-3,
    ],
  ];
  it.each(cases)(
    '%s: training steps (loss, weights, BN buffers, AdamW state)',
    async (_n, cfg, steps, winograd, tol) => {
      const tf = await cpuTf();
      const a = await createTfjsEngine(tf).createModel(cfg);
      const b = await createWasmEngine({ threads: 2, winograd }).createModel(cfg);
      expect(b.parameterCount).toBe(a.parameterCount);
      expect(b.describe()).toBe(a.describe());
      expect(b.featureDim).toBe(a.featureDim);
      // identical initialization
      const s0a = await a.getState();
      const s0b = await b.getState();
      for (const k of Object.keys(s0a.weights)) expect(s0b.weights[k]).toEqual(s0a.weights[k]);
      const ra = await runSteps(a, steps, cfg.batchSize);
      const rb = await runSteps(b, steps, cfg.batchSize);
      for (let t = 0; t < steps; t++) {
        expect(Math.abs(rb[t].loss - ra[t].loss)).toBeLessThan(1e-4 * (1 + ra[t].loss));
        expect(rb[t].correct).toBe(ra[t].correct);
        for (let i = 0; i < cfg.batchSize; i++)
          expect(Math.abs(rb[t].perExample![i] - ra[t].perExample![i])).toBeLessThan(
            1e-4 * (1 + ra[t].perExample![i]),
          );
      }
      const sa = await a.getState();
      const sb = await b.getState();
      // Adam's first steps move every weight by about ±lr whatever the gradient's size, so a weight
      // whose gradient is rounding noise may differ by up to 2·lr per step; the moments
      // (m = Σ(1−β1)β1ⁱ·g, v) show that the gradients themselves agree.
      for (const k of Object.keys(sa.weights))
        for (let i = 0; i < sa.weights[k].length; i++)
          expect(Math.abs(sb.weights[k][i] - sa.weights[k][i])).toBeLessThan(
            2 * 2e-3 * steps + 1e-5,
          );
      expect(worstRelative(sb.m, sa.m).worst).toBeLessThan(tol);
      expect(worstRelative(sb.v, sa.v).worst).toBeLessThan(2 * tol);
      // evaluation mode (running statistics): logits and penultimate features
      const x = batchOf(cfg.batchSize, 99, 1).x;
      const ea = await a.evaluate(x);
      const eb = await b.evaluate(x);
      expect(
        worstRelative({ l: eb.logits, f: eb.features }, { l: ea.logits, f: ea.features }).worst,
      ).toBeLessThan(1e-3);
      a.dispose();
      b.dispose();
    },
    60_000,
  );

  it('gives bit-identical results on 1 and 2 threads (reductions in a fixed order)', async () => {
    const cfg: EngineModelConfig = {
      name: 'resnet8',
      width: 0.5,
      numClasses: 10,
      seed: 8,
      batchSize: 12,
    };
    const one = await createWasmEngine({ threads: 1 }).createModel(cfg);
    const two = await createWasmEngine({ threads: 2 }).createModel(cfg);
    const r1 = await runSteps(one, 2, 12);
    const r2 = await runSteps(two, 2, 12);
    expect(r2).toEqual(r1);
    const s1 = await one.getState();
    const s2 = await two.getState();
    expect(s2).toEqual(s1);
    one.dispose();
    two.dispose();
  });

  it('takes checkpoints written by the tfjs engine and rejects mismatched ones untouched', async () => {
    const tf = await cpuTf();
    const cfg: EngineModelConfig = {
      name: 'resnet8',
      width: 0.25,
      numClasses: 10,
      seed: 1,
      batchSize: 6,
    };
    const a = await createTfjsEngine(tf).createModel(cfg);
    await runSteps(a, 2, 6);
    const state = await a.getState();
    const b = await createWasmEngine({ threads: 1 }).createModel({ ...cfg, seed: 2 });
    b.setState(state);
    expect(await b.getState()).toEqual(state);
    const x = batchOf(6, 5, 1).x;
    const [ea, eb] = [await a.evaluate(x), await b.evaluate(x)];
    expect(worstRelative({ l: eb.logits }, { l: ea.logits }).worst).toBeLessThan(1e-4);
    // a state for another width is refused with the offending name, and nothing changes
    const other = await createWasmEngine({ threads: 1 }).createModel({ ...cfg, width: 0.5 });
    const bad: ModelState = await other.getState();
    expect(() => b.setState(bad)).toThrow(/stem\.w is 216, expected 108 values/);
    expect(await b.getState()).toEqual(state);
    // and the tfjs engine takes the wasm engine's state back
    await runSteps(b, 1, 6);
    const back = await b.getState();
    a.setState(back);
    const ea2 = await a.evaluate(x);
    const eb2 = await b.evaluate(x);
    expect(worstRelative({ l: eb2.logits }, { l: ea2.logits }).worst).toBeLessThan(1e-4);
    for (const m of [a, b, other]) m.dispose();
    await expect(b.evaluate(x)).rejects.toThrow(/disposed/);
  });

  it('refuses a model that does not fit in WebAssembly memory, naming the size', async () => {
    await expect(
      createWasmEngine({ threads: 1 }).createModel({
        name: 'resnet8',
        width: 4,
        numClasses: 10,
        seed: 1,
        batchSize: 4096,
      }),
    ).rejects.toThrow(/needs \d+\.\d GiB, more than WebAssembly's 4 GiB/);
  });
});
