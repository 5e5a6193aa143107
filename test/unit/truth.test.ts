import { describe, expect, it } from 'vitest';
import { generateDemoDataset } from '../../src/core/demo.ts';
import { prepareExperiment, preset, type RunConfig } from '../../src/core/experiment.ts';
import { buildTruthFile, readTruthFile, type TruthFile } from '../../src/core/truth.ts';
import { summarizeDetection } from '../../src/core/report.ts';
import type { Detection } from '../../src/core/detect/index.ts';

const ds = generateDemoDataset({ seed: 3, train: 400, test: 100 });
const cfg: RunConfig = {
  ...preset('quick'),
  attacks: [
    { id: 'patch', ratio: 0.05 },
    { id: 'blend-p', ratio: 0.05 },
  ],
  probes: { n: 10, trigger: 'patch', trusted: 'train-untouched' },
  seed: 5,
};
const prep = prepareExperiment(ds, cfg);
const file = (): TruthFile =>
  JSON.parse(
    JSON.stringify(
      buildTruthFile({
        dataset: ds.name,
        classes: ds.classes,
        train: prep.train,
        fingerprint: 'ab'.repeat(32),
        seed: cfg.seed,
        truth: prep.truth,
        attacks: prep.attacks,
        requests: cfg.attacks,
        mode: 'benchmark',
        probes: { result: prep.probes, config: cfg.probes },
      }),
    ),
  );

describe('truth files', () => {
  it('round-trip: the arrays read back are the prepared ones', () => {
    const t = readTruthFile('t.json', file());
    expect(t.count).toBe(400);
    expect(Array.from(t.truth)).toEqual(Array.from(prep.truth));
    expect(Array.from(t.probeKind)).toEqual(Array.from(prep.probes.probeKind));
    expect(Array.from(t.labels)).toEqual(Array.from(prep.train.labels));
    expect(t.attacks.map((a) => a.id)).toEqual(['patch', 'blend-p']);
    expect(t.probes.clean).toEqual(prep.probes.indices.clean);
    expect(t.probes.anomalous).toHaveLength(20);
  });
  it('gives the same evaluation as the in-app arrays', () => {
    const scores = Float32Array.from({ length: 400 }, (_, i) =>
      prep.probes.probeKind[i] ? NaN : ((i * 37) % 101) / 100,
    );
    const det: Detection = { method: 'knn', k: 5, scores, threshold: 0.5 };
    const t = readTruthFile('t.json', file());
    const a = summarizeDetection(det, t.truth, t.probeKind, t.attacks, t.labels, 10);
    const b = summarizeDetection(
      det,
      prep.truth,
      prep.probes.probeKind,
      prep.attacks,
      prep.train.labels,
      10,
    );
    expect(a).toEqual(b);
  });
  it('names what is wrong', () => {
    const cases: [(f: TruthFile) => unknown, RegExp][] = [
      [(f) => ({ ...f, format: 'x' }), /"format" is "x"/],
      [(f) => ({ ...f, count: 0 }), /"count" 0 is not a row count/],
      [(f) => ({ ...f, fingerprint: 'abc' }), /"fingerprint" is not a SHA-256 hex digest/],
      [(f) => ({ ...f, rows: f.rows.slice(1) }), /"rows" must list .* each of the 400 rows/],
      [
        (f) => ({ ...f, labels: f.labels.map(() => 10) }),
        /row 0 has label 10, outside the 10 classes/,
      ],
      [
        (f) => ({ ...f, probes: { ...f.probes, clean: [400] } }),
        /"probes.clean" must be a list of row indices in 0–399/,
      ],
      [
        (f) => ({ ...f, rows: f.rows.map((r, i) => (i === 0 ? 'zap' : r)) }),
        /row 0 has unknown attack zap/,
      ],
      [
        (f) => ({
          ...f,
          probes: { ...f.probes, anomalous: [...f.probes.anomalous, f.probes.clean[0]] },
        }),
        /row \d+ is both a clean and an anomalous probe/,
      ],
      [
        (f) => ({ ...f, rows: f.rows.map((r, i) => (i === f.probes.clean[0] ? 'patch' : r)) }),
        /row \d+ is both a probe and poisoned/,
      ],
    ];
    for (const [mutate, re] of cases) {
      expect(() => readTruthFile('t.json', mutate(file()))).toThrow(re);
      try {
        readTruthFile('t.json', mutate(file()));
      } catch (e) {
        expect((e as Error).name).toBe('InvalidOptionError');
        expect((e as Error).message).toMatch(/^t\.json: .*written by "npm run cli -- poison/);
      }
    }
  });
});
