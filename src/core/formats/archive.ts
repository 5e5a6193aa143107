import { gunzipSync, unzipSync } from 'fflate';
import { parseTar } from 'nanotar';
import { DatasetFormatError } from '../errors.ts';
import type { NamedBytes } from './types.ts';

/**
 * Expands archives into their member files: `.zip` (fflate), `.tar` (nanotar), `.tar.gz`/`.tgz`
 * and lone `.gz` (fflate's gunzip). Other files pass through. Directories, macOS resource forks
 * and hidden files are dropped; member names keep their paths.
 */
export function expandArchives(files: NamedBytes[]): NamedBytes[] {
  const out: NamedBytes[] = [];
  for (const f of files) {
    const lower = f.name.toLowerCase();
    if (lower.endsWith('.zip')) out.push(...unzip(f));
    else if (lower.endsWith('.tar.gz') || lower.endsWith('.tgz'))
      out.push(...untar({ name: f.name, bytes: gunzip(f) }));
    else if (lower.endsWith('.tar')) out.push(...untar(f));
    else if (lower.endsWith('.gz')) out.push({ name: f.name.slice(0, -3), bytes: gunzip(f) });
    else out.push(f);
  }
  return out.filter((f) => !isJunk(f.name));
}

function gunzip(f: NamedBytes): Uint8Array {
  try {
    return gunzipSync(f.bytes);
  } catch (e) {
    throw new DatasetFormatError(
      `${f.name}: not a valid gzip file (${(e as Error).message}); download it again`,
    );
  }
}

function untar(f: NamedBytes): NamedBytes[] {
  if (f.bytes.length < 512)
    throw new DatasetFormatError(`${f.name}: not a tar archive (too short)`);
  let items;
  try {
    items = parseTar(f.bytes);
  } catch (e) {
    throw new DatasetFormatError(`${f.name}: corrupt tar archive (${(e as Error).message})`);
  }
  const out: NamedBytes[] = [];
  for (const it of items) {
    if (it.type !== 'file' && it.type !== undefined) continue;
    if (!it.data) continue;
    if (it.data.length !== it.size) {
      throw new DatasetFormatError(
        `${f.name}: member ${it.name} is truncated (${it.data.length} of ${it.size} bytes)`,
      );
    }
    out.push({ name: it.name, bytes: it.data });
  }
  if (out.length === 0) throw new DatasetFormatError(`${f.name}: the tar archive holds no files`);
  return out;
}

function unzip(f: NamedBytes): NamedBytes[] {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(f.bytes);
  } catch (e) {
    throw new DatasetFormatError(`${f.name}: not a valid zip file (${(e as Error).message})`);
  }
  return Object.entries(entries)
    .filter(([name]) => !name.endsWith('/'))
    .map(([name, bytes]) => ({ name, bytes }));
}

function isJunk(path: string): boolean {
  return path
    .split('/')
    .some((p) => p === '__MACOSX' || (p.startsWith('.') && p.length > 1 && p !== '..'));
}
