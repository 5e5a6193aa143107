import { concatSources, type SplitSources } from './sources.ts';

/**
 * The one in-memory dataset representation (SPEC §1): uint8 RGB, NHWC, 32×32×3, pixel (n, y, x, c)
 * at `((n*32 + y)*32 + x)*3 + c`; labels are small integers indexing `classes`.
 */

export const IMAGE_SIZE = 32;
export const CHANNELS = 3;
/** Bytes per image: 32·32·3 = 3072. */
export const IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * CHANNELS;

export type SplitName = 'train' | 'test';
export type DatasetFormat = 'cifar10' | 'cifar100' | 'gtsrb' | 'image-folder' | 'demo';

/** One split: `count` images of IMAGE_BYTES each, and one label per image. */
export interface ImageSplit {
  count: number;
  /** count × 32 × 32 × 3, uint8, NHWC. */
  images: Uint8Array;
  /** count labels in [0, classes.length). */
  labels: Uint8Array;
  /** CIFAR-100 only: the coarse (superclass) label of each image, kept as metadata. */
  coarseLabels?: Uint8Array;
  /** Where each image came from (file path or CIFAR record); absent when unknown. */
  sources?: SplitSources;
}

export interface Dataset {
  name: string;
  format: DatasetFormat;
  classes: string[];
  splits: Partial<Record<SplitName, ImageSplit>>;
  /** CIFAR-100 only: names of the coarse labels. */
  coarseClasses?: string[];
}

/** Number of images of each class: labelCounts[c] = #{i : labels[i] = c}. */
export function labelCounts(labels: Uint8Array, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  return counts;
}

/** A copy of the images and labels at `indices`, in that order. */
export function subsetSplit(split: ImageSplit, indices: ArrayLike<number>): ImageSplit {
  const n = indices.length;
  const images = new Uint8Array(n * IMAGE_BYTES);
  const labels = new Uint8Array(n);
  for (let j = 0; j < n; j++) {
    const i = indices[j];
    images.set(split.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), j * IMAGE_BYTES);
    labels[j] = split.labels[i];
  }
  return { count: n, images, labels };
}

/** The bytes of image `i` (a view, not a copy). */
export function imageView(split: ImageSplit, i: number): Uint8Array {
  return split.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES);
}

/** Concatenates splits (same class space) in order, with their coarse labels and sources when every part has them. */
export function concatSplits(parts: ImageSplit[]): ImageSplit {
  const count = parts.reduce((s, p) => s + p.count, 0);
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  const hasCoarse = parts.length > 0 && parts.every((p) => p.coarseLabels);
  const coarse = hasCoarse ? new Uint8Array(count) : undefined;
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * IMAGE_BYTES);
    labels.set(p.labels, at);
    if (coarse && p.coarseLabels) coarse.set(p.coarseLabels, at);
    at += p.count;
  }
  const sources = concatSources(parts);
  return {
    count,
    images,
    labels,
    ...(coarse ? { coarseLabels: coarse } : {}),
    ...(sources ? { sources } : {}),
  };
}

/**
 * SHA-256 (hex) of a split's labels then images: the same training set gives the same
 * fingerprint in Node and in the browser (Web Crypto is global in both).
 */
export async function splitFingerprint(split: ImageSplit): Promise<string> {
  const all = new Uint8Array(split.labels.length + split.images.length);
  all.set(split.labels, 0);
  all.set(split.images, split.labels.length);
  const digest = await crypto.subtle.digest('SHA-256', all);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
