import { describe, expect, it } from 'vitest';
import { activePreset, auditConfig, configSummary } from '../../src/app/presets.ts';
import {
  controlsFrom,
  detectOptionsFrom,
  secondRoundBudgetText,
} from '../../src/app/detect-options.ts';
import { niceTicks, pctFine } from '../../src/app/format.ts';
import { CLASSROOM_DETECT, DEFAULT_DETECT, preset } from '../../src/core/experiment.ts';
import { stepFromUrl, stepsDone, urlWithStep } from '../../src/app/steps-done.ts';
import type { RunRecord } from '../../src/core/run.ts';

describe('presets', () => {
  it("an audit drops the attacks, never probes from the data under audit, and detects with the command line's default unless the user chose otherwise", () => {
    for (const name of ['quick', 'tiny'] as const) {
      const p = preset(name);
      expect(p.detect).toEqual(CLASSROOM_DETECT);
      const a = auditConfig(p, true);
      expect(a.mode).toBe('audit');
      expect(a.attacks).toEqual([]);
      expect(a.probes).toEqual({ ...p.probes, trusted: 'test' });
      expect(a.detect).toEqual(DEFAULT_DETECT);
      expect(a.train).toEqual(p.train);
      expect(activePreset(a)).toBe('audit');
      expect(p.mode).toBe('benchmark'); // the preset itself is untouched
    }
    expect(auditConfig(preset('tiny'), false).probes.trusted).toBe('dataset');
    // settings chosen on the Detect step stay (the paper's detection, a changed budget)
    const paper = preset('paper');
    expect(auditConfig(paper, true).detect).toEqual(paper.detect);
    const tuned = preset('quick');
    tuned.detect = { ...tuned.detect, targetFpr: 0.05 };
    expect(auditConfig(tuned, true).detect).toEqual(tuned.detect);
  });

  it('recognises each preset exactly, and none once something changed', () => {
    for (const name of ['paper', 'quick', 'tiny'] as const)
      expect(activePreset(preset(name))).toBe(name);
    expect(activePreset(preset('paper', true), true)).toBe('paper');
    expect(activePreset(preset('paper', true))).toBeNull(); // GTSRB batch size differs
    const changed = preset('tiny');
    changed.train.epochs = 2;
    expect(activePreset(changed)).toBeNull();
    // key order and explicit undefined fields do not matter
    const { seed, ...rest } = preset('quick');
    const reordered = { seed, ...rest, limit: undefined };
    expect(activePreset(reordered)).toBe('quick');
    expect(activePreset({ ...preset('quick'), mode: 'audit', attacks: [] })).toBe('audit');
  });
  it('summarises a configuration in one line', () => {
    expect(configSummary(preset('tiny'))).toBe(
      'Patch (BadNets checkerboard) at 2%, Blend, random pattern at 3%, Frequency (FTrojan) at 2%, WaNet warping at 10%; ResNet-8 ×0.5, 10 epochs on up to 5,000 training images; 300 probes of each kind.',
    );
    expect(configSummary({ ...preset('quick'), mode: 'audit', attacks: [] })).toMatch(
      /^no attacks/,
    );
  });
});

describe('pctFine', () => {
  it('keeps small fractions non-zero', () => {
    expect(pctFine(0)).toBe('0%');
    expect(pctFine(4 / 1000)).toBe('0.4%');
    expect(pctFine(12 / 3072)).toBe('0.39%');
    expect(pctFine(0.00004)).toBe('0.004%');
    expect(pctFine(0.25)).toBe('25%');
    expect(pctFine(0.05)).toBe('5%');
    expect(pctFine(NaN)).toBe('—');
  });
});

