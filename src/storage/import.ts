import { loadDatasetFiles } from '../core/formats/load.ts';
import { generateDemoDataset } from '../core/demo.ts';
import type { NamedBytes } from '../core/formats/types.ts';
import type { Dataset } from '../core/dataset.ts';
import { DatasetFormatError } from '../core/errors.ts';
import { browserDecoder } from './image-decoder.ts';
import { saveDataset, type DatasetManifest } from './datasets.ts';

/** Progress of an import, for the UI: a stage, and done/total in bytes or records. */
export interface ImportStatus {
  stage: 'reading' | 'downloading' | 'parsing' | 'storing';
  detail: string;
  done: number;
  total: number;
  unit: 'bytes' | 'records';
}

export type ImportProgress = (s: ImportStatus) => void;

export interface ImportResult {
  manifest: DatasetManifest;
  duplicate: boolean;
}

function store(ds: Dataset, onProgress?: ImportProgress): Promise<ImportResult> {
  return saveDataset(ds, {
    onProgress: (p) =>
      onProgress?.({
        stage: 'storing',
        detail: ds.name,
        done: p.done,
        total: p.total,
        unit: 'bytes',
      }),
  });
}

async function parseAndStore(
  files: NamedBytes[],
  name: string,
  onProgress?: ImportProgress,
): Promise<ImportResult> {
  const ds = await loadDatasetFiles(files, {
    decode: browserDecoder,
    name,
    onProgress: (p) =>
      onProgress?.({
        stage: 'parsing',
        detail: p.stage,
        done: p.done,
        total: p.total,
        unit: p.unit,
      }),
  });
  return store(ds, onProgress);
}

/** Reads user files (from a picker or a drop), parses them and stores the dataset. */
export async function importFiles(
  files: File[],
  onProgress?: ImportProgress,
): Promise<ImportResult> {
  const total = files.reduce((n, f) => n + f.size, 0);
  let done = 0;
  const named: NamedBytes[] = [];
  for (const f of files) {
    named.push({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) });
    done += f.size;
    onProgress?.({ stage: 'reading', detail: f.name, done, total, unit: 'bytes' });
  }
  return parseAndStore(named, files.map((f) => f.name).join(', '), onProgress);
}

/**
 * Downloads a dataset file from a URL and imports it. A network or CORS refusal is explained with
 * the alternative: download the file yourself and drop it here.
 */
export async function importUrl(url: string, onProgress?: ImportProgress): Promise<ImportResult> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DatasetFormatError(`"${url}" is not a valid URL`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    throw new DatasetFormatError(`${url}: only http(s) URLs can be imported`);
  let res: Response;
  try {
    res = await fetch(parsed, { mode: 'cors', credentials: 'omit' });
  } catch {
    throw new DatasetFormatError(
      `${url} could not be fetched: the server is unreachable or does not allow this page to read it (it must send Access-Control-Allow-Origin; this page is cross-origin isolated for multithreaded training, so files from other sites need CORS). Download the file with your browser, then drop it here.`,
    );
  }
  if (!res.ok)
    throw new DatasetFormatError(`${url}: the server answered ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get('content-length') ?? 0);
  const reader = res.body?.getReader();
  const parts: Uint8Array[] = [];
  let done = 0;
  if (reader) {
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      parts.push(value);
      done += value.length;
      onProgress?.({
        stage: 'downloading',
        detail: parsed.pathname,
        done,
        total: total || done,
        unit: 'bytes',
      });
    }
  }
  const bytes = new Uint8Array(done);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  const name = decodeURIComponent(parsed.pathname.split('/').pop() || parsed.hostname);
  return parseAndStore([{ name, bytes }], name, onProgress);
}

/** Generates and stores the built-in demo dataset. */
export async function importDemo(seed: number, onProgress?: ImportProgress): Promise<ImportResult> {
  const ds = generateDemoDataset({ seed });
  return store(ds, onProgress);
}
