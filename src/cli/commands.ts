import { readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import {
  IMAGE_BYTES,
  IMAGE_SIZE,
  labelCounts,
  splitFingerprint,
  type Dataset,
  type ImageSplit,
} from '../core/dataset.ts';
import { CancelledError, describeError, InvalidOptionError } from '../core/errors.ts';
import { describeLimit, validateRunConfig, withinLimit, type LimitName } from '../core/config.ts';
import { configChange, MemoryRunStore, type RunRecord } from '../core/run.ts';
import { progressWords } from '../core/progress.ts';
import { loadDatasetFiles } from '../core/formats/load.ts';
import { encodeCifar10, parseCifarBin } from '../core/formats/cifar.ts';
import { generateDemoDataset } from '../core/demo.ts';
import { poisonDataset, type AttackRequest } from '../core/attacks/plan.ts';
import { ATTACK_IDS, isAttackId, type AttackId } from '../core/attacks/triggers.ts';
import {
  detect,
  DETECT_METHODS,
  flaggedRows,
  KNN_SCORES,
  TRAJECTORY_FEATURES,
  type DetectMethod,
  type KnnScore,
  type TrajectoryFeatures,
  type Detection,
  type DetectOptions,
} from '../core/detect/index.ts';
import type { ProbeRows, Trajectories } from '../core/detect/knn.ts';
import { probeFit } from '../core/detect/fit.ts';
import { caveatLine, detectionCaveats } from '../core/verdict.ts';
import {
  buildDetectionReport,
  detectionReportHtml,
  summarizeDetection,
  type DetectionSummary,
} from '../core/report.ts';
import { encode as encodePng } from 'fast-png';
import {
  DEFAULT_DETECT,
  DEFAULT_PROBE_TRIGGER,
  prepareExperiment,
  preset,
  type RunConfig,
} from '../core/experiment.ts';
import { PROBE_BANKS, PROBE_CLEAN, type ProbeTrigger } from '../core/probes.ts';
import { buildTruthFile, readTruthFile, type TruthArrays, type TruthFile } from '../core/truth.ts';
import { MODEL_NAMES, isModelName } from '../ml/resnet.ts';
import { nodeDecoder } from './node-decoder.ts';
import { encodeNpy, parseNpy } from '../core/formats/npy.ts';
import { parseDefenseList } from '../core/defenses/index.ts';
import type { BaselineName } from '../core/run.ts';
import { wasmNearest } from '../ml/fast-knn.ts';

const USAGE = `BaDLoss Lab command line

  npm run cli -- info <dataset file>...
  npm run cli -- poison <dataset file>... [--attacks <id,...>] [--ratio id=r,...] [--target id=c,...]
                 [--strength id=s,...] [--probes n] [--probe-trigger bank|<id,...>] [--trusted train|test]
                 [--limit-train n] [--seed n] --out <train.bin> --truth <truth.json>
  npm run cli -- audit <dataset file>... [--attacks <id,...>] [--model ${MODEL_NAMES.join('|')}] [--epochs n]
                 [--probes n] [--method knn|clean-distance|no-probe] [--seed n] --out <report.json>
                 [--width w] [--batch b] [--lr x] [--k n] [--threshold auto|t] [--limit-train n] [--limit-test n]
                 [--probe-trigger bank|<id,...>] [--target-fpr a] [--calibration class|pooled]
                 [--score ${KNN_SCORES.join('|')}] [--features ${TRAJECTORY_FEATURES.join('|')}]
                 [--max-class-fraction f] [--easiness a|off] [--mirror a|off] [--second-round a|off]
                 [--retrain-jitter on|off] [--retrain-stripes on|off] [--retrain-match-steps on|off]
                 [--retrain-reweight on|off]
                 [--separate-baseline] [--trusted train|test]
                 [--eval-each-epoch] [--state <dir>]
                 [--engine auto|wasm|tfjs-cpu] [--threads n]
                 [--defenses badloss,spectral,activation-clustering,frequency,abl|all]
                 [--retrain-defenses] [--save-features <features.npy>]
  npm run cli -- detect --trajectories <file.json|file.npy> (--probes <probes.json> | --truth <truth.json>)
                 [--dataset <train.bin>] [--method knn|clean-distance|no-probe] [--k n] [--threshold t]
                 [--features ${TRAJECTORY_FEATURES.join('|')}] --out <scores.json>
  npm run cli -- report --trajectories <file.npy> --truth <truth.json> [--dataset <train.bin>]
                 [--method knn|clean-distance|no-probe] [--k n] [--threshold t]
                 [--features ${TRAJECTORY_FEATURES.join('|')}] --out <report.html>

poison --probes n writes the training set with attacks and probes in place (rows in training order)
and a truth file whose "probes" member is what detect --probes reads; record trajectories on it
anywhere (integrations/pytorch/), then detect or report here.
Dataset files: CIFAR-10/100 binary (.bin or cifar-10-binary.tar.gz), GTSRB zips (+ GT-final_test.csv),
an image-folder zip, or the word "demo" for the built-in demo set. Attacks: ${ATTACK_IDS.join(', ')}.
Detection defaults (docs/detection.md): backdoor probes from the bank (${PROBE_BANKS.bank.join(', ')}),
k-NN with k by leave-one-out and the clean distance breaking its ties (--score ${DEFAULT_DETECT.score}), and a
threshold calibrated per class on the clean probes for a clean-removal budget of --target-fpr
(${DEFAULT_DETECT.targetFpr}), united with the easiness test (--easiness ${DEFAULT_DETECT.easiness}, its budget: rows learned far
better than the rest of their class) and the mirror test (--mirror ${DEFAULT_DETECT.mirror}: rows whose loss jumps far more
than their class's when the image is mirrored left–right, as a trigger at fixed pixels makes it); then a second round (--second-round ${DEFAULT_DETECT.secondRound}, its budget): a second
probationary model trained on the rows the first round kept is scored again by the k-NN alone, and retraining drops
both rounds' rows.
Retraining resamples each image at a random sub-pixel offset (--retrain-jitter on), so a trigger that is itself a
resampling (the warping) is not learned from the poisons detection missed, and adds faint random stripes to each
image (--retrain-stripes on), so a stripe-pattern trigger (the sinusoid) is not either; the stripes cost about
1.5 points of clean accuracy on CIFAR-10 (docs/detection.md). It trains for more epochs to make up for the rows
removed (--retrain-match-steps on), about as many optimizer steps as the first model took: on CIFAR-10 that gave
back 1.9 points of clean accuracy on average and left the attacks where they were. It weights each row's loss by
its class's share of the test split over its share of the rows kept (--retrain-reweight on), so a class that a
dirty-label attack filled with its relabeled poisons does not draw predictions to it (no test split: not
reweighted); on CIFAR-10 that took the warping from 16-29% to 2.5-7.8% after retraining. With --state, a run
stored with other options is not continued (a note names what differs): pass the options it was stored with.
--score knn-or-distance also removes rows far from every clean probe; --features loss+log compares the
losses' logarithms too. The paper's method: --probe-trigger patch --threshold 0.1 --score knn --second-round off --retrain-jitter off --retrain-stripes off --retrain-match-steps off
--retrain-reweight off (a fixed threshold turns the easiness and mirror tests off). Any list of attack ids is a probe trigger too.
Training runs on the WebAssembly engine (--threads, default: every core) or on tfjs's CPU backend
(--engine tfjs-cpu); both give the same results up to float rounding.`;

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

/** A numeric flag, checked against the same limits as the run configuration (core's LIMITS). */
function num(v: string | undefined, flag: string, limit: LimitName): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !withinLimit(limit, n))
    throw new UsageError(`--${flag} ${v} is not ${describeLimit(limit)}`);
  return n;
}

