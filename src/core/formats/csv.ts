import { DatasetFormatError } from '../errors.ts';

/**
 * Parses a `;`-separated CSV with a header row into records keyed by column name, checking that
 * every column in `required` is present. Throws DatasetFormatError naming the file, the missing
 * columns, or the line with too few fields.
 */
export function parseSemicolonCsv(
  name: string,
  text: string,
  required: string[],
): Record<string, string>[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim().length > 0);
  if (lines.length === 0) throw new DatasetFormatError(`${name}: empty CSV`);
  const header = lines[0].split(';').map((h) => h.trim());
  const missing = required.filter((r) => !header.includes(r));
  if (missing.length > 0) {
    throw new DatasetFormatError(
      `${name}: CSV is missing column(s) ${missing.join(', ')} (header: ${header.join(';')})`,
    );
  }
  return lines.slice(1).map((line, i) => {
    const fields = line.split(';');
    if (fields.length < header.length) {
      throw new DatasetFormatError(
        `${name}: line ${i + 2} has ${fields.length} fields, expected ${header.length}`,
      );
    }
    const rec: Record<string, string> = {};
    header.forEach((h, j) => (rec[h] = fields[j].trim()));
    return rec;
  });
}

/** Parses a non-negative integer field, naming file, line and column on failure. */
export function intField(
  name: string,
  rec: Record<string, string>,
  col: string,
  line: number,
): number {
  const v = rec[col];
  if (!/^\d+$/.test(v))
    throw new DatasetFormatError(`${name}: line ${line}: ${col} "${v}" is not a whole number`);
  return Number(v);
}
