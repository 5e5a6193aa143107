import type { RunRecord } from '../core/run.ts';
import type { DetectionContext } from '../core/run.ts';
import type { DatasetManifest } from '../storage/datasets.ts';
import { loadSources, loadSplit } from '../storage/datasets.ts';
import {
  cleanedDataset,
  cleanedRows,
  flaggedEntries,
  twoRoundEntries,
  imageDataUrl,
  imageFolderZip,
  rowSourceResolver,
  type FlaggedEntry,
} from '../core/exports.ts';
import { ORIGIN_TRAIN } from '../core/experiment.ts';
import type { VerdictExtras } from '../core/verdict.ts';
import { trainer } from './compute.ts';

/**
 * Everything the Report step's exports need beyond the stored run: the row → file mapping (from
 * the datasets' stored sources), the flagged list, and images fetched from the trainer worker.
 * Lives on the page (not in the worker) so the worker API stays as it is.
 */

/** Row → source ("pets/train/cat/1.png", "data_batch_3.bin#1234", "row N") for a run. */
export async function sourceResolver(
  rec: RunRecord,
  ctx: DetectionContext,
): Promise<(row: number) => string> {
  const trustedId =
    rec.config.probes.trusted === 'dataset' ? rec.config.probes.trustedDatasetId : undefined;
  const [train, test, trusted] = await Promise.all([
    loadSources(rec.datasetId, 'train').catch(() => undefined),
    loadSources(rec.datasetId, 'test').catch(() => undefined),
    trustedId ? loadSources(trustedId, 'train').catch(() => undefined) : undefined,
  ]);
  return rowSourceResolver(ctx.origin, { train, test, trusted });
}

/** The flagged examples, most suspicious first, with sources (and ground truth in a benchmark). */
export async function flaggedList(
  rec: RunRecord,
  ctx: DetectionContext,
  classes: string[],
): Promise<FlaggedEntry[]> {
  const det = rec.detection;
  if (!det) return [];
  const source = await sourceResolver(rec, ctx);
  const truth =
    rec.config.mode === 'benchmark'
      ? (i: number) => (ctx.truth[i] >= 0 ? ctx.attackIds[ctx.truth[i]] : 'clean')
      : undefined;
  const two = det.secondRound;
  if (!two)
    return flaggedEntries(det.summary.flagged, det.scores, ctx.labels, classes, source, truth);
  return twoRoundEntries(
    flaggedEntries(two.first.flagged, det.scores, ctx.labels, classes, source, truth),
    flaggedEntries(two.summary.flagged, two.scores, ctx.labels, classes, source, truth),
  );
}

/** What the verdict needs that the report does not hold. */
export function verdictExtras(rec: RunRecord, datasets: DatasetManifest[]): VerdictExtras {
  const trustedId = rec.config.probes.trustedDatasetId;
  return {
    looAuroc: rec.detection?.looAuroc,
    probeCounts: rec.prepared?.probes,
    probeFit: rec.detection?.probeFit,
    recordedElsewhere: rec.imported?.trajectoriesFile,
    trustedName:
      rec.config.probes.trusted === 'dataset'
        ? datasets.find((d) => d.id === trustedId)?.name
        : undefined,
  };
}

/** PNG data URLs of the `n` most suspicious flagged examples, with captions. */
export async function thumbnails(
  rec: RunRecord,
  entries: FlaggedEntry[],
  n = 24,
): Promise<{ src: string; caption: string }[]> {
  const top = entries.slice(0, n);
  if (top.length === 0) return [];
  const imgs = await trainer().trainingImages(
    rec.id,
    top.map((e) => e.row),
  );
  return top.map((e, j) => ({
    src: imageDataUrl(imgs.images, j),
    caption: `#${e.rank} · ${e.score.toFixed(2)} · ${e.truth ?? e.class} · ${e.source}`,
  }));
}

/** A zip of the flagged images in class folders, named after their sources. */
export async function flaggedImagesZip(
  rec: RunRecord,
  entries: FlaggedEntry[],
  classes: string[],
): Promise<Uint8Array> {
  const imgs = await trainer().trainingImages(
    rec.id,
    entries.map((e) => e.row),
  );
  return imageFolderZip(
    imgs,
    classes,
    entries.map((e) => e.source),
  );
}

/**
 * The cleaned training data (examined, non-probe, unflagged rows) in the format it was imported
 * in: CIFAR record files for CIFAR, class folders of PNGs otherwise. Returns the file name's
 * extension-bearing suffix and bytes; also how many rows it holds.
 */
export async function cleanedExport(
  rec: RunRecord,
  ctx: DetectionContext,
  manifest: DatasetManifest | undefined,
  classes: string[],
): Promise<{ bytes: Uint8Array; count: number }> {
  const flagged = rec.detection?.summary.flagged ?? [];
  const rows = cleanedRows(ctx.probeKind, flagged);
  const split = await trainer().trainingImages(rec.id, rows);
  const format = manifest?.format ?? 'image-folder';
  if (format === 'cifar100') {
    // CIFAR-100 records carry the coarse label too: look it up by each row's stored index.
    const stored = await loadSplit(rec.datasetId, 'train');
    const coarse = new Uint8Array(rows.length);
    rows.forEach((r, j) => {
      if (ctx.origin.split[r] === ORIGIN_TRAIN)
        coarse[j] = stored.coarseLabels?.[ctx.origin.index[r]] ?? 0;
    });
    split.coarseLabels = coarse;
  }
  const source = await sourceResolver(rec, ctx);
  return {
    bytes: cleanedDataset(split, format, classes, rows.map(source), manifest?.coarseClasses),
    count: rows.length,
  };
}

/** Starts a download of bytes or text under `name`. */
export function download(name: string, type: string, body: string | Uint8Array): void {
  const blob = new Blob([body as BlobPart], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
