import { CHANNELS, IMAGE_BYTES, IMAGE_SIZE, type Dataset, type ImageSplit } from './dataset.ts';
import { clampByte } from './resize.ts';
import { Rng } from './rng.ts';

/** The demo dataset's classes: each a shape or texture with its own hue family. */
export const DEMO_CLASSES = [
  'disc',
  'square',
  'triangle',
  'plus',
  'ring',
  'h-stripes',
  'v-stripes',
  'checker',
  'diagonal',
  'dots',
];

export interface DemoOptions {
  seed: number;
  /** Training images (default 5000). */
  train?: number;
  /** Test images (default 1000). */
  test?: number;
}

/**
 * A procedurally generated 10-class dataset of 32×32 RGB images, deterministic from the seed.
 * Each image is a noisy two-tone background plus one class-specific shape or texture at a random
 * position and size, in a colour jittered around the class's hue. Classes are balanced (label of
 * image i is i mod 10 before a seeded shuffle). A small ResNet separates them in a few epochs.
 */
export function generateDemoDataset(opts: DemoOptions): Dataset {
  const rng = new Rng(opts.seed);
  const train = makeSplit(opts.train ?? 5000, rng.fork('train'));
  const test = makeSplit(opts.test ?? 1000, rng.fork('test'));
  return {
    name: `Demo shapes (seed ${opts.seed})`,
    format: 'demo',
    classes: [...DEMO_CLASSES],
    splits: { train, test },
  };
}

function makeSplit(count: number, rng: Rng): ImageSplit {
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = i % DEMO_CLASSES.length;
  rng.shuffle(labels);
  const images = new Uint8Array(count * IMAGE_BYTES);
  for (let n = 0; n < count; n++) drawImage(images, n * IMAGE_BYTES, labels[n], rng);
  return { count, images, labels };
}

function hsv(h: number, s: number, v: number): [number, number, number] {
  const f = (k: number) => {
    const kk = (k + h / 60) % 6;
    return v - v * s * Math.max(0, Math.min(kk, 4 - kk, 1));
  };
  return [f(5) * 255, f(3) * 255, f(1) * 255];
}

function drawImage(out: Uint8Array, base: number, label: number, rng: Rng): void {
  const S = IMAGE_SIZE;
  // Colour carries little class information: the hue is the class's only one image in two,
  // random otherwise, so the network has to learn shapes and textures (and, like on natural
  // images, memorizes part of the training set — which is what lets a 1% backdoor take hold).
  const ownHue = rng.float() < 0.5;
  const hue = ownHue ? (label * 36 + (rng.float() - 0.5) * 24 + 360) % 360 : rng.float() * 360;
  const fg = hsv(hue, 0.35 + 0.65 * rng.float(), 0.45 + 0.55 * rng.float());
  const bgHue = rng.float() * 360;
  const bgA = hsv(bgHue, 0.6 * rng.float(), 0.1 + 0.6 * rng.float());
  const bgB = hsv((bgHue + rng.float() * 120) % 360, 0.6 * rng.float(), 0.1 + 0.6 * rng.float());
  const cx = 8 + rng.float() * 16;
  const cy = 8 + rng.float() * 16;
  const r = 4 + rng.float() * 6;
  const period = 3 + rng.int(4);
  const phase = rng.int(period);
  // Little pixel noise (σ 0.5–2), as in clean photographs: a faint blended pattern is not drowned
  // in it. With σ 2–8 the random blend (α 0.075, a pattern of σ ≈ 5.5) looked like one more noisy
  // image and took hold to only 25% at 3%; with σ up to 32 it never did (docs/detection.md).
  const noise = 0.5 + rng.float() * 1.5;
  const angle = rng.float() < 0.5 ? 1 : -1;
  // A faint distractor: another class's texture over the background, at low contrast.
  const distractor = rng.int(DEMO_CLASSES.length);
  const dPeriod = 3 + rng.int(4);
  const dContrast = 0.25 * rng.float();
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const t = (x + y) / (2 * S - 2);
      const inside = shapeAt(label, x, y, cx, cy, r, period, phase, angle);
      const texture = shapeAt(distractor, x, y, 16, 16, 14, dPeriod, 0, 1) ? dContrast : 0;
      const o = base + (y * S + x) * CHANNELS;
      for (let c = 0; c < 3; c++) {
        const bg = (bgA[c] * (1 - t) + bgB[c] * t) * (1 - texture) + fg[c] * texture * 0.5;
        out[o + c] = clampByte((inside ? fg[c] : bg) + noise * rng.normal());
      }
    }
  }
}

function shapeAt(
  label: number,
  x: number,
  y: number,
  cx: number,
  cy: number,
  r: number,
  period: number,
  phase: number,
  angle: number,
): boolean {
  const dx = x - cx;
  const dy = y - cy;
  const d = Math.hypot(dx, dy);
  switch (label) {
    case 0:
      return d <= r;
    case 1:
      return Math.abs(dx) <= r * 0.85 && Math.abs(dy) <= r * 0.85;
    case 2:
      return dy <= r * 0.8 && dy >= -r && Math.abs(dx) <= (dy + r) * 0.6;
    case 3:
      return (
        (Math.abs(dx) <= r && Math.abs(dy) <= r * 0.3) ||
        (Math.abs(dy) <= r && Math.abs(dx) <= r * 0.3)
      );
    case 4:
      return d <= r && d >= r * 0.55;
    case 5:
      return (y + phase) % period < period / 2;
    case 6:
      return (x + phase) % period < period / 2;
    case 7:
      return (Math.floor((x + phase) / period) + Math.floor((y + phase) / period)) % 2 === 0;
    case 8:
      return Math.abs(dx - angle * dy) <= 2.2 && d <= r * 1.8;
    default:
      return (x + phase) % (period + 1) < 2 && (y + phase) % (period + 1) < 2;
  }
}
