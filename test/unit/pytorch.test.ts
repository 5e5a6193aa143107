import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/commands.ts';
import { parseNpy } from '../../src/core/formats/npy.ts';
import { parseCifarBin } from '../../src/core/formats/cifar.ts';
import { splitFingerprint } from '../../src/core/dataset.ts';
import { generateDemoDataset } from '../../src/core/demo.ts';
import {
  DEFAULT_PROBE_TRIGGER,
  prepareExperiment,
  preset,
  type RunConfig,
} from '../../src/core/experiment.ts';
import type { TruthFile } from '../../src/core/truth.ts';

// The whole path of integrations/pytorch: poison (probes in place) → a 2-process gloo DDP run
// under torchrun → detect / report here. Debian's python3-torch (1.13, CPU) and python3-numpy.
const PY = '/usr/bin/python3';
const TRAINER = 'integrations/pytorch/train_cifar.py';
const dir = mkdtempSync(join(tmpdir(), 'badloss-pytorch-'));
const ROWS = 301; // odd: with 2 processes the second evaluation shard is one row short
const EPOCHS = 2;
const train = join(dir, 'train.bin');
const truthPath = join(dir, 'truth.json');
const runDir = join(dir, 'run');
const ATTACKS = ['--attacks', 'patch,blend-r', '--ratio', 'patch=0.05,blend-r=0.05'];
const PREP = [...ATTACKS, '--probes', '20', '--limit-train', String(ROWS)];

/** Runs a CLI command in-process; returns its exit code and what it wrote to stderr. */
async function cli(...args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    return true;
  });
  try {
    return { code: await main(args), err };
  } finally {
    spy.mockRestore();
  }
}

function python(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(PY, args, {
    encoding: 'utf8',
    timeout: 150_000, // a hung collective fails the test instead of blocking it
    // a teardown that hangs (pytorch#75097) costs 20 s here, not the recorder's default 60
    env: {
      ...process.env,
      OMP_NUM_THREADS: '1',
      PYTHONDONTWRITEBYTECODE: '1',
      BADLOSS_TEARDOWN_TIMEOUT_S: '20',
      ...env,
    },
  });
  return { code: r.status, out: r.stdout, err: r.stderr + (r.error ? String(r.error) : '') };
}

/**
 * torchrun with 2 CPU processes. `--redirects 2 --tee 2`: torchrun of PyTorch 1.13 on Python 3.11
 * (Debian 12) crashes on its default `--redirects 0` (Std.from_str("0") → None); these values only
 * keep stderr on the console as well as in torchrun's log directory. `--monitor_interval 1`:
 * the agent notices finished workers after 1 s instead of its default 5.
 */
function torchrun(out: string, extra: string[] = [], env: Record<string, string> = {}) {
  return python(
    [
      '-m',
      'torch.distributed.run',
      '--standalone',
      '--nproc_per_node',
      '2',
      '--redirects',
      '2',
      '--tee',
      '2',
      '--monitor_interval',
      '1',
      TRAINER,
      train,
      '--out',
      out,
      '--epochs',
      String(EPOCHS),
      '--model',
      'resnet8',
      '--width',
      '0.25',
      '--batch',
      '32',
      '--record-counts',
      ...extra,
    ],
    env,
  );
}

/** A C-ordered '<i4' .npy (the recorder's counts.npy). */
function parseInt32Npy(b: Uint8Array): { shape: number[]; data: Int32Array } {
  const hlen = b[8] | (b[9] << 8);
  const header = new TextDecoder().decode(b.subarray(10, 10 + hlen));
  expect(header).toMatch(/'descr': '<i4'/);
  const shape = /'shape': \(([^)]*)\)/
    .exec(header)![1]
    .split(',')
    .filter((s) => s.trim())
    .map(Number);
  const data = new Int32Array(b.slice(10 + hlen).buffer);
  return { shape, data };
}