describe('steps', () => {
  it('the step round-trips through the query and leaves the run hash alone; old #step= links work', () => {
    const href = 'http://x/app/?backend=cpu#run=abc&cfg=xyz';
    const url = urlWithStep(href, 'report');
    expect(url).toBe('/app/?backend=cpu&step=report#run=abc&cfg=xyz');
    const u = new URL(url, 'http://x');
    expect(stepFromUrl(u.search, u.hash)).toBe('report');
    expect(stepFromUrl('', '#cfg=xyz&step=detect')).toBe('detect');
    expect(stepFromUrl('?step=nope', '')).toBeNull();
  });
  it('marks steps done from the run record', () => {
    const none = stepsDone(null, true, false);
    expect(
      Object.entries(none)
        .filter(([, v]) => v)
        .map(([k]) => k),
    ).toEqual(['data']);
    const rec = {
      config: { separateBaseline: true, detect: { method: 'knn' } },
      prepared: {},
      // a phase is finished once trained and evaluated (core's stageDone)
      phases: {
        probationary: { done: true, evaluation: {} },
        retrain: { done: true, evaluation: {} },
      },
      detection: {},
    } as unknown as RunRecord;
    const d = stepsDone(rec, true, true);
    expect(d).toMatchObject({
      attacks: true,
      probes: true,
      train: true,
      detect: true,
      retrain: false,
      report: false,
    });
    expect(stepsDone(rec, true, false).probes).toBe(false);
    // with a second detection round, detection is done once that round has run too
    const two = {
      ...rec,
      config: { ...rec.config, detect: { method: 'knn', secondRound: 0.03 } },
    } as RunRecord;
    expect(stepsDone(two, true, true).detect).toBe(false);
    const both = {
      ...two,
      phases: { ...two.phases, recheck: { done: true, evaluation: {} } },
      detection: { secondRound: {} },
    } as unknown as RunRecord;
    expect(stepsDone(both, true, true).detect).toBe(true);
  });
});

describe('niceTicks', () => {
  it('gives round steps covering the maximum, whole numbers for counts', () => {
    expect(niceTicks(37)).toEqual([0, 10, 20, 30, 40]);
    expect(niceTicks(3)).toEqual([0, 1, 2, 3]);
    expect(niceTicks(1, 4, false)).toEqual([0, 0.5, 1]);
    expect(niceTicks(1, 10, false)).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
    expect(niceTicks(0)).toEqual([0]);
  });
});

describe('Detect step options', () => {
  it("runs exactly each preset's detection when the controls are left alone", () => {
    // The bug this guards: the page sent only { method, k, threshold }, so the app ran α = 0.1
    // without the distance tie-break while the CLI ran the default.
    for (const name of ['paper', 'quick', 'tiny', 'compare'] as const) {
      const d = preset(name).detect;
      expect(detectOptionsFrom(controlsFrom(d), d)).toEqual(d);
    }
    expect(detectOptionsFrom(controlsFrom(DEFAULT_DETECT), DEFAULT_DETECT)).toEqual(DEFAULT_DETECT);
  });
  it('turns the budget, the fixed threshold and the cap into options', () => {
    const c = controlsFrom(DEFAULT_DETECT);
    expect(detectOptionsFrom({ ...c, budgetPct: 12, capPct: 40 }, DEFAULT_DETECT)).toEqual({
      ...DEFAULT_DETECT,
      targetFpr: 0.12,
      maxClassFraction: 0.4,
    });
    const fixed = detectOptionsFrom(
      { ...c, thresholdMode: 'fixed', threshold: 0.3 },
      DEFAULT_DETECT,
    );
    expect(fixed.threshold).toBe(0.3);
    expect(fixed.targetFpr).toBeUndefined();
    expect(
      detectOptionsFrom({ ...c, capPct: null }, DEFAULT_DETECT).maxClassFraction,
    ).toBeUndefined();
    expect(c.secondRoundPct).toBe(100 * DEFAULT_DETECT.secondRound!);
    expect(detectOptionsFrom({ ...c, secondRoundPct: 5 }, DEFAULT_DETECT).secondRound).toBe(0.05);
    expect(
      detectOptionsFrom({ ...c, secondRoundPct: null }, DEFAULT_DETECT).secondRound,
    ).toBeUndefined();
    expect(
      detectOptionsFrom({ ...c, method: 'clean-distance', rejectFraction: 0.3 }, DEFAULT_DETECT),
    ).toEqual({
      method: 'clean-distance',
      rejectFraction: 0.3,
    });
  });
  it('sends the easiness test only with the calibrated k-NN threshold, and off when emptied', () => {
    const easy = { ...DEFAULT_DETECT, easiness: 0.02 };
    const c = controlsFrom(easy);
    expect(c.easinessPct).toBe(2);
    expect(detectOptionsFrom(c, easy).easiness).toBe(0.02);
    expect(detectOptionsFrom({ ...c, easinessPct: null }, easy)).not.toHaveProperty('easiness');
    expect(detectOptionsFrom({ ...c, easinessPct: 5 }, easy).easiness).toBe(0.05);
    expect(detectOptionsFrom({ ...c, thresholdMode: 'fixed' }, easy)).not.toHaveProperty(
      'easiness',
    );
    expect(controlsFrom({ method: 'knn', threshold: 'auto' }).easinessPct).toBeNull();
  });
  it('sends the mirror test only with the calibrated k-NN threshold, and off when emptied', () => {
    const c = controlsFrom(DEFAULT_DETECT);
    expect(c.mirrorPct).toBe(100 * DEFAULT_DETECT.mirror!);
    expect(detectOptionsFrom(c, DEFAULT_DETECT).mirror).toBe(DEFAULT_DETECT.mirror);
    expect(detectOptionsFrom({ ...c, mirrorPct: null }, DEFAULT_DETECT)).not.toHaveProperty(
      'mirror',
    );
    expect(detectOptionsFrom({ ...c, mirrorPct: 0 }, DEFAULT_DETECT)).not.toHaveProperty('mirror');
    expect(detectOptionsFrom({ ...c, mirrorPct: 3 }, DEFAULT_DETECT).mirror).toBe(0.03);
    expect(detectOptionsFrom({ ...c, thresholdMode: 'fixed' }, DEFAULT_DETECT)).not.toHaveProperty(
      'mirror',
    );
    expect(controlsFrom({ method: 'knn', threshold: 'auto' }).mirrorPct).toBeNull();
  });
  it('sends the features the control names, and none where the configuration had none', () => {
    const c = controlsFrom(DEFAULT_DETECT);
    expect(c.features).toBe('loss');
    expect(detectOptionsFrom(c, DEFAULT_DETECT)).not.toHaveProperty('features');
    expect(detectOptionsFrom({ ...c, features: 'loss+log' }, DEFAULT_DETECT).features).toBe(
      'loss+log',
    );
    const logged = { ...DEFAULT_DETECT, features: 'loss+log' as const };
    expect(controlsFrom(logged).features).toBe('loss+log');
    // Back to the losses from a configuration that named the logarithms: said explicitly.
    expect(detectOptionsFrom({ ...controlsFrom(logged), features: 'loss' }, logged).features).toBe(
      'loss',
    );
    expect(
      detectOptionsFrom({ ...c, method: 'no-probe', features: 'loss+log' }, DEFAULT_DETECT),
    ).toEqual({ method: 'no-probe', rejectFraction: 0.4, features: 'loss+log' });
  });
});

