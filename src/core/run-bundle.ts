import { gunzipSync, gzipSync, strFromU8, strToU8 } from 'fflate';
import { DatasetFormatError } from './errors.ts';
import type { RunRecord } from './run.ts';

/**
 * A finished run packed into one file: the run record (configuration, every stage's results,
 * the report) and the probationary model's loss trajectories — everything the Detect and Report
 * steps draw — but no model weights. The app ships one (`public/demo-run.badloss`, made by
 * `scripts/record-demo.ts`) so a class sees a whole result in seconds.
 *
 * Layout: gzip of UTF-8 JSON; typed arrays are `{"$typed": "f32" | "i8" | "u8", "b64": …}`
 * (little-endian bytes, base64).
 */
export interface RunBundle {
  format: 'badloss-run';
  version: 1;
  run: RunRecord;
  /** The probationary model's trajectories: run.prepared.trainCount × epochs, row-major, nats. */
  trajectories: Float32Array;
  epochs: number;
  /** Its penultimate features (trainCount × dim), which the feature-based defenses read. */
  features?: { dim: number; values: Float32Array };
  /** Its mirror gaps (trainCount), which the mirror test reads: the model does not travel. */
  mirrorGap?: Float32Array;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard base64 of bytes (ours: `btoa` needs a binary string, slow and memory-hungry for MBs). */
export function toBase64(b: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  if (i < b.length) {
    const n = (b[i] << 16) | ((b[i + 1] ?? 0) << 8);
    out += B64[n >> 18] + B64[(n >> 12) & 63];
    out += i + 1 < b.length ? B64[(n >> 6) & 63] + '=' : '==';
  }
  return out;
}

/** Bytes of standard base64 (throws on a character outside the alphabet). */
export function fromBase64(s: string): Uint8Array {
  const clean = s.replace(/=+$/, '');
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let o = 0;
  for (let i = 0; i < clean.length; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = i + j < clean.length ? B64.indexOf(clean[i + j]) : 0;
      if (c < 0) throw new RangeError(`invalid base64 character "${clean[i + j]}"`);
      n = (n << 6) | c;
    }
    out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function replacer(_key: string, v: unknown): unknown {
  if (v instanceof Float32Array) return { $typed: 'f32', b64: toBase64(bytesOf(v)) };
  if (v instanceof Int8Array) return { $typed: 'i8', b64: toBase64(bytesOf(v)) };
  if (v instanceof Uint8Array) return { $typed: 'u8', b64: toBase64(v) };
  // JSON has no NaN: scores of probe rows are NaN, so say it explicitly.
  if (typeof v === 'number' && !Number.isFinite(v)) return { $num: String(v) };
  return v;
}

function reviver(_key: string, v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  const o = v as { $typed?: string; b64?: string; $num?: string };
  if (o.$num !== undefined) return Number(o.$num);
  if (o.$typed === undefined || typeof o.b64 !== 'string') return v;
  const bytes = fromBase64(o.b64);
  if (o.$typed === 'u8') return bytes;
  if (o.$typed === 'i8') return new Int8Array(bytes.buffer);
  if (o.$typed === 'f32') return new Float32Array(bytes.buffer.slice(0, bytes.length));
  return v;
}

/** Packs a run and its probationary trajectories (trainCount × epochs). */
export function encodeRunBundle(
  run: RunRecord,
  trajectories: Float32Array,
  epochs: number,
  features?: { dim: number; values: Float32Array },
  mirrorGap?: Float32Array,
): Uint8Array {
  const b: RunBundle = {
    format: 'badloss-run',
    version: 1,
    run,
    trajectories,
    epochs,
    ...(features ? { features } : {}),
    ...(mirrorGap ? { mirrorGap } : {}),
  };
  return gzipSync(strToU8(JSON.stringify(b, replacer)), { level: 9, mtime: 0 });
}

/** Unpacks a bundle, naming the file and what is wrong with it. */
export function decodeRunBundle(name: string, bytes: Uint8Array): RunBundle {
  let text: string;
  try {
    text = strFromU8(gunzipSync(bytes));
  } catch {
    throw new DatasetFormatError(`${name}: not a BaDLoss run file (not gzip data)`);
  }
  let b: Partial<RunBundle>;
  try {
    b = JSON.parse(text, reviver) as Partial<RunBundle>;
  } catch (e) {
    throw new DatasetFormatError(`${name}: damaged run file (${(e as Error).message})`);
  }
  if (b.format !== 'badloss-run' || b.version !== 1)
    throw new DatasetFormatError(`${name}: not a version-1 BaDLoss run file`);
  const r = b.run;
  if (!r?.id || !r.prepared || !r.phases?.probationary?.done)
    throw new DatasetFormatError(`${name}: the run in it has no finished probationary model`);
  if (!(b.trajectories instanceof Float32Array) || !Number.isInteger(b.epochs))
    throw new DatasetFormatError(`${name}: the trajectories are missing`);
  if (b.trajectories.length !== r.prepared.trainCount * b.epochs!)
    throw new DatasetFormatError(
      `${name}: ${b.trajectories.length} trajectory values for ${r.prepared.trainCount} rows × ${b.epochs} epochs`,
    );
  if (
    b.mirrorGap !== undefined &&
    !(b.mirrorGap instanceof Float32Array && b.mirrorGap.length === r.prepared.trainCount)
  )
    throw new DatasetFormatError(
      `${name}: the mirror gaps are damaged (they must be ${r.prepared.trainCount} float32 values)`,
    );
  return b as RunBundle;
}
