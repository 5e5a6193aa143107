import { decode as decodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import type { ImageDecoder } from '../core/formats/types.ts';
import type { RasterImage } from '../core/resize.ts';

/**
 * Pure-JS PNG/JPEG decoding for Node (the browser uses createImageBitmap in the data worker).
 * PNGs of any bit depth / palette are reduced to 8-bit RGB(A); greyscale is expanded to RGB.
 */
export const nodeDecoder: ImageDecoder = async (file) => {
  const b = file.bytes;
  if (b[0] === 0x89 && b[1] === 0x50) return fromPng(file.bytes);
  if (b[0] === 0xff && b[1] === 0xd8) {
    const img = jpeg.decode(b, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
    return { width: img.width, height: img.height, channels: 4, data: img.data };
  }
  throw new Error('not a PNG or JPEG file');
};

function fromPng(bytes: Uint8Array): RasterImage {
  const png = decodePng(bytes);
  const { width, height } = png;
  const ch = png.channels;
  const src = png.data;
  const max = png.depth === 16 ? 65535 : png.depth < 8 ? 255 : 255;
  const scale = png.depth === 16 ? 255 / max : 1;
  const palette = png.palette;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    if (palette) {
      const p = palette[src[i]];
      data[i * 3] = p[0];
      data[i * 3 + 1] = p[1];
      data[i * 3 + 2] = p[2];
    } else if (ch >= 3) {
      for (let c = 0; c < 3; c++) data[i * 3 + c] = Math.round(src[i * ch + c] * scale);
    } else {
      const g = Math.round(src[i * ch] * scale);
      data[i * 3] = data[i * 3 + 1] = data[i * 3 + 2] = g;
    }
  }
  return { width, height, channels: 3, data };
}
