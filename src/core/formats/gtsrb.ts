import { DatasetFormatError } from '../errors.ts';
import { IMAGE_BYTES, type ImageSplit } from '../dataset.ts';
import { resizeTo32, type Rect } from '../resize.ts';
import { intField, parseSemicolonCsv } from './csv.ts';
import { parsePpm } from './ppm.ts';
import { baseName, type NamedBytes, type ProgressFn } from './types.ts';

/** The 43 GTSRB classes, by ClassId. */
export const GTSRB_CLASSES = [
  'Speed limit 20',
  'Speed limit 30',
  'Speed limit 50',
  'Speed limit 60',
  'Speed limit 70',
  'Speed limit 80',
  'End of speed limit 80',
  'Speed limit 100',
  'Speed limit 120',
  'No passing',
  'No passing for trucks',
  'Right of way at next intersection',
  'Priority road',
  'Yield',
  'Stop',
  'No vehicles',
  'Trucks prohibited',
  'No entry',
  'General caution',
  'Dangerous curve left',
  'Dangerous curve right',
  'Double curve',
  'Bumpy road',
  'Slippery road',
  'Road narrows on the right',
  'Road work',
  'Traffic signals',
  'Pedestrians',
  'Children crossing',
  'Bicycles crossing',
  'Beware of ice/snow',
  'Wild animals crossing',
  'End of all limits',
  'Turn right ahead',
  'Turn left ahead',
  'Ahead only',
  'Go straight or right',
  'Go straight or left',
  'Keep right',
  'Keep left',
  'Roundabout mandatory',
  'End of no passing',
  'End of no passing for trucks',
];

const CSV_COLUMNS = [
  'Filename',
  'Width',
  'Height',
  'Roi.X1',
  'Roi.Y1',
  'Roi.X2',
  'Roi.Y2',
  'ClassId',
];

/** True when the files look like GTSRB (PPM images). */
export function looksLikeGtsrb(files: NamedBytes[]): boolean {
  return files.some((f) => f.name.toLowerCase().endsWith('.ppm'));
}

/**
 * Parses GTSRB: training class folders `…/000NN/` with `GT-000NN.csv`, and/or test images
 * `…/Final_Test/Images/NNNNN.ppm` with `GT-final_test.csv` (ClassId column required). Each image
 * is cropped to its ROI (Roi.X2/Y2 inclusive, as in the official annotations), then resized to
 * 32×32 (area average when shrinking, bilinear when enlarging). Each image's source is its PPM path.
 */
export function parseGtsrb(
  files: NamedBytes[],
  onProgress?: ProgressFn,
): Partial<Record<'train' | 'test', ImageSplit>> {
  const byPath = new Map(files.map((f) => [f.name, f]));
  const csvs = files.filter((f) => /\.csv$/i.test(f.name));
  const trainCsvs = csvs.filter((f) => /^GT-\d{5}\.csv$/i.test(baseName(f.name)));
  const testCsv = csvs.find((f) => /^GT-final_test\.csv$/i.test(baseName(f.name)));
  const testPpms = files.filter((f) => /Final_Test\/Images\/[^/]+\.ppm$/i.test(f.name));
  const trainPpms = files.filter((f) => /\.ppm$/i.test(f.name) && !/Final_Test\//i.test(f.name));
  const splits: Partial<Record<'train' | 'test', ImageSplit>> = {};

  if (trainPpms.length > 0) {
    if (trainCsvs.length === 0) {
      throw new DatasetFormatError(
        'GTSRB training images found but no GT-000NN.csv annotation files; use the official GTSRB training zip (43 class folders, each with its CSV)',
      );
    }
    const jobs: Job[] = [];
    for (const csv of trainCsvs) {
      const dir = csv.name.slice(0, csv.name.length - baseName(csv.name).length);
      jobs.push(...csvJobs(csv, dir, byPath));
    }
    splits.train = decodeJobs(jobs, 'train', onProgress);
  }
  if (testPpms.length > 0) {
    if (!testCsv) {
      throw new DatasetFormatError(
        'GTSRB test images found but no GT-final_test.csv with ClassId; add the test labels file (GT-final_test.csv from the GTSRB test annotations)',
      );
    }
    const dir = testPpms[0].name.slice(
      0,
      testPpms[0].name.length - baseName(testPpms[0].name).length,
    );
    splits.test = decodeJobs(csvJobs(testCsv, dir, byPath), 'test', onProgress);
  }
  if (!splits.train && !splits.test) throw new DatasetFormatError('no GTSRB images (.ppm) found');
  return splits;
}

interface Job {
  file: NamedBytes;
  roi: Rect;
  label: number;
  where: string;
}

function csvJobs(csv: NamedBytes, dir: string, byPath: Map<string, NamedBytes>): Job[] {
  const recs = parseSemicolonCsv(csv.name, new TextDecoder().decode(csv.bytes), CSV_COLUMNS);
  return recs.map((r, i) => {
    const line = i + 2;
    const label = intField(csv.name, r, 'ClassId', line);
    if (label >= GTSRB_CLASSES.length) {
      throw new DatasetFormatError(`${csv.name}: line ${line}: ClassId ${label} is outside 0–42`);
    }
    const file = byPath.get(dir + r.Filename);
    if (!file)
      throw new DatasetFormatError(
        `${csv.name}: line ${line}: image ${dir + r.Filename} is missing from the archive`,
      );
    const x1 = intField(csv.name, r, 'Roi.X1', line);
    const y1 = intField(csv.name, r, 'Roi.Y1', line);
    const x2 = intField(csv.name, r, 'Roi.X2', line);
    const y2 = intField(csv.name, r, 'Roi.Y2', line);
    return {
      file,
      label,
      roi: { x0: x1, y0: y1, x1: x2 + 1, y1: y2 + 1 },
      where: `${csv.name} line ${line}`,
    };
  });
}

function decodeJobs(jobs: Job[], split: string, onProgress?: ProgressFn): ImageSplit {
  const count = jobs.length;
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  jobs.forEach((job, n) => {
    const img = parsePpm(job.file);
    const roi = {
      x0: Math.max(0, Math.min(job.roi.x0, img.width - 1)),
      y0: Math.max(0, Math.min(job.roi.y0, img.height - 1)),
      x1: Math.min(img.width, job.roi.x1),
      y1: Math.min(img.height, job.roi.y1),
    };
    if (roi.x1 <= roi.x0 || roi.y1 <= roi.y0) {
      throw new DatasetFormatError(
        `${job.where}: ROI is empty for ${img.width}×${img.height} image ${job.file.name}`,
      );
    }
    resizeTo32(img, roi, images, n * IMAGE_BYTES);
    labels[n] = job.label;
    if (onProgress && (n % 500 === 499 || n === count - 1))
      onProgress({ stage: `GTSRB ${split}`, done: n + 1, total: count, unit: 'records' });
  });
  return { count, images, labels, sources: { kind: 'paths', paths: jobs.map((j) => j.file.name) } };
}
