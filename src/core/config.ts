import { InvalidOptionError } from './errors.ts';
import type { RunConfig } from './experiment.ts';
import { ATTACK_IDS } from './attacks/triggers.ts';
import type { AttackRequest } from './attacks/plan.ts';

const MODELS = ['resnet8', 'resnet20', 'resnet18', 'resnet50'];
const METHODS = ['knn', 'clean-distance', 'no-probe'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks an untrusted value (a shared link, a stored run) is a complete RunConfig, naming the
 * first bad field. Returns it typed; throws InvalidOptionError otherwise.
 */
export function validateRunConfig(v: unknown): RunConfig {
  const fail = (what: string): never => {
    throw new InvalidOptionError(`run configuration: ${what}`);
  };
  if (!isObj(v)) return fail('not an object');
  const num = (o: Obj, k: string, ok: (n: number) => boolean) => {
    const x = o[k];
    if (typeof x !== 'number' || !Number.isFinite(x) || !ok(x))
      fail(`${k} = ${JSON.stringify(x)} is invalid`);
    return x as number;
  };
  if (v.mode !== 'benchmark' && v.mode !== 'audit')
    fail(`mode ${JSON.stringify(v.mode)} is invalid`);
  if (!Array.isArray(v.attacks)) fail('attacks must be a list');
  const attacks = (v.attacks as unknown[]).map((a): AttackRequest => {
    if (!isObj(a) || typeof a.id !== 'string' || !(ATTACK_IDS as readonly string[]).includes(a.id))
      return fail(`unknown attack ${JSON.stringify(isObj(a) ? a.id : a)}`);
    const r: AttackRequest = { id: a.id as AttackRequest['id'] };
    if (a.ratio !== undefined) r.ratio = num(a, 'ratio', (x) => x > 0 && x <= 1);
    if (a.target !== undefined) r.target = num(a, 'target', (x) => Number.isInteger(x) && x >= 0);
    if (a.strength !== undefined) r.strength = num(a, 'strength', (x) => x > 0);
    return r;
  });
  const p = v.probes;
  if (!isObj(p)) return fail('probes missing');
  num(p, 'n', (x) => Number.isInteger(x) && x >= 1);
  if (typeof p.trigger !== 'string' || !(ATTACK_IDS as readonly string[]).includes(p.trigger))
    fail(`probe trigger ${JSON.stringify(p.trigger)} is invalid`);
  if (p.trusted !== 'train-untouched' && p.trusted !== 'test' && p.trusted !== 'dataset')
    fail(`trusted source ${JSON.stringify(p.trusted)} is invalid`);
  // 'dataset' without an id is a draft (the user has not chosen one yet): building it says so.
  if (p.trustedDatasetId !== undefined && typeof p.trustedDatasetId !== 'string')
    fail(`trustedDatasetId ${JSON.stringify(p.trustedDatasetId)} must be a dataset id`);
  const t = v.train;
  if (!isObj(t)) return fail('train missing');
  if (typeof t.model !== 'string' || !MODELS.includes(t.model))
    fail(`model ${JSON.stringify(t.model)} is invalid`);
  num(t, 'width', (x) => x > 0 && x <= 8);
  num(t, 'epochs', (x) => Number.isInteger(x) && x >= 1 && x <= 1000);
  num(t, 'batchSize', (x) => Number.isInteger(x) && x >= 1 && x <= 4096);
  num(t, 'lr', (x) => x > 0 && x < 10);
  num(t, 'weightDecay', (x) => x >= 0 && x < 1);
  if (typeof t.augment !== 'boolean') fail('augment must be true or false');
  if (t.record !== 'eval' && t.record !== 'train')
    fail(`record ${JSON.stringify(t.record)} is invalid`);
  const d = v.detect;
  if (!isObj(d) || typeof d.method !== 'string' || !METHODS.includes(d.method))
    return fail('detect.method is invalid');
  if (d.k !== undefined && d.k !== 'auto') num(d, 'k', (x) => Number.isInteger(x) && x >= 1);
  if (d.threshold !== undefined) num(d, 'threshold', (x) => x >= 0 && x <= 1);
  if (d.rejectFraction !== undefined) num(d, 'rejectFraction', (x) => x >= 0 && x <= 1);
  if (typeof v.separateBaseline !== 'boolean') fail('separateBaseline must be true or false');
  num(v, 'seed', (x) => Number.isInteger(x));
  if (v.limit !== undefined) {
    if (!isObj(v.limit)) fail('limit must be an object');
    const l = v.limit as Obj;
    if (l.train !== undefined) num(l, 'train', (x) => Number.isInteger(x) && x >= 1);
    if (l.test !== undefined) num(l, 'test', (x) => Number.isInteger(x) && x >= 1);
  }
  return { ...(v as unknown as RunConfig), attacks };
}
