import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cifarBytes } from './fixtures.ts';
import { parseCifarBin } from '../../src/core/formats/cifar.ts';
import { IMAGE_BYTES } from '../../src/core/dataset.ts';
import { poisonDataset } from '../../src/core/attacks/plan.ts';
import { auditConfig, storedRunFor } from '../../src/cli/commands.ts';
import { preset } from '../../src/core/experiment.ts';
import type { RunRecord } from '../../src/core/run.ts';

const dir = mkdtempSync(join(tmpdir(), 'badloss-cli-'));
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// 300 training records with labels n % 10, and a 50-record test batch
const trainBytes = cifarBytes(300, (n) => n % 10);
writeFileSync(join(dir, 'data_batch_1.bin'), trainBytes);
writeFileSync(
  join(dir, 'test_batch.bin'),
  cifarBytes(50, (n) => (n * 3) % 10),
);

describe('cli audit --state', () => {
  it('continues the stored run with these settings, and names what differs from another', () => {
    const quick = preset('quick');
    const run = (id: string, config: RunRecord['config'], fingerprint: string) =>
      ({ id, config, prepared: { fingerprint } }) as RunRecord;
    const mine = (r: RunRecord) => r.prepared!.fingerprint === 'f1';
    const older = run('old', quick, 'f1');
    const other = run('elsewhere', { ...quick, retrainMatchSteps: true }, 'f2');
    // the same settings on the same images: continued
    expect(storedRunFor([other, older], quick, mine)).toEqual({ previous: older, differs: [] });
    // a run stored before a retraining option came on: not continued, and the note says why
    expect(storedRunFor([other, older], { ...quick, retrainMatchSteps: true }, mine)).toEqual({
      near: older,
      differs: ['retraining for as many steps as the first model'],
    });
    // other images only: nothing to continue or mention
    expect(storedRunFor([other], quick, mine)).toEqual({ differs: [] });
  });
});

describe('cli audit: the retraining options', () => {
  it('are on by default, and "off" leaves each key out of the stored configuration', () => {
    const on = auditConfig({ attacks: 'patch' });
    expect([on.retrainJitter, on.retrainStripes, on.retrainMatchSteps, on.retrainReweight]).toEqual(
      [true, true, true, true],
    );
    for (const [flag, key] of [
      ['retrain-jitter', 'retrainJitter'],
      ['retrain-stripes', 'retrainStripes'],
      ['retrain-match-steps', 'retrainMatchSteps'],
      ['retrain-reweight', 'retrainReweight'],
    ] as const) {
      const off = auditConfig({ attacks: 'patch', [flag]: 'off' });
      // written only when on, so a run stored before the option existed still matches (--state)
      expect(key in off).toBe(false);
      expect({ ...off, [key]: true }).toEqual(on);
    }
  });
});

describe('cli info', () => {
  it('prints format, classes and per-split label counts as one JSON object', () => {
    const r = cli('info', join(dir, 'data_batch_1.bin'), join(dir, 'test_batch.bin'));
    expect(r.code).toBe(0);
    const info = JSON.parse(r.out);
    expect(info.format).toBe('cifar10');
    expect(info.classes).toHaveLength(10);
    expect(info.splits.train).toEqual({ count: 300, labelCounts: Array(10).fill(30) });
    expect(info.splits.test.count).toBe(50);
  });
  it('exits non-zero with one line naming the file for bad input', () => {
    writeFileSync(join(dir, 'broken.bin'), trainBytes.subarray(0, 3073 * 2 + 10));
    const r = cli('info', join(dir, 'broken.bin'));
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/broken\.bin: .*10 bytes left over/);
    const missing = cli('info', join(dir, 'nope.bin'));
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/nope\.bin: no such file/);
  });
});

