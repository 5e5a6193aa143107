import { describe, expect, it } from 'vitest';
import { encodeConfig, decodeConfig } from '../../src/app/url-state.ts';
import { preset, keptRows, prepareExperiment } from '../../src/core/experiment.ts';
import { validateRunConfig } from '../../src/core/config.ts';
import {
  summarizeDetection,
  buildReport,
  extraBudgetsText,
  extraTestsText,
  flaggedCsv,
  reportHtml,
  retrainingRecipe,
  andList,
  retrainingText,
  retrainedEpochs,
} from '../../src/core/report.ts';
import { generateDemoDataset } from '../../src/core/demo.ts';
import {
  PROBE_BACKDOOR,
  PROBE_CLEAN,
  PROBE_MISLABELED,
  PROBE_NONE,
} from '../../src/core/probes.ts';
import type { ResolvedAttack } from '../../src/core/attacks/plan.ts';

describe('run configuration', () => {
  it('round-trips through the URL hash, with the run id', () => {
    const configs = [preset('paper'), preset('quick'), preset('tiny')];
    for (const cfg of [...configs, { ...preset('quick'), retrainMatchSteps: true }]) {
      const id = '123e4567-e89b-42d3-a456-426614174000';
      const back = decodeConfig(encodeConfig(cfg, id));
      expect(back.config).toEqual(cfg);
      expect(back.runId).toBe(id);
    }
  });
  it('ignores a damaged link and rejects invalid fields by name', () => {
    expect(decodeConfig('#cfg=@@@').config).toBeUndefined();
    const bad = { ...preset('quick'), train: { ...preset('quick').train, epochs: 0 } };
    expect(() => validateRunConfig(bad)).toThrow(/epochs = 0 is invalid/);
    expect(() => validateRunConfig({ ...preset('quick'), attacks: [{ id: 'nope' }] })).toThrow(
      /unknown attack "nope"/,
    );
    expect(decodeConfig(encodeConfig(bad)).config).toBeUndefined();
    expect(retrainingText({ retrainJitter: true })).toMatch(
      /with each image blurred very slightly \(a warping trigger hides in such a blur\), so the poisoned examples the detection missed plant less of their backdoor\..*trained without it, so part of the change comes from the retraining recipe itself\.$/,
    );
    expect(retrainingText({ retrainJitter: true })).not.toMatch(/stripe/);
    expect(retrainingText({ retrainStripes: true })).toMatch(
      /without the flagged examples, with faint random stripes added to each image \(a stripe-pattern/,
    );
    expect(retrainingText({ retrainJitter: true, retrainStripes: true })).toMatch(
      /with each image blurred very slightly and faint random stripes added to each image \(a warping trigger hides in such a blur; a stripe-pattern .*trained without them/,
    );
    expect(retrainingRecipe({})).toEqual([]);
    expect(retrainingText({ retrainMatchSteps: true })).toBe(
      "BaDLoss's model was retrained from scratch without the flagged examples, with the same recipe. It trained for more epochs to make up for the examples removed: about as many training steps as the first model took.",
    );
    expect(
      retrainingText({ retrainJitter: true, retrainStripes: true, retrainMatchSteps: true }),
    ).toMatch(
      /with each image blurred very slightly and faint random stripes added to each image \(a warping .*; a stripe-pattern .*\), so the poisoned examples the detection missed plant less of their backdoor\. It trained for more epochs .* first model took\. The no-defense model was trained without them,/,
    );
    expect(retrainingRecipe({ retrainJitter: true, retrainMatchSteps: true })).toEqual([
      'each image blurred very slightly',
      'more epochs to make up for the examples removed',
    ]);
    expect(retrainingText({ retrainStripes: true, retrainReweight: true })).toBe(
      "BaDLoss's model was retrained from scratch without the flagged examples, with faint random stripes added to each image and each class weighted to its share of the test set (a stripe-pattern trigger hides among such stripes; a class that an attack filled with relabeled examples no longer draws predictions to it), so the poisoned examples the detection missed plant less of their backdoor. The no-defense model was trained without them, so part of the change comes from the retraining recipe itself.",
    );
    expect(andList(['a'])).toBe('a');
    expect(andList(['a', 'b'])).toBe('a and b');
    expect(andList(['a', 'b', 'c'])).toBe('a, b and c');
    expect(retrainingText({})).toMatch(/with the same recipe\.$/);
    expect(retrainingText({ retrainJitter: true }, 'losses.npy')).toMatch(
      /^This run was recorded elsewhere \(losses\.npy\) and not retrained here/,
    );
    expect(() => validateRunConfig({ ...preset('quick'), retrainJitter: 'yes' })).toThrow(
      /retrainJitter "yes" is invalid: must be true or false/,
    );
    expect(() => validateRunConfig({ ...preset('quick'), retrainStripes: 1 })).toThrow(
      /retrainStripes 1 is invalid: must be true or false/,
    );
    expect(() => validateRunConfig({ ...preset('quick'), retrainMatchSteps: 'on' })).toThrow(
      /retrainMatchSteps "on" is invalid: must be true or false/,
    );
  });
  it('accepts a trusted dataset with a string id (or none yet, as a draft)', () => {
    const cfg = preset('quick');
    cfg.probes = { ...cfg.probes, trusted: 'dataset', trustedDatasetId: 'abc' };
    expect(decodeConfig(encodeConfig(cfg)).config).toEqual(cfg);
    const draft = { ...cfg, probes: { ...cfg.probes, trustedDatasetId: undefined } };
    expect(validateRunConfig(draft).probes.trusted).toBe('dataset');
    const bad = { ...cfg, probes: { ...cfg.probes, trustedDatasetId: 7 } };
    expect(() => validateRunConfig(bad)).toThrow(/trustedDatasetId 7 must be a dataset id/);
  });
});

describe('experiments', () => {
  const ds = generateDemoDataset({ seed: 4, train: 600, test: 200 });
  it('benchmark mode: probes overwrite untouched training rows; the test set stays whole', () => {
    const cfg = {
      ...preset('quick'),
      limit: undefined,
      probes: { n: 20, trigger: 'patch' as const, trusted: 'train-untouched' as const },
    };
    const p = prepareExperiment(ds, cfg);
    expect(p.train.count).toBe(600);
    expect(p.test.count).toBe(200);
    expect(p.triggered.map((t) => t.attack)).toEqual(['patch', 'blend-r', 'warping', 'frequency']);
    for (let i = 0; i < 600; i++)
      if (p.probes.probeKind[i] !== PROBE_NONE) expect(p.truth[i]).toBe(-1);
    expect(Array.from(p.sourceLabels)).toEqual(Array.from(ds.splits.train!.labels));
  });
  it('audit mode: probes come from the test split, which then shrinks', () => {
    const cfg = {
      ...preset('quick'),
      mode: 'audit' as const,
      attacks: [],
      limit: undefined,
      probes: { n: 10, trigger: 'patch' as const, trusted: 'test' as const },
    };
    const p = prepareExperiment(ds, cfg);
    expect(p.train.count).toBe(630);
    expect(p.test.count).toBe(170);
    expect(p.attacks).toEqual([]);
    expect(p.truth.every((t) => t === -1)).toBe(true);
    // source labels of appended probes are the trusted examples' true labels
    const used = p.probes.trustedUsed!;
    used.forEach((ti, j) => expect(p.sourceLabels[600 + j]).toBe(ds.splits.test!.labels[ti]));
    expect(() => prepareExperiment(ds, { ...cfg, attacks: [{ id: 'patch' }] })).toThrow(
      /audit mode takes no attacks/,
    );
  });
  it('retraining keeps unflagged rows and clean probes, drops backdoor and mislabeled probes', () => {
    const kinds = Uint8Array.from([
      PROBE_NONE,
      PROBE_CLEAN,
      PROBE_BACKDOOR,
      PROBE_MISLABELED,
      PROBE_NONE,
      PROBE_NONE,
    ]);
    expect(keptRows([4], kinds)).toEqual([0, 1, 5]);
  });
});

describe('detection summary and report', () => {
  const attacks: ResolvedAttack[] = [
    { id: 'patch', target: 1, ratio: 0.1, strength: 1, params: {}, indices: [0, 1] },
  ];
  const truth = Int8Array.from([0, 0, -1, -1, -1, -1]);
  const kinds = Uint8Array.from([0, 0, 0, 0, PROBE_CLEAN, PROBE_BACKDOOR]);
  const labels = Uint8Array.from([1, 1, 0, 2, 0, 1]);
  const scores = Float32Array.from([0.9, 0.2, 0.5, 0.05, NaN, NaN]);
  const det = { method: 'knn' as const, k: 3, scores, threshold: 0.1 };
  const s = summarizeDetection(det, truth, kinds, attacks, labels, 3);
  it('counts removals per attack, of clean rows and per class, and computes AUROC', () => {
    expect(s.flagged).toEqual([0, 1, 2]);
    expect(s.removed).toEqual({ clean: 1, total: 3, patch: 2 });
    expect(s.removedFraction.clean).toBe(0.5);
    // patch scores {0.9, 0.2} vs clean {0.5, 0.05}: pairs won 3 of 4
    expect(s.auroc.patch).toBe(0.75);
    expect(s.perClass).toEqual([
      { removed: 1, total: 1 },
      { removed: 2, total: 2 },
      { removed: 0, total: 1 },
    ]);
  });
  // A report's inputs but its configuration and the retrained model's history.
  const base = {
    datasetName: 'x',
    classes: ['a', 'b', 'c'],
    trainCount: 6,
    testCount: 10,
    attacks,
    probes: { n: 1, backdoorLabel: 1 },
    summary: s,
    undefended: { cleanAccuracy: 0.9, asr: { patch: 0.8 }, asrBoosted: {} },
    defended: { cleanAccuracy: 0.85, asr: { patch: 0.1 }, asrBoosted: {} },
    historyUndefended: [],
  };
  it('builds the report with the CLI keys, a CSV and a self-contained HTML page', () => {
    const r = buildReport({
      ...base,
      datasetName: 'x <script>',
      config: preset('tiny'),
      historyDefended: [],
    });
    expect(r.cleanAccuracy).toEqual({ undefended: 0.9, defended: 0.85 });
    expect(r.asr.defended.patch).toBe(0.1);
    expect(r.averageAsr.undefended).toBe(0.8);
    expect(r.detection.auroc.patch).toBe(0.75);
    expect(r.detection.removed.clean).toBe(1);
    const csv = flaggedCsv(s, scores, labels, ['a', 'b', 'c'], (i) =>
      truth[i] >= 0 ? 'patch' : 'clean',
    );
    expect(csv.trim().split('\n')).toEqual([
      'index,score,label,class,truth',
      '0,0.900000,1,"b",patch',
      '2,0.500000,0,"a",clean',
      '1,0.200000,1,"b",patch',
    ]);
    const html = reportHtml(r);
    expect(html).toContain('x &lt;script&gt;');
    expect(html).not.toMatch(/<script|src=|href=/);
  });
  it("gives the retrained model's epochs beside the recipe's when it matched the first model's steps", () => {
    const epochs = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ epoch: i + 1, loss: 1, accuracy: 0.5 }));
    const recipe = preset('tiny').train.epochs;
    const matched = { ...preset('tiny'), retrainMatchSteps: true };
    const longer = buildReport({ ...base, config: matched, historyDefended: epochs(recipe + 3) });
    expect(retrainedEpochs(longer)).toEqual({ recipe, retrained: recipe + 3 });
    expect(reportHtml(longer)).toContain(
      `It trained for ${recipe + 3} epochs instead of the recipe&#39;s ${recipe} to make up for the examples removed`,
    );
    const same = buildReport({ ...base, config: matched, historyDefended: epochs(recipe) });
    expect(reportHtml(same)).toContain(
      `It trained for the recipe&#39;s ${recipe} epochs: so few examples were removed`,
    );
    // Not matched, or not trained here (no history): nothing to say beside the recipe.
    const plain = { ...base, historyDefended: epochs(recipe) };
    expect(retrainedEpochs(buildReport({ ...plain, config: preset('tiny') }))).toBeUndefined();
    expect(
      retrainedEpochs(buildReport({ ...base, config: matched, historyDefended: [] })),
    ).toBeUndefined();
  });
});

describe('the words for the tests united with the k-NN', () => {
  it('name each test that ran at its budget, and nothing without them', () => {
    expect(extraTestsText({})).toBe('');
    expect(extraTestsText({ easiness: 0.02 })).toBe(
      ', with the easiness test (rows learned far better than their class) at 2% of the clean data',
    );
    expect(extraTestsText({ easiness: 0.02, mirror: 0.015 })).toBe(
      ', with the easiness test (rows learned far better than their class) at 2% and the mirror test (rows whose loss jumps when the image is mirrored) at 1.5% of the clean data',
    );
    expect(extraBudgetsText({ mirror: 0.02 })).toBe(' (and 2% for the mirror test)');
    expect(extraBudgetsText({ easiness: 0.02, mirror: 0.02 })).toBe(
      ' (and 2% for the easiness test and 2% for the mirror test)',
    );
  });
});
