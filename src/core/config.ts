import { InvalidOptionError } from './errors.ts';
import { RETRAIN_OPTIONS, type RunConfig, type TrainRecipe } from './experiment.ts';
import { ATTACK_IDS } from './attacks/triggers.ts';
import { BASELINE_NAMES, type BaselineName } from './defenses/types.ts';
import type { AttackRequest } from './attacks/plan.ts';
import { PROBE_BANKS } from './probes.ts';
import { DEFAULT_TARGET_FPR, KNN_SCORES, TRAJECTORY_FEATURES } from './detect/index.ts';

const MODELS = ['resnet8', 'resnet20', 'resnet18', 'resnet50'];
const METHODS = ['knn', 'clean-distance', 'no-probe'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The allowed range of every numeric setting: the one table the validation below, the CLI's
 * messages and the app's inputs (min/max) all read, so a value is never accepted in one place
 * and refused in another.
 */
export const LIMITS = {
  ratio: { min: 0, max: 1, minExclusive: true, int: false },
  strength: { min: 0, max: 1e6, minExclusive: true, int: false },
  target: { min: 0, max: 65535, int: true },
  probes: { min: 1, max: 100_000, int: true },
  width: { min: 0, max: 8, minExclusive: true, int: false },
  epochs: { min: 1, max: 1000, int: true },
  batchSize: { min: 1, max: 4096, int: true },
  lr: { min: 0, max: 10, minExclusive: true, maxExclusive: true, int: false },
  weightDecay: { min: 0, max: 1, maxExclusive: true, int: false },
  k: { min: 1, max: 100_000, int: true },
  threshold: { min: 0, max: 1, int: false },
  rejectFraction: { min: 0, max: 1, int: false },
  targetFpr: { min: 0, max: 1, minExclusive: true, maxExclusive: true, int: false },
  maxClassFraction: { min: 0, max: 1, minExclusive: true, int: false },
  secondRound: { min: 0, max: 0.5, minExclusive: true, int: false },
  easiness: { min: 0, max: 1, minExclusive: true, maxExclusive: true, int: false },
  mirror: { min: 0, max: 1, minExclusive: true, maxExclusive: true, int: false },
  limit: { min: 1, max: 100_000_000, int: true },
  seed: { min: -(2 ** 31), max: 2 ** 31 - 1, int: true },
  threads: { min: 1, max: 64, int: true },
} as const;

export type LimitName = keyof typeof LIMITS;

/** One range: bounds, whether they are excluded, and whether only whole numbers are allowed. */
interface Limit {
  min: number;
  max: number;
  int: boolean;
  minExclusive?: boolean;
  maxExclusive?: boolean;
}

/** "a whole number in 1–1000", "a number in (0, 1]": the words for a limit. */
export function describeLimit(name: LimitName): string {
  const l: Limit = LIMITS[name];
  if (l.int) return `a whole number in ${l.min}–${l.max}`;
  return `a number in ${l.minExclusive ? '(' : '['}${l.min}, ${l.max}${l.maxExclusive ? ')' : ']'}`;
}

/** Whether a value is within a named limit. */
export function withinLimit(name: LimitName, x: number): boolean {
  const l: Limit = LIMITS[name];
  return (
    Number.isFinite(x) &&
    (!l.int || Number.isInteger(x)) &&
    (l.minExclusive ? x > l.min : x >= l.min) &&
    (l.maxExclusive ? x < l.max : x <= l.max)
  );
}

/** Checks the numeric and enumerated fields of a training recipe, reporting through `fail`. */
function checkRecipe(t: Obj, fail: (what: string) => never): void {
  const num = (k: string, limit: LimitName) => {
    const x = t[k];
    if (typeof x !== 'number' || !withinLimit(limit, x))
      fail(`train.${k} = ${JSON.stringify(x)} is invalid: must be ${describeLimit(limit)}`);
  };
  if (typeof t.model !== 'string' || !MODELS.includes(t.model))
    fail(`model ${JSON.stringify(t.model)} is invalid; known: ${MODELS.join(', ')}`);
  num('width', 'width');
  num('epochs', 'epochs');
  num('batchSize', 'batchSize');
  num('lr', 'lr');
  num('weightDecay', 'weightDecay');
  if (typeof t.augment !== 'boolean') fail('train.augment must be true or false');
  if (t.record !== 'eval' && t.record !== 'train')
    fail(`train.record ${JSON.stringify(t.record)} is invalid: must be "eval" or "train"`);
}

/** Checks a training recipe (a phase's, or one given to the engine directly). */
export function validateTrainRecipe(t: TrainRecipe): void {
  checkRecipe(t as unknown as Obj, (what) => {
    throw new InvalidOptionError(what);
  });
}

/**
 * Checks an untrusted value (a shared link, a stored run, the CLI's flags, a request to the
 * worker) is a complete RunConfig, naming the first bad field, its value and the allowed range.
 * Returns it typed; throws InvalidOptionError otherwise. The one validation of a configuration.
 */
export function validateRunConfig(v: unknown): RunConfig {
  const fail = (what: string): never => {
    throw new InvalidOptionError(`run configuration: ${what}`);
  };
  if (!isObj(v)) return fail('not an object');
  const num = (o: Obj, k: string, limit: LimitName, path = k) => {
    const x = o[k];
    if (typeof x !== 'number' || !withinLimit(limit, x))
      fail(`${path} = ${JSON.stringify(x)} is invalid: must be ${describeLimit(limit)}`);
    return x as number;
  };
  if (v.mode !== 'benchmark' && v.mode !== 'audit')
    fail(`mode ${JSON.stringify(v.mode)} is invalid: must be "benchmark" or "audit"`);
  if (!Array.isArray(v.attacks)) fail('attacks must be a list');
  const attacks = (v.attacks as unknown[]).map((a): AttackRequest => {
    if (!isObj(a) || typeof a.id !== 'string' || !(ATTACK_IDS as readonly string[]).includes(a.id))
      return fail(
        `unknown attack ${JSON.stringify(isObj(a) ? a.id : a)}; known: ${ATTACK_IDS.join(', ')}`,
      );
    const r: AttackRequest = { id: a.id as AttackRequest['id'] };
    if (a.ratio !== undefined) r.ratio = num(a, 'ratio', 'ratio', `${a.id} ratio`);
    if (a.target !== undefined) r.target = num(a, 'target', 'target', `${a.id} target`);
    if (a.strength !== undefined) r.strength = num(a, 'strength', 'strength', `${a.id} strength`);
    return r;
  });
  if (new Set(attacks.map((a) => a.id)).size !== attacks.length) fail('an attack is listed twice');
  if (v.mode === 'audit' && attacks.length > 0)
    fail('audit mode takes no attacks: it checks your data as it is');
  const p = v.probes;
  if (!isObj(p)) return fail('probes missing');
  num(p, 'n', 'probes', 'probes.n');
  {
    const known = [...ATTACK_IDS, ...Object.keys(PROBE_BANKS)];
    const ok = (x: unknown) =>
      typeof x === 'string' && (ATTACK_IDS as readonly string[]).includes(x);
    const valid =
      (typeof p.trigger === 'string' && known.includes(p.trigger)) ||
      (Array.isArray(p.trigger) &&
        p.trigger.length > 0 &&
        p.trigger.every(ok) &&
        new Set(p.trigger).size === p.trigger.length);
    if (!valid)
      fail(
        `probe trigger ${JSON.stringify(p.trigger)} is invalid: must be one of ${known.join(', ')} or a list of distinct attack ids`,
      );
  }
  if (p.trusted !== 'train-untouched' && p.trusted !== 'test' && p.trusted !== 'dataset')
    fail(
      `trusted source ${JSON.stringify(p.trusted)} is invalid: must be "train-untouched", "test" or "dataset"`,
    );
  // 'dataset' without an id is a draft (the user has not chosen one yet): building it says so.
  if (p.trustedDatasetId !== undefined && typeof p.trustedDatasetId !== 'string')
    fail(`trustedDatasetId ${JSON.stringify(p.trustedDatasetId)} must be a dataset id`);
  const t = v.train;
  if (!isObj(t)) return fail('train missing');
  checkRecipe(t, fail);
  if (t.evalEachEpoch !== undefined && typeof t.evalEachEpoch !== 'boolean')
    fail('train.evalEachEpoch must be true or false');
  const d = v.detect;
  if (!isObj(d) || typeof d.method !== 'string' || !METHODS.includes(d.method))
    return fail(`detect.method is invalid; known: ${METHODS.join(', ')}`);
  if (d.k !== undefined && d.k !== 'auto') num(d, 'k', 'k', 'detect.k');
  if (d.threshold !== undefined && d.threshold !== 'auto')
    num(d, 'threshold', 'threshold', 'detect.threshold');
  if (d.targetFpr !== undefined) num(d, 'targetFpr', 'targetFpr', 'detect.targetFpr');
  if (d.calibration !== undefined && d.calibration !== 'class' && d.calibration !== 'pooled')
    fail(
      `detect.calibration ${JSON.stringify(d.calibration)} is invalid: must be "class" or "pooled"`,
    );
  if (d.score !== undefined && !(KNN_SCORES as readonly unknown[]).includes(d.score))
    fail(
      `detect.score ${JSON.stringify(d.score)} is invalid: must be one of ${KNN_SCORES.map((x) => JSON.stringify(x)).join(', ')}`,
    );
  if (d.features !== undefined && !(TRAJECTORY_FEATURES as readonly unknown[]).includes(d.features))
    fail(
      `detect.features ${JSON.stringify(d.features)} is invalid: must be one of ${TRAJECTORY_FEATURES.map((x) => JSON.stringify(x)).join(', ')}`,
    );
  if (d.maxClassFraction !== undefined)
    num(d, 'maxClassFraction', 'maxClassFraction', 'detect.maxClassFraction');
  if (d.rejectFraction !== undefined)
    num(d, 'rejectFraction', 'rejectFraction', 'detect.rejectFraction');
  // The easiness and mirror tests each add their budget to the first round's k-NN's.
  const tests = (['easiness', 'mirror'] as const).filter((key) => d[key] !== undefined);
  for (const key of tests) {
    num(d, key, key, `detect.${key}`);
    if (d.method !== 'knn' || d.threshold !== 'auto')
      fail(
        `detect.${key} needs the k-NN method with the calibrated threshold (threshold "auto"): its budget adds to the k-NN's clean-removal budget; remove it or calibrate the threshold`,
      );
  }
  const extra = tests.reduce((sum, key) => sum + (d[key] as number), 0);
  const named = tests.map((key) => `detect.${key} ${d[key]}`).join(' and ');
  if (tests.length) {
    const alpha = typeof d.targetFpr === 'number' ? d.targetFpr : DEFAULT_TARGET_FPR;
    if (alpha + extra >= 1)
      fail(
        `detect.targetFpr ${alpha} and ${named} add up to 1 or more: every row would be removed; lower one of them`,
      );
  }
  if (d.secondRound !== undefined) {
    num(d, 'secondRound', 'secondRound', 'detect.secondRound');
    if (d.method !== 'knn')
      fail(
        `detect.secondRound needs the k-NN method (it detects again against the probes), not ${JSON.stringify(d.method)}: remove it or choose knn`,
      );
  }
  if (typeof v.separateBaseline !== 'boolean') fail('separateBaseline must be true or false');
  for (const key of RETRAIN_OPTIONS)
    if (v[key] !== undefined && typeof v[key] !== 'boolean')
      fail(`${key} ${JSON.stringify(v[key])} is invalid: must be true or false`);
  const names = (key: 'defenses' | 'retrainDefenses'): BaselineName[] | undefined => {
    const x = v[key];
    if (x === undefined) return undefined;
    if (!Array.isArray(x) || x.some((d) => !(BASELINE_NAMES as readonly unknown[]).includes(d)))
      return fail(`${key} ${JSON.stringify(x)} is invalid; known: ${BASELINE_NAMES.join(', ')}`);
    if (new Set(x).size !== x.length) fail(`${key}: a defense is listed twice`);
    return x as BaselineName[];
  };
  const defenses = names('defenses');
  const retrain = names('retrainDefenses');
  for (const d of retrain ?? [])
    if (!(defenses ?? []).includes(d))
      fail(`retrainDefenses: "${d}" is retrained but not in defenses; add it there`);
  num(v, 'seed', 'seed');
  if (v.limit !== undefined) {
    if (!isObj(v.limit)) fail('limit must be an object');
    const l = v.limit as Obj;
    if (l.train !== undefined) num(l, 'train', 'limit', 'limit.train');
    if (l.test !== undefined) num(l, 'test', 'limit', 'limit.test');
  }
  return structuredClone({ ...(v as unknown as RunConfig), attacks });
}