describe('cli poison', () => {
  it('writes the poisoned training split in order and a truth file matching the core', () => {
    const out = join(dir, 'poisoned.bin');
    const truth = join(dir, 'truth.json');
    const r = cli(
      'poison',
      join(dir, 'data_batch_1.bin'),
      '--attacks',
      'patch,blend-p',
      '--ratio',
      'patch=0.1',
      '--target',
      'blend-p=2',
      '--seed',
      '7',
      '--out',
      out,
      '--truth',
      truth,
    );
    expect(r.code, r.err).toBe(0);
    const t = JSON.parse(readFileSync(truth, 'utf8'));
    expect(t.seed).toBe(7);
    expect(t.attacks.patch.indices).toHaveLength(30);
    expect(t.attacks['blend-p'].target).toBe(2);
    expect(t.attacks['blend-p'].indices).toHaveLength(3);
    const poisoned = parseCifarBin({ name: 'p', bytes: new Uint8Array(readFileSync(out)) }, 1, 10);
    const orig = parseCifarBin({ name: 'o', bytes: trainBytes }, 1, 10);
    const expected = poisonDataset(
      orig,
      [
        { id: 'patch', ratio: 0.1 },
        { id: 'blend-p', target: 2 },
      ],
      { seed: 7, numClasses: 10 },
    );
    expect(Buffer.from(poisoned.images).equals(Buffer.from(expected.train.images))).toBe(true);
    expect(Array.from(poisoned.labels)).toEqual(Array.from(expected.train.labels));
    const i = t.attacks.patch.indices[0];
    expect(poisoned.labels[i]).toBe(t.attacks.patch.target);
    expect(poisoned.images[i * IMAGE_BYTES + (30 * 32 + 30) * 3]).toBe(255);
  });
  it('rejects unknown attacks, bad ratios, bad targets and too few images, writing nothing', () => {
    const out = join(dir, 'never.bin');
    const base = [join(dir, 'data_batch_1.bin'), '--out', out, '--truth', join(dir, 'never.json')];
    const cases: [string[], RegExp][] = [
      [['--attacks', 'patch,zap'], /unknown attack "zap"/],
      [['--attacks', 'patch', '--ratio', 'patch=0'], /ratio 0 is outside \(0, 1\]/],
      [['--attacks', 'patch', '--ratio', 'patch=2'], /outside \(0, 1\]/],
      [['--attacks', 'patch', '--target', 'patch=10'], /target 10 is outside the class range 0–9/],
      [['--attacks', 'patch', '--ratio', 'patch=0.95'], /only \d+ are eligible/],
      [['--attacks', 'patch', '--bogus', '1'], /Unknown option '--bogus'/],
    ];
    for (const [extra, re] of cases) {
      const r = cli('poison', ...base, ...extra);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(re);
    }
    expect(existsSync(out)).toBe(false);
  });
});

