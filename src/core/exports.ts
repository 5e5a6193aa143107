import { zipSync } from 'fflate';
import { encode as encodePng } from 'fast-png';
import { IMAGE_BYTES, IMAGE_SIZE, type DatasetFormat, type ImageSplit } from './dataset.ts';
import { encodeCifar } from './formats/cifar.ts';
import { ORIGIN_TEST, ORIGIN_TRUSTED, type Prepared } from './experiment.ts';
import { sourceOf, type SplitSources } from './sources.ts';
import { byScore } from './metrics.ts';

/** One flagged training example, as the CSV / JSON exports list it. */
export interface FlaggedEntry {
  /** 1 = most suspicious. */
  rank: number;
  /** Row of the run's training set. */
  row: number;
  /** Where the image came from: file path inside the archive, `file.bin#record`, or `row N`. */
  source: string;
  label: number;
  class: string;
  /** Suspicion score (higher = more suspicious). */
  score: number;
  /** With two detection rounds: the round that flagged it (its score is that round's). */
  round?: 1 | 2;
  /** Benchmark only: the attack that poisoned it, or "clean". */
  truth?: string;
}

/**
 * Maps a training row to the source of its image through the run's `origin` (subsampling,
 * poisoning and appended probes keep the source image's index): rows from the trusted dataset are
 * prefixed "trusted:", rows from the test split "test:"; unknown sources read "row N" (N = the
 * index in the stored split).
 */
export function rowSourceResolver(
  origin: Prepared['origin'],
  sources: { train?: SplitSources; test?: SplitSources; trusted?: SplitSources },
): (row: number) => string {
  return (row) => {
    const split = origin.split[row];
    const i = origin.index[row];
    if (split === ORIGIN_TEST) return `test: ${sourceOf(sources.test, i)}`;
    if (split === ORIGIN_TRUSTED) return `trusted: ${sourceOf(sources.trusted, i)}`;
    return sourceOf(sources.train, i);
  };
}

/**
 * The flagged rows ordered by score, highest first (ties by row), with rank, source, label,
 * class and score. `truthOf` adds the ground truth in benchmark mode.
 */
export function flaggedEntries(
  flagged: readonly number[],
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: readonly string[],
  sourceOfRow: (row: number) => string,
  truthOf?: (row: number) => string,
): FlaggedEntry[] {
  return byScore(flagged, scores).map((row, j) => ({
    rank: j + 1,
    row,
    source: sourceOfRow(row),
    label: labels[row],
    class: classes[labels[row]] ?? String(labels[row]),
    score: scores[row],
    ...(truthOf ? { truth: truthOf(row) } : {}),
  }));
}

/**
 * Two detection rounds' flagged rows in one list: the first round's, most suspicious first by
 * its scores, then the second round's by its own (the two rounds' scores are not comparable).
 */
export function twoRoundEntries(
  first: readonly FlaggedEntry[],
  second: readonly FlaggedEntry[],
): FlaggedEntry[] {
  return [
    ...first.map((e) => ({ ...e, round: 1 as const })),
    ...second.map((e) => ({ ...e, round: 2 as const })),
  ].map((e, j) => ({ ...e, rank: j + 1 }));
}

const csvField = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

/** CSV (RFC 4180 quoting) of flagged entries: rank,source,row,label,class,score[,round][,truth]. */
export function flaggedEntriesCsv(entries: readonly FlaggedEntry[]): string {
  const truth = entries.some((e) => e.truth !== undefined);
  const round = entries.some((e) => e.round !== undefined);
  const lines = [
    'rank,source,row,label,class,score' + (round ? ',round' : '') + (truth ? ',truth' : ''),
  ];
  for (const e of entries)
    lines.push(
      [
        e.rank,
        csvField(e.source),
        e.row,
        e.label,
        csvField(e.class),
        e.score.toFixed(6),
        ...(round ? [e.round ?? ''] : []),
        ...(truth ? [csvField(e.truth ?? '')] : []),
      ].join(','),
    );
  return lines.join('\n') + '\n';
}

/** One 32×32 RGB image (image `i` of an NHWC uint8 array) as PNG bytes. */
export function imagePng(images: Uint8Array, i: number): Uint8Array {
  return encodePng({
    width: IMAGE_SIZE,
    height: IMAGE_SIZE,
    data: images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES),
    channels: 3,
    depth: 8,
  });
}

