import { DatasetFormatError } from '../errors.ts';
import { IMAGE_BYTES, type ImageSplit } from '../dataset.ts';
import { centerSquare, resizeTo32 } from '../resize.ts';
import type { ImageDecoder, NamedBytes, ProgressFn } from './types.ts';

const IMAGE_EXT = /\.(png|jpe?g)$/i;

/** True when the files include PNG or JPEG images. */
export function looksLikeImageFolder(files: NamedBytes[]): boolean {
  return files.some((f) => IMAGE_EXT.test(f.name));
}

/**
 * Parses an image-folder layout: `<class>/<image>` or `train|test/<class>/<image>`, optionally
 * under one common top folder; PNG or JPEG. Classes are the folder names, sorted. Each image is
 * centre-cropped to a square and resized to 32×32 (area/bilinear) — cropping rather than
 * stretching keeps object shapes, which is what classifiers of photos expect. Each image's source
 * is its path inside the archive.
 */
export async function parseImageFolder(
  files: NamedBytes[],
  decode: ImageDecoder,
  onProgress?: ProgressFn,
): Promise<{ classes: string[]; splits: Partial<Record<'train' | 'test', ImageSplit>> }> {
  const images = files.filter((f) => IMAGE_EXT.test(f.name));
  if (images.length === 0) throw new DatasetFormatError('no PNG or JPEG images found');
  let paths = images.map((f) => f.name.split('/').filter((p) => p.length > 0));
  // Strip one common top folder (a zip of the folder itself) while every path still has
  // class/file (or split/class/file) below it.
  while (paths.every((p) => p.length >= 3 && p[0] === paths[0][0]) && !isSplit(paths[0][0])) {
    paths = paths.map((p) => p.slice(1));
  }
  const useSplits = paths.every((p) => p.length === 3 && isSplit(p[0]));
  const bad = paths.findIndex((p) => (useSplits ? p.length !== 3 : p.length !== 2));
  if (bad >= 0) {
    throw new DatasetFormatError(
      `${images[bad].name}: an image-folder zip needs one folder per class (class/image.png, or train/class/image.png and test/class/image.png); this image is not in such a folder`,
    );
  }
  const classOf = (p: string[]) => (useSplits ? p[1] : p[0]);
  const classes = [...new Set(paths.map(classOf))].sort();
  if (classes.length < 2)
    throw new DatasetFormatError(
      `an image-folder zip needs at least 2 class folders, found ${classes.length}`,
    );
  if (classes.length > 256)
    throw new DatasetFormatError(`at most 256 classes are supported, found ${classes.length}`);
  const groups: Record<'train' | 'test', number[]> = { train: [], test: [] };
  paths.forEach((p, i) =>
    groups[useSplits ? (p[0].toLowerCase() as 'train' | 'test') : 'train'].push(i),
  );
  const splits: Partial<Record<'train' | 'test', ImageSplit>> = {};
  let done = 0;
  for (const split of ['train', 'test'] as const) {
    const idx = groups[split];
    if (idx.length === 0) continue;
    const out = new Uint8Array(idx.length * IMAGE_BYTES);
    const labels = new Uint8Array(idx.length);
    for (let n = 0; n < idx.length; n++) {
      const file = images[idx[n]];
      let img;
      try {
        img = await decode(file);
      } catch (e) {
        throw new DatasetFormatError(
          `${file.name}: the image could not be decoded (${(e as Error).message}); remove or replace it`,
        );
      }
      resizeTo32(img, centerSquare(img.width, img.height), out, n * IMAGE_BYTES);
      labels[n] = classes.indexOf(classOf(paths[idx[n]]));
      done++;
      if (onProgress && (done % 100 === 0 || done === images.length))
        onProgress({ stage: 'decoding images', done, total: images.length, unit: 'records' });
    }
    splits[split] = {
      count: idx.length,
      images: out,
      labels,
      sources: { kind: 'paths', paths: idx.map((i) => images[i].name) },
    };
  }
  return { classes, splits };
}

function isSplit(s: string): boolean {
  return /^(train|test)$/i.test(s);
}
