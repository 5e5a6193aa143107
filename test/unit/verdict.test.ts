import { describe, expect, it } from 'vitest';
import {
  blocksRetrain,
  changeTone,
  runDetectionCaveats,
  detectionCaveats,
  easinessProbesNeeded,
  verdictOf,
  TOOK_HOLD_ASR,
} from '../../src/core/verdict.ts';
import { DEFAULT_DETECT, preset } from '../../src/core/experiment.ts';
import type { RunRecord } from '../../src/core/run.ts';
import { UNDERFIT_LOSS } from '../../src/core/detect/fit.ts';
import type { DetectionSummary, Report } from '../../src/core/report.ts';
import { reportHtml } from '../../src/core/report.ts';

/** A hand-made report: 1,000 judged examples in 2 classes, patch and blend-r poisoned 50 each. */
function report(p: {
  asrBefore: Record<string, number>;
  asrAfter: Record<string, number>;
  acc?: [number, number];
  removed?: Record<string, number>;
  mode?: 'benchmark' | 'audit';
  perClass?: { class: string; removed: number; total: number }[];
}): Report {
  const mode = p.mode ?? 'benchmark';
  const ids = mode === 'audit' ? [] : (['patch', 'blend-r'] as const);
  const removed = p.removed ?? { clean: 9, patch: 45, 'blend-r': 5, total: 59 };
  const sizes: Record<string, number> = { clean: 900, patch: 50, 'blend-r': 50 };
  const cfg = preset('quick');
  if (mode === 'audit') {
    cfg.mode = 'audit';
    cfg.attacks = [];
    cfg.probes.trusted = 'test';
  }
  return {
    tool: 'BaDLoss Lab',
    createdAt: '2026-01-01T00:00:00.000Z',
    dataset: { name: 'demo', classes: ['a', 'b'], train: 1000, test: 200 },
    mode,
    cleanAccuracy: { undefended: p.acc?.[0] ?? 0.8, defended: p.acc?.[1] ?? 0.79 },
    asr: { undefended: p.asrBefore, defended: p.asrAfter },
    asrBoosted: { undefended: {}, defended: {} },
    averageAsr: { undefended: NaN, defended: NaN },
    detection: {
      method: 'knn',
      k: 10,
      threshold: 0.1,
      auroc: mode === 'audit' ? {} : { patch: 0.95, 'blend-r': 0.6, all: 0.8 },
      removed,
      removedFraction: Object.fromEntries(
        Object.entries(removed).map(([k, v]) => [k, v / (sizes[k] ?? 1000)]),
      ),
      perClass: p.perClass ?? [
        { class: 'a', removed: 30, total: 500 },
        { class: 'b', removed: 29, total: 500 },
      ],
      flaggedCount: removed.total,
    },
    attacks: ids.map((id, k) => ({
      id,
      name: id === 'patch' ? 'Patch (BadNets checkerboard)' : 'Blend, random pattern',
      target: k,
      ratio: 0.05,
      strength: 1,
      count: 50,
    })),
    probes: { n: 50, backdoorLabel: 0 },
    training: { undefended: [], defended: [] },
    config: cfg,
  };
}

describe('changeTone', () => {
  it('reads direction by meaning, with a tolerance', () => {
    expect(changeTone(0.9, 0.1, true)).toBe('better');
    expect(changeTone(0.0, 0.003, true)).toBe('same'); // 0.3 points is within 2 points
    expect(changeTone(0.0, 0.1, true)).toBe('worse');
    expect(changeTone(0.8, 0.7, false)).toBe('worse');
    expect(changeTone(0.8, 0.81, false)).toBe('same');
    expect(changeTone(NaN, 0.5, true)).toBe('unknown');
  });
});

