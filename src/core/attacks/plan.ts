import { InvalidOptionError } from '../errors.ts';
import { IMAGE_BYTES, imageView, type ImageSplit } from '../dataset.ts';
import { Rng } from '../rng.ts';
import {
  ATTACK_IDS,
  ATTACK_NAMES,
  BLENDING_ATTACKS,
  defaultParams,
  makeTrigger,
  type AttackId,
  type TriggerFn,
  type TriggerParams,
} from './triggers.ts';

/** What the user asks for, per attack; unset fields take the paper's defaults. */
export interface AttackRequest {
  id: AttackId;
  /** Dirty-label: fraction of the training set. Clean-label (sinusoid): fraction of the target class. In (0, 1]. */
  ratio?: number;
  /** Target class; drawn from the seed when unset. */
  target?: number;
  /** Multiplier of α / m / s at training time (1 = paper). */
  strength?: number;
  params?: TriggerParams;
}

/** A fully resolved attack, as applied. */
export interface ResolvedAttack {
  id: AttackId;
  target: number;
  ratio: number;
  strength: number;
  params: TriggerParams;
  /** Training indices carrying this attack, ascending. */
  indices: number[];
}

/** The poisoned training split and its ground truth. */
export interface PoisonResult {
  train: ImageSplit;
  /** Per training example: index into `attacks`, or −1 for clean. Evaluation only. */
  truth: Int8Array;
  attacks: ResolvedAttack[];
}

export interface PoisonOptions {
  seed: number;
  numClasses: number;
  /** Use GTSRB's defaults (ratios, warping parameters, sinusoid rules). */
  gtsrb?: boolean;
}

/** Default poisoning ratio (SPEC §2): fraction of the dataset, or of the target class for sinusoid. */
export function defaultRatio(id: AttackId, gtsrb = false): number {
  switch (id) {
    case 'patch':
      return gtsrb ? 0.02 : 0.01;
    case 'single-pix':
      return gtsrb ? 0.04 : 0.01;
    case 'sinusoid':
      return 0.1;
    case 'warping':
      return gtsrb ? 0.2 : 0.1;
    default:
      return 0.01;
  }
}

/** True for the clean-label attack (labels unchanged, only target-class images poisoned). */
export function isCleanLabel(id: AttackId): boolean {
  return id === 'sinusoid';
}

/**
 * The trigger function of a resolved attack. Patterns and fields are drawn from
 * `seed`'s stream for the attack id, so the poisoning and the test-time trigger agree.
 */
export function attackTrigger(a: Pick<ResolvedAttack, 'id' | 'params'>, seed: number): TriggerFn {
  return makeTrigger(a.id, new Rng(seed).fork(`pattern:${a.id}`), { params: a.params });
}

/**
 * Poisons a copy of `train` (SPEC §2). Targets are drawn from the seed, distinct across attacks
 * while there are enough classes (on GTSRB the sinusoid target is redrawn until its class has
 * ≥ 1000 images). Dirty-label attacks take round(ratio·N) images whose label is not the target and
 * relabel them; the clean-label sinusoid takes max(round(ratio·|target class|), 300 on GTSRB)
 * target-class images and keeps labels. Example sets are disjoint; poisoned copies replace their
 * originals. Asking for more images than are eligible throws InvalidOptionError.
 */
