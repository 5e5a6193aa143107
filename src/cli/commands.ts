import { readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { labelCounts, type Dataset } from '../core/dataset.ts';
import { describeError, InvalidOptionError } from '../core/errors.ts';
import { loadDatasetFiles } from '../core/formats/load.ts';
import { encodeCifar10 } from '../core/formats/cifar.ts';
import { generateDemoDataset } from '../core/demo.ts';
import { poisonDataset, type AttackRequest } from '../core/attacks/plan.ts';
import { ATTACK_IDS, isAttackId, type AttackId } from '../core/attacks/triggers.ts';
import { detect, DETECT_METHODS, flaggedRows, type DetectMethod } from '../core/detect/index.ts';
import { preset, type RunConfig } from '../core/experiment.ts';
import { MODEL_NAMES, isModelName } from '../ml/resnet.ts';
import { nodeDecoder } from './node-decoder.ts';
import { parseNpy } from '../core/formats/npy.ts';
import { wasmNearest } from '../ml/fast-knn.ts';

const USAGE = `BaDLoss Lab command line

  npm run cli -- info <dataset file>...
  npm run cli -- poison <dataset file>... --attacks <id,...> [--ratio id=r,...] [--target id=c,...]
                 [--strength id=s,...] [--seed n] --out <poisoned.bin> --truth <truth.json>
  npm run cli -- audit <dataset file>... [--attacks <id,...>] [--model ${MODEL_NAMES.join('|')}] [--epochs n]
                 [--probes n] [--method knn|clean-distance|no-probe] [--seed n] --out <report.json>
                 [--width w] [--batch b] [--lr x] [--k n] [--threshold t] [--limit-train n] [--limit-test n]
                 [--separate-baseline] [--trusted train|test] [--eval-each-epoch]
  npm run cli -- detect --trajectories <file.json|file.npy> --probes <probes.json>
                 [--method knn|clean-distance|no-probe] [--k n] [--threshold t] --out <scores.json>

Dataset files: CIFAR-10/100 binary (.bin or cifar-10-binary.tar.gz), GTSRB zips (+ GT-final_test.csv),
an image-folder zip, or the word "demo" for the built-in demo set. Attacks: ${ATTACK_IDS.join(', ')}.`;

/** An error the user can fix: printed as one line, exit code 2. */
class UsageError extends InvalidOptionError {
  override name = 'UsageError';
}

async function loadDataset(paths: string[]): Promise<Dataset> {
  if (paths.length === 0) throw new UsageError('no dataset files given');
  if (paths.length === 1 && paths[0] === 'demo' && !existsSync('demo'))
    return generateDemoDataset({ seed: 0 });
  const files = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new UsageError(`${p}: no such file`);
    files.push({ name: basename(p), bytes: new Uint8Array(await readFile(p)) });
  }
  return loadDatasetFiles(files, {
    decode: nodeDecoder,
    name: paths.map((p) => basename(p)).join(', '),
  });
}

/** Writes a file atomically: to a temporary name, then renamed, so a failure leaves nothing half-written. */
async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

function parseIds(s: string | undefined): AttackId[] {
  if (!s) return [];
  return s.split(',').map((id) => {
    const t = id.trim();
    if (!isAttackId(t))
      throw new UsageError(`unknown attack "${t}"; known: ${ATTACK_IDS.join(', ')}`);
    return t;
  });
}

function parseMap(s: string | undefined, what: string, ids: AttackId[]): Map<AttackId, number> {
  const m = new Map<AttackId, number>();
  if (!s) return m;
  for (const part of s.split(',')) {
    const [id, v] = part.split('=');
    if (!isAttackId(id)) throw new UsageError(`--${what}: unknown attack "${id}"`);
    if (!ids.includes(id)) throw new UsageError(`--${what}: attack "${id}" is not in --attacks`);
    const n = Number(v);
    if (v === undefined || v.trim() === '' || !Number.isFinite(n))
      throw new UsageError(`--${what}: "${part}" is not id=number`);
    m.set(id, n);
  }
  return m;
}