/** An on/off flag: "on" or "off", `fallback` when unset. */
function onOff(v: string | undefined, flag: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (v !== 'on' && v !== 'off') throw new UsageError(`--${flag} ${v} must be on or off`);
  return v === 'on';
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
  if (!v.out) throw new UsageError('--out <train.bin> is required');
  if (!v.truth) throw new UsageError('--truth <truth.json> is required');
  const requests = attackRequests(v);
  const probesN =
    v.probes === '0' ? 0 : (num(v.probes as string | undefined, 'probes', 'probes') ?? 0);
  if (requests.length === 0 && probesN === 0)
    throw new UsageError('--attacks <id,...> is required (or --probes n for an audit set)');
  const seed = num(v.seed as string | undefined, 'seed', 'seed') ?? 0;
  const limitTrain = num(v['limit-train'] as string | undefined, 'limit-train', 'limit');
  if (probesN === 0 && (v['probe-trigger'] !== undefined || v.trusted !== undefined))
    throw new UsageError('--probe-trigger and --trusted need --probes n (n ≥ 1)');
  if (probesN === 0 && limitTrain !== undefined)
    throw new UsageError('--limit-train needs --probes n (n ≥ 1)');
  const ds = await loadDataset(files);
  const train = ds.splits.train;
  if (!train) throw new UsageError(`${files.join(', ')}: no training split to poison`);
  if (ds.classes.length > 256) throw new UsageError('CIFAR-10 binary output holds labels < 256');
  let truthFile: TruthFile;
  let out: ImageSplit;
  if (probesN === 0) {
    // Attacks only, on the whole training split (the behaviour before probes existed).
    const res = poisonDataset(train, requests, {
      seed,
      numClasses: ds.classes.length,
      gtsrb: ds.format === 'gtsrb',
    });
    out = res.train;
    truthFile = buildTruthFile({
      dataset: ds.name,
      classes: ds.classes,
      train: res.train,
      fingerprint: await splitFingerprint(res.train),
      seed,
      truth: res.truth,
      attacks: res.attacks,
      requests,
      mode: 'benchmark',
    });
  } else {
    const trigger = probeTriggerOption(v['probe-trigger'] as string | undefined);
    const trusted = (v.trusted as string | undefined) ?? (requests.length > 0 ? 'train' : 'test');
    if (trusted !== 'train' && trusted !== 'test')
      throw new UsageError(`--trusted ${trusted} must be train or test`);
    const base = preset('quick');
    // Exactly the rows an audit run would train on: the same preparation, only no training here.
    const cfg: RunConfig = {
      ...base,
      mode: requests.length > 0 ? 'benchmark' : 'audit',
      attacks: requests,
      probes: { n: probesN, trigger, trusted: trusted === 'test' ? 'test' : 'train-untouched' },
      limit: limitTrain ? { train: limitTrain } : undefined,
      seed,
    };
    const prep = prepareExperiment(ds, cfg);
    out = prep.train;
    truthFile = buildTruthFile({
      dataset: ds.name,
      classes: ds.classes,
      train: prep.train,
      fingerprint: await splitFingerprint(prep.train),
      seed,
      truth: prep.truth,
      attacks: prep.attacks,
      requests,
      mode: cfg.mode,
      probes: { result: prep.probes, config: cfg.probes },
      limit: cfg.limit,
    });
  }
  await writeAtomic(v.out as string, encodeCifar10(out));
  await writeAtomic(v.truth as string, JSON.stringify(truthFile) + '\n');
  const poisoned = truthFile.rows.filter((r) => r !== null).length;
  const probes = truthFile.probes.clean.length + truthFile.probes.anomalous.length;
  process.stderr.write(
    `${out.count} training rows (${poisoned} poisoned, ${probes} probes), fingerprint ${truthFile.fingerprint.slice(0, 16)} → ${v.out}, ${v.truth}\n`,
  );
}

