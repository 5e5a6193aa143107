import { InvalidOptionError } from '../errors.ts';
import { IMAGE_BYTES, IMAGE_SIZE } from '../dataset.ts';
import { clampByte } from '../resize.ts';
import type { Rng } from '../rng.ts';
import { dct2, idct2 } from './dct.ts';
import { applyWarp, warpingNoiseGrid } from './warp.ts';

/** The paper's attacks (SPEC §2). */
export const ATTACK_IDS = [
  'patch',
  'single-pix',
  'blend-r',
  'blend-p',
  'sinusoid',
  'warping',
  'frequency',
] as const;
export type AttackId = (typeof ATTACK_IDS)[number];

export const ATTACK_NAMES: Record<AttackId, string> = {
  patch: 'Patch (BadNets checkerboard)',
  'single-pix': 'Single pixel',
  'blend-r': 'Blend, random pattern',
  'blend-p': 'Blend, dimple pattern',
  sinusoid: 'Sinusoid (clean-label)',
  warping: 'WaNet warping',
  frequency: 'Frequency (FTrojan)',
};

/** Attacks whose strength (α or m) is doubled for the "boosted" ASR. */
export const BLENDING_ATTACKS: ReadonlySet<AttackId> = new Set([
  'blend-r',
  'blend-p',
  'sinusoid',
  'frequency',
]);

export function isAttackId(s: string): s is AttackId {
  return (ATTACK_IDS as readonly string[]).includes(s);
}

/** Numeric parameters of an attack; which keys apply depends on the attack. */
export interface TriggerParams {
  /** Blend weight α (blend-r, blend-p, sinusoid). */
  alpha?: number;
  /** Sinusoid frequency f (cycles across the image). */
  frequency?: number;
  /** Warping strength s and grid size k. */
  s?: number;
  k?: number;
  /** FTrojan magnitude m added to the DCT coefficients. */
  magnitude?: number;
}

/**
 * Default parameters per attack (SPEC §2); `gtsrb` selects that dataset's warping settings.
 */
export function defaultParams(id: AttackId, gtsrb = false): TriggerParams {
  switch (id) {
    case 'blend-r':
      return { alpha: 0.075 };
    case 'blend-p':
      return { alpha: 0.025 };
    case 'sinusoid':
      return { alpha: 0.075, frequency: 6 };
    case 'warping':
      return gtsrb ? { s: 1.0, k: 8 } : { s: 0.75, k: 6 };
    case 'frequency':
      return { magnitude: 30 };
    default:
      return {};
  }
}

/**
 * A trigger maps one 32×32×3 uint8 image (`src`, 3072 bytes HWC) to its triggered version in
 * `dst` (may be the same array). `strength` multiplies α, m or s (1 = as trained; 2 = boosted);
 * pixel triggers ignore it. Deterministic: any random pattern was drawn when the trigger was made.
 */
export type TriggerFn = (src: Uint8Array, dst: Uint8Array, strength?: number) => void;

/** Probe variant: the mirrored trigger the defender uses for backdoor probes (SPEC §3). */
export type TriggerVariant = 'attack' | 'probe';

const S = IMAGE_SIZE;

/** Pixels of the BadNets patch: (30,30), (28,30), (30,28), (29,29). Probe: (1,1), (3,1), (1,3), (2,2). */
export function patchPixels(variant: TriggerVariant): [number, number][] {
  return variant === 'attack'
    ? [
        [S - 2, S - 2],
        [S - 4, S - 2],
        [S - 2, S - 4],
        [S - 3, S - 3],
      ]
    : [
        [1, 1],
        [3, 1],
        [1, 3],
        [2, 2],
      ];
}

/**
 * Builds a trigger. `rng` draws the random blend pattern or the warping field (once per run;
 * the same function is reused at test time). Parameters default to `defaultParams(id, gtsrb)`.
 */