function num(
  v: string | undefined,
  name: string,
  opts: { int?: boolean; min?: number; max?: number } = {},
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (
    !Number.isFinite(n) ||
    (opts.int && !Number.isInteger(n)) ||
    (opts.min !== undefined && n < opts.min) ||
    (opts.max !== undefined && n > opts.max)
  ) {
    throw new UsageError(
      `--${name} ${v} is not ${opts.int ? 'a whole number' : 'a number'}${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}${opts.max !== undefined ? ` and ≤ ${opts.max}` : ''}`,
    );
  }
  return n;
}

function attackRequests(values: Record<string, string | boolean | undefined>): AttackRequest[] {
  const ids = parseIds(values.attacks as string | undefined);
  const ratio = parseMap(values.ratio as string | undefined, 'ratio', ids);
  const target = parseMap(values.target as string | undefined, 'target', ids);
  const strength = parseMap(values.strength as string | undefined, 'strength', ids);
  return ids.map((id) => ({
    id,
    ratio: ratio.get(id),
    target: target.get(id),
    strength: strength.get(id),
  }));
}

async function cmdInfo(files: string[]): Promise<void> {
  const ds = await loadDataset(files);
  const splits: Record<string, { count: number; labelCounts: number[] }> = {};
  for (const [name, s] of Object.entries(ds.splits))
    if (s) splits[name] = { count: s.count, labelCounts: labelCounts(s.labels, ds.classes.length) };
  process.stdout.write(JSON.stringify({ format: ds.format, classes: ds.classes, splits }) + '\n');
}

async function cmdPoison(
  files: string[],
  v: Record<string, string | boolean | undefined>,
): Promise<void> {
  if (!v.out) throw new UsageError('--out <poisoned.bin> is required');
  if (!v.truth) throw new UsageError('--truth <truth.json> is required');
  const requests = attackRequests(v);
  if (requests.length === 0) throw new UsageError('--attacks <id,...> is required');
  const seed = num(v.seed as string | undefined, 'seed', { int: true }) ?? 0;
  const ds = await loadDataset(files);
  const train = ds.splits.train;
  if (!train) throw new UsageError(`${files.join(', ')}: no training split to poison`);
  if (ds.classes.length > 256) throw new UsageError('CIFAR-10 binary output holds labels < 256');
  const res = poisonDataset(train, requests, {
    seed,
    numClasses: ds.classes.length,
    gtsrb: ds.format === 'gtsrb',
  });
  const truth = {
    seed,
    attacks: Object.fromEntries(
      res.attacks.map((a) => [
        a.id,
        {
          target: a.target,
          indices: a.indices,
          params: { ratio: a.ratio, strength: a.strength, ...a.params },
        },
      ]),
    ),
  };
  await writeAtomic(v.out as string, encodeCifar10(res.train));
  await writeAtomic(v.truth as string, JSON.stringify(truth) + '\n');
  process.stderr.write(
    `poisoned ${res.attacks.reduce((s, a) => s + a.indices.length, 0)} of ${train.count} training images → ${v.out}\n`,
  );
}