/** The run configuration the audit flags describe (validated by the orchestrator). */
/** --probe-trigger: a named bank, one attack id or a comma-separated list (default: the bank). */
function probeTriggerOption(trig: string | undefined): ProbeTrigger {
  const t = trig ?? (DEFAULT_PROBE_TRIGGER as string);
  if (t in PROBE_BANKS) return t as ProbeTrigger;
  return t.includes(',') ? parseIds(t) : parseIds(t)[0];
}

/** The run configuration of `audit`'s parsed flags (exported for tests). */
export function auditConfig(v: Record<string, string | boolean | undefined>): RunConfig {
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
  const s = (k: string) => v[k] as string | undefined;
  const base = preset('quick');
  let baselines: BaselineName[];
  try {
    baselines = parseDefenseList(s('defenses') ?? 'badloss').filter(
      (d): d is BaselineName => d !== 'badloss',
    );
  } catch (e) {
    throw new UsageError(`--defenses: ${describeError(e).message}`);
  }
  const limitTrain = num(s('limit-train'), 'limit-train', 'limit');
  const trigger = probeTriggerOption(s('probe-trigger'));
  const thr = s('threshold');
  const threshold =
    thr === undefined || thr === 'auto' ? ('auto' as const) : num(thr, 'threshold', 'threshold')!;
  const calibration = s('calibration');
  if (calibration !== undefined && calibration !== 'class' && calibration !== 'pooled')
    throw new UsageError(`--calibration ${calibration} must be class or pooled`);
  const score = s('score');
  if (score !== undefined && !(KNN_SCORES as readonly string[]).includes(score))
    throw new UsageError(`--score ${score} must be one of ${KNN_SCORES.join(', ')}`);
  const features = featuresOption(s('features'));
  const targetFpr = num(s('target-fpr'), 'target-fpr', 'targetFpr');
  const maxClassFraction = num(s('max-class-fraction'), 'max-class-fraction', 'maxClassFraction');
  const second = s('second-round');
  if (second !== undefined && method !== 'knn')
    throw new UsageError(
      `--second-round needs --method knn (it detects again against the probes), not ${method}`,
    );
  /** A budget flag that "off" or 0 turns off. */
  const isOff = (x: string | undefined) =>
    x === 'off' || (x !== undefined && x.trim() !== '' && Number(x) === 0);
  // "off" or 0: one round.
  const secondRound = isOff(second)
    ? undefined
    : (num(second, 'second-round', 'secondRound') ?? DEFAULT_DETECT.secondRound);
  // The easiness and mirror tests: "off" or 0 turns one off; unset, the default's budget where
  // the threshold is calibrated (they unite with the calibrated k-NN's flags, nothing else).
  const calibratedTest = (flag: 'easiness' | 'mirror') => {
    const given = s(flag);
    const off = isOff(given);
    if (given !== undefined && !off && (method !== 'knn' || threshold !== 'auto'))
      throw new UsageError(
        `--${flag} needs --method knn with the calibrated threshold (--threshold auto): its budget adds to the k-NN's`,
      );
    return off || method !== 'knn' || threshold !== 'auto'
      ? undefined
      : (num(given, flag, flag) ?? DEFAULT_DETECT[flag]);
  };
  const easiness = calibratedTest('easiness');
  const mirror = calibratedTest('mirror');
  const limitTest = num(s('limit-test'), 'limit-test', 'limit');
  return {
    mode: attacks.length > 0 ? 'benchmark' : 'audit',
    attacks,
    probes: {
      n: num(s('probes'), 'probes', 'probes') ?? 250,
      trigger,
      trusted: trusted === 'test' ? 'test' : 'train-untouched',
    },
    train: {
      ...base.train,
      model,
      width: num(s('width'), 'width', 'width') ?? 1,
      epochs: num(s('epochs'), 'epochs', 'epochs') ?? 20,
      batchSize: num(s('batch'), 'batch', 'batchSize') ?? 64,
      lr: num(s('lr'), 'lr', 'lr') ?? 1e-3,
      evalEachEpoch: v['eval-each-epoch'] === true,
    },
    detect:
      method === 'knn'
        ? {
            ...DEFAULT_DETECT,
            k: num(s('k'), 'k', 'k') ?? 'auto',
            threshold,
            ...(targetFpr !== undefined ? { targetFpr } : {}),
            ...(calibration ? { calibration: calibration as 'class' | 'pooled' } : {}),
            ...(score ? { score: score as KnnScore } : {}),
            ...(features ? { features } : {}),
            ...(maxClassFraction !== undefined ? { maxClassFraction } : {}),
            easiness,
            mirror,
            secondRound,
          }
        : {
            method: method as DetectMethod,
            ...(features ? { features } : {}),
            ...(maxClassFraction !== undefined ? { maxClassFraction } : {}),
          },
    separateBaseline: v['separate-baseline'] === true,
    // Written only when on: a run stored without it (--state) still matches when it is off.
    ...(onOff(s('retrain-jitter'), 'retrain-jitter', true) ? { retrainJitter: true } : {}),
    ...(onOff(s('retrain-stripes'), 'retrain-stripes', true) ? { retrainStripes: true } : {}),
    ...(onOff(s('retrain-match-steps'), 'retrain-match-steps', true)
      ? { retrainMatchSteps: true }
      : {}),
    ...(onOff(s('retrain-reweight'), 'retrain-reweight', true) ? { retrainReweight: true } : {}),
    ...(baselines.length ? { defenses: baselines } : {}),
    ...(baselines.length && v['retrain-defenses'] === true ? { retrainDefenses: baselines } : {}),
    ...(limitTrain || limitTest
      ? {
          limit: {
            ...(limitTrain ? { train: limitTrain } : {}),
            ...(limitTest ? { test: limitTest } : {}),
          },
        }
      : {}),
    seed: num(s('seed'), 'seed', 'seed') ?? 0,
  };
}

