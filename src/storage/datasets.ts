import { del, delMany, get, keys, set, setMany } from 'idb-keyval';
import { CancelledError, DatasetFormatError, NotFoundError, QuotaError } from '../core/errors.ts';
import {
  IMAGE_BYTES,
  labelCounts,
  type Dataset,
  type DatasetFormat,
  type ImageSplit,
  type SplitName,
} from '../core/dataset.ts';
import type { SplitSources } from '../core/sources.ts';
import { freeBytes, isQuotaError, labStore, SCHEMA_VERSION } from './db.ts';

/** Images are written in chunks of at most this many bytes (8 MB: small transactions, steady progress). */
export const CHUNK_BYTES = 8 * 1024 * 1024;
const IMAGES_PER_CHUNK = Math.floor(CHUNK_BYTES / IMAGE_BYTES);

export interface SplitManifest {
  count: number;
  chunks: number;
  labelCounts: number[];
  hasCoarse: boolean;
  /** Per-image sources are stored (datasets imported before they were recorded have none). */
  hasSources?: boolean;
}

/** What is stored about a dataset; written last, so its presence means the dataset is complete. */
export interface DatasetManifest {
  schema: number;
  id: string;
  name: string;
  format: DatasetFormat;
  classes: string[];
  coarseClasses?: string[];
  splits: Partial<Record<SplitName, SplitManifest>>;
  /** SHA-256 (hex) of every split's labels and images: equal hashes mean the same data. */
  hash: string;
  bytes: number;
  createdAt: number;
}

export interface SaveProgress {
  done: number;
  total: number;
}

const manifestKey = (id: string) => `ds:${id}:manifest`;
const chunkKey = (id: string, split: SplitName, i: number) => `ds:${id}:${split}:img:${i}`;
const labelsKey = (id: string, split: SplitName) => `ds:${id}:${split}:labels`;
const coarseKey = (id: string, split: SplitName) => `ds:${id}:${split}:coarse`;
const sourcesKey = (id: string, split: SplitName) => `ds:${id}:${split}:sources`;

