import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bestDefenseSentence, compareDefenses } from '../../src/core/comparison.ts';
import { encodeNpy, parseNpy } from '../../src/core/formats/npy.ts';
import { reportHtml, type RemovalSummary } from '../../src/core/report.ts';
import { DEFENSE_NAMES } from '../../src/core/defenses/index.ts';
import { DEFAULT_DETECT } from '../../src/core/experiment.ts';

const summary = (all: number): RemovalSummary => ({
  auroc: { patch: all, all },
  roc: {},
  removed: { patch: 10, clean: 5, total: 15 },
  removedFraction: { patch: 1, clean: 0.1, total: 0.25 },
  perClass: [],
  flagged: [],
});
const evaluation = (acc: number, asr: number) => ({
  cleanAccuracy: acc,
  asr: { patch: asr, 'blend-r': asr / 2 },
  asrBoosted: {},
});

describe('defense comparison (report)', () => {
  it('lists every defense with a verdict, BaDLoss first, with retrained numbers where they exist', () => {
    const rows = compareDefenses(
      { spectral: summary(0.6), badloss: summary(0.9) },
      { badloss: evaluation(0.95, 0.02) },
    );
    expect(Object.keys(rows)).toEqual(['badloss', 'spectral']);
    expect(rows.badloss).toMatchObject({ cleanAccuracy: 0.95, averageAsr: 0.015 });
    expect(rows.spectral?.averageAsr).toBeUndefined();
    expect(rows.spectral?.removed).toEqual({ patch: 10, clean: 5, total: 15 });
  });

  it('names the best defense by average ASR after retraining, and by how much', () => {
    const rows = compareDefenses(
      { badloss: summary(0.9), spectral: summary(0.6), abl: summary(0.3) },
      {
        badloss: evaluation(0.95, 0.04), // average 3.0%
        spectral: evaluation(0.97, 0.5), // average 37.5%
        abl: evaluation(0.9, 0.9),
      },
    );
    expect(bestDefenseSentence(rows, 0.9)).toBe(
      'BaDLoss did best: average attack success 3.0% after retraining (from 90.0% undefended), 34.5 points below the next best, Spectral Signatures (37.5%), at a clean accuracy of 95.0%.',
    );
  });

  it('falls back to detection AUROC when fewer than two defenses were retrained', () => {
    const rows = compareDefenses({ badloss: summary(0.81), frequency: summary(0.9) }, {});
    expect(bestDefenseSentence(rows)).toMatch(
      /^Frequency analysis told poisons from clean examples best: AUROC 0\.900 over all poisons, 0\.090 above the next best, BaDLoss \(0\.810\)\.$/,
    );
    expect(bestDefenseSentence(compareDefenses({ badloss: summary(0.8) }, {}))).toBe('');
  });
});

describe('.npy writer', () => {
  it('round-trips through our reader and loads in NumPy with the same values', () => {
    const data = Float32Array.from({ length: 6 * 5 }, (_, i) => i / 7 - 1);
    const bytes = encodeNpy([6, 5], data);
    expect((10 + bytes[8] + (bytes[9] << 8)) % 64).toBe(0);
    const back = parseNpy('x.npy', bytes);
    expect(back.shape).toEqual([6, 5]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
    const dir = mkdtempSync(join(tmpdir(), 'badloss-npy-'));
    writeFileSync(join(dir, 'x.npy'), bytes);
    const py = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        'import numpy as np,sys; a=np.load(sys.argv[1]); print(a.dtype, a.shape, repr(float(a[5,4])))',
        join(dir, 'x.npy'),
      ],
      { encoding: 'utf8' },
    );
    expect(py.stderr).toBe('');
    expect(py.stdout.trim()).toBe(`float32 (6, 5) ${JSON.stringify(Math.fround(29 / 7 - 1))}`);
  });
});

describe('cli audit --defenses', () => {
  it('runs every defense, retrains each, and reports and saves what the issue names', () => {
    const dir = mkdtempSync(join(tmpdir(), 'badloss-defenses-'));
    const out = join(dir, 'report.json');
    const feats = join(dir, 'features.npy');
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'audit',
        'demo',
        '--attacks',
        'patch,blend-r',
        '--ratio',
        'patch=0.05,blend-r=0.05',
        '--model',
        'resnet8',
        '--width',
        '0.25',
        '--epochs',
        '3',
        '--batch',
        '32',
        '--lr',
        '0.005',
        '--probes',
        '20',
        '--limit-train',
        '600',
        '--limit-test',
        '200',
        '--defenses',
        'all',
        '--retrain-defenses',
        '--save-features',
        feats,
        '--out',
        out,
      ],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toMatch(/did best|told poisons from clean examples best/);
    expect(r.status).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(Object.keys(report.defenses)).toEqual([...DEFENSE_NAMES]);
    for (const name of DEFENSE_NAMES) {
      const d = report.defenses[name];
      expect(Object.keys(d.auroc).sort()).toEqual(['all', 'blend-r', 'patch']);
      expect(d.removed).toHaveProperty('patch');
      expect(d.removed).toHaveProperty('clean');
      expect(d.cleanAccuracy).toBeGreaterThan(0);
      expect(Object.keys(d.asr).sort()).toEqual(['blend-r', 'patch']);
    }
    expect(report.comparison).toMatch(/did best/);
    // BaDLoss detected in two rounds (the default) and removed what both flagged
    expect(r.stderr).toMatch(/recheck: a second probationary model on the \d+ rows/);
    // (the k-NN alone: the easiness and mirror tests judge the first round)
    expect(r.stderr).toContain(
      `second detection round (α = ${DEFAULT_DETECT.secondRound}): flagged`,
    );
    const two = report.detection.secondRound;
    expect(two.targetFpr).toBe(DEFAULT_DETECT.secondRound);
    expect(report.config.detect.easiness).toBe(DEFAULT_DETECT.easiness);
    // every model was retrained with the sub-pixel jitter and the stripes (the default), and the
    // report says so
    expect(report.config.retrainJitter).toBe(true);
    expect(report.config.retrainStripes).toBe(true);
    expect(report.config.retrainMatchSteps).toBe(true);
    expect(report.detection.flaggedCount).toBe(two.firstRound.flagged + two.secondRound.flagged);
    expect(report.detection.removed.clean).toBe(
      two.firstRound.removed.clean + two.secondRound.removed.clean,
    );
    // the self-contained HTML report carries the same comparison
    const html = reportHtml(report);
    expect(html).toContain('Every defense side by side');
    expect(html).toContain(report.comparison);
    expect(html).toContain(
      `with the easiness test (rows learned far better than their class) at 2%`,
    );
    expect(html).toContain('each image blurred very slightly');
    expect(html).toContain('faint random stripes added to each image');
    expect(html.match(/<tr><th>ABL \(isolation\)<\/th>/g)).toHaveLength(2); // Table 3 and Table 1 rows
    const f = parseNpy('features.npy', new Uint8Array(readFileSync(feats)));
    expect(f.shape).toEqual([600, 16]); // ResNet-8 ×0.25: 64 · 0.25 channels
  }, 300_000);

  it('names a bad --defenses value', () => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'audit', 'demo', '--defenses', 'magic', '--out', 'x'],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--defenses: unknown defense "magic"; known: badloss, spectral/);
  });
});
