import { CHANNELS, IMAGE_SIZE } from './dataset.ts';

/** A decoded image: width × height pixels, `channels` interleaved bytes each (3 = RGB, 4 = RGBA). */
export interface RasterImage {
  width: number;
  height: number;
  channels: 3 | 4;
  data: Uint8Array | Uint8ClampedArray;
}

/** A rectangle in pixel coordinates: columns [x0, x1), rows [y0, y1). */
export interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * Resample the `crop` of `src` to 32×32 RGB, written into `out` at `offset` (NHWC).
 *
 * Per axis, shrinking uses exact area averaging (each output pixel is the coverage-weighted mean
 * of the source pixels under it — no aliasing on GTSRB's up-to-250 px signs), and enlarging uses
 * bilinear interpolation with half-pixel centres. We write it ourselves because it is a few lines,
 * runs identically in Node and the browser (Canvas resampling differs between browsers), and
 * keeps imports byte-identical across runtimes.
 */
export function resizeTo32(src: RasterImage, crop: Rect, out: Uint8Array, offset: number): void {
  const cw = crop.x1 - crop.x0;
  const ch = crop.y1 - crop.y0;
  const xs = axisWeights(crop.x0, cw, src.width, IMAGE_SIZE);
  const ys = axisWeights(crop.y0, ch, src.height, IMAGE_SIZE);
  // Horizontal pass into a float buffer (ch rows of 32 columns), then vertical.
  const rows = ys.maxIndex - ys.minIndex + 1;
  const tmp = new Float32Array(rows * IMAGE_SIZE * CHANNELS);
  const sc = src.channels;
  for (let r = 0; r < rows; r++) {
    const sy = ys.minIndex + r;
    const rowBase = sy * src.width * sc;
    for (let ox = 0; ox < IMAGE_SIZE; ox++) {
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      for (let k = xs.start[ox]; k < xs.start[ox + 1]; k++) {
        const w = xs.weight[k];
        const p = rowBase + xs.index[k] * sc;
        a0 += w * src.data[p];
        a1 += w * src.data[p + 1];
        a2 += w * src.data[p + 2];
      }
      const t = (r * IMAGE_SIZE + ox) * CHANNELS;
      tmp[t] = a0;
      tmp[t + 1] = a1;
      tmp[t + 2] = a2;
    }
  }
  for (let oy = 0; oy < IMAGE_SIZE; oy++) {
    for (let ox = 0; ox < IMAGE_SIZE; ox++) {
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      for (let k = ys.start[oy]; k < ys.start[oy + 1]; k++) {
        const w = ys.weight[k];
        const t = ((ys.index[k] - ys.minIndex) * IMAGE_SIZE + ox) * CHANNELS;
        a0 += w * tmp[t];
        a1 += w * tmp[t + 1];
        a2 += w * tmp[t + 2];
      }
      const o = offset + (oy * IMAGE_SIZE + ox) * CHANNELS;
      out[o] = clampByte(a0);
      out[o + 1] = clampByte(a1);
      out[o + 2] = clampByte(a2);
    }
  }
}

/** Round to nearest and clamp to [0, 255]. */
export function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/** The largest centred square inside a width × height image. */
export function centerSquare(width: number, height: number): Rect {
  const s = Math.min(width, height);
  const x0 = Math.floor((width - s) / 2);
  const y0 = Math.floor((height - s) / 2);
  return { x0, y0, x1: x0 + s, y1: y0 + s };
}

interface AxisWeights {
  /** CSR layout: taps of output i are start[i] .. start[i+1]-1. */
  start: Int32Array;
  index: Int32Array;
  weight: Float32Array;
  minIndex: number;
  maxIndex: number;
}

function axisWeights(origin: number, length: number, limit: number, outLen: number): AxisWeights {
  const start = new Int32Array(outLen + 1);
  const index: number[] = [];
  const weight: number[] = [];
  const scale = length / outLen;
  for (let o = 0; o < outLen; o++) {
    start[o] = index.length;
    if (scale >= 1) {
      // Area: source interval [o*scale, (o+1)*scale) in crop coordinates.
      const a = o * scale;
      const b = a + scale;
      for (let s = Math.floor(a); s < Math.ceil(b - 1e-9); s++) {
        const cover = Math.min(b, s + 1) - Math.max(a, s);
        if (cover <= 0) continue;
        index.push(clampIndex(origin + s, limit));
        weight.push(cover / scale);
      }
    } else {
      // Bilinear with half-pixel centres.
      const c = (o + 0.5) * scale - 0.5;
      const f = Math.floor(c);
      const t = c - f;
      index.push(clampIndex(origin + Math.max(0, Math.min(length - 1, f)), limit));
      weight.push(1 - t);
      index.push(clampIndex(origin + Math.max(0, Math.min(length - 1, f + 1)), limit));
      weight.push(t);
    }
  }
  start[outLen] = index.length;
  let minIndex = Infinity;
  let maxIndex = -Infinity;
  for (const i of index) {
    minIndex = Math.min(minIndex, i);
    maxIndex = Math.max(maxIndex, i);
  }
  return {
    start,
    index: Int32Array.from(index),
    weight: Float32Array.from(weight),
    minIndex,
    maxIndex,
  };
}

function clampIndex(i: number, limit: number): number {
  return i < 0 ? 0 : i >= limit ? limit - 1 : i;
}
