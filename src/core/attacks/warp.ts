import type { Rng } from '../rng.ts';

/**
 * WaNet's warping field (SPEC §2): a k×k×2 grid P ~ U(−1, 1), normalized by mean(|P|), upsampled
 * to H×W by bicubic interpolation with aligned corners (Keys cubic, a = −0.75, borders clamped —
 * the convention of PyTorch's `interpolate(mode='bicubic', align_corners=True)`).
 * Returns the H×W×2 noise grid, channel 0 = x (column) offset, channel 1 = y (row) offset.
 */
export function warpingNoiseGrid(rng: Rng, k: number, size: number): Float32Array {
  const ins = new Float64Array(k * k * 2);
  for (let i = 0; i < ins.length; i++) ins[i] = rng.float() * 2 - 1;
  let mean = 0;
  for (const v of ins) mean += Math.abs(v);
  mean /= ins.length;
  for (let i = 0; i < ins.length; i++) ins[i] /= mean;
  const out = new Float32Array(size * size * 2);
  for (let ch = 0; ch < 2; ch++) {
    // ins layout: channel-major planes (ch, row, col), like the reference's (1, 2, k, k) tensor.
    const plane = ins.subarray(ch * k * k, (ch + 1) * k * k);
    for (let r = 0; r < size; r++) {
      const sy = (r * (k - 1)) / (size - 1);
      const y0 = Math.floor(sy);
      const wy = cubicWeights(sy - y0);
      for (let c = 0; c < size; c++) {
        const sx = (c * (k - 1)) / (size - 1);
        const x0 = Math.floor(sx);
        const wx = cubicWeights(sx - x0);
        let v = 0;
        for (let i = 0; i < 4; i++) {
          const yy = Math.min(k - 1, Math.max(0, y0 - 1 + i));
          for (let j = 0; j < 4; j++) {
            const xx = Math.min(k - 1, Math.max(0, x0 - 1 + j));
            v += wy[i] * wx[j] * plane[yy * k + xx];
          }
        }
        out[(r * size + c) * 2 + ch] = v;
      }
    }
  }
  return out;
}

function cubicWeights(t: number): [number, number, number, number] {
  const A = -0.75;
  const w = (x: number) => {
    const ax = Math.abs(x);
    if (ax <= 1) return (A + 2) * ax ** 3 - (A + 3) * ax ** 2 + 1;
    if (ax < 2) return A * ax ** 3 - 5 * A * ax ** 2 + 8 * A * ax - 4 * A;
    return 0;
  };
  return [w(t + 1), w(t), w(1 - t), w(2 - t)];
}

/**
 * Warps a 32×32×3 image: sampling grid = identity + s·noise/H in normalized coordinates [−1, 1],
 * clamped; bilinear sampling with aligned corners (normalized −1 ↦ pixel 0, +1 ↦ pixel size−1).
 * Values are rounded to nearest and clamped to [0, 255].
 */
export function applyWarp(
  src: Uint8Array,
  dst: Uint8Array,
  noise: Float32Array,
  s: number,
  size: number,
): void {
  const lin = (i: number) => (size === 1 ? 0 : -1 + (2 * i) / (size - 1));
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      const gx = clamp1(lin(c) + (s * noise[(r * size + c) * 2]) / size);
      const gy = clamp1(lin(r) + (s * noise[(r * size + c) * 2 + 1]) / size);
      const px = ((gx + 1) / 2) * (size - 1);
      const py = ((gy + 1) / 2) * (size - 1);
      const x0 = Math.floor(px);
      const y0 = Math.floor(py);
      const x1 = Math.min(size - 1, x0 + 1);
      const y1 = Math.min(size - 1, y0 + 1);
      const fx = px - x0;
      const fy = py - y0;
      for (let ch = 0; ch < 3; ch++) {
        const at = (y: number, x: number) => src[(y * size + x) * 3 + ch];
        const v =
          (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) +
          fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
        dst[(r * size + c) * 3 + ch] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
      }
    }
  }
}

function clamp1(v: number): number {
  return v < -1 ? -1 : v > 1 ? 1 : v;
}
