import { createTar } from 'nanotar';
import { gzipSync, zipSync } from 'fflate';
import { encode as encodePng } from 'fast-png';
import { IMAGE_BYTES } from '../../src/core/dataset.ts';

/** A CIFAR-10 record stream: image n has R = n, G = 100 + pixel index % 100, B = 255 − n. */
export function cifarBytes(
  count: number,
  labelOf: (n: number) => number,
  labelBytes: 1 | 2 = 1,
): Uint8Array {
  const rec = labelBytes + IMAGE_BYTES;
  const out = new Uint8Array(count * rec);
  for (let n = 0; n < count; n++) {
    const b = n * rec;
    if (labelBytes === 2) out[b] = 19 - (labelOf(n) % 20);
    out[b + labelBytes - 1] = labelOf(n);
    for (let i = 0; i < 1024; i++) {
      out[b + labelBytes + i] = n % 256;
      out[b + labelBytes + 1024 + i] = 100 + (i % 100);
      out[b + labelBytes + 2048 + i] = 255 - (n % 256);
    }
  }
  return out;
}

export function tarGz(files: Record<string, Uint8Array>): Uint8Array {
  return gzipSync(createTar(Object.entries(files).map(([name, data]) => ({ name, data }))));
}

export function zip(files: Record<string, Uint8Array>): Uint8Array {
  return zipSync(files);
}

/** A binary PPM of w × h pixels from a function giving [r, g, b]. */
export function ppm(
  w: number,
  h: number,
  px: (x: number, y: number) => [number, number, number],
): Uint8Array {
  const header = new TextEncoder().encode(`P6\n# test\n${w} ${h}\n255\n`);
  const out = new Uint8Array(header.length + w * h * 3);
  out.set(header);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) out.set(px(x, y), header.length + (y * w + x) * 3);
  return out;
}

export function png(w: number, h: number, rgb: [number, number, number]): Uint8Array {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data.set(rgb, i * 3);
  return encodePng({ width: w, height: h, data, channels: 3, depth: 8 });
}

export const text = (s: string) => new TextEncoder().encode(s);
