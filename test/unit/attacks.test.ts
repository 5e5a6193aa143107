import { describe, expect, it } from 'vitest';
import { makeTrigger, ATTACK_IDS, type AttackId } from '../../src/core/attacks/triggers.ts';
import { dct2, idct2 } from '../../src/core/attacks/dct.ts';
import { rgbToYcrcb } from '../../src/core/attacks/triggers.ts';
import { poisonDataset, triggeredTestSets, isCleanLabel } from '../../src/core/attacks/plan.ts';
import { warpingNoiseGrid, applyWarp } from '../../src/core/attacks/warp.ts';
import {
  insertProbes,
  appendProbes,
  PROBE_BACKDOOR,
  PROBE_CLEAN,
  PROBE_MISLABELED,
} from '../../src/core/probes.ts';
import { generateDemoDataset } from '../../src/core/demo.ts';
import { Rng } from '../../src/core/rng.ts';
import { IMAGE_BYTES, labelCounts } from '../../src/core/dataset.ts';

const at = (r: number, c: number, ch = 0) => (r * 32 + c) * 3 + ch;
function constant(v: number): Uint8Array {
  return new Uint8Array(IMAGE_BYTES).fill(v);
}
function sameImage(a: Uint8Array, b: Uint8Array, i: number): boolean {
  for (let j = i * IMAGE_BYTES; j < (i + 1) * IMAGE_BYTES; j++) if (a[j] !== b[j]) return false;
  return true;
}
function ramp(): Uint8Array {
  const a = new Uint8Array(IMAGE_BYTES);
  for (let i = 0; i < a.length; i++) a[i] = (i * 7) % 256;
  return a;
}

describe('pixel triggers', () => {
  it('patch sets exactly (30,30), (28,30), (30,28), (29,29) to 255', () => {
    const src = constant(10);
    const dst = new Uint8Array(IMAGE_BYTES);
    makeTrigger('patch', new Rng(1))(src, dst);
    const changed: string[] = [];
    for (let r = 0; r < 32; r++)
      for (let c = 0; c < 32; c++) if (dst[at(r, c)] !== 10) changed.push(`${r},${c}`);
    expect(changed.sort()).toEqual(['28,30', '29,29', '30,28', '30,30']);
    expect([dst[at(29, 29, 0)], dst[at(29, 29, 1)], dst[at(29, 29, 2)]]).toEqual([255, 255, 255]);
    expect(src[at(30, 30)]).toBe(10);
  });
  it('probe patch is mirrored to (1,1), (3,1), (1,3), (2,2)', () => {
    const dst = constant(0);
    makeTrigger('patch', new Rng(1), { variant: 'probe' })(dst, dst);
    const changed: string[] = [];
    for (let r = 0; r < 32; r++)
      for (let c = 0; c < 32; c++) if (dst[at(r, c, 2)] === 255) changed.push(`${r},${c}`);
    expect(changed.sort()).toEqual(['1,1', '1,3', '2,2', '3,1']);
  });
  it('single pixel sets (30,30) only', () => {
    const dst = constant(3);
    makeTrigger('single-pix', new Rng(1))(dst, dst);
    expect(dst.reduce((s, v) => s + (v === 255 ? 1 : 0), 0)).toBe(3);
    expect(dst[at(30, 30, 1)]).toBe(255);
  });
});

