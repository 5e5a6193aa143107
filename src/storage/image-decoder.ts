import type { ImageDecoder } from '../core/formats/types.ts';

/**
 * PNG/JPEG decoding with the browser's own codecs (createImageBitmap + OffscreenCanvas); works
 * in workers. Colour-space conversion and premultiplication are turned off so pixels are the
 * file's own values.
 */
export const browserDecoder: ImageDecoder = async (file) => {
  const type = /\.png$/i.test(file.name) ? 'image/png' : 'image/jpeg';
  const bitmap = await createImageBitmap(
    new Blob([file.bytes as Uint8Array<ArrayBuffer>], { type }),
    { colorSpaceConversion: 'none', premultiplyAlpha: 'none' },
  );
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('no 2-D canvas in this browser');
    ctx.drawImage(bitmap, 0, 0);
    const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    return { width: bitmap.width, height: bitmap.height, channels: 4, data };
  } finally {
    bitmap.close();
  }
};