/** SHA-256 of the dataset's content (labels, then images, per split in a fixed order). */
export async function contentHash(ds: Dataset): Promise<string> {
  const parts: Uint8Array[] = [new TextEncoder().encode(ds.classes.join('\n'))];
  for (const s of ['train', 'test'] as const) {
    const split = ds.splits[s];
    if (split) parts.push(new TextEncoder().encode(s), split.labels, split.images);
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  const digest = await crypto.subtle.digest('SHA-256', all);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

export interface SaveOptions {
  onProgress?: (p: SaveProgress) => void;
  /** Polled between chunks; a true answer removes what was written and throws CancelledError. */
  cancelled?: () => boolean;
}

/**
 * Stores a dataset atomically: image chunks (≤ 8 MB) and labels first, the manifest last. On any
 * failure (quota, cancellation, a crash — see `removeOrphans`) nothing of it remains, and datasets
 * already stored are untouched. A dataset whose content hash is already stored is not stored
 * again; the existing manifest is returned with `duplicate: true`.
 */
export async function saveDataset(
  ds: Dataset,
  opts: SaveOptions = {},
): Promise<{ manifest: DatasetManifest; duplicate: boolean }> {
  const splitsPresent = (['train', 'test'] as const).filter((s) => (ds.splits[s]?.count ?? 0) > 0);
  if (splitsPresent.length === 0) throw new DatasetFormatError(`${ds.name}: the dataset is empty`);
  const hash = await contentHash(ds);
  const existing = (await listDatasets()).find((m) => m.hash === hash);
  if (existing) return { manifest: await backfillSources(existing, ds), duplicate: true };
  const bytes = splitsPresent.reduce(
    (n, s) => n + ds.splits[s]!.images.length + ds.splits[s]!.labels.length,
    0,
  );
  const free = await freeBytes();
  if (free !== undefined && bytes > free) {
    throw new QuotaError(
      `${ds.name} needs ${mb(bytes)} of browser storage but only ${mb(free)} is free; delete stored datasets or runs, or import fewer files`,
    );
  }
  const id = crypto.randomUUID();
  const store = labStore();
  const written: string[] = [];
  const manifest: DatasetManifest = {
    schema: SCHEMA_VERSION,
    id,
    name: ds.name,
    format: ds.format,
    classes: ds.classes,
    ...(ds.coarseClasses ? { coarseClasses: ds.coarseClasses } : {}),
    splits: {},
    hash,
    bytes,
    createdAt: Date.now(),
  };
  let done = 0;
  try {
    for (const s of splitsPresent) {
      const split = ds.splits[s]!;
      const chunks = Math.ceil(split.count / IMAGES_PER_CHUNK);
      for (let c = 0; c < chunks; c++) {
        if (opts.cancelled?.())
          throw new CancelledError(`import of ${ds.name} cancelled; nothing was stored`);
        const from = c * IMAGES_PER_CHUNK * IMAGE_BYTES;
        const to = Math.min(split.count * IMAGE_BYTES, from + IMAGES_PER_CHUNK * IMAGE_BYTES);
        const key = chunkKey(id, s, c);
        written.push(key);
        await set(key, split.images.slice(from, to), store);
        done += to - from;
        opts.onProgress?.({ done, total: bytes });
      }
      const entries: [string, Uint8Array][] = [[labelsKey(id, s), split.labels.slice()]];
      if (split.coarseLabels) entries.push([coarseKey(id, s), split.coarseLabels.slice()]);
      written.push(...entries.map(([k]) => k));
      await setMany(entries, store);
      if (split.sources) {
        written.push(sourcesKey(id, s));
        await set(sourcesKey(id, s), split.sources, store);
      }
      done += split.labels.length;
      manifest.splits[s] = {
        count: split.count,
        chunks,
        labelCounts: labelCounts(split.labels, ds.classes.length),
        hasCoarse: !!split.coarseLabels,
        hasSources: !!split.sources,
      };
    }
    if (opts.cancelled?.())
      throw new CancelledError(`import of ${ds.name} cancelled; nothing was stored`);
    await set(manifestKey(id), manifest, store);
    opts.onProgress?.({ done: bytes, total: bytes });
    return { manifest, duplicate: false };
  } catch (e) {
    await delMany(written, store).catch(() => undefined);
    if (isQuotaError(e)) {
      const left = await freeBytes();
      throw new QuotaError(
        `browser storage is full: ${ds.name} needs ${mb(bytes)}${left !== undefined ? `, ${mb(left)} is free` : ''}; nothing was stored — delete stored datasets or runs and try again`,
      );
    }
    throw e;
  }
}

/**
 * The same data imported again may now carry per-image sources an older copy was stored without:
 * add them to the stored copy (sources first, then the manifest that announces them).
 */
async function backfillSources(m: DatasetManifest, ds: Dataset): Promise<DatasetManifest> {
  const missing = (['train', 'test'] as const).filter(
    (s) => m.splits[s] && !m.splits[s]!.hasSources && ds.splits[s]?.sources,
  );
  if (missing.length === 0) return m;
  const store = labStore();
  for (const s of missing) await set(sourcesKey(m.id, s), ds.splits[s]!.sources, store);
  const splits = { ...m.splits };
  for (const s of missing) splits[s] = { ...splits[s]!, hasSources: true };
  const next = { ...m, splits };
  await set(manifestKey(m.id), next, store);
  return next;
}

/** All complete datasets, newest first (manifests of another schema version are skipped). */
export async function listDatasets(): Promise<DatasetManifest[]> {
  const store = labStore();
  const all = (await keys(store)).filter(
    (k): k is string => typeof k === 'string' && k.startsWith('ds:') && k.endsWith(':manifest'),
  );
  const ms = await Promise.all(all.map((k) => get<DatasetManifest>(k, store)));
  return ms
    .filter((m): m is DatasetManifest => !!m && m.schema === SCHEMA_VERSION)
    .sort((a, b) => b.createdAt - a.createdAt);
}

export async function getManifest(id: string): Promise<DatasetManifest> {
  const m = await get<DatasetManifest>(manifestKey(id), labStore());
  if (!m)
    throw new NotFoundError(
      `dataset ${id} is not stored (it may have been deleted); choose another dataset`,
    );
  return m;
}

/** Loads one split (all of its images) of a stored dataset. */
export async function loadSplit(id: string, split: SplitName): Promise<ImageSplit> {
  const m = await getManifest(id);
  const sm = m.splits[split];
  if (!sm) throw new NotFoundError(`${m.name} has no ${split} split`);
  const store = labStore();
  const images = new Uint8Array(sm.count * IMAGE_BYTES);
  let at = 0;
  for (let c = 0; c < sm.chunks; c++) {
    const chunk = await get<Uint8Array>(chunkKey(id, split, c), store);
    if (!chunk)
      throw new NotFoundError(
        `${m.name}: stored data is damaged (chunk ${c} of ${split} missing); delete and import it again`,
      );
    images.set(chunk, at);
    at += chunk.length;
  }
  const labels = await get<Uint8Array>(labelsKey(id, split), store);
  if (!labels)
    throw new NotFoundError(
      `${m.name}: stored labels of ${split} are missing; delete and import it again`,
    );
  const coarse = sm.hasCoarse ? await get<Uint8Array>(coarseKey(id, split), store) : undefined;
  const sources = sm.hasSources ? await loadSources(id, split) : undefined;
  return {
    count: sm.count,
    images,
    labels,
    ...(coarse ? { coarseLabels: coarse } : {}),
    ...(sources ? { sources } : {}),
  };
}

/**
 * Where each image of a stored split came from; undefined for datasets stored before sources were
 * recorded (callers then name images "row N", see `sourceOf`).
 */
export async function loadSources(id: string, split: SplitName): Promise<SplitSources | undefined> {
  return get<SplitSources>(sourcesKey(id, split), labStore());
}

/** Loads a whole stored dataset. */
export async function loadDataset(id: string): Promise<Dataset> {
  const m = await getManifest(id);
  const splits: Dataset['splits'] = {};
  for (const s of Object.keys(m.splits) as SplitName[]) splits[s] = await loadSplit(id, s);
  return {
    name: m.name,
    format: m.format,
    classes: m.classes,
    splits,
    ...(m.coarseClasses ? { coarseClasses: m.coarseClasses } : {}),
  };
}

export async function renameDataset(id: string, name: string): Promise<DatasetManifest> {
  const trimmed = name.trim();
  if (!trimmed) throw new DatasetFormatError('a dataset name cannot be empty');
  const m = await getManifest(id);
  const next = { ...m, name: trimmed };
  await set(manifestKey(id), next, labStore());
  return next;
}

/** Deletes a dataset: the manifest first (so it is never listed half-deleted), then its data. */
export async function deleteDataset(id: string): Promise<void> {
  const store = labStore();
  await del(manifestKey(id), store);
  const mine = (await keys(store)).filter(
    (k): k is string => typeof k === 'string' && k.startsWith(`ds:${id}:`),
  );
  await delMany(mine, store);
}

/**
 * Removes stored chunks that belong to no manifest — what a crashed or killed import left.
 * Call only when no import is running (at start-up, after a cancelled import's worker is gone).
 * Returns how many keys were removed.
 */
export async function removeOrphans(): Promise<number> {
  const store = labStore();
  const all = (await keys(store)).filter(
    (k): k is string => typeof k === 'string' && k.startsWith('ds:'),
  );
  const complete = new Set(all.filter((k) => k.endsWith(':manifest')).map((k) => k.split(':')[1]));
  const orphans = all.filter((k) => !complete.has(k.split(':')[1]));
  if (orphans.length > 0) await delMany(orphans, store);
  return orphans.length;
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}