export function makeTrigger(
  id: AttackId,
  rng: Rng,
  opts: { variant?: TriggerVariant; params?: TriggerParams; gtsrb?: boolean } = {},
): TriggerFn {
  const variant = opts.variant ?? 'attack';
  const p = { ...defaultParams(id, opts.gtsrb), ...opts.params };
  checkParams(id, p);
  switch (id) {
    case 'patch':
    case 'single-pix': {
      const px = id === 'patch' ? patchPixels(variant) : [patchPixels(variant)[0]];
      return (src, dst) => {
        if (dst !== src) dst.set(src);
        for (const [r, c] of px) dst.fill(255, (r * S + c) * 3, (r * S + c) * 3 + 3);
      };
    }
    case 'blend-r': {
      const pattern = new Uint8Array(IMAGE_BYTES);
      for (let i = 0; i < pattern.length; i++) pattern[i] = rng.int(256);
      return blend(pattern, p.alpha!);
    }
    case 'blend-p': {
      const pattern = new Uint8Array(IMAGE_BYTES);
      const odd = variant === 'probe' ? 1 : 0;
      for (let r = odd; r < S; r += 2)
        for (let c = odd; c < S; c += 2) pattern.fill(255, (r * S + c) * 3, (r * S + c) * 3 + 3);
      return blend(pattern, p.alpha!);
    }
    case 'sinusoid': {
      const pattern = new Float64Array(IMAGE_BYTES);
      for (let r = 0; r < S; r++)
        for (let c = 0; c < S; c++) {
          const along = variant === 'probe' ? r : c; // probe: rotated 90°
          const v = 255 * (1 - Math.cos((2 * Math.PI * along * p.frequency!) / S));
          pattern.fill(v, (r * S + c) * 3, (r * S + c) * 3 + 3);
        }
      return blend(pattern, p.alpha!);
    }
    case 'warping': {
      const noise = warpingNoiseGrid(rng, p.k!, S);
      return (src, dst, strength = 1) => {
        const copy = dst === src ? src.slice() : src;
        applyWarp(copy, dst, noise, p.s! * strength, S);
      };
    }
    case 'frequency': {
      // The probe variant moves the two frequencies off the diagonal, (15,31) and (31,15):
      // the spec lists no mirrored FTrojan trigger, and this one stays in the same (high)
      // band without coinciding with the attack's.
      const positions: [number, number][] =
        variant === 'attack'
          ? [
              [15, 15],
              [31, 31],
            ]
          : [
              [15, 31],
              [31, 15],
            ];
      return frequencyTrigger(positions, p.magnitude!);
    }
  }
}

function checkParams(id: AttackId, p: TriggerParams): void {
  const bad = (name: string, v: number | undefined, ok: boolean) => {
    if (v !== undefined && !ok)
      throw new InvalidOptionError(`${id}: parameter ${name} = ${v} is out of range`);
  };
  bad('alpha', p.alpha, p.alpha !== undefined && p.alpha >= 0 && p.alpha <= 1);
  bad('frequency', p.frequency, p.frequency !== undefined && p.frequency > 0);
  bad('k', p.k, p.k !== undefined && Number.isInteger(p.k) && p.k >= 2 && p.k <= S);
  bad('s', p.s, p.s !== undefined && p.s >= 0);
  bad('magnitude', p.magnitude, p.magnitude !== undefined && p.magnitude >= 0);
}

/** x' = round(clamp((1 − α·strength)·x + α·strength·P)). */
function blend(pattern: ArrayLike<number>, alpha: number): TriggerFn {
  return (src, dst, strength = 1) => {
    const a = Math.min(1, alpha * strength);
    for (let i = 0; i < IMAGE_BYTES; i++) dst[i] = clampByte((1 - a) * src[i] + a * pattern[i]);
  };
}

/**
 * FTrojan: RGB → YCrCb (BT.601 full range, offset 128: Y = .299R + .587G + .114B,
 * Cr = (R − Y)·.713 + 128, Cb = (B − Y)·.564 + 128), orthonormal 32×32 DCT-II of Cr and Cb,
 * + m at each position, inverse DCT, back to RGB (R = Y + 1.403(Cr − 128),
 * G = Y − .714(Cr − 128) − .344(Cb − 128), B = Y + 1.773(Cb − 128)), round and clamp.
 */
function frequencyTrigger(positions: [number, number][], magnitude: number): TriggerFn {
  return (src, dst, strength = 1) => {
    const { y, cr, cb } = rgbToYcrcb(src);
    for (const plane of [cr, cb]) {
      const X = dct2(plane, S);
      for (const [u, v] of positions) X[u * S + v] += magnitude * strength;
      plane.set(idct2(X, S));
    }
    ycrcbToRgb(y, cr, cb, dst);
  };
}

/** Float planes (32×32 each) of Y, Cr and Cb (BT.601 full range). */
export function rgbToYcrcb(src: Uint8Array): {
  y: Float64Array;
  cr: Float64Array;
  cb: Float64Array;
} {
  const n = S * S;
  const y = new Float64Array(n);
  const cr = new Float64Array(n);
  const cb = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = src[i * 3];
    const g = src[i * 3 + 1];
    const b = src[i * 3 + 2];
    const yy = 0.299 * r + 0.587 * g + 0.114 * b;
    y[i] = yy;
    cr[i] = (r - yy) * 0.713 + 128;
    cb[i] = (b - yy) * 0.564 + 128;
  }
  return { y, cr, cb };
}

/** Inverse of rgbToYcrcb, rounded and clamped to bytes. */
export function ycrcbToRgb(
  y: Float64Array,
  cr: Float64Array,
  cb: Float64Array,
  dst: Uint8Array,
): void {
  for (let i = 0; i < S * S; i++) {
    const dr = cr[i] - 128;
    const db = cb[i] - 128;
    dst[i * 3] = clampByte(y[i] + 1.403 * dr);
    dst[i * 3 + 1] = clampByte(y[i] - 0.714 * dr - 0.344 * db);
    dst[i * 3 + 2] = clampByte(y[i] + 1.773 * db);
  }
}