describe('blending triggers', () => {
  it('blend-p: dimple on even rows and columns, α = 0.025', () => {
    const src = constant(100);
    const dst = new Uint8Array(IMAGE_BYTES);
    makeTrigger('blend-p', new Rng(1))(src, dst);
    expect(dst[at(0, 0)]).toBe(Math.round(0.975 * 100 + 0.025 * 255)); // 104
    expect(dst[at(0, 1)]).toBe(Math.round(0.975 * 100)); // 98
    expect(dst[at(1, 0)]).toBe(98);
    expect(dst[at(30, 30, 2)]).toBe(104);
    makeTrigger('blend-p', new Rng(1))(src, dst, 2); // boosted α = 0.05
    expect(dst[at(2, 2)]).toBe(Math.round(0.95 * 100 + 0.05 * 255));
    makeTrigger('blend-p', new Rng(1), { variant: 'probe' })(src, dst);
    expect([dst[at(0, 0)], dst[at(1, 1)]]).toEqual([98, 104]);
  });
  it('blend-r: the same seed gives the same pattern, and the formula holds', () => {
    const src = ramp();
    const a = new Uint8Array(IMAGE_BYTES);
    const b = new Uint8Array(IMAGE_BYTES);
    makeTrigger('blend-r', new Rng(5))(src, a);
    makeTrigger('blend-r', new Rng(5))(src, b);
    expect(a).toEqual(b);
    // recover the pattern from a black image: P ≈ x'/α
    const black = new Uint8Array(IMAGE_BYTES);
    const white = new Uint8Array(IMAGE_BYTES).fill(255);
    const pb = new Uint8Array(IMAGE_BYTES);
    const pw = new Uint8Array(IMAGE_BYTES);
    makeTrigger('blend-r', new Rng(5))(black, pb);
    makeTrigger('blend-r', new Rng(5))(white, pw);
    for (let i = 0; i < IMAGE_BYTES; i += 97) {
      expect(pw[i] - pb[i]).toBe(
        Math.round(0.925 * 255 + 0.075 * (pb[i] / 0.075)) - pb[i] >= 0 ? pw[i] - pb[i] : -1,
      );
      expect(Math.abs(a[i] - (0.925 * src[i] + pb[i]))).toBeLessThanOrEqual(1);
    }
    const other = new Uint8Array(IMAGE_BYTES);
    makeTrigger('blend-r', new Rng(6))(black, other);
    expect(other).not.toEqual(pb);
  });
  it('sinusoid: column profile 255(1 − cos(2π·6c/32)), α = 0.075, constant along rows', () => {
    const src = constant(0);
    const dst = new Uint8Array(IMAGE_BYTES);
    makeTrigger('sinusoid', new Rng(1))(src, dst);
    for (let c = 0; c < 32; c++) {
      const expected = Math.round(0.075 * 255 * (1 - Math.cos((2 * Math.PI * c * 6) / 32)));
      for (const r of [0, 17, 31]) expect(dst[at(r, c, 1)]).toBe(expected);
    }
    expect(dst[at(0, 0)]).toBe(0);
    expect(Math.max(...dst)).toBe(Math.round(0.075 * 510)); // 38 at the cosine's trough
    // probe variant: rotated 90°, so the profile runs down the rows
    makeTrigger('sinusoid', new Rng(1), { variant: 'probe' })(src, dst);
    for (let r = 0; r < 32; r++)
      expect(dst[at(r, 5)]).toBe(
        Math.round(0.075 * 255 * (1 - Math.cos((2 * Math.PI * r * 6) / 32))),
      );
  });
});

