import { IMAGE_BYTES, IMAGE_SIZE } from './dataset.ts';

/** A pixel rectangle, [x0, x1) × [y0, y1), in a 32×32 image. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * The smallest box holding every pixel where two 32×32×3 images differ in any channel, and the
 * number of differing values (pixel × channel) and pixels; box null when they are equal.
 */
export function changedBox(
  a: Uint8Array,
  b: Uint8Array,
): { box: Box | null; values: number; pixels: number } {
  let x0 = IMAGE_SIZE;
  let y0 = IMAGE_SIZE;
  let x1 = 0;
  let y1 = 0;
  let values = 0;
  let pixels = 0;
  for (let y = 0; y < IMAGE_SIZE; y++)
    for (let x = 0; x < IMAGE_SIZE; x++) {
      const o = (y * IMAGE_SIZE + x) * 3;
      let d = 0;
      for (let c = 0; c < 3; c++) if (a[o + c] !== b[o + c]) d++;
      if (d === 0) continue;
      values += d;
      pixels++;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x + 1);
      y1 = Math.max(y1, y + 1);
    }
  return { box: pixels ? { x0, y0, x1, y1 } : null, values, pixels };
}

/**
 * A square crop around `box` with `pad` pixels of margin (at least `minSide` wide, kept inside the
 * image), scaled up to 32×32 by nearest neighbour: returns the crop (IMAGE_BYTES, NHWC) and the
 * square it shows. The zoom factor is 32 / side.
 */
export function zoomCrop(
  img: Uint8Array,
  box: Box,
  pad = 2,
  minSide = 8,
): { image: Uint8Array; square: Box } {
  const side = Math.min(
    IMAGE_SIZE,
    Math.max(minSide, box.x1 - box.x0 + 2 * pad, box.y1 - box.y0 + 2 * pad),
  );
  const cx = (box.x0 + box.x1) / 2;
  const cy = (box.y0 + box.y1) / 2;
  const clampStart = (c: number) =>
    Math.max(0, Math.min(IMAGE_SIZE - side, Math.round(c - side / 2)));
  const sx = clampStart(cx);
  const sy = clampStart(cy);
  const out = new Uint8Array(IMAGE_BYTES);
  for (let y = 0; y < IMAGE_SIZE; y++)
    for (let x = 0; x < IMAGE_SIZE; x++) {
      const srcX = sx + Math.floor((x * side) / IMAGE_SIZE);
      const srcY = sy + Math.floor((y * side) / IMAGE_SIZE);
      const s = (srcY * IMAGE_SIZE + srcX) * 3;
      const o = (y * IMAGE_SIZE + x) * 3;
      out[o] = img[s];
      out[o + 1] = img[s + 1];
      out[o + 2] = img[s + 2];
    }
  return { image: out, square: { x0: sx, y0: sy, x1: sx + side, y1: sy + side } };
}
