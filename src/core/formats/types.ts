import type { RasterImage } from '../resize.ts';

/** A file handed to a parser: its name (path inside an archive, or the file's name) and bytes. */
export interface NamedBytes {
  name: string;
  bytes: Uint8Array;
}

/** Progress of a long import: `done` of `total` in `unit`s, in the named stage. */
export interface ImportProgress {
  stage: string;
  done: number;
  total: number;
  unit: 'bytes' | 'records';
}

export type ProgressFn = (p: ImportProgress) => void;

/**
 * Decodes a PNG or JPEG file to pixels. The browser passes one built on createImageBitmap and
 * OffscreenCanvas; Node passes a pure-JS one (src/cli/node-decoder.ts). Rejects on bad data.
 */
export type ImageDecoder = (file: NamedBytes) => Promise<RasterImage>;

/** The file name without its directories. */
export function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}