describe('frequency (FTrojan)', () => {
  it('DCT round trip is exact and orthonormal', () => {
    const x = Float64Array.from({ length: 1024 }, (_, i) => Math.sin(i) * 50 + 100);
    const X = dct2(x, 32);
    const back = idct2(X, 32);
    for (let i = 0; i < 1024; i++) expect(back[i]).toBeCloseTo(x[i], 9);
    // Parseval: energy preserved
    expect(X.reduce((s, v) => s + v * v, 0)).toBeCloseTo(
      x.reduce((s, v) => s + v * v, 0),
      5,
    );
  });
  it('moves the Cr/Cb DCT coefficients at (15,15) and (31,31) by m, within rounding', () => {
    const src = new Uint8Array(IMAGE_BYTES);
    for (let i = 0; i < 1024; i++)
      src.set([90 + (i % 40), 120 + ((i * 3) % 30), 100 + ((i * 5) % 50)], i * 3);
    const dst = new Uint8Array(IMAGE_BYTES);
    makeTrigger('frequency', new Rng(1))(src, dst);
    const before = rgbToYcrcb(src);
    const after = rgbToYcrcb(dst);
    for (const ch of ['cr', 'cb'] as const) {
      const d0 = dct2(before[ch], 32);
      const d1 = dct2(after[ch], 32);
      for (const [u, v] of [
        [15, 15],
        [31, 31],
      ])
        expect(d1[u * 32 + v] - d0[u * 32 + v]).toBeGreaterThan(30 - 4);
      for (const [u, v] of [
        [15, 15],
        [31, 31],
      ])
        expect(d1[u * 32 + v] - d0[u * 32 + v]).toBeLessThan(30 + 4);
      // other coefficients move only by rounding noise
      expect(Math.abs(d1[3 * 32 + 4] - d0[3 * 32 + 4])).toBeLessThan(4);
    }
  });
  it('the colour round trip without a trigger is lossless within rounding', () => {
    const src = ramp();
    const dst = new Uint8Array(IMAGE_BYTES);
    makeTrigger('frequency', new Rng(1), { params: { magnitude: 0 } })(src, dst);
    for (let i = 0; i < IMAGE_BYTES; i++) expect(Math.abs(dst[i] - src[i])).toBeLessThanOrEqual(1);
  });
});

describe('warping (WaNet)', () => {
  it('a zero field is the identity; a uniform shift samples bilinearly by hand', () => {
    const src = ramp();
    const dst = new Uint8Array(IMAGE_BYTES);
    applyWarp(src, dst, new Float32Array(32 * 32 * 2), 0.75, 32);
    expect(dst).toEqual(src);
    // shift x by a quarter pixel: pixel = (g + 1)/2 · 31, so Δg = 1/62 ⇒ s·noise/32 = 1/62 with s = 1
    const noise = new Float32Array(32 * 32 * 2);
    for (let i = 0; i < 1024; i++) noise[i * 2] = 32 / 62;
    applyWarp(src, dst, noise, 1, 32);
    // pixel (4, 10) samples a quarter of the way from column 10 to column 11: 0.75·89 + 0.25·110
    expect([src[at(4, 10, 1)], src[at(4, 11, 1)]]).toEqual([89, 110]);
    const hand = Math.round(0.75 * 89 + 0.25 * 110);
    expect(dst[at(4, 10, 1)]).toBe(hand);
    // the last column clamps to the border
    expect(dst[at(4, 31, 0)]).toBe(src[at(4, 31, 0)]);
  });
  it('the field is normalized to mean |P| = 1 at the grid points, bounded and smooth', () => {
    const grid = warpingNoiseGrid(new Rng(3), 6, 32);
    // corners of the upsampled field coincide with grid points (align corners)
    let maxStep = 0;
    let maxAbs = 0;
    for (let r = 0; r < 32; r++)
      for (let c = 1; c < 32; c++) {
        maxStep = Math.max(maxStep, Math.abs(grid[(r * 32 + c) * 2] - grid[(r * 32 + c - 1) * 2]));
        maxAbs = Math.max(maxAbs, Math.abs(grid[(r * 32 + c) * 2]));
      }
    expect(maxAbs).toBeLessThan(6); // |P| ≤ 1/mean|P| ≤ a few, bicubic overshoot small
    expect(maxStep).toBeLessThan(1.5); // smooth: neighbours differ little
    // the displacement in pixels = s·P/H·(H−1)/2 stays under a pixel or two
    const src = ramp();
    const dst = new Uint8Array(IMAGE_BYTES);
    makeTrigger('warping', new Rng(3))(src, dst);
    expect(dst).not.toEqual(src);
  });
});

