import { InvalidOptionError } from './errors.ts';
import { concatSplits, IMAGE_BYTES, subsetSplit, type ImageSplit } from './dataset.ts';
import { Rng } from './rng.ts';
import { makeTrigger, type AttackId } from './attacks/triggers.ts';

/** Per-example probe kind: 0 = not a probe, 1 = clean (P1), 2 = backdoor (P2), 3 = mislabeled (P3). */
export const PROBE_NONE = 0;
export const PROBE_CLEAN = 1;
export const PROBE_BACKDOOR = 2;
export const PROBE_MISLABELED = 3;
export type ProbeKindCode = 0 | 1 | 2 | 3;

/**
 * The defender's backdoor-probe triggers: one attack id (its mirrored variant, SPEC §3), a list of
 * them, or a named bank. A list splits the n backdoor probes evenly among its triggers (the first
 * ones get the remainder), each trigger with its own label.
 */
export type ProbeTrigger = AttackId | readonly AttackId[] | ProbeBankName;

/** Named probe banks. 'bank': a local, a low-frequency global, a noise and a geometric trigger. */
export type ProbeBankName = 'bank';
export const PROBE_BANKS: Record<ProbeBankName, readonly AttackId[]> = {
  // The mirrored patch, the sinusoid rotated 90°, a fresh random blend pattern, a fresh warping
  // field: one of each family of trigger the paper attacks with (local pixels, smooth global
  // pattern, noise pattern, geometry), none equal to any attack's own trigger.
  bank: ['patch', 'sinusoid', 'blend-r', 'warping'],
};

/** The list of trigger ids a probe trigger setting stands for (deduplicated, order kept). */
export function probeTriggerIds(t: ProbeTrigger | undefined): AttackId[] {
  if (t === undefined) return ['patch'];
  if (typeof t === 'string')
    return t in PROBE_BANKS ? [...PROBE_BANKS[t as ProbeBankName]] : [t as AttackId];
  if (t.length === 0)
    throw new InvalidOptionError('the probe trigger list is empty; name at least one trigger');
  return [...new Set(t)];
}

export interface ProbeOptions {
  /** Probes per kind (n; default 250). */
  n: number;
  seed: number;
  numClasses: number;
  /** Which triggers' mirrored variants mark backdoor probes (default: the patch, SPEC §3). */
  trigger?: ProbeTrigger;
}

export interface ProbeResult {
  /** The training split with probes in place. */
  train: ImageSplit;
  /** Per training example: PROBE_* code. */
  probeKind: Uint8Array;
  /** The label of the (first trigger's) backdoor probes. */
  backdoorLabel: number;
  /** Per probe trigger: its id, its label and its backdoor-probe rows (ascending). */
  bank: { trigger: AttackId; label: number; rows: number[] }[];
  /** Training indices of each probe kind, ascending. */
  indices: { clean: number[]; backdoor: number[]; mislabeled: number[] };
  /** Audit mode: the indices in the trusted set that became probes, in the order they were appended (row train.count + j came from trustedUsed[j]). */
  trustedUsed?: number[];
}

/**
 * Benchmark mode (SPEC §3): takes 3n training examples no attack touched (`truth[i] = −1`) and
 * overwrites them with probes, so the training set keeps its size: n stay as they are (clean
 * probes), n get the mirrored trigger and one shared label drawn from the seed (backdoor probes;
 * drawn from examples not already of that label), n get a different random label (mislabeled).
 */
export function insertProbes(train: ImageSplit, truth: Int8Array, opts: ProbeOptions): ProbeResult {
  const pool: number[] = [];
  for (let i = 0; i < train.count; i++) if (truth[i] === -1) pool.push(i);
  const out = { count: train.count, images: train.images.slice(), labels: train.labels.slice() };
  const probeKind = new Uint8Array(train.count);
  const res = placeProbes(out, pool, probeKind, opts);
  return { train: out, probeKind, ...res };
}

/**
 * Audit mode (SPEC §3): the trusted examples come from a set the user vouches for (the test split,
 * or a separate upload); 3n of them become probes and are appended to the training set. The
 * indices taken from `trusted` are returned so the caller evaluates on the rest.
 */