describe("the Detect step's second-round budget sentence", () => {
  const run = (detect: object, detection?: object) =>
    ({ config: { detect }, ...(detection ? { detection } : {}) }) as unknown as RunRecord;
  it("sums the first round's k-NN and tests with the second round before detection", () => {
    // DEFAULT_DETECT: 6% + 2% easiness + 2% mirror, then 2%
    expect(secondRoundBudgetText(run(DEFAULT_DETECT))).toBe(
      '2% — the budgets add up: together the two rounds lose at most about 12% of the clean data',
    );
  });
  it("falls back to the k-NN's default budget when the run names none", () => {
    // DEFAULT_TARGET_FPR (10%) + 2% + 2%, then 2%
    const unnamed = run({ ...DEFAULT_DETECT, targetFpr: undefined });
    expect(secondRoundBudgetText(unnamed)).toMatch(/at most about 16% of the clean data$/);
  });
  it('after detection counts only the tests that ran', () => {
    // the mirror test needs the model: a detection without it recorded the easiness test alone
    const d = run(DEFAULT_DETECT, { calibration: { easiness: 0.02 } });
    expect(secondRoundBudgetText(d)).toMatch(/at most about 10% of the clean data$/);
  });
  it("adds the tests an older run's second round recorded", () => {
    const old = run(DEFAULT_DETECT, {
      calibration: { easiness: 0.02, mirror: 0.02 },
      secondRound: { calibration: { easiness: 0.02, mirror: 0.02 } },
    });
    const text = secondRoundBudgetText(old);
    expect(text).toMatch(/^2% \(and 2% for the .* test and 2% for the .* test\) — /);
    expect(text).toMatch(/at most about 16% of the clean data$/);
  });
  it('with a fixed threshold names the second round alone; without one, nothing', () => {
    const fixed = { ...DEFAULT_DETECT, threshold: 0.1, targetFpr: undefined };
    expect(secondRoundBudgetText(run(fixed))).toBe(
      '2%: it loses at most about that much more of the clean data',
    );
    expect(secondRoundBudgetText(run({ ...DEFAULT_DETECT, secondRound: undefined }))).toBe('');
  });
});