describe('verdictOf', () => {
  it('an attack that took hold and went down is a success; one that never took hold is not counted', () => {
    const v = verdictOf(
      report({
        asrBefore: { patch: 0.95, 'blend-r': 0.0 },
        asrAfter: { patch: 0.02, 'blend-r': 0.003 },
      }),
    );
    const patch = v.attacks.find((a) => a.id === 'patch')!;
    const blend = v.attacks.find((a) => a.id === 'blend-r')!;
    expect(patch.tookHold).toBe(true);
    expect(patch.tone).toBe('better');
    expect(blend.tookHold).toBe(false);
    expect(blend.sentence).toMatch(/never took hold/);
    expect(v.headline).toMatch(/stopped the attack that took hold/);
    expect(v.tone).toBe('better');
    expect(v.caveats.map((c) => c.kind)).toContain('never-took-hold');
    // removals as counts and percentages
    expect(patch.sentence).toContain('45 of its 50 poisoned examples were removed (90.0%)');
    expect(v.sentences[0]).toContain('9 clean examples');
    expect(v.sentences[0]).toContain('1.0% of the clean data lost');
  });

  it('no attack took hold: no claim of success', () => {
    const v = verdictOf(
      report({
        asrBefore: { patch: 0.05, 'blend-r': 0.01 },
        asrAfter: { patch: 0.01, 'blend-r': 0.0 },
      }),
    );
    expect(v.tone).toBe('unknown');
    expect(v.headline).toMatch(/No attack took hold/);
    expect(v.headline).not.toMatch(/stopped/);
    expect(v.caveats.filter((c) => c.kind === 'never-took-hold')).toHaveLength(2);
  });

  it('an ASR that went up after the defense is worse, and the headline says the defense failed', () => {
    const v = verdictOf(
      report({
        asrBefore: { patch: 0.5, 'blend-r': 0.3 },
        asrAfter: { patch: 0.8, 'blend-r': 0.31 },
      }),
    );
    expect(v.attacks.find((a) => a.id === 'patch')!.tone).toBe('worse');
    expect(v.attacks.find((a) => a.id === 'blend-r')!.tone).toBe('same');
    expect(v.headline).toMatch(/did not stop the 2 attacks/);
    expect(v.tone).toBe('worse');
  });

  it('the bar is inclusive and stated', () => {
    const v = verdictOf(
      report({
        asrBefore: { patch: TOOK_HOLD_ASR, 'blend-r': 0.9 },
        asrAfter: { patch: 0.0, 'blend-r': 0.5 },
      }),
    );
    expect(v.attacks[0].tookHold).toBe(true);
    expect(v.headline).toMatch(/weakened 2 of 2 attacks that took hold and stopped 1/);
  });

  it('clean accuracy: a fall beyond the tolerance is reported with its size', () => {
    const v = verdictOf(
      report({
        asrBefore: { patch: 0.9, 'blend-r': 0.9 },
        asrAfter: { patch: 0, 'blend-r': 0 },
        acc: [0.8, 0.7],
      }),
    );
    expect(v.sentences.join(' ')).toContain('Clean accuracy went down by 10.0 points');
    expect(v.headline).toContain('at a cost of 10.0 points of clean accuracy');
  });

  it('audit mode: no ground truth, the probe source is named, warnings for few probes, chance-level LOO and mass flagging', () => {
    const v = verdictOf(
      report({
        mode: 'audit',
        asrBefore: {},
        asrAfter: {},
        acc: [NaN, NaN],
        removed: { clean: 1000, total: 1000 },
        perClass: [
          { class: 'a', removed: 500, total: 500 },
          { class: 'b', removed: 500, total: 500 },
        ],
      }),
      { probeCounts: { clean: 2, backdoor: 2, mislabeled: 2 }, looAuroc: [{ k: 5, auroc: 0 }] },
    );
    expect(v.headline).toMatch(/^Audit: 1000 examples of 1000 \(100.0%\)/);
    expect(v.headline).toMatch(/no ground truth/);
    const kinds = v.caveats.map((c) => c.kind);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'few-probes',
        'loo-chance',
        'most-flagged',
        'no-ground-truth',
        'probe-source',
        'no-test',
      ]),
    );
    expect(v.caveats.find((c) => c.kind === 'probe-source')!.text).toContain('the test split');
    expect(v.caveats.find((c) => c.kind === 'most-flagged')!.action).toMatch(/Raise the threshold/);
    expect(v.caveats.find((c) => c.kind === 'few-probes')!.action).toMatch(/Add trusted examples/);
  });

  it('audit mode on unvetted probes says so; enough probes and good LOO give no warning', () => {
    const r = report({
      mode: 'audit',
      asrBefore: {},
      asrAfter: {},
      removed: { clean: 50, total: 50 },
    });
    r.config.probes.trusted = 'train-untouched';
    const v = verdictOf(r, {
      probeCounts: { clean: 50, backdoor: 50, mislabeled: 50 },
      looAuroc: [{ k: 5, auroc: 0.9 }],
    });
    const kinds = v.caveats.map((c) => c.kind);
    expect(kinds).not.toContain('few-probes');
    expect(kinds).not.toContain('loo-chance');
    expect(kinds).not.toContain('most-flagged');
    expect(v.caveats.find((c) => c.kind === 'probe-source')!.text).toMatch(/not vetted/);
  });

  it('says when the easiness test cannot flag anything with so few clean probes', () => {
    // a conformal test at level α needs 1/(m + 1) < α
    expect(easinessProbesNeeded(0.02)).toBe(50);
    expect(easinessProbesNeeded(0.03)).toBe(33);
    expect(easinessProbesNeeded(0.5)).toBe(2);
    for (const a of [0.015, 0.02, 0.07, 0.1, 0.25]) {
      const m = easinessProbesNeeded(a);
      expect(1 / (m + 1)).toBeLessThan(a);
      expect(1 / m).toBeGreaterThanOrEqual(a);
    }
    const few = detectionCaveats({
      flagged: 10,
      judged: 1000,
      detect: { method: 'knn', threshold: 'auto', easiness: 0.02 },
      probeCounts: { clean: 49, backdoor: 60, mislabeled: 60 },
    });
    expect(few.map((c) => c.kind)).toEqual(['easiness-idle']);
    expect(few[0].text).toMatch(/at least 50 clean probes .* with 49 it removed nothing/);
    const enough = { clean: 50, backdoor: 60, mislabeled: 60 };
    expect(
      detectionCaveats({
        flagged: 10,
        judged: 1000,
        detect: { method: 'knn', threshold: 'auto', easiness: 0.02 },
        probeCounts: enough,
      }),
    ).toEqual([]);
    expect(
      detectionCaveats({ flagged: 10, judged: 1000, probeCounts: { ...enough, clean: 49 } }),
    ).toEqual([]);
  });

  it('says when the probationary model is far from fitting its data, and what to do, without stopping the retraining', () => {
    const fitted = { clean: 0.2, backdoor: 0.6, mislabeled: 3.5 };
    const base = { flagged: 10, judged: 1000 };
    expect(detectionCaveats({ ...base, probeFit: fitted })).toEqual([]);
    // at ln 2 the median clean probe gets exactly half the probability: not yet underfit
    expect(detectionCaveats({ ...base, probeFit: { ...fitted, clean: UNDERFIT_LOSS } })).toEqual(
      [],
    );
    const cifar = { clean: 1.01, backdoor: 2.44, mislabeled: 2.89 };
    const underfitOf = (detect?: Parameters<typeof detectionCaveats>[0]['detect']) => {
      const c = detectionCaveats({ ...base, probeFit: cifar, detect });
      expect(c.map((x) => x.kind)).toEqual(['underfit']);
      return c[0];
    };
    const off = underfitOf({ method: 'knn', threshold: 'auto' });
    expect(off.text).toContain('loss of 1.01 (its own label gets 36.4% of the probability');
    expect(off.text).toContain('backdoor probes end at 2.44 and the mislabeled ones at 2.89');
    // the advice names what turns the easiness test on from where the run stands
    expect(off.action).toMatch(/^Turn on the "learned too easily" test .*--easiness 0\.02 /);
    expect(off.action).toMatch(/Or train the probationary model longer/);
    for (const fixed of [
      { method: 'knn', threshold: 0.1 },
      { method: 'clean-distance', threshold: 'auto' },
    ] as const)
      expect(underfitOf(fixed).action).toMatch(
        /^Use the k-NN with the calibrated threshold .*--method knn --threshold auto --easiness 0\.02/,
      );
    // on, or settings unknown (the command line's detect and report): only "train longer"
    for (const d of [{ method: 'knn', threshold: 'auto', easiness: 0.02 } as const, undefined]) {
      const a = underfitOf(d).action!;
      expect(a).toBe(
        'Train the probationary model longer or at a higher learning rate, then detect again.',
      );
    }
    // a diverged model (NaN losses read as infinite) is told the opposite: a lower learning rate
    const diverged = detectionCaveats({ ...base, probeFit: { ...cifar, clean: Infinity } });
    expect(diverged.map((c) => c.kind)).toEqual(['underfit']);
    expect(diverged[0].text).toMatch(/diverged/);
    expect(diverged[0].action).toMatch(/lower learning rate/);
    // advice, not a block: the retrain button stays; chance-level LOO or mass flagging stop it
    expect(blocksRetrain([off])).toBe(false);
    const idle = detectionCaveats({
      ...base,
      detect: { method: 'knn', threshold: 'auto', easiness: 0.02 },
      probeCounts: { clean: 20, backdoor: 20, mislabeled: 20 },
    });
    expect(idle.map((c) => c.kind)).toEqual(['easiness-idle']);
    expect(blocksRetrain([off, ...idle])).toBe(false);
    const loo = detectionCaveats({ ...base, looAuroc: [{ k: 5, auroc: 0.52 }] });
    expect(loo.map((c) => c.kind)).toEqual(['loo-chance']);
    expect(blocksRetrain([off, ...loo])).toBe(true);
    expect(blocksRetrain(detectionCaveats({ flagged: 600, judged: 1000 }))).toBe(true);
    expect(blocksRetrain([])).toBe(false);
    // and the verdict repeats it from the run's extras
    const v = verdictOf(report({ asrBefore: { patch: 0.9 }, asrAfter: { patch: 0.1 } }), {
      probeFit: cifar,
    });
    expect(v.caveats.map((c) => c.kind)).toContain('underfit');
  });

  it('says when the mirror test cannot flag anything, or did not run for want of the model', () => {
    const base = { flagged: 10, judged: 1000 };
    const idle = detectionCaveats({
      ...base,
      detect: { method: 'knn', threshold: 'auto', easiness: 0.05, mirror: 0.02 },
      probeCounts: { clean: 30, backdoor: 60, mislabeled: 60 },
    });
    // 30 clean probes: enough for 0.05 (19), not for 0.02 (50)
    expect(idle.map((c) => c.kind)).toEqual(['mirror-idle']);
    expect(idle[0].text).toMatch(/"breaks when mirrored" test needs at least 50 clean probes/);
    const r = report({ asrBefore: { patch: 0.9 }, asrAfter: { patch: 0.1 } });
    const summary = { ...r.detection, flagged: [1, 2, 3] } as unknown as DetectionSummary;
    const run = (calibration: object) =>
      ({
        config: { ...r.config, detect: { ...DEFAULT_DETECT } },
        prepared: { probes: { clean: 250, backdoor: 250, mislabeled: 250 } },
        detection: { summary, calibration },
      }) as unknown as Pick<RunRecord, 'config' | 'prepared' | 'detection'>;
    const skipped = runDetectionCaveats(run({ targetFpr: 0.06, easiness: 0.02 }));
    expect(skipped.map((c) => c.kind)).toEqual(['mirror-skipped']);
    expect(blocksRetrain(skipped)).toBe(false);
    expect(runDetectionCaveats(run({ targetFpr: 0.06, easiness: 0.02, mirror: 0.02 }))).toEqual([]);
  });

  it("a run's detection warnings: the stored summary and fit, or the ones given", () => {
    const r = report({ asrBefore: { patch: 0.9 }, asrAfter: { patch: 0.1 } });
    const summary = { ...r.detection, flagged: [1, 2, 3] } as unknown as DetectionSummary;
    const run = {
      config: r.config,
      prepared: { probes: { clean: 250, backdoor: 250, mislabeled: 250 } },
      detection: { summary, probeFit: { clean: 1.2, backdoor: 2, mislabeled: 3 } },
    } as unknown as Pick<RunRecord, 'config' | 'prepared' | 'detection'>;
    expect(runDetectionCaveats(run).map((c) => c.kind)).toEqual(['underfit']);
    // the Detect step's explored threshold: most rows flagged
    const most = { ...summary, flagged: Array.from({ length: 600 }, (_, i) => i) };
    expect(runDetectionCaveats(run, most).map((c) => c.kind)).toEqual(['underfit', 'most-flagged']);
    // a fit given (computed from the trajectories) replaces a missing one
    const fitted = { clean: 0.2, backdoor: 0.5, mislabeled: 3 };
    expect(runDetectionCaveats(run, summary, fitted)).toEqual([]);
    // the stored settings decide the advice: the preset's calibrated k-NN
    expect(runDetectionCaveats(run)[0].action).toMatch(
      new RegExp(`^Turn on .*--easiness ${DEFAULT_DETECT.easiness} `),
    );
    // nothing to warn about before a detection or a prepared set
    expect(runDetectionCaveats({ ...run, detection: undefined })).toEqual([]);
    expect(runDetectionCaveats({ ...run, prepared: undefined })).toEqual([]);
  });

  it('flags a class hit much harder than the others (but not an attack target)', () => {
    const perClass = [
      { class: 'a', removed: 10, total: 400 },
      { class: 'b', removed: 10, total: 400 },
      { class: 'c', removed: 80, total: 200 },
    ];
    const r = report({
      mode: 'audit',
      asrBefore: {},
      asrAfter: {},
      removed: { clean: 100, total: 100 },
      perClass,
    });
    r.dataset.classes = ['a', 'b', 'c'];
    const v = verdictOf(r);
    const hit = v.caveats.find((c) => c.kind === 'class-hit');
    expect(hit?.text).toContain('c lost 40.0%');
    expect(hit?.text).not.toContain('a lost');
  });

  it('the HTML report opens with the verdict and lists the clean row', () => {
    const r = report({
      asrBefore: { patch: 0.95, 'blend-r': 0.0 },
      asrAfter: { patch: 0.02, 'blend-r': 0.003 },
    });
    const html = reportHtml(r, {
      thumbnails: [{ src: 'data:image/png;base64,AAAA', caption: '1.00 · patch' }],
    });
    const at = (s: string) => html.indexOf(s);
    expect(at('id="verdict"')).toBeGreaterThan(0);
    expect(at('id="verdict"')).toBeLessThan(at('<table'));
    expect(html).toContain('false positives');
    expect(html).toContain('never took hold');
    expect(html).toContain('<img src="data:image/png;base64,AAAA"');
    expect(html).toContain('Patch (BadNets checkerboard)');
    expect(html).not.toMatch(/(src|href)="https?:/);
    expect(html).not.toContain('<script');
    // tone colours apply to table cells, not to the verdict's text
    expect(html).not.toMatch(/}\.tone-worse\{/);
  });
  it('removing most of the data is not a success, even when the ASR falls', () => {
    const v = verdictOf(
      report({
        asrBefore: { patch: 0.9, 'blend-r': 0.9 },
        asrAfter: { patch: 0, 'blend-r': 0 },
        removed: { clean: 880, patch: 50, 'blend-r': 50, total: 980 },
      }),
    );
    expect(v.tone).toBe('worse');
    expect(v.headline).toMatch(/removed 98.0% of the training data/);
    expect(v.headline).toMatch(/not a working defense/);
  });
});
