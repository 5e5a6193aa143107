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

export interface ProbeOptions {
  /** Probes per kind (n; default 250). */
  n: number;
  seed: number;
  numClasses: number;
  /** Which trigger's mirrored variant marks backdoor probes (default: the patch, SPEC §3). */
  trigger?: AttackId;
}

export interface ProbeResult {
  /** The training split with probes in place. */
  train: ImageSplit;
  /** Per training example: PROBE_* code. */
  probeKind: Uint8Array;
  /** The shared label of all backdoor probes. */
  backdoorLabel: number;
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
): Pick<ProbeResult, 'backdoorLabel' | 'indices'> {
  const { n, numClasses } = opts;
  if (!(Number.isInteger(n) && n >= 1))
    throw new InvalidOptionError(`probe count ${n} must be a whole number ≥ 1`);
  if (numClasses < 2) throw new InvalidOptionError('probes need at least 2 classes');
  const rng = new Rng(opts.seed).fork('probes');
  const backdoorLabel = rng.int(numClasses);
  const shuffled = rng.sample(pool, pool.length);
  const clean: number[] = [];
  const backdoor: number[] = [];
  const mislabeled: number[] = [];
  for (const i of shuffled) {
    if (backdoor.length < n && split.labels[i] !== backdoorLabel) backdoor.push(i);
    else if (clean.length < n) clean.push(i);
    else if (mislabeled.length < n) mislabeled.push(i);
    if (clean.length === n && backdoor.length === n && mislabeled.length === n) break;
  }
  if (clean.length < n || backdoor.length < n || mislabeled.length < n) {
    throw new InvalidOptionError(
      `${3 * n} clean examples are needed for ${n} probes of each kind, but only ${pool.length} are available; lower the probe count`,
    );
  }
  const trigger = makeTrigger(opts.trigger ?? 'patch', rng.fork('probe-pattern'), {
    variant: 'probe',
  });
  for (const i of clean) probeKind[i] = PROBE_CLEAN;
  for (const i of backdoor) {
    const view = split.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES);
    trigger(view, view);
    split.labels[i] = backdoorLabel;
    probeKind[i] = PROBE_BACKDOOR;
  }
  for (const i of mislabeled) {
    split.labels[i] = (split.labels[i] + 1 + rng.int(numClasses - 1)) % numClasses;
    probeKind[i] = PROBE_MISLABELED;
  }
  const asc = (a: number[]) => a.sort((x, y) => x - y);
  return {
    backdoorLabel,
    indices: { clean: asc(clean), backdoor: asc(backdoor), mislabeled: asc(mislabeled) },
  };
}