describe('poisoning plan', () => {
  const demo = generateDemoDataset({ seed: 7, train: 2000, test: 400 });
  const train = demo.splits.train!;
  const all = ATTACK_IDS.map((id) => ({ id }));

  it('multi-attack: disjoint sets, counts match ratios, labels as specified, truth complete', () => {
    const res = poisonDataset(train, all, { seed: 11, numClasses: 10 });
    const counts = labelCounts(train.labels, 10);
    const seen = new Set<number>();
    for (const a of res.attacks) {
      const expected = isCleanLabel(a.id)
        ? Math.round(0.1 * counts[a.target])
        : Math.round(a.ratio * 2000);
      expect(a.indices.length).toBe(expected);
      for (const i of a.indices) {
        expect(seen.has(i)).toBe(false);
        seen.add(i);
        expect(res.truth[i]).toBe(res.attacks.indexOf(a));
        if (isCleanLabel(a.id)) {
          expect(res.train.labels[i]).toBe(train.labels[i]);
          expect(train.labels[i]).toBe(a.target);
        } else {
          expect(res.train.labels[i]).toBe(a.target);
          expect(train.labels[i]).not.toBe(a.target);
        }
      }
    }
    let poisoned = 0;
    res.truth.forEach((t, i) => {
      if (t >= 0) poisoned++;
      else {
        expect(res.train.labels[i]).toBe(train.labels[i]);
        expect(sameImage(res.train.images, train.images, i)).toBe(true);
      }
    });
    expect(poisoned).toBe(seen.size);
    expect(new Set(res.attacks.map((a) => a.target)).size).toBe(7); // distinct targets with 10 classes
    // the original is untouched
    const fresh = generateDemoDataset({ seed: 7, train: 2000, test: 400 }).splits.train!.images;
    expect(Buffer.from(train.images).equals(Buffer.from(fresh))).toBe(true);
  });

  it('is deterministic and independent of the listing order', () => {
    const a = poisonDataset(train, all, { seed: 11, numClasses: 10 });
    const b = poisonDataset(train, [...all].reverse(), { seed: 11, numClasses: 10 });
    expect(Buffer.from(b.train.images).equals(Buffer.from(a.train.images))).toBe(true);
    expect(b.truth).toEqual(a.truth);
    const c = poisonDataset(train, all, { seed: 12, numClasses: 10 });
    expect(c.truth).not.toEqual(a.truth);
  });

  it('rejects bad requests with clear messages', () => {
    const o = { seed: 1, numClasses: 10 };
    expect(() => poisonDataset(train, [{ id: 'nope' as AttackId }], o)).toThrow(
      /unknown attack "nope"/,
    );
    expect(() => poisonDataset(train, [{ id: 'patch', ratio: 0 }], o)).toThrow(
      /ratio 0 is outside \(0, 1\]/,
    );
    expect(() => poisonDataset(train, [{ id: 'patch', ratio: 1.5 }], o)).toThrow(/outside/);
    expect(() => poisonDataset(train, [{ id: 'patch', target: 10 }], o)).toThrow(
      /target 10 is outside the class range 0–9/,
    );
    expect(() => poisonDataset(train, [{ id: 'patch', ratio: 0.95 }], o)).toThrow(
      /asks for 1900 images but only \d+ are eligible/,
    );
    expect(() =>
      poisonDataset(
        train,
        [
          { id: 'sinusoid', ratio: 1 },
          { id: 'patch', ratio: 0.5 },
          { id: 'warping', ratio: 0.45 },
        ],
        o,
      ),
    ).toThrow(/eligible/);
  });

  it('GTSRB sinusoid needs a target with ≥ 1000 images and takes at least 300', () => {
    const labels = new Uint8Array(3000);
    for (let i = 0; i < 3000; i++) labels[i] = i < 1200 ? 5 : i % 5;
    const split = { count: 3000, images: new Uint8Array(3000 * IMAGE_BYTES), labels };
    const res = poisonDataset(split, [{ id: 'sinusoid' }], {
      seed: 2,
      numClasses: 43,
      gtsrb: true,
    });
    expect(res.attacks[0].target).toBe(5);
    expect(res.attacks[0].indices.length).toBe(300);
    expect(() =>
      poisonDataset(split, [{ id: 'sinusoid', target: 1 }], {
        seed: 2,
        numClasses: 43,
        gtsrb: true,
      }),
    ).toThrow(/≥ 1000/);
  });

  it('triggered test sets exclude the target class and label everything as the target', () => {
    const test = demo.splits.test!;
    const res = poisonDataset(train, [{ id: 'patch' }, { id: 'blend-r' }], {
      seed: 3,
      numClasses: 10,
    });
    const sets = triggeredTestSets(test, res.attacks, 3, 100);
    expect(sets).toHaveLength(2);
    const patch = sets.find((s) => s.attack === 'patch')!;
    expect(patch.set.count).toBe(100);
    expect(patch.boosted).toBeUndefined();
    expect(Array.from(patch.set.labels).every((l) => l === patch.target)).toBe(true);
    expect(patch.set.images[at(30, 30)]).toBe(255);
    const blend = sets.find((s) => s.attack === 'blend-r')!;
    expect(blend.boosted?.count).toBe(blend.set.count);
    // the test-time trigger equals the training-time one: poisoned training images match
    const i = res.attacks[1].indices[0];
    const again = new Uint8Array(IMAGE_BYTES);
    makeTrigger('blend-r', new Rng(3).fork('pattern:blend-r'))(
      train.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES),
      again,
    );
    expect(res.train.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES)).toEqual(again);
  });
});

