import { DatasetFormatError } from '../errors.ts';
import type { RasterImage } from '../resize.ts';
import type { NamedBytes } from './types.ts';

/**
 * Parses a binary PPM (P6, maxval ≤ 255) into RGB pixels. Header tokens are separated by
 * whitespace and may be interleaved with `#` comments; exactly one whitespace byte precedes the
 * pixel data. Throws DatasetFormatError naming the file for any other magic, a bad header, a
 * maxval above 255 or truncated pixel data.
 */
export function parsePpm(file: NamedBytes): RasterImage {
  const b = file.bytes;
  if (b.length < 2 || b[0] !== 0x50 || b[1] !== 0x36) {
    throw new DatasetFormatError(`${file.name}: not a binary PPM (expected magic "P6")`);
  }
  let pos = 2;
  const tokens: number[] = [];
  while (tokens.length < 3) {
    // skip whitespace and comments
    while (pos < b.length && (isSpace(b[pos]) || b[pos] === 0x23)) {
      if (b[pos] === 0x23) while (pos < b.length && b[pos] !== 0x0a) pos++;
      else pos++;
    }
    const start = pos;
    let v = 0;
    while (pos < b.length && b[pos] >= 0x30 && b[pos] <= 0x39) v = v * 10 + (b[pos++] - 0x30);
    if (pos === start) throw new DatasetFormatError(`${file.name}: corrupt PPM header`);
    tokens.push(v);
  }
  if (pos >= b.length || !isSpace(b[pos]))
    throw new DatasetFormatError(`${file.name}: corrupt PPM header`);
  pos++;
  const [width, height, maxval] = tokens;
  if (width < 1 || height < 1)
    throw new DatasetFormatError(`${file.name}: PPM size ${width}×${height} is empty`);
  if (maxval < 1 || maxval > 255) {
    throw new DatasetFormatError(
      `${file.name}: PPM maxval ${maxval} is not supported (only 8-bit, maxval ≤ 255)`,
    );
  }
  const need = width * height * 3;
  if (b.length - pos < need) {
    throw new DatasetFormatError(
      `${file.name}: PPM is truncated (${b.length - pos} of ${need} pixel bytes for ${width}×${height})`,
    );
  }
  let data = b.subarray(pos, pos + need);
  if (maxval !== 255) data = data.map((v) => Math.round((v * 255) / maxval));
  return { width, height, channels: 3, data };
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
}