export function appendProbes(
  train: ImageSplit,
  trusted: ImageSplit,
  opts: ProbeOptions,
): ProbeResult {
  const pool = [...Array(trusted.count).keys()];
  const taken = new Rng(opts.seed)
    .fork('probe-trusted')
    .sample(pool, Math.min(pool.length, 3 * opts.n));
  if (taken.length < 3 * opts.n) {
    throw new InvalidOptionError(
      `${3 * opts.n} trusted examples are needed for ${opts.n} probes of each kind, but the trusted set has ${trusted.count}; lower the probe count`,
    );
  }
  const probes = subsetSplit(trusted, taken);
  const merged = concatSplits([
    { count: train.count, images: train.images, labels: train.labels },
    probes,
  ]);
  const probeKind = new Uint8Array(merged.count);
  const appended = taken.map((_, j) => train.count + j);
  const res = placeProbes(merged, appended, probeKind, opts);
  return { train: merged, probeKind, ...res, trustedUsed: taken };
}

function placeProbes(
  split: ImageSplit,
  pool: number[],
  probeKind: Uint8Array,
  opts: ProbeOptions,
): Pick<ProbeResult, 'backdoorLabel' | 'indices' | 'bank'> {
  const { n, numClasses } = opts;
  if (!(Number.isInteger(n) && n >= 1))
    throw new InvalidOptionError(`probe count ${n} must be a whole number ≥ 1`);
  if (numClasses < 2) throw new InvalidOptionError('probes need at least 2 classes');
  const ids = probeTriggerIds(opts.trigger);
  const rng = new Rng(opts.seed).fork('probes');
  const labels = [rng.int(numClasses)];
  const backdoorLabel = labels[0];
  const shuffled = rng.sample(pool, pool.length);
  // Extra triggers draw from their own stream, so a single trigger gives exactly the probes it
  // always gave. Labels are distinct while there are enough classes.
  const bankRng = new Rng(opts.seed).fork('probe-bank');
  for (let j = 1; j < ids.length; j++) {
    const free = [...Array(numClasses).keys()].filter((c) => !labels.includes(c));
    labels.push(free.length ? free[bankRng.int(free.length)] : bankRng.int(numClasses));
  }
  const quota = ids.map((_, j) => Math.floor(n / ids.length) + (j < n % ids.length ? 1 : 0));
  const perTrigger: number[][] = ids.map(() => []);
  const clean: number[] = [];
  const backdoor: number[] = [];
  const mislabeled: number[] = [];
  for (const i of shuffled) {
    const j = perTrigger.findIndex(
      (rows, t) => rows.length < quota[t] && split.labels[i] !== labels[t],
    );
    if (j >= 0) {
      perTrigger[j].push(i);
      backdoor.push(i);
    } else if (clean.length < n) clean.push(i);
    else if (mislabeled.length < n) mislabeled.push(i);
    if (clean.length === n && backdoor.length === n && mislabeled.length === n) break;
  }
  if (clean.length < n || backdoor.length < n || mislabeled.length < n) {
    throw new InvalidOptionError(
      `${3 * n} clean examples are needed for ${n} probes of each kind, but only ${pool.length} are available; lower the probe count`,
    );
  }
  const triggers = ids.map((id, j) =>
    makeTrigger(id, j === 0 ? rng.fork('probe-pattern') : bankRng.fork(`probe-pattern:${id}`), {
      variant: 'probe',
    }),
  );
  for (const i of clean) probeKind[i] = PROBE_CLEAN;
  perTrigger.forEach((rows, j) => {
    for (const i of rows) {
      const view = split.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES);
      triggers[j](view, view);
      split.labels[i] = labels[j];
      probeKind[i] = PROBE_BACKDOOR;
    }
  });
  for (const i of mislabeled) {
    split.labels[i] = (split.labels[i] + 1 + rng.int(numClasses - 1)) % numClasses;
    probeKind[i] = PROBE_MISLABELED;
  }
  const asc = (a: number[]) => a.sort((x, y) => x - y);
  return {
    backdoorLabel,
    bank: ids.map((trigger, j) => ({ trigger, label: labels[j], rows: asc([...perTrigger[j]]) })),
    indices: { clean: asc(clean), backdoor: asc(backdoor), mislabeled: asc(mislabeled) },
  };
}