async function cmdAudit(
  files: string[],
  v: Record<string, string | boolean | undefined>,
): Promise<void> {
  if (!v.out) throw new UsageError('--out <report.json> is required');
  const method = (v.method as string | undefined) ?? 'knn';
  if (!DETECT_METHODS.includes(method as DetectMethod))
    throw new UsageError(`--method ${method} is not one of ${DETECT_METHODS.join(', ')}`);
  const model = (v.model as string | undefined) ?? 'resnet20';
  if (!isModelName(model))
    throw new UsageError(`--model ${model} is not one of ${MODEL_NAMES.join(', ')}`);
  const attacks = attackRequests(v);
  const trusted = (v.trusted as string | undefined) ?? (attacks.length > 0 ? 'train' : 'test');
  if (trusted !== 'train' && trusted !== 'test')
    throw new UsageError(`--trusted ${trusted} must be train or test`);
  const base = preset('quick');
  const cfg: RunConfig = {
    mode: attacks.length > 0 ? 'benchmark' : 'audit',
    attacks,
    probes: {
      n: num(v.probes as string | undefined, 'probes', { int: true, min: 1 }) ?? 250,
      trigger: 'patch',
      trusted: trusted === 'test' ? 'test' : 'train-untouched',
    },
    train: {
      ...base.train,
      model,
      width: num(v.width as string | undefined, 'width', { min: 0.05, max: 8 }) ?? 1,
      epochs: num(v.epochs as string | undefined, 'epochs', { int: true, min: 1, max: 1000 }) ?? 20,
      batchSize:
        num(v.batch as string | undefined, 'batch', { int: true, min: 1, max: 4096 }) ?? 64,
      lr: num(v.lr as string | undefined, 'lr', { min: 1e-6, max: 1 }) ?? 1e-3,
      evalEachEpoch: v['eval-each-epoch'] === true,
    },
    detect: {
      method: method as DetectMethod,
      k: num(v.k as string | undefined, 'k', { int: true, min: 1 }) ?? 'auto',
      threshold: num(v.threshold as string | undefined, 'threshold', { min: 0, max: 1 }),
    },
    separateBaseline: v['separate-baseline'] === true,
    limit: {
      train: num(v['limit-train'] as string | undefined, 'limit-train', { int: true, min: 1 }),
      test: num(v['limit-test'] as string | undefined, 'limit-test', { int: true, min: 1 }),
    },
    seed: num(v.seed as string | undefined, 'seed', { int: true }) ?? 0,
  };
  const ds = await loadDataset(files);
  const { setupNodeTf } = await import('./node-tf.ts');
  const tf = await setupNodeTf();
  const { runPipeline } = await import('../ml/pipeline.ts');
  const started = Date.now();
  let lastLine = 0;
  const res = await runPipeline(tf, ds, cfg, {
    log: (line) =>
      process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${line}\n`),
    progress: (stage, p) => {
      if (Date.now() - lastLine < 2000) return;
      lastLine = Date.now();
      const eta = Number.isFinite(p.etaSeconds) ? `, ETA ${Math.round(p.etaSeconds)} s` : '';
      process.stderr.write(
        `  ${stage} epoch ${p.epoch + 1}/${p.epochs} ${p.phase} ${p.done}/${p.total} (${p.imagesPerSecond.toFixed(0)} img/s${eta})\n`,
      );
    },
  });
  await writeAtomic(v.out as string, JSON.stringify(res.report, null, 2) + '\n');
  const r = res.report;
  process.stderr.write(
    `clean accuracy ${(100 * r.cleanAccuracy.undefended).toFixed(1)}% → ${(100 * r.cleanAccuracy.defended).toFixed(1)}%; average ASR ${(100 * r.averageAsr.undefended).toFixed(1)}% → ${(100 * r.averageAsr.defended).toFixed(1)}%; report → ${v.out}\n`,
  );
}

async function cmdDetect(v: Record<string, string | boolean | undefined>): Promise<void> {
  if (!v.trajectories) throw new UsageError('--trajectories <file.json|file.npy> is required');
  if (!v.probes) throw new UsageError('--probes <probes.json> is required');
  if (!v.out) throw new UsageError('--out <scores.json> is required');
  const method = (v.method as string | undefined) ?? 'knn';
  if (!DETECT_METHODS.includes(method as DetectMethod))
    throw new UsageError(`--method ${method} is not one of ${DETECT_METHODS.join(', ')}`);
  const tPath = v.trajectories as string;
  if (!existsSync(tPath)) throw new UsageError(`${tPath}: no such file`);
  const raw = new Uint8Array(await readFile(tPath));
  let n: number;
  let epochs: number;
  let losses: Float32Array;
  if (tPath.toLowerCase().endsWith('.npy')) {
    const arr = parseNpy(basename(tPath), raw);
    [n, epochs] = arr.shape;
    losses = arr.data;
  } else {
    const json = parseJson(tPath, raw) as { losses?: unknown };
    if (!Array.isArray(json.losses) || json.losses.length === 0)
      throw new UsageError(`${tPath}: expected {"losses": number[][]} with at least one row`);
    const rows = json.losses as unknown[];
    n = rows.length;
    epochs = Array.isArray(rows[0]) ? rows[0].length : 0;
    losses = new Float32Array(n * epochs);
    rows.forEach((row, i) => {
      if (
        !Array.isArray(row) ||
        row.length !== epochs ||
        row.some((x) => typeof x !== 'number' || !Number.isFinite(x))
      ) {
        throw new UsageError(`${tPath}: row ${i} is not a list of ${epochs} finite numbers`);
      }
      losses.set(row as number[], i * epochs);
    });
  }
  if (epochs < 1) throw new UsageError(`${tPath}: trajectories have no epochs`);
  const pPath = v.probes as string;
  if (!existsSync(pPath)) throw new UsageError(`${pPath}: no such file`);
  const probes = parseJson(pPath, new Uint8Array(await readFile(pPath))) as {
    clean?: unknown;
    anomalous?: unknown;
  };
  const rowsOf = (x: unknown, key: string): number[] => {
    if (x === undefined) return [];
    if (!Array.isArray(x) || x.some((r) => !Number.isInteger(r) || r < 0 || r >= n))
      throw new UsageError(`${pPath}: "${key}" must be a list of row indices in 0–${n - 1}`);
    return x as number[];
  };
  const rows = {
    clean: rowsOf(probes.clean, 'clean'),
    anomalous: rowsOf(probes.anomalous, 'anomalous'),
  };
  const det = detect(
    { n, epochs, losses },
    rows,
    {
      method: method as DetectMethod,
      k: num(v.k as string | undefined, 'k', { int: true, min: 1 }) ?? 'auto',
      threshold: num(v.threshold as string | undefined, 'threshold', { min: 0, max: 1 }),
    },
    wasmNearest,
  );
  const scores = Array.from(det.scores, (s) => (Number.isNaN(s) ? null : s));
  const out = {
    k: det.k ?? null,
    method: det.method,
    threshold: det.threshold,
    scores,
    flagged: flaggedRows(det.scores, det.threshold),
  };
  await writeAtomic(v.out as string, JSON.stringify(out) + '\n');
  process.stderr.write(
    `flagged ${out.flagged.length} of ${n - rows.clean.length - rows.anomalous.length} rows${det.k ? ` (k = ${det.k})` : ''} → ${v.out}\n`,
  );
}

function parseJson(path: string, bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new UsageError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** Runs one CLI command; returns the process exit code (0 ok, 2 bad input, 1 other failure). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === 'help') {
    process.stdout.write(USAGE + '\n');
    return command ? 0 : 2;
  }
  const options = {
    attacks: { type: 'string' },
    ratio: { type: 'string' },
    target: { type: 'string' },
    strength: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    truth: { type: 'string' },
    model: { type: 'string' },
    epochs: { type: 'string' },
    probes: { type: 'string' },
    method: { type: 'string' },
    width: { type: 'string' },
    batch: { type: 'string' },
    lr: { type: 'string' },
    k: { type: 'string' },
    threshold: { type: 'string' },
    trajectories: { type: 'string' },
    trusted: { type: 'string' },
    'limit-train': { type: 'string' },
    'limit-test': { type: 'string' },
    'separate-baseline': { type: 'boolean' },
    'eval-each-epoch': { type: 'boolean' },
  } as const;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError(`${(e as Error).message.split('\n')[0]} (see npm run cli -- help)`);
    }
    const { values, positionals } = parsed;
    switch (command) {
      case 'info':
        await cmdInfo(positionals);
        break;
      case 'poison':
        await cmdPoison(positionals, values);
        break;
      case 'audit':
        await cmdAudit(positionals, values);
        break;
      case 'detect':
        if (positionals.length > 0)
          throw new UsageError(
            `detect takes no positional arguments (got ${positionals.join(' ')})`,
          );
        await cmdDetect(values);
        break;
      default:
        throw new UsageError(`unknown command "${command}"; commands: info, poison, audit, detect`);
    }
    return 0;
  } catch (e) {
    const { name, message } = describeError(e);
    process.stderr.write(
      `error: ${name === 'Error' || name === 'UsageError' ? '' : `${name}: `}${message}\n`,
    );
    return name === 'UsageError' || name === 'InvalidOptionError' || name === 'DatasetFormatError'
      ? 2
      : 1;
  }
}
