import { DatasetFormatError } from '../errors.ts';
import type { Dataset, ImageSplit, SplitName } from '../dataset.ts';
import { concatSplits } from '../dataset.ts';
import { expandArchives } from './archive.ts';
import { CIFAR10_CLASSES, parseCifarBin, parseNameList } from './cifar.ts';
import { GTSRB_CLASSES, looksLikeGtsrb, parseGtsrb } from './gtsrb.ts';
import { looksLikeImageFolder, parseImageFolder } from './image-folder.ts';
import { baseName, type ImageDecoder, type NamedBytes, type ProgressFn } from './types.ts';

export interface LoadOptions {
  /** Decoder for PNG/JPEG (image-folder zips). Required only for those. */
  decode?: ImageDecoder;
  onProgress?: ProgressFn;
  /** Dataset name; defaults to the files' names. */
  name?: string;
}

const CIFAR10_BATCH = /^(data_batch_\d+|test_batch)\.bin$/i;
const CIFAR100_FILE = /^(train|test)\.bin$/i;

/**
 * Loads a dataset from user files (archives are expanded first) with the format recognised from
 * the file names and contents: CIFAR-10 binary (`data_batch_*.bin`, `test_batch.bin`, any other
 * single `.bin` as a training split — also a `train.bin` whose records are 3073 bytes, as
 * `cli poison` writes it), CIFAR-100 binary (`train.bin`/`test.bin` with or without
 * `fine_label_names.txt`), GTSRB (PPM + CSV) or an image-folder zip (PNG/JPEG).
 * Throws DatasetFormatError naming the file and the problem; returns only a complete dataset.
 */
export async function loadDatasetFiles(
  input: NamedBytes[],
  opts: LoadOptions = {},
): Promise<Dataset> {
  if (input.length === 0) throw new DatasetFormatError('no files given');
  const files = expandArchives(input);
  const name = opts.name ?? input.map((f) => baseName(f.name)).join(', ');
  const bins = files.filter((f) => f.name.toLowerCase().endsWith('.bin'));
  const byBase = (re: RegExp) => files.find((f) => re.test(baseName(f.name)));
  let ds: Dataset;
  // `train.bin` is CIFAR-100's name, but also what `cli poison --out train.bin` writes in
  // CIFAR-10's layout: the record size (3074 vs 3073 bytes) tells them apart.
  const isCifar100 =
    byBase(/^fine_label_names\.txt$/i) !== undefined ||
    (bins.length > 0 &&
      bins.every((f) => CIFAR100_FILE.test(baseName(f.name))) &&
      bins.some((f) => f.bytes.length % 3074 === 0 || f.bytes.length % 3073 !== 0));
  if (bins.length > 0 && isCifar100) {
    const fineNames = byBase(/^fine_label_names\.txt$/i);
    const coarseNames = byBase(/^coarse_label_names\.txt$/i);
    const classes = fineNames
      ? parseNameList(fineNames)
      : Array.from({ length: 100 }, (_, i) => `class ${i}`);
    const splits: Partial<Record<SplitName, ImageSplit>> = {};
    for (const f of bins) {
      const split: SplitName = /^test/i.test(baseName(f.name)) ? 'test' : 'train';
      splits[split] = parseCifarBin(f, 2, classes.length, opts.onProgress);
    }
    ds = {
      name,
      format: 'cifar100',
      classes,
      splits,
      ...(coarseNames ? { coarseClasses: parseNameList(coarseNames) } : {}),
    };
  } else if (bins.length > 0) {
    const meta = byBase(/^batches\.meta\.txt$/i);
    const classes = meta ? parseNameList(meta) : [...CIFAR10_CLASSES];
    const batches = bins.filter((f) => CIFAR10_BATCH.test(baseName(f.name)));
    const groups: Record<SplitName, NamedBytes[]> = { train: [], test: [] };
    if (batches.length > 0) {
      for (const f of batches.sort((a, b) =>
        a.name.localeCompare(b.name, 'en', { numeric: true }),
      )) {
        groups[/^test_batch/i.test(baseName(f.name)) ? 'test' : 'train'].push(f);
      }
    } else if (bins.length === 1) {
      groups.train.push(bins[0]);
    } else {
      throw new DatasetFormatError(
        `${bins.map((f) => baseName(f.name)).join(', ')}: several .bin files that are not CIFAR batches (data_batch_N.bin, test_batch.bin); give one file at a time`,
      );
    }
    const splits: Partial<Record<SplitName, ImageSplit>> = {};
    for (const split of ['train', 'test'] as const) {
      if (groups[split].length > 0)
        splits[split] = concatSplits(
          groups[split].map((f) => parseCifarBin(f, 1, classes.length, opts.onProgress)),
        );
    }
    ds = { name, format: 'cifar10', classes, splits };
  } else if (looksLikeGtsrb(files)) {
    ds = {
      name,
      format: 'gtsrb',
      classes: [...GTSRB_CLASSES],
      splits: parseGtsrb(files, opts.onProgress),
    };
  } else if (looksLikeImageFolder(files)) {
    if (!opts.decode) throw new DatasetFormatError('image-folder zips need an image decoder');
    const { classes, splits } = await parseImageFolder(files, opts.decode, opts.onProgress);
    ds = { name, format: 'image-folder', classes, splits };
  } else {
    throw new DatasetFormatError(
      `${input.map((f) => f.name).join(', ')}: no dataset recognised — expected CIFAR-10/100 binary files (.bin or cifar-10-binary.tar.gz), a GTSRB zip, or a zip of class folders with PNG/JPEG images`,
    );
  }
  const total = (ds.splits.train?.count ?? 0) + (ds.splits.test?.count ?? 0);
  if (total === 0) throw new DatasetFormatError(`${name}: the dataset is empty`);
  return ds;
}
