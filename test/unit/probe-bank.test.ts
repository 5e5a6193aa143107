import { describe, expect, it } from 'vitest';
import { poisonDataset } from '../../src/core/attacks/plan.ts';
import { makeTrigger } from '../../src/core/attacks/triggers.ts';
import { validateRunConfig } from '../../src/core/config.ts';
import { IMAGE_BYTES } from '../../src/core/dataset.ts';
import { generateDemoDataset } from '../../src/core/demo.ts';
import { preset } from '../../src/core/experiment.ts';
import {
  insertProbes,
  PROBE_BACKDOOR,
  PROBE_BANKS,
  probeTriggerIds,
} from '../../src/core/probes.ts';
import { Rng } from '../../src/core/rng.ts';

describe('probe bank', () => {
  const demo = generateDemoDataset({ seed: 8, train: 1500, test: 10 });
  const train = demo.splits.train!;
  const poisoned = poisonDataset(train, [{ id: 'patch', ratio: 0.05 }], {
    seed: 4,
    numClasses: 10,
  });

  it('names its triggers', () => {
    expect(probeTriggerIds(undefined)).toEqual(['patch']);
    expect(probeTriggerIds('sinusoid')).toEqual(['sinusoid']);
    expect(probeTriggerIds('bank')).toEqual(['patch', 'sinusoid', 'blend-r', 'warping']);
    expect(probeTriggerIds(['blend-r', 'patch', 'blend-r'])).toEqual(['blend-r', 'patch']);
    expect(() => probeTriggerIds([])).toThrow(/empty/);
  });

  it('splits n backdoor probes among disjoint triggers, each with its own label', () => {
    const res = insertProbes(poisoned.train, poisoned.truth, {
      n: 50,
      seed: 4,
      numClasses: 10,
      trigger: 'bank',
    });
    expect(res.bank.map((b) => b.trigger)).toEqual(PROBE_BANKS.bank);
    expect(res.bank.map((b) => b.rows.length)).toEqual([13, 13, 12, 12]);
    const labels = res.bank.map((b) => b.label);
    expect(new Set(labels).size).toBe(4);
    const all = res.bank.flatMap((b) => b.rows);
    expect(new Set(all).size).toBe(50);
    expect([...all].sort((a, b) => a - b)).toEqual(res.indices.backdoor);
    const probes = new Set([
      ...res.indices.clean,
      ...res.indices.backdoor,
      ...res.indices.mislabeled,
    ]);
    expect(probes.size).toBe(150);
    for (const i of probes) expect(poisoned.truth[i]).toBe(-1);
    for (const b of res.bank)
      for (const i of b.rows) {
        expect(res.probeKind[i]).toBe(PROBE_BACKDOOR);
        expect(res.train.labels[i]).toBe(b.label);
        expect(train.labels[i]).not.toBe(b.label);
      }
    // the patch probes carry the mirrored patch: (2,2) white in every channel
    const at22 = (2 * 32 + 2) * 3;
    for (const i of res.bank[0].rows)
      expect([0, 1, 2].map((c) => res.train.images[i * IMAGE_BYTES + at22 + c])).toEqual([
        255, 255, 255,
      ]);
    // the sinusoid probes are the rotated sinusoid applied to the original image
    const sin = makeTrigger('sinusoid', new Rng(0), { variant: 'probe' });
    const i = res.bank[1].rows[0];
    const expected = new Uint8Array(IMAGE_BYTES);
    sin(poisoned.train.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), expected);
    expect(res.train.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES)).toEqual(expected);
  });

  it('is deterministic, and a single trigger gives exactly the probes it gave before', () => {
    const opts = { n: 40, seed: 9, numClasses: 10, trigger: 'bank' as const };
    const a = insertProbes(poisoned.train, poisoned.truth, opts);
    const b = insertProbes(poisoned.train, poisoned.truth, opts);
    expect(a.train.images).toEqual(b.train.images);
    expect(a.bank).toEqual(b.bank);
    const one = insertProbes(poisoned.train, poisoned.truth, { ...opts, trigger: 'patch' });
    const dflt = insertProbes(poisoned.train, poisoned.truth, { ...opts, trigger: undefined });
    const list = insertProbes(poisoned.train, poisoned.truth, { ...opts, trigger: ['patch'] });
    expect(one.train.images).toEqual(dflt.train.images);
    expect(one.indices).toEqual(dflt.indices);
    expect(list.indices).toEqual(one.indices);
    expect(one.bank).toEqual([
      { trigger: 'patch', label: one.backdoorLabel, rows: one.indices.backdoor },
    ]);
  });

  it('the fresh blend pattern and warping field differ from the attacks’ own', () => {
    const p = poisonDataset(train, [{ id: 'blend-r' }, { id: 'warping' }], {
      seed: 4,
      numClasses: 10,
    });
    const res = insertProbes(p.train, p.truth, { n: 40, seed: 4, numClasses: 10, trigger: 'bank' });
    for (const [k, id] of [
      [2, 'blend-r'],
      [3, 'warping'],
    ] as const) {
      const i = res.bank[k].rows[0];
      const attackVersion = new Uint8Array(IMAGE_BYTES);
      makeTrigger(id, new Rng(4).fork(`pattern:${id}`))(
        train.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES),
        attackVersion,
      );
      expect(res.train.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES)).not.toEqual(
        attackVersion,
      );
    }
  });

  it('the run configuration accepts a bank, a list, and the calibrated detection options', () => {
    const base = preset('tiny');
    for (const trigger of ['bank', ['patch', 'warping'], 'sinusoid'])
      expect(
        validateRunConfig({ ...base, probes: { ...base.probes, trigger } }).probes.trigger,
      ).toEqual(trigger);
    for (const trigger of ['nope', [], ['patch', 'patch'], ['patch', 'x'], 3])
      expect(() => validateRunConfig({ ...base, probes: { ...base.probes, trigger } })).toThrow(
        /probe trigger/,
      );
    const detect = {
      method: 'knn',
      k: 'auto',
      threshold: 'auto',
      targetFpr: 0.1,
      calibration: 'class',
      score: 'knn+distance',
      maxClassFraction: 0.5,
    };
    expect(validateRunConfig({ ...base, detect }).detect).toEqual(detect);
    expect(() => validateRunConfig({ ...base, detect: { ...detect, targetFpr: 1 } })).toThrow(
      /targetFpr/,
    );
    expect(() =>
      validateRunConfig({ ...base, detect: { ...detect, maxClassFraction: 0 } }),
    ).toThrow(/maxClassFraction/);
    expect(() => validateRunConfig({ ...base, detect: { ...detect, calibration: 'x' } })).toThrow(
      /calibration/,
    );
    expect(() => validateRunConfig({ ...base, detect: { ...detect, score: 'x' } })).toThrow(
      /detect\.score "x" is invalid: must be one of "knn", "knn\+distance", "knn-or-distance"/,
    );
    for (const score of ['knn', 'knn+distance', 'knn-or-distance'])
      expect(validateRunConfig({ ...base, detect: { ...detect, score } }).detect.score).toBe(score);
    expect(() => validateRunConfig({ ...base, detect: { ...detect, features: 'log' } })).toThrow(
      /detect\.features "log" is invalid: must be one of "loss", "loss\+log"/,
    );
    for (const features of ['loss', 'loss+log'])
      expect(validateRunConfig({ ...base, detect: { ...detect, features } }).detect.features).toBe(
        features,
      );
  });
});
