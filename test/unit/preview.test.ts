import { describe, expect, it } from 'vitest';
import { changedBox, zoomCrop } from '../../src/core/preview.ts';
import { IMAGE_BYTES } from '../../src/core/dataset.ts';
import { makeTrigger } from '../../src/core/attacks/triggers.ts';
import { Rng } from '../../src/core/rng.ts';

const px = (x: number, y: number) => (y * 32 + x) * 3;

describe('trigger previews', () => {
  it('find the patch trigger: 4 pixels, 12 values, in rows and columns 28–30', () => {
    const a = new Uint8Array(IMAGE_BYTES).fill(40);
    const b = a.slice();
    makeTrigger('patch', new Rng(1))(a, b);
    const res = changedBox(a, b);
    expect(res).toEqual({ box: { x0: 28, y0: 28, x1: 31, y1: 31 }, values: 12, pixels: 4 });
    expect(changedBox(a, a).box).toBeNull();
  });
  it('zoom: a square of at least 8 px kept inside the image, scaled by nearest neighbour', () => {
    const img = new Uint8Array(IMAGE_BYTES);
    img[px(30, 30)] = 255; // red pixel at (30, 30)
    const { image, square } = zoomCrop(img, { x0: 28, y0: 28, x1: 31, y1: 31 });
    expect(square).toEqual({ x0: 24, y0: 24, x1: 32, y1: 32 });
    // zoom ×4: source pixel (30, 30) covers output pixels 24–27 on both axes
    expect(image[px(24, 24)]).toBe(255);
    expect(image[px(27, 27)]).toBe(255);
    expect(image[px(23, 27)]).toBe(0);
    expect(image[px(28, 28)]).toBe(0);
  });
});