/** Base64 of bytes (for data URLs), without relying on Buffer or btoa. */
export function base64(bytes: Uint8Array): string {
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const b0 = bytes[i];
    const b1 = i + 1 < bytes.length ? bytes[i + 1] : 0;
    const b2 = i + 2 < bytes.length ? bytes[i + 2] : 0;
    out += A[b0 >> 2] + A[((b0 & 3) << 4) | (b1 >> 4)];
    out += i + 1 < bytes.length ? A[((b1 & 15) << 2) | (b2 >> 6)] : '=';
    out += i + 2 < bytes.length ? A[b2 & 63] : '=';
  }
  return out;
}

/** A PNG data URL of image `i`. */
export function imageDataUrl(images: Uint8Array, i: number): string {
  return `data:image/png;base64,${base64(imagePng(images, i))}`;
}

/** A file name from a source: its last path part without extension, safe for any file system. */
function stem(source: string): string {
  const last = source.split('/').pop() ?? source;
  return last
    .replace(/\.(png|jpe?g|ppm)$/i, '')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .slice(0, 80);
}

const safeFolder = (name: string) =>
  name
    .replace(/[/\\:*?"<>|]+/g, '_')
    .replace(/^\.+/, '_')
    .trim() || '_';

/**
 * A zip of class folders of PNGs (`<class>/<name>.png`), the layout the image-folder importer
 * reads back. Names come from `names[i]` (each image's source) and are made unique by a numeric
 * suffix; PNGs are stored uncompressed inside the zip (they are compressed already).
 */
export function imageFolderZip(
  split: ImageSplit,
  classes: readonly string[],
  names: readonly string[],
): Uint8Array {
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < split.count; i++) {
    const dir = safeFolder(classes[split.labels[i]] ?? String(split.labels[i]));
    const base = stem(names[i] ?? '') || `image-${i}`;
    let path = `${dir}/${base}.png`;
    for (let n = 2; path in files; n++) path = `${dir}/${base}-${n}.png`;
    files[path] = imagePng(split.images, i);
  }
  return zipSync(files, { level: 0 });
}

/** A file ready to download: name, MIME type and bytes. */
export interface ExportFile {
  name: string;
  type: string;
  bytes: Uint8Array;
}

/**
 * The cleaned training data: the examined, non-probe rows the detector did not flag, in the images
 * and labels they were trained with. CIFAR-10 → a zip holding `data_batch_1.bin` (CIFAR-10
 * records) and `batches.meta.txt`; CIFAR-100 → `train.bin` (coarse + fine label records, needs
 * `split.coarseLabels`) and `fine_label_names.txt` (+ `coarse_label_names.txt`); every other
 * format → a zip of class folders of PNGs. Each re-imports with the app's own importer.
 */
export function cleanedDataset(
  split: ImageSplit,
  format: DatasetFormat,
  classes: readonly string[],
  names: readonly string[],
  coarseClasses?: readonly string[],
): Uint8Array {
  const text = (lines: readonly string[]) => new TextEncoder().encode(lines.join('\n') + '\n');
  if (format === 'cifar10')
    return zipSync({
      'data_batch_1.bin': encodeCifar(split, 1),
      'batches.meta.txt': text(classes),
    });
  if (format === 'cifar100')
    return zipSync({
      'train.bin': encodeCifar(split, 2),
      'fine_label_names.txt': text(classes),
      ...(coarseClasses ? { 'coarse_label_names.txt': text(coarseClasses) } : {}),
    });
  return imageFolderZip(split, classes, names);
}

/** Rows of a run's training set that make up the cleaned data: not a probe, not flagged. */
export function cleanedRows(probeKind: Uint8Array, flagged: readonly number[]): number[] {
  const drop = new Uint8Array(probeKind.length);
  for (const r of flagged) drop[r] = 1;
  const out: number[] = [];
  for (let i = 0; i < probeKind.length; i++) if (probeKind[i] === 0 && !drop[i]) out.push(i);
  return out;
}

/**
 * A file-name stem from a free-form name: lower case, runs of anything but letters and digits
 * become one hyphen, no hyphen at either end (so "Demo (seed 0)" + "-report" never doubles one).
 */
export function fileSlug(name: string, fallback = 'run'): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
    .replace(/-+$/, '');
  return s || fallback;
}