function writeNpy(path: string, shape: number[], values: Float32Array): void {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const h0 = `{'descr': '<f4', 'fortran_order': False, 'shape': ${dims}, }`;
  const h = h0 + ' '.repeat(63 - ((10 + h0.length) % 64)) + '\n';
  const head = Buffer.from([
    0x93,
    0x4e,
    0x55,
    0x4d,
    0x50,
    0x59,
    1,
    0,
    h.length & 255,
    h.length >> 8,
  ]);
  writeFileSync(path, Buffer.concat([head, Buffer.from(h), Buffer.from(values.buffer)]));
}

const readNpy = (p: string) => parseNpy(p, new Uint8Array(readFileSync(p)));
const readTruth = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as TruthFile;

let fullRun: ReturnType<typeof torchrun>;

beforeAll(async () => {
  const r = await cli(
    'poison',
    'demo',
    ...PREP,
    '--seed',
    '1',
    '--out',
    train,
    '--truth',
    truthPath,
  );
  expect(r.code, r.err).toBe(0);
  fullRun = torchrun(runDir);
}, 200_000);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('poison with probes', () => {
  it('writes exactly the rows an audit run trains on, and a truth file detect --probes reads', async () => {
    const t = readTruth(truthPath);
    const written = parseCifarBin(
      { name: 'train.bin', bytes: new Uint8Array(readFileSync(train)) },
      1,
      10,
    );
    const cfg: RunConfig = {
      ...preset('quick'),
      attacks: [
        { id: 'patch', ratio: 0.05 },
        { id: 'blend-r', ratio: 0.05 },
      ],
      // poison's default probes are the default detection's (the bank), as audit's are
      probes: { n: 20, trigger: DEFAULT_PROBE_TRIGGER, trusted: 'train-untouched' },
      limit: { train: ROWS },
      seed: 1,
    };
    const prep = prepareExperiment(generateDemoDataset({ seed: 0 }), cfg);
    expect(written.count).toBe(ROWS);
    expect(Buffer.from(written.images).equals(Buffer.from(prep.train.images))).toBe(true);
    expect(Array.from(written.labels)).toEqual(Array.from(prep.train.labels));
    expect(t.count).toBe(ROWS);
    expect(t.fingerprint).toBe(await splitFingerprint(prep.train));
    expect(t.classes).toEqual(generateDemoDataset({ seed: 0, train: 10, test: 10 }).classes);
    expect(t.probes.clean).toEqual(prep.probes.indices.clean);
    expect(t.probes.anomalous).toEqual(
      [...prep.probes.indices.backdoor, ...prep.probes.indices.mislabeled].sort((a, b) => a - b),
    );
    expect(t.rows).toEqual(Array.from(prep.truth, (k) => (k >= 0 ? prep.attacks[k].id : null)));
    expect(t.rows.filter((r) => r === 'patch')).toHaveLength(t.attacks.patch.indices.length);
    expect(t.labels).toEqual(Array.from(prep.train.labels));
    expect(t.config.probes?.backdoorLabel).toBe(prep.probes.backdoorLabel);
    expect(t.seed).toBe(1);
  });
  it('makes an audit set from the test split without attacks; --probes 0 without attacks is refused', async () => {
    const p = join(dir, 'audit.json');
    const r = await cli(
      'poison',
      'demo',
      '--probes',
      '10',
      '--limit-train',
      '100',
      '--out',
      join(dir, 'audit.bin'),
      '--truth',
      p,
    );
    expect(r.code, r.err).toBe(0);
    const t = readTruth(p);
    expect(t.count).toBe(130); // 100 training rows + 3 × 10 trusted test images appended
    expect(t.config.mode).toBe('audit');
    expect(t.rows.every((x) => x === null)).toBe(true);
    expect(Math.min(...t.probes.clean, ...t.probes.anomalous)).toBe(100);
    const none = await cli(
      'poison',
      'demo',
      '--probes',
      '0',
      '--out',
      join(dir, 'x.bin'),
      '--truth',
      join(dir, 'x.json'),
    );
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/--attacks <id,...> is required/);
  });
});

