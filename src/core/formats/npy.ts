import { DatasetFormatError } from '../errors.ts';

/**
 * Parses a NumPy .npy file holding a 2-D float32 array (little-endian '<f4', C order):
 * magic "\x93NUMPY", version, header length, a Python-dict header, then the data.
 * Returns the shape and a Float32Array copy. Throws naming the file for anything else.
 */
export function parseNpy(
  name: string,
  b: Uint8Array,
): { shape: [number, number]; data: Float32Array } {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (b.length < 10 || magic.some((m, i) => b[i] !== m))
    throw new DatasetFormatError(`${name}: not a .npy file`);
  const major = b[6];
  const hlen =
    major === 1 ? b[8] | (b[9] << 8) : b[8] | (b[9] << 8) | (b[10] << 16) | (b[11] << 24);
  const start = major === 1 ? 10 : 12;
  if (start + hlen > b.length) throw new DatasetFormatError(`${name}: truncated .npy header`);
  const header = new TextDecoder().decode(b.subarray(start, start + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr !== '<f4' && descr !== '=f4')
    throw new DatasetFormatError(
      `${name}: dtype ${descr ?? '?'} is not float32 ('<f4'); save with arr.astype(np.float32)`,
    );
  if (fortran !== 'False')
    throw new DatasetFormatError(
      `${name}: Fortran-ordered arrays are not supported; save with np.ascontiguousarray`,
    );
  const dims = (shapeText ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (dims.length !== 2 || dims.some((d) => !Number.isInteger(d) || d < 1))
    throw new DatasetFormatError(`${name}: shape (${shapeText}) is not a 2-D (N, E) array`);
  const off = start + hlen;
  const need = dims[0] * dims[1] * 4;
  if (b.length - off < need)
    throw new DatasetFormatError(
      `${name}: truncated .npy data (${b.length - off} of ${need} bytes)`,
    );
  const data = new Float32Array(dims[0] * dims[1]);
  new Uint8Array(data.buffer).set(b.subarray(off, off + need));
  return { shape: [dims[0], dims[1]], data };
}

/**
 * Encodes a 2-D float32 array (rows × cols, row-major) as a NumPy .npy file, version 1.0,
 * little-endian '<f4', C order, header padded to a multiple of 64 bytes as NumPy writes it.
 */
export function encodeNpy(shape: [number, number], data: Float32Array): Uint8Array {
  const [rows, cols] = shape;
  if (data.length !== rows * cols)
    throw new RangeError(`encodeNpy: ${data.length} values do not fill a ${rows} × ${cols} array`);
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  const unpadded = 10 + dict.length + 1;
  const header = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.length * 4);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  // .npy is little-endian; so is every platform JavaScript runs on that we support.
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.length * 4), 10 + header.length);
  return out;
}
