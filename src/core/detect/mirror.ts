import { CHANNELS, IMAGE_BYTES, IMAGE_SIZE, type ImageSplit } from '../dataset.ts';
import { InvalidOptionError } from '../errors.ts';
import { calibratedZTest, classRobustZ } from './calibrate.ts';
import type { ProbeRows } from './knn.ts';

/**
 * The mirror test (docs/detection.md, "The mirror test"). A backdoor's label rests on its
 * trigger, which sits at fixed pixels — a corner patch, a pixel, a dimple on even rows and
 * columns, a fixed noise pattern — while a clean image's label rests on its content, which a
 * left–right mirror keeps (a car mirrored is still a car). So after the probationary training a
 * poison's loss on its own label jumps when its image is mirrored, and a clean row's hardly moves.
 * The probationary model trains without augmentation by default (SPEC §4), so it has not learned
 * the mirrored triggers too; with `train.augment` (random flips) the test flags about its budget
 * of clean rows and little else. Measured (`bench/mirror.ts`, two seeds each of CIFAR-10 and the
 * demo set), the gap's AUROC against the clean rows was 0.87–1.00 for the dimple blend (its loss
 * alone: 0.04–0.34, learned faster than its class) and 0.89–1.00 for the patch where the network
 * had learned it (0.62 on one CIFAR-10 seed where it had not). It does not see the triggers a
 * mirror keeps: the sinusoid's stripes and the warping (a smooth resampling whose blur survives).
 */

/** The left–right mirror of every image of `split` (labels shared). */
export function mirroredSplit(split: ImageSplit): ImageSplit {
  const S = IMAGE_SIZE;
  const src = split.images;
  const out = new Uint8Array(src.length);
  for (let i = 0; i < split.count; i++) {
    const base = i * IMAGE_BYTES;
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++) {
        const to = base + (y * S + x) * CHANNELS;
        const from = base + (y * S + (S - 1 - x)) * CHANNELS;
        for (let c = 0; c < CHANNELS; c++) out[to + c] = src[from + c];
      }
  }
  return { count: split.count, images: out, labels: split.labels };
}

/**
 * Each row's mirror gap: its loss with the image mirrored minus its loss as it is, under the
 * same model (nats). `plain` and `mirrored` are the two evaluation passes' losses. A gap that is
 * not finite (a diverged model) counts as 0: no evidence either way.
 */
export function mirrorGaps(plain: Float32Array, mirrored: Float32Array): Float32Array {
  if (plain.length !== mirrored.length)
    throw new RangeError(
      `mirror gap: ${plain.length} plain losses but ${mirrored.length} mirrored`,
    );
  const gap = new Float32Array(plain.length);
  for (let i = 0; i < gap.length; i++) {
    const d = mirrored[i] - plain[i];
    gap[i] = Number.isFinite(d) ? d : 0;
  }
  return gap;
}

/**
 * The mirror test's conformal scores 1 − p_m for every row but the probes (NaN there): the gap
 * as a robust z-score within its class (some classes change more under a mirror than others),
 * calibrated on all clean probes together, as the easiness test is. Flag ⇔ score > 1 − alpha.
 */
export function mirrorTest(
  gap: ArrayLike<number>,
  probes: ProbeRows,
  alpha: number,
  context?: { labels: ArrayLike<number>; numClasses: number },
): Float32Array {
  if (!(alpha > 0 && alpha < 1)) throw new InvalidOptionError(`mirror ${alpha} must be in (0, 1)`);
  return calibratedZTest(classRobustZ(Float64Array.from(gap), context), probes);
}