describe('cli detect', () => {
  it('scores JSON trajectories and .npy trajectories identically, null for probes', () => {
    const losses = Array.from({ length: 12 }, (_, i) => [i < 6 ? 0.1 * i : 5 + i, i < 6 ? 0.2 : 4]);
    writeFileSync(join(dir, 't.json'), JSON.stringify({ losses }));
    writeFileSync(
      join(dir, 'p.json'),
      JSON.stringify({ clean: [0, 1, 2], anomalous: [9, 10, 11] }),
    );
    /** `detect` with k = 3 on files in the test's folder. */
    const detectK3 = (trajectories: string, probes: string, out: string) =>
      cli(
        'detect',
        '--trajectories',
        join(dir, trajectories),
        '--probes',
        join(dir, probes),
        '--k',
        '3',
        '--out',
        join(dir, out),
      );
    const r = detectK3('t.json', 'p.json', 's.json');
    expect(r.code, r.err).toBe(0);
    // the clean probes end at 0.2 nats (under ln 2): no underfit warning
    expect(r.err).not.toContain('warning:');
    const s = JSON.parse(readFileSync(join(dir, 's.json'), 'utf8'));
    expect(s.k).toBe(3);
    expect(s.scores[0]).toBeNull();
    expect(s.scores[3]).toBe(0);
    expect(s.scores[7]).toBe(1);
    expect(s.flagged).toEqual([6, 7, 8]);
    // the same matrix as float32 .npy
    const flat = Float32Array.from(losses.flat());
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (12, 2), }";
    const pad = 64 - ((10 + header.length + 1) % 64);
    const h = header + ' '.repeat(pad) + '\n';
    const npy = Buffer.concat([
      Buffer.from([0x93]),
      Buffer.from('NUMPY'),
      Buffer.from([1, 0, h.length & 255, h.length >> 8]),
      Buffer.from(h),
      Buffer.from(flat.buffer),
    ]);
    writeFileSync(join(dir, 't.npy'), npy);
    const r2 = detectK3('t.npy', 'p.json', 's2.json');
    expect(r2.code, r2.err).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 's2.json'), 'utf8'))).toEqual(s);
    // clean probes that end at 4 nats: the model did not fit them, and stderr says so
    writeFileSync(
      join(dir, 'p-unfit.json'),
      JSON.stringify({ clean: [9, 10, 11], anomalous: [0, 1, 2] }),
    );
    const r3 = detectK3('t.json', 'p-unfit.json', 's3.json');
    expect(r3.code, r3.err).toBe(0);
    expect(r3.err).toContain(
      'warning: The probationary model is far from fitting its data: after its last epoch the median clean probe still has a loss of 4.00',
    );
    expect(r3.err).not.toContain('backdoor probes end at'); // a probes file does not say which
    expect(r3.err).toContain('Train the probationary model longer or at a higher learning rate');
  });
  it('rejects malformed inputs clearly', () => {
    writeFileSync(join(dir, 'bad.json'), '{"losses": [[1, 2], [3]]}');
    writeFileSync(join(dir, 'p2.json'), JSON.stringify({ clean: [0], anomalous: [99] }));
    let r = cli(
      'detect',
      '--trajectories',
      join(dir, 'bad.json'),
      '--probes',
      join(dir, 'p2.json'),
      '--out',
      join(dir, 'x.json'),
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/row 1 is not a list of 2 finite numbers/);
    r = cli(
      'detect',
      '--trajectories',
      join(dir, 't.json'),
      '--probes',
      join(dir, 'p2.json'),
      '--out',
      join(dir, 'x.json'),
    );
    expect(r.err).toMatch(/"anomalous" must be a list of row indices in 0–11/);
    r = cli(
      'detect',
      '--trajectories',
      join(dir, 't.json'),
      '--probes',
      join(dir, 'p.json'),
      '--method',
      'magic',
      '--out',
      join(dir, 'x.json'),
    );
    expect(r.err).toMatch(/--method magic is not one of knn, clean-distance, no-probe/);
    const audit = cli('audit', 'demo', '--score', 'magic', '--out', join(dir, 'x.json'));
    expect(audit.code).toBe(2);
    expect(audit.err).toMatch(/--score magic must be one of knn, knn\+distance, knn-or-distance/);
    const features = cli('audit', 'demo', '--features', 'log', '--out', join(dir, 'x.json'));
    expect(features.code).toBe(2);
    expect(features.err).toMatch(/--features log must be one of loss, loss\+log/);
    const detectFeatures = cli(
      'detect',
      '--trajectories',
      'missing.npy',
      '--probes',
      'missing.json',
      '--features',
      'log',
      '--out',
      join(dir, 's.json'),
    );
    expect(detectFeatures.code).toBe(2);
    expect(detectFeatures.err).toMatch(/--features log must be one of loss, loss\+log/);
    const second = cli('audit', 'demo', '--second-round', '0.9', '--out', join(dir, 'x.json'));
    expect(second.code).toBe(2);
    expect(second.err).toMatch(/--second-round 0\.9 is not/);
    const other = cli(
      'audit',
      'demo',
      '--method',
      'clean-distance',
      '--second-round',
      '0.03',
      '--out',
      join(dir, 'x.json'),
    );
    expect(other.code).toBe(2);
    expect(other.err).toMatch(/--second-round needs --method knn/);
    const jitter = cli('audit', 'demo', '--retrain-jitter', 'maybe', '--out', join(dir, 'x.json'));
    expect(jitter.code).toBe(2);
    expect(jitter.err).toMatch(/--retrain-jitter maybe must be on or off/);
    const stripes = cli('audit', 'demo', '--retrain-stripes', '1', '--out', join(dir, 'x.json'));
    expect(stripes.code).toBe(2);
    expect(stripes.err).toMatch(/--retrain-stripes 1 must be on or off/);
    const steps = cli(
      'audit',
      'demo',
      '--retrain-match-steps',
      'yes',
      '--out',
      join(dir, 'x.json'),
    );
    expect(steps.code).toBe(2);
    expect(steps.err).toMatch(/--retrain-match-steps yes must be on or off/);
    const reweight = cli(
      'audit',
      'demo',
      '--retrain-reweight',
      'on!',
      '--out',
      join(dir, 'x.json'),
    );
    expect(reweight.code).toBe(2);
    expect(reweight.err).toMatch(/--retrain-reweight on! must be on or off/);
    const easy = cli('audit', 'demo', '--easiness', '2', '--out', join(dir, 'x.json'));
    expect(easy.code).toBe(2);
    expect(easy.err).toMatch(/--easiness 2 is not a number in \(0, 1\)/);
    const fixed = cli(
      'audit',
      'demo',
      '--threshold',
      '0.1',
      '--easiness',
      '0.02',
      '--out',
      join(dir, 'x.json'),
    );
    expect(fixed.code).toBe(2);
    expect(fixed.err).toMatch(/--easiness needs --method knn with the calibrated threshold/);
    const mirror = cli('audit', 'demo', '--mirror', '1.5', '--out', join(dir, 'x.json'));
    expect(mirror.code).toBe(2);
    expect(mirror.err).toMatch(/--mirror 1.5 is not a number in \(0, 1\)/);
    const mirrorFixed = cli(
      'audit',
      'demo',
      '--method',
      'no-probe',
      '--mirror',
      '0.02',
      '--out',
      join(dir, 'x.json'),
    );
    expect(mirrorFixed.code).toBe(2);
    expect(mirrorFixed.err).toMatch(/--mirror needs --method knn with the calibrated threshold/);
    expect(existsSync(join(dir, 'x.json'))).toBe(false);
  });
});