describe('PyTorch recorder under torchrun (2 processes, gloo)', () => {
  it('records every row exactly once per epoch as N × E float32', () => {
    expect(fullRun.code, fullRun.err).toBe(0);
    const t = readNpy(join(runDir, 'trajectories.npy'));
    expect(t.shape).toEqual([ROWS, EPOCHS]);
    expect(t.data.every((x) => Number.isFinite(x) && x >= 0 && x <= 100)).toBe(true);
    const counts = parseInt32Npy(new Uint8Array(readFileSync(join(runDir, 'counts.npy'))));
    expect(counts.shape).toEqual([ROWS, EPOCHS]);
    expect(counts.data.every((c) => c === 1)).toBe(true);
    const meta = JSON.parse(readFileSync(join(runDir, 'trajectories.meta.json'), 'utf8'));
    expect(meta).toMatchObject({ rows: ROWS, epochs: EPOCHS, complete: true, worldSize: 2 });
    expect(meta.fingerprint).toBe(readTruth(truthPath).fingerprint); // Python's fingerprint = ours
  });
  it("a row's recorded loss equals a direct evaluation-mode forward pass of the saved model", () => {
    // rows 0 and 300 were evaluated by rank 0, rows 1 and 299 by rank 1
    const rows = [0, 1, 150, 299, 300];
    const r = python([TRAINER, train, '--out', runDir, '--check-rows', rows.join(',')]);
    expect(r.code, r.err).toBe(0);
    const direct = JSON.parse(r.out) as Record<string, number>;
    const t = readNpy(join(runDir, 'trajectories.npy'));
    for (const row of rows)
      expect(Math.abs(t.data[row * EPOCHS + EPOCHS - 1] - direct[row])).toBeLessThan(1e-4);
  });
  it('a run stopped after epoch 1 resumes to the same file, bit for bit', async () => {
    const out = join(dir, 'resumed');
    const stopped = torchrun(out, [], { BADLOSS_STOP_AFTER_EPOCH: '1' });
    expect(stopped.code).not.toBe(0);
    expect(stopped.err).toMatch(/stopping after epoch 1/);
    const partial = readNpy(join(out, 'trajectories.npy'));
    const full = readNpy(join(runDir, 'trajectories.npy'));
    expect(partial.shape).toEqual([ROWS, 1]);
    expect(Array.from(partial.data)).toEqual(
      Array.from(full.data.filter((_, i) => i % EPOCHS === 0)),
    );
    // the partial file is usable; detect says it is unfinished
    const early = await cli(
      'detect',
      '--trajectories',
      join(out, 'trajectories.npy'),
      '--truth',
      truthPath,
      '--k',
      '5',
      '--out',
      join(out, 'early.json'),
    );
    expect(early.code, early.err).toBe(0);
    expect(early.err).toMatch(/says the run is unfinished \(1 of 2 epochs recorded\)/);
    const resumed = torchrun(out);
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.err).toMatch(/epochs 2–2/);
    expect(
      readFileSync(join(out, 'trajectories.npy')).equals(
        readFileSync(join(runDir, 'trajectories.npy')),
      ),
    ).toBe(true);
    // the checkpoint belongs to 2 processes: one process must not continue it
    const single = python([
      TRAINER,
      train,
      '--out',
      out,
      '--epochs',
      String(EPOCHS),
      '--model',
      'resnet8',
      '--width',
      '0.25',
      '--batch',
      '32',
    ]);
    expect(single.code).not.toBe(0);
    expect(single.err).toMatch(/RecorderError: .*written by 2 processes, this run has 1/);
  });
  it("drops the rows torch's DistributedSampler repeats to even out shards", () => {
    const out = join(dir, 'distributed');
    const r = torchrun(out, ['--eval-sampler', 'distributed']);
    expect(r.code, r.err).toBe(0);
    const counts = parseInt32Npy(new Uint8Array(readFileSync(join(out, 'counts.npy'))));
    // 301 rows over 2 ranks: 151 each, so one row (the first) is evaluated twice per epoch
    expect(counts.data.filter((c) => c === 2)).toHaveLength(EPOCHS);
    expect(counts.data.every((c) => c === 1 || c === 2)).toBe(true);
    const a = readNpy(join(out, 'trajectories.npy')).data;
    const b = readNpy(join(runDir, 'trajectories.npy')).data;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-5);
  });
  it('passes its Python unit tests', () => {
    const r = python(['-m', 'unittest', '-q', 'integrations/pytorch/test_recorder.py']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/Ran 11 tests/);
  });
  it('refuses a file that is not CIFAR-10 binary', () => {
    const bad = join(dir, 'bad.bin');
    writeFileSync(bad, readFileSync(train).subarray(0, 3073 * 2 + 5));
    const r = python([TRAINER, bad, '--out', join(dir, 'never')]);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(
      /bad\.bin: 6151 bytes is not a whole number of 3073-byte CIFAR-10 records/,
    );
  });
});

