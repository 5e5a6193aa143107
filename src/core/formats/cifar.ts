import { DatasetFormatError } from '../errors.ts';
import { IMAGE_BYTES, IMAGE_SIZE, type ImageSplit } from '../dataset.ts';
import { baseName, type NamedBytes, type ProgressFn } from './types.ts';

/** CIFAR-10 record: 1 label byte + 3072 planar pixels (1024 R, 1024 G, 1024 B, row-major). */
export const CIFAR10_RECORD = 1 + IMAGE_BYTES;
/** CIFAR-100 record: coarse label byte, fine label byte, 3072 planar pixels. */
export const CIFAR100_RECORD = 2 + IMAGE_BYTES;

export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

/**
 * Parses one CIFAR binary file into NHWC uint8 images. `labelBytes` is 1 (CIFAR-10) or 2
 * (CIFAR-100: coarse, then fine; the fine label is the label). Throws DatasetFormatError naming
 * the file and record when the size is not a multiple of the record size or a label ≥ numClasses.
 * Records each image's source as `<file name>#<record>`.
 */
export function parseCifarBin(
  file: NamedBytes,
  labelBytes: 1 | 2,
  numClasses: number,
  onProgress?: ProgressFn,
): ImageSplit {
  const rec = labelBytes + IMAGE_BYTES;
  const { bytes, name } = file;
  if (bytes.length === 0 || bytes.length % rec !== 0) {
    throw new DatasetFormatError(
      `${name}: ${bytes.length} bytes is not a whole number of ${rec}-byte CIFAR-${labelBytes === 1 ? 10 : 100} records` +
        ` (${Math.floor(bytes.length / rec)} records and ${bytes.length % rec} bytes left over); the file is truncated or not in that format`,
    );
  }
  const count = bytes.length / rec;
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  const coarse = labelBytes === 2 ? new Uint8Array(count) : undefined;
  const plane = IMAGE_SIZE * IMAGE_SIZE;
  for (let n = 0; n < count; n++) {
    const base = n * rec;
    const label = bytes[base + labelBytes - 1];
    if (label >= numClasses) {
      throw new DatasetFormatError(
        `${name}: record ${n} has label ${label}, outside the ${numClasses} classes (0–${numClasses - 1}); the file is corrupt or of another dataset`,
      );
    }
    labels[n] = label;
    if (coarse) coarse[n] = bytes[base];
    const px = base + labelBytes;
    const out = n * IMAGE_BYTES;
    for (let i = 0; i < plane; i++) {
      const o = out + i * 3;
      images[o] = bytes[px + i];
      images[o + 1] = bytes[px + plane + i];
      images[o + 2] = bytes[px + 2 * plane + i];
    }
    if (onProgress && (n & 1023) === 1023)
      onProgress({ stage: name, done: n + 1, total: count, unit: 'records' });
  }
  onProgress?.({ stage: name, done: count, total: count, unit: 'records' });
  const sources = { kind: 'records' as const, files: [{ name: baseName(name), count }] };
  return coarse
    ? { count, images, labels, coarseLabels: coarse, sources }
    : { count, images, labels, sources };
}

/** Encodes a split as CIFAR-10 binary records (label byte + planar RGB), in order. */
export function encodeCifar10(split: ImageSplit): Uint8Array {
  return encodeCifar(split, 1);
}

/**
 * Encodes a split as CIFAR binary records, in order: `labelBytes` 1 gives CIFAR-10 records
 * (label, 3072 planar RGB bytes); 2 gives CIFAR-100 records (coarse label — from
 * `split.coarseLabels`, required — then fine label, then the pixels).
 */
export function encodeCifar(split: ImageSplit, labelBytes: 1 | 2): Uint8Array {
  if (labelBytes === 2 && !split.coarseLabels)
    throw new DatasetFormatError(
      'CIFAR-100 records need the coarse labels of every image; load the split with them',
    );
  const rec = labelBytes + IMAGE_BYTES;
  const out = new Uint8Array(split.count * rec);
  const plane = IMAGE_SIZE * IMAGE_SIZE;
  for (let n = 0; n < split.count; n++) {
    const base = n * rec;
    if (labelBytes === 2) out[base] = split.coarseLabels![n];
    out[base + labelBytes - 1] = split.labels[n];
    const px = base + labelBytes;
    const src = n * IMAGE_BYTES;
    for (let i = 0; i < plane; i++) {
      out[px + i] = split.images[src + i * 3];
      out[px + plane + i] = split.images[src + i * 3 + 1];
      out[px + 2 * plane + i] = split.images[src + i * 3 + 2];
    }
  }
  return out;
}

/** Class names from a text file: one per line, blank lines ignored. */
export function parseNameList(file: NamedBytes): string[] {
  return new TextDecoder()
    .decode(file.bytes)
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