/**
 * The stored run `--state` continues: the one of these images (`sameData`) with exactly `config`.
 * Without one, `near` is a stored run of these images with other settings and `differs` says in
 * words what this configuration changes from it (configChange), so a run stored before a default
 * changed can be continued on purpose.
 */
export function storedRunFor(
  stored: RunRecord[],
  config: RunConfig,
  sameData: (r: RunRecord) => boolean,
): { previous?: RunRecord; near?: RunRecord; differs: string[] } {
  const same = JSON.stringify(config);
  const previous = stored.find((r) => JSON.stringify(r.config) === same && sameData(r));
  if (previous) return { previous, differs: [] };
  const near = stored.find(sameData);
  return near ? { near, differs: configChange(near.config, config).what } : { differs: [] };
}

/**
 * The whole BaDLoss pipeline from the command line: the run orchestrator (the same one the tab's
 * worker runs) on tfjs's CPU backend. With `--state <dir>` every epoch and stage is stored there,
 * and the same command continues an interrupted run (Ctrl-C, a crash) where it stopped.
 */
async function cmdAudit(
  files: string[],
  v: Record<string, string | boolean | undefined>,
): Promise<void> {
  if (!v.out) throw new UsageError('--out <report.json> is required');
  const config = auditConfig(v);
  const ds = await loadDataset(files);
  const engine = await nodeEngine(v);
  const { RunOrchestrator } = await import('../ml/run.ts');
  const { Trainer } = await import('../ml/train.ts');
  const stateDir = v.state as string | undefined;
  const store = stateDir
    ? new (await import('./file-run-store.ts')).FileRunStore(stateDir)
    : new MemoryRunStore();
  const runs = new RunOrchestrator({
    store,
    loadDataset: async () => ds,
    createTrainer: (cfg, split, numClasses, ckpt) =>
      Trainer.create(engine, cfg, split, numClasses, ckpt),
  });
  // A stored run continues only if it was built from these very images (same fingerprint), not
  // from another file of the same name.
  const fingerprint = await splitFingerprint(prepareExperiment(ds, config).train);
  const { previous, near, differs } = storedRunFor(
    await runs.listRuns(),
    validateRunConfig(config),
    (r) => (r.prepared ? r.prepared.fingerprint === fingerprint : r.datasetName === ds.name),
  );
  const run =
    previous ?? (await runs.createRun({ datasetId: ds.name, datasetName: ds.name, config }));
  const started = Date.now();
  const log = (line: string) =>
    process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${line}\n`);
  log(`engine: ${engine.name}, ${engine.threads} thread(s)`);
  if (previous) log(`continuing run ${run.id} from ${stateDir}`);
  else if (near && differs.length)
    log(
      `note: ${stateDir} holds run ${near.id} of these images with other settings (changed here: ${differs.join('; ')}); starting a new run — pass the options it was stored with to continue it instead`,
    );
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  let lastLine = 0;
  try {
    const done = await runs.runAll(run.id, {
      log,
      signal: abort.signal,
      onProgress: (phase, p) => {
        if (Date.now() - lastLine < 2000) return;
        lastLine = Date.now();
        const speed = p.imagesPerSecond > 0 ? [`${p.imagesPerSecond.toFixed(0)} img/s`] : [];
        const eta = Number.isFinite(p.etaSeconds) ? [`ETA ${Math.round(p.etaSeconds)} s`] : [];
        const more = [...speed, ...eta].join(', ');
        process.stderr.write(`  ${phase} ${progressWords(p)}${more ? ` (${more})` : ''}\n`);
      },
    });
    const r = done.report!;
    if (v['save-features']) {
      const f = await runs.features(run.id);
      await writeAtomic(
        v['save-features'] as string,
        encodeNpy([f.values.length / f.dim, f.dim], f.values),
      );
      log(`penultimate features (${f.values.length / f.dim} × ${f.dim}) → ${v['save-features']}`);
    }
    if (r.comparison) log(r.comparison);
    await writeAtomic(v.out as string, JSON.stringify(r, null, 2) + '\n');
    log(
      `clean accuracy ${(100 * r.cleanAccuracy.undefended).toFixed(1)}% → ${(100 * r.cleanAccuracy.defended).toFixed(1)}%; average ASR ${(100 * r.averageAsr.undefended).toFixed(1)}% → ${(100 * r.averageAsr.defended).toFixed(1)}%; report → ${v.out}`,
    );
  } catch (e) {
    if ((e as Error).name === 'CancelledError')
      throw new CancelledError(
        stateDir
          ? `cancelled; the finished epochs are kept in ${stateDir}: run the same command to continue`
          : 'cancelled (add --state <dir> to make a run resumable)',
      );
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/**
 * The training engine: --engine wasm or tfjs-cpu, or by default the faster of the two on this
 * machine, measured on one small step each (as the tab chooses its backend).
 */
async function nodeEngine(v: Record<string, string | boolean | undefined>) {
  const name = (v.engine as string | undefined) ?? 'auto';
  const threads = num(v.threads as string | undefined, 'threads', 'threads');
  if (name === 'auto') {
    const { nodeEngineByMeasurement } = await import('./node-tf.ts');
    const { engine, info } = await nodeEngineByMeasurement(threads);
    const figures = (info.measurement?.results ?? [])
      .filter((r) => r.imagesPerSecond)
      .map((r) => `${r.label} ${r.imagesPerSecond!.toFixed(0)} img/s`)
      .join(', ');
    process.stderr.write(`engine: ${info.label}, the faster here (${figures})\n`);
    return engine;
  }
  if (name === 'wasm') {
    const { createWasmEngine } = await import('../ml/wasm-engine-node.ts');
    return createWasmEngine({ threads });
  }
  if (name === 'tfjs-cpu') {
    if (threads !== undefined && threads !== 1)
      throw new UsageError(`--threads ${threads}: the tfjs-cpu engine runs on one thread`);
    const { setupNodeTf } = await import('./node-tf.ts');
    const { createTfjsEngine } = await import('../ml/tfjs-engine.ts');
    return createTfjsEngine(await setupNodeTf());
  }
  throw new UsageError(`--engine ${name} is not one of auto, wasm, tfjs-cpu`);
}

/** Trajectories (N × E float32, nats) from a .npy or a {"losses": number[][]} JSON file. */
async function loadTrajectories(tPath: string): Promise<Trajectories> {
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
  for (let i = 0; i < losses.length; i++) {
    if (!Number.isFinite(losses[i]))
      throw new UsageError(
        `${tPath}: row ${Math.floor(i / epochs)}, epoch ${i % epochs} is ${losses[i]}; every loss must be a finite number (the recorder clamps at 100) — re-record that run`,
      );
  }
  return { n, epochs, losses };
}

/** Everything detect and report read: trajectories, probe rows and (optionally) ground truth. */
interface DetectionInputs {
  tPath: string;
  traj: Trajectories;
  probes: ProbeRows;
  truth?: TruthArrays;
  /** The training set, when --dataset was given (already checked against the truth's fingerprint). */
  train?: ImageSplit;
}

async function loadDetectionInputs(
  v: Record<string, string | boolean | undefined>,
): Promise<DetectionInputs> {
  if (!v.trajectories) throw new UsageError('--trajectories <file.json|file.npy> is required');
  if (!v.probes && !v.truth)
    throw new UsageError('--probes <probes.json> or --truth <truth.json> is required');
  const tPath = v.trajectories as string;
  const traj = await loadTrajectories(tPath);
  const { n } = traj;
  let truth: TruthArrays | undefined;
  if (v.truth) {
    const p = v.truth as string;
    if (!existsSync(p)) throw new UsageError(`${p}: no such file`);
    truth = readTruthFile(p, parseJson(p, new Uint8Array(await readFile(p))));
    if (truth.count !== n)
      throw new UsageError(
        `${tPath} has ${n} rows but ${p} describes ${truth.count}: they belong to different training sets (record the trajectories on the --out file of the poison run that wrote this truth file)`,
      );
  }
  // The recorder writes <name>.meta.json beside the trajectories with the training set's fingerprint.
  const metaPath = tPath.replace(/\.(npy|json)$/i, '') + '.meta.json';
  if (existsSync(metaPath)) {
    const meta = parseJson(metaPath, new Uint8Array(await readFile(metaPath))) as {
      fingerprint?: unknown;
      complete?: unknown;
      plannedEpochs?: unknown;
    };
    if (truth && typeof meta.fingerprint === 'string' && meta.fingerprint !== truth.fingerprint)
      throw new UsageError(
        `${tPath} was recorded on a training set with fingerprint ${meta.fingerprint.slice(0, 16)}…, but ${v.truth} is for ${truth.fingerprint.slice(0, 16)}…: use the truth file of the data that was trained on`,
      );
    if (meta.complete === false)
      process.stderr.write(
        `note: ${metaPath} says the run is unfinished (${traj.epochs} of ${String(meta.plannedEpochs)} epochs recorded); detecting on those\n`,
      );
  }
  let probes: ProbeRows;
  if (v.probes) {
    const pPath = v.probes as string;
    if (!existsSync(pPath)) throw new UsageError(`${pPath}: no such file`);
    const json = parseJson(pPath, new Uint8Array(await readFile(pPath))) as {
      clean?: unknown;
      anomalous?: unknown;
      probes?: { clean?: unknown; anomalous?: unknown };
    };
    // A probes file, or a truth file (its "probes" member has the same shape).
    const src = json.probes && typeof json.probes === 'object' ? json.probes : json;
    const rowsOf = (x: unknown, key: string): number[] => {
      if (x === undefined) return [];
      if (!Array.isArray(x) || x.some((r) => !Number.isInteger(r) || r < 0 || r >= n))
        throw new UsageError(`${pPath}: "${key}" must be a list of row indices in 0–${n - 1}`);
      return x as number[];
    };
    probes = { clean: rowsOf(src.clean, 'clean'), anomalous: rowsOf(src.anomalous, 'anomalous') };
  } else {
    probes = truth!.probes;
  }
  let train: ImageSplit | undefined;
  if (v.dataset) {
    // The file poison wrote: CIFAR-10 binary records in training order, whatever its name.
    const dPath = v.dataset as string;
    if (!existsSync(dPath)) throw new UsageError(`${dPath}: no such file`);
    train = parseCifarBin(
      { name: dPath, bytes: new Uint8Array(await readFile(dPath)) },
      1,
      truth ? truth.classes.length : 256,
    );
    if (train.count !== n)
      throw new UsageError(`${v.dataset} has ${train.count} rows but ${tPath} has ${n}`);
    if (truth && (await splitFingerprint(train)) !== truth.fingerprint)
      throw new UsageError(
        `${v.dataset} is not the training set ${v.truth} was written for (fingerprints differ): pass the --out file of that poison run`,
      );
  }
  return { tPath, traj, probes, truth, train };
}

/** `--features`: what the detector compares of each trajectory (unset: the detector's default). */
function featuresOption(value: string | undefined): TrajectoryFeatures | undefined {
  if (value !== undefined && !(TRAJECTORY_FEATURES as readonly string[]).includes(value))
    throw new UsageError(`--features ${value} must be one of ${TRAJECTORY_FEATURES.join(', ')}`);
  return value as TrajectoryFeatures | undefined;
}

function detectOptions(v: Record<string, string | boolean | undefined>): DetectOptions {
  const method = (v.method as string | undefined) ?? 'knn';
  if (!DETECT_METHODS.includes(method as DetectMethod))
    throw new UsageError(`--method ${method} is not one of ${DETECT_METHODS.join(', ')}`);
  const features = featuresOption(v.features as string | undefined);
  return {
    method: method as DetectMethod,
    k: num(v.k as string | undefined, 'k', 'k') ?? 'auto',
    threshold: num(v.threshold as string | undefined, 'threshold', 'threshold'),
    ...(features ? { features } : {}),
  };
}

/**
 * The underfit warning (core's detectionCaveats) for trajectories recorded elsewhere, on stderr:
 * it needs the clean probes (the truth file also tells the backdoor from the mislabeled ones; a
 * probes file only the clean from the anomalous). The advice names no detection setting these two
 * commands lack: it says to record longer.
 */
function warnIfUnderfit(traj: Trajectories, probes: ProbeRows, truth?: TruthArrays): void {
  let kinds = truth?.probeKind;
  if (!kinds) {
    kinds = new Uint8Array(traj.n);
    for (const i of probes.clean) kinds[i] = PROBE_CLEAN;
  }
  for (const c of detectionCaveats({ flagged: 0, judged: 0, probeFit: probeFit(traj, kinds) }))
    process.stderr.write(`${caveatLine(c)}\n`);
}

function summarize(det: Detection, truth: TruthArrays): DetectionSummary {
  return summarizeDetection(
    det,
    truth.truth,
    truth.probeKind,
    truth.attacks,
    truth.labels,
    truth.classes.length,
  );
}

async function cmdDetect(v: Record<string, string | boolean | undefined>): Promise<void> {
  if (!v.out) throw new UsageError('--out <scores.json> is required');
  const opts = detectOptions(v);
  const { traj, probes, truth } = await loadDetectionInputs(v);
  const context = truth ? { labels: truth.labels, numClasses: truth.classes.length } : undefined;
  const det = detect(traj, probes, opts, context, wasmNearest);
  warnIfUnderfit(traj, probes, truth);
  const scores = Array.from(det.scores, (s) => (Number.isNaN(s) ? null : s));
  const summary = truth ? summarize(det, truth) : undefined;
  const out = {
    k: det.k ?? null,
    method: det.method,
    threshold: det.threshold,
    scores,
    flagged: flaggedRows(det.scores, det.threshold),
    ...(summary && truth
      ? {
          // Ground truth given: per-attack AUROC (NaN → null when a group is empty) and removals.
          evaluation: {
            auroc: Object.fromEntries(
              Object.entries(summary.auroc).map(([k, a]) => [k, Number.isNaN(a) ? null : a]),
            ),
            removed: summary.removed,
            removedFraction: summary.removedFraction,
            perClass: summary.perClass.map((c, i) => ({ class: truth.classes[i], ...c })),
          },
        }
      : {}),
  };
  await writeAtomic(v.out as string, JSON.stringify(out) + '\n');
  const aurocLine = summary
    ? `; AUROC ${Object.entries(summary.auroc)
        .map(([k, a]) => `${k} ${Number.isNaN(a) ? '—' : a.toFixed(3)}`)
        .join(', ')}`
    : '';
  process.stderr.write(
    `flagged ${out.flagged.length} of ${traj.n - probes.clean.length - probes.anomalous.length} rows${det.k ? ` (k = ${det.k})` : ''}${aurocLine} → ${v.out}\n`,
  );
}

/** Thumbnails shown in the report: the most suspicious rows. */
const REPORT_THUMBNAILS = 48;

async function cmdReport(v: Record<string, string | boolean | undefined>): Promise<void> {
  if (!v.out) throw new UsageError('--out <report.html> is required');
  if (!v.truth) throw new UsageError('--truth <truth.json> is required');
  const opts = detectOptions(v);
  const { tPath, traj, probes, truth, train } = await loadDetectionInputs(v);
  const t = truth!;
  const det = detect(traj, probes, opts);
  warnIfUnderfit(traj, probes, t);
  const summary = summarize(det, t);
  const thumbnail = train
    ? (row: number) => {
        const png = encodePng({
          width: IMAGE_SIZE,
          height: IMAGE_SIZE,
          data: train.images.subarray(row * IMAGE_BYTES, (row + 1) * IMAGE_BYTES),
          channels: 3,
        });
        return `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
      }
    : undefined;
  const report = buildDetectionReport({
    datasetName: t.dataset || basename(v.dataset ? (v.dataset as string) : (v.truth as string)),
    classes: t.classes,
    fingerprint: t.fingerprint,
    trajectories: { file: basename(tPath), rows: traj.n, epochs: traj.epochs },
    probes,
    summary,
    scores: det.scores,
    labels: t.labels,
    truthOf: (i) => (t.truth[i] >= 0 ? t.attacks[t.truth[i]].id : null),
    top: REPORT_THUMBNAILS,
    thumbnail,
  });
  await writeAtomic(v.out as string, detectionReportHtml(report));
  process.stderr.write(
    `report of ${summary.flagged.length} flagged rows${thumbnail ? ' with thumbnails' : ''} → ${v.out}\n`,
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
    'retrain-jitter': { type: 'string' },
    'retrain-stripes': { type: 'string' },
    'retrain-match-steps': { type: 'string' },
    'retrain-reweight': { type: 'string' },
    'eval-each-epoch': { type: 'boolean' },
    state: { type: 'string' },
    engine: { type: 'string' },
    threads: { type: 'string' },
    defenses: { type: 'string' },
    'retrain-defenses': { type: 'boolean' },
    'save-features': { type: 'string' },
    'probe-trigger': { type: 'string' },
    dataset: { type: 'string' },
    'target-fpr': { type: 'string' },
    calibration: { type: 'string' },
    score: { type: 'string' },
    features: { type: 'string' },
    'max-class-fraction': { type: 'string' },
    'second-round': { type: 'string' },
    easiness: { type: 'string' },
    mirror: { type: 'string' },
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
      case 'report':
        if (positionals.length > 0)
          throw new UsageError(
            `${command} takes no positional arguments (got ${positionals.join(' ')})`,
          );
        await (command === 'detect' ? cmdDetect(values) : cmdReport(values));
        break;
      default:
        throw new UsageError(
          `unknown command "${command}"; commands: info, poison, audit, detect, report`,
        );
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