describe('detect and report from recorded files', () => {
  const traj = () => join(runDir, 'trajectories.npy');
  it('detect --truth adds per-attack AUROC (checked against pairwise counting) and removals', async () => {
    const out = join(dir, 'scores.json');
    const r = await cli(
      'detect',
      '--trajectories',
      traj(),
      '--truth',
      truthPath,
      '--k',
      '5',
      '--out',
      out,
    );
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/AUROC patch \d\.\d{3}, blend-r \d\.\d{3}, all/);
    const s = JSON.parse(readFileSync(out, 'utf8'));
    const t = readTruth(truthPath);
    // the underfit warning iff the clean probes' median last loss is above ln 2 (computed here)
    const { shape, data } = readNpy(traj());
    const last = t.probes.clean.map((i) => data[i * shape[1] + shape[1] - 1]).sort((a, b) => a - b);
    const h = last.length >> 1;
    const median = last.length % 2 ? last[h] : (last[h - 1] + last[h]) / 2;
    expect(r.err.includes('warning: The probationary model is far from fitting its data')).toBe(
      median > Math.LN2,
    );
    const probes = new Set([...t.probes.clean, ...t.probes.anomalous]);
    const judged = t.rows.map((_, i) => i).filter((i) => !probes.has(i));
    // oracle: AUROC = P(score of a poison > score of a clean row), ties half
    const pairwise = (isPos: (i: number) => boolean) => {
      const pos = judged.filter(isPos);
      const neg = judged.filter((i) => t.rows[i] === null);
      let w = 0;
      for (const p of pos)
        for (const q of neg)
          w += s.scores[p] > s.scores[q] ? 1 : s.scores[p] === s.scores[q] ? 0.5 : 0;
      return w / (pos.length * neg.length);
    };
    expect(s.evaluation.auroc.patch).toBeCloseTo(
      pairwise((i) => t.rows[i] === 'patch'),
      10,
    );
    expect(s.evaluation.auroc['blend-r']).toBeCloseTo(
      pairwise((i) => t.rows[i] === 'blend-r'),
      10,
    );
    expect(s.evaluation.auroc.all).toBeCloseTo(
      pairwise((i) => t.rows[i] !== null),
      10,
    );
    const flagged = new Set<number>(s.flagged);
    const removedOf = (pred: (i: number) => boolean) =>
      judged.filter((i) => pred(i) && flagged.has(i)).length;
    expect(s.evaluation.removed.patch).toBe(removedOf((i) => t.rows[i] === 'patch'));
    expect(s.evaluation.removed.clean).toBe(removedOf((i) => t.rows[i] === null));
    expect(s.evaluation.removedFraction.patch).toBeCloseTo(
      s.evaluation.removed.patch / t.attacks.patch.indices.length,
      12,
    );
    expect(
      s.evaluation.perClass
        .map((c: { total: number }) => c.total)
        .reduce((a: number, b: number) => a + b),
    ).toBe(judged.length);
    expect(s.evaluation.perClass[0].class).toBe(t.classes[0]);
    // the truth file also serves as a probes file: same scores, no evaluation without --truth
    const viaProbes = join(dir, 'scores-probes.json');
    const p = await cli(
      'detect',
      '--trajectories',
      traj(),
      '--probes',
      truthPath,
      '--k',
      '5',
      '--out',
      viaProbes,
    );
    expect(p.code, p.err).toBe(0);
    const sp = JSON.parse(readFileSync(viaProbes, 'utf8'));
    expect(sp.scores).toEqual(s.scores);
    expect(sp.evaluation).toBeUndefined();
  });
  it('report writes a self-contained detection-only HTML page with thumbnails', async () => {
    const out = join(dir, 'report.html');
    const r = await cli(
      'report',
      '--trajectories',
      traj(),
      '--truth',
      truthPath,
      '--dataset',
      train,
      '--k',
      '5',
      '--out',
      out,
    );
    expect(r.code, r.err).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html).toMatch(/Detection only: the model was trained outside BaDLoss Lab/);
    expect(html).toMatch(/no clean accuracy and no attack success rate/);
    expect(html.match(/<img src="data:image\/png;base64,/g)).toHaveLength(48);
    const text = html.replace(/data:image\/png;base64,[A-Za-z0-9+/=]+/g, '');
    expect(/<script|https?:\/\/|NaN|undefined/.test(text)).toBe(false);
    const plain = join(dir, 'plain.html');
    expect(
      (
        await cli(
          'report',
          '--trajectories',
          traj(),
          '--truth',
          truthPath,
          '--k',
          '5',
          '--out',
          plain,
        )
      ).code,
    ).toBe(0);
    expect(readFileSync(plain, 'utf8')).toMatch(
      /pass <code>--dataset &lt;train.bin&gt;<\/code> to show thumbnails/,
    );
  });
  it('names bad inputs: wrong shape, NaNs, a truth file of another dataset, mismatched rows', async () => {
    const full = readNpy(traj());
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    const detect = (t: string, ...more: string[]) =>
      cli(
        'detect',
        '--trajectories',
        t,
        '--truth',
        truthPath,
        ...more,
        '--out',
        join(bad, 'never.json'),
      );
    // wrong shape: a vector
    writeNpy(join(bad, 'vector.npy'), [ROWS], full.data.slice(0, ROWS));
    let r = await detect(join(bad, 'vector.npy'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/vector\.npy: shape \(301,\) is not a 2-D \(N, E\) array/);
    // mismatched rows: one row short
    writeNpy(join(bad, 'short.npy'), [ROWS - 1, EPOCHS], full.data.slice(0, (ROWS - 1) * EPOCHS));
    r = await detect(join(bad, 'short.npy'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /short\.npy has 300 rows but .*truth\.json describes 301: they belong to different training sets/,
    );
    // NaN
    const nan = full.data.slice();
    nan[5 * EPOCHS + 1] = NaN;
    writeNpy(join(bad, 'nan.npy'), [ROWS, EPOCHS], nan);
    r = await detect(join(bad, 'nan.npy'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/nan\.npy: row 5, epoch 1 is NaN; every loss must be a finite number/);
    // a truth file (and training set) of another dataset with the same number of rows
    const other = join(dir, 'other.bin');
    const otherTruth = join(dir, 'other.json');
    expect(
      (await cli('poison', 'demo', ...PREP, '--seed', '2', '--out', other, '--truth', otherTruth))
        .code,
    ).toBe(0);
    r = await cli(
      'detect',
      '--trajectories',
      traj(),
      '--truth',
      otherTruth,
      '--out',
      join(bad, 'never.json'),
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /was recorded on a training set with fingerprint [0-9a-f]{16}…, but .*other\.json is for/,
    );
    copyFileSync(traj(), join(bad, 'no-meta.npy')); // without the recorder's meta file: --dataset catches it
    r = await cli(
      'report',
      '--trajectories',
      join(bad, 'no-meta.npy'),
      '--truth',
      truthPath,
      '--dataset',
      other,
      '--out',
      join(bad, 'never.html'),
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /other\.bin is not the training set .*truth\.json was written for \(fingerprints differ\)/,
    );
    // a damaged truth file
    const broken = { ...readTruth(truthPath), rows: [] };
    writeFileSync(join(bad, 'broken.json'), JSON.stringify(broken));
    r = await cli(
      'detect',
      '--trajectories',
      traj(),
      '--truth',
      join(bad, 'broken.json'),
      '--out',
      join(bad, 'never.json'),
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /broken\.json: "rows" must list an attack id or null for each of the 301 rows/,
    );
    expect(() => readFileSync(join(bad, 'never.json'))).toThrow();
  });
});