describe('probes', () => {
  const demo = generateDemoDataset({ seed: 8, train: 1500, test: 300 });
  const train = demo.splits.train!;
  it('benchmark mode overwrites 3n clean examples: clean, mirrored-patch with one label, relabeled', () => {
    const poisoned = poisonDataset(train, [{ id: 'patch', ratio: 0.05 }], {
      seed: 4,
      numClasses: 10,
    });
    const res = insertProbes(poisoned.train, poisoned.truth, { n: 50, seed: 4, numClasses: 10 });
    expect(res.train.count).toBe(1500);
    const { clean, backdoor, mislabeled } = res.indices;
    expect([clean.length, backdoor.length, mislabeled.length]).toEqual([50, 50, 50]);
    expect(new Set([...clean, ...backdoor, ...mislabeled]).size).toBe(150);
    for (const i of [...clean, ...backdoor, ...mislabeled]) expect(poisoned.truth[i]).toBe(-1);
    for (const i of clean) {
      expect(res.probeKind[i]).toBe(PROBE_CLEAN);
      expect(res.train.labels[i]).toBe(train.labels[i]);
    }
    for (const i of backdoor) {
      expect(res.probeKind[i]).toBe(PROBE_BACKDOOR);
      expect(res.train.labels[i]).toBe(res.backdoorLabel);
      expect(train.labels[i]).not.toBe(res.backdoorLabel);
      expect(res.train.images[i * IMAGE_BYTES + at(2, 2)]).toBe(255);
    }
    for (const i of mislabeled) {
      expect(res.probeKind[i]).toBe(PROBE_MISLABELED);
      expect(res.train.labels[i]).not.toBe(train.labels[i]);
    }
  });
  it('audit mode appends probes from the trusted set and reports which were used', () => {
    const test = demo.splits.test!;
    const res = appendProbes(train, test, { n: 20, seed: 1, numClasses: 10 });
    expect(res.train.count).toBe(1560);
    expect(res.trustedUsed).toHaveLength(60);
    expect(res.indices.clean.every((i) => i >= 1500)).toBe(true);
    expect(() => appendProbes(train, test, { n: 200, seed: 1, numClasses: 10 })).toThrow(
      /trusted set has 300/,
    );
  });
  it('asking for more probes than clean examples is an error', () => {
    const truth = new Int8Array(1500).fill(-1);
    expect(() => insertProbes(train, truth, { n: 600, seed: 1, numClasses: 10 })).toThrow(
      /lower the probe count/,
    );
  });
});