export function poisonDataset(
  train: ImageSplit,
  requests: AttackRequest[],
  opts: PoisonOptions,
): PoisonResult {
  const seen = new Set<AttackId>();
  for (const r of requests) {
    if (!ATTACK_IDS.includes(r.id))
      throw new InvalidOptionError(`unknown attack "${r.id}"; known: ${ATTACK_IDS.join(', ')}`);
    if (seen.has(r.id)) throw new InvalidOptionError(`attack "${r.id}" is listed twice`);
    seen.add(r.id);
    if (r.ratio !== undefined && !(r.ratio > 0 && r.ratio <= 1)) {
      throw new InvalidOptionError(`${r.id}: ratio ${r.ratio} is outside (0, 1]`);
    }
    if (
      r.target !== undefined &&
      !(Number.isInteger(r.target) && r.target >= 0 && r.target < opts.numClasses)
    ) {
      throw new InvalidOptionError(
        `${r.id}: target ${r.target} is outside the class range 0–${opts.numClasses - 1}`,
      );
    }
    if (r.strength !== undefined && !(r.strength > 0))
      throw new InvalidOptionError(`${r.id}: strength ${r.strength} must be > 0`);
  }
  const gtsrb = opts.gtsrb ?? false;
  const rng = new Rng(opts.seed);
  const targetRng = rng.fork('targets');
  const counts = new Array<number>(opts.numClasses).fill(0);
  for (let i = 0; i < train.count; i++) counts[train.labels[i]]++;
  // Canonical order makes the result independent of how the user listed the attacks.
  const ordered = [...requests].sort((a, b) => ATTACK_IDS.indexOf(a.id) - ATTACK_IDS.indexOf(b.id));
  const usedTargets = new Set(ordered.filter((r) => r.target !== undefined).map((r) => r.target!));
  const out = { count: train.count, images: train.images.slice(), labels: train.labels.slice() };
  const truth = new Int8Array(train.count).fill(-1);
  const attacks: ResolvedAttack[] = [];
  for (const req of ordered) {
    let target = req.target;
    if (target === undefined) {
      const candidates = [...Array(opts.numClasses).keys()].filter(
        (c) =>
          !(gtsrb && isCleanLabel(req.id) && counts[c] < 1000) &&
          (usedTargets.size >= opts.numClasses || !usedTargets.has(c)),
      );
      if (candidates.length === 0) {
        throw new InvalidOptionError(
          `${req.id}: no class is eligible as target (GTSRB sinusoid needs a class with ≥ 1000 images)`,
        );
      }
      target = candidates[targetRng.int(candidates.length)];
      usedTargets.add(target);
    }
    if (gtsrb && isCleanLabel(req.id) && counts[target] < 1000) {
      throw new InvalidOptionError(
        `sinusoid: target class ${target} has ${counts[target]} images; GTSRB needs ≥ 1000`,
      );
    }
    const ratio = req.ratio ?? defaultRatio(req.id, gtsrb);
    const clean = isCleanLabel(req.id);
    let want = Math.round(ratio * (clean ? counts[target] : train.count));
    if (clean && gtsrb) want = Math.max(want, 300);
    if (want < 1)
      throw new InvalidOptionError(
        `${req.id}: ratio ${ratio} selects no image (dataset too small); raise the ratio`,
      );
    const eligible: number[] = [];
    for (let i = 0; i < train.count; i++) {
      if (truth[i] !== -1) continue;
      if (clean ? train.labels[i] === target : train.labels[i] !== target) eligible.push(i);
    }
    if (want > eligible.length) {
      throw new InvalidOptionError(
        `${req.id}: ratio ${ratio} asks for ${want} images but only ${eligible.length} are eligible (${clean ? 'target-class images' : 'non-target images'} not used by another attack); lower the ratio`,
      );
    }
    const indices = rng
      .fork(`select:${req.id}`)
      .sample(eligible, want)
      .sort((a, b) => a - b);
    const params = { ...defaultParams(req.id, gtsrb), ...req.params };
    const strength = req.strength ?? 1;
    const trigger = attackTrigger({ id: req.id, params }, opts.seed);
    const k = attacks.length;
    for (const i of indices) {
      const view = out.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES);
      trigger(view, view, strength);
      if (!clean) out.labels[i] = target;
      truth[i] = k;
    }
    attacks.push({ id: req.id, target, ratio, strength, params, indices });
  }
  return { train: out, truth, attacks };
}

/** A triggered test set: images of non-target classes with the trigger, all labeled `target`. */
export interface TriggeredTestSet {
  attack: AttackId;
  name: string;
  target: number;
  set: ImageSplit;
  /** With α / m doubled (blending attacks only). */
  boosted?: ImageSplit;
}

/**
 * Attack-success-rate test sets (SPEC §6): up to `max` (10,000) test images whose true class is
 * not the target (a seeded sample when there are more), triggered at the attack's strength and
 * labeled with the target; for blending attacks also the boosted set at twice the strength.
 */
export function triggeredTestSets(
  test: ImageSplit,
  attacks: ResolvedAttack[],
  seed: number,
  max = 10_000,
): TriggeredTestSet[] {
  const rng = new Rng(seed).fork('asr');
  return attacks.map((a) => {
    let idx: number[] = [];
    for (let i = 0; i < test.count; i++) if (test.labels[i] !== a.target) idx.push(i);
    if (idx.length > max) idx = rng.sample(idx, max).sort((x, y) => x - y);
    const trigger = attackTrigger(a, seed);
    const build = (strength: number): ImageSplit => {
      const images = new Uint8Array(idx.length * IMAGE_BYTES);
      idx.forEach((i, j) =>
        trigger(
          imageView(test, i),
          images.subarray(j * IMAGE_BYTES, (j + 1) * IMAGE_BYTES),
          strength,
        ),
      );
      return { count: idx.length, images, labels: new Uint8Array(idx.length).fill(a.target) };
    };
    const res: TriggeredTestSet = {
      attack: a.id,
      name: ATTACK_NAMES[a.id],
      target: a.target,
      set: build(a.strength),
    };
    if (BLENDING_ATTACKS.has(a.id)) res.boosted = build(a.strength * 2);
    return res;
  });
}
