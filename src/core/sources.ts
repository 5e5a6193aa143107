/**
 * Where each image of a split came from, so a flagged example can be found again in the files the
 * user imported. Kept compact: CIFAR record files as (name, record count) runs — the image at
 * index i is record i − (records of the files before it) of its file — and other formats as one
 * path per image (the PPM or PNG/JPEG path inside the archive).
 */
export type SplitSources =
  | { kind: 'records'; files: { name: string; count: number }[] }
  | { kind: 'paths'; paths: string[] };

/** Number of images the sources describe. */
export function sourceCount(s: SplitSources): number {
  return s.kind === 'paths' ? s.paths.length : s.files.reduce((n, f) => n + f.count, 0);
}

/**
 * The source of image `i`: `"data_batch_3.bin#1234"` (record 1234, 0-based) for record files,
 * the path for path lists, and `"row i"` when the sources are unknown (datasets stored before
 * sources were recorded, the demo set) or `i` is out of range.
 */
export function sourceOf(s: SplitSources | undefined, i: number): string {
  if (s?.kind === 'paths') return s.paths[i] ?? `row ${i}`;
  if (s?.kind === 'records') {
    let at = i;
    for (const f of s.files) {
      if (at < f.count) return `${f.name}#${at}`;
      at -= f.count;
    }
  }
  return `row ${i}`;
}

/**
 * Sources of splits concatenated in order: record runs stay runs, otherwise every image gets its
 * path (`sourceOf`). Undefined when any part's sources are unknown.
 */
export function concatSources(
  parts: { count: number; sources?: SplitSources }[],
): SplitSources | undefined {
  if (parts.length === 0 || parts.some((p) => !p.sources)) return undefined;
  const all = parts.map((p) => p.sources!);
  if (all.every((s) => s.kind === 'records'))
    return { kind: 'records', files: all.flatMap((s) => (s.kind === 'records' ? s.files : [])) };
  const paths: string[] = [];
  parts.forEach((p) => {
    for (let i = 0; i < p.count; i++) paths.push(sourceOf(p.sources, i));
  });
  return { kind: 'paths', paths };
}
