import { describe, expect, it } from 'vitest';
import { loadDatasetFiles } from '../../src/core/formats/load.ts';
import { parsePpm } from '../../src/core/formats/ppm.ts';
import { encodeCifar10, parseCifarBin } from '../../src/core/formats/cifar.ts';
import { nodeDecoder } from '../../src/cli/node-decoder.ts';
import { IMAGE_BYTES } from '../../src/core/dataset.ts';
import { cifarBytes, png, ppm, tarGz, text, zip } from './fixtures.ts';

const px = (images: Uint8Array, n: number, y: number, x: number) =>
  Array.from(
    images.subarray(n * IMAGE_BYTES + (y * 32 + x) * 3, n * IMAGE_BYTES + (y * 32 + x) * 3 + 3),
  );

describe('CIFAR binary', () => {
  it('converts planar RGB records to NHWC, row-major', () => {
    const split = parseCifarBin(
      { name: 'data_batch_1.bin', bytes: cifarBytes(3, (n) => n) },
      1,
      10,
    );
    expect(split.count).toBe(3);
    expect(Array.from(split.labels)).toEqual([0, 1, 2]);
    // pixel (y=2, x=5) is planar index 69: R = n, G = 100 + 69, B = 255 - n
    expect(px(split.images, 2, 2, 5)).toEqual([2, 169, 253]);
    expect(px(split.images, 1, 31, 31)).toEqual([1, 100 + (1023 % 100), 254]);
  });

  it('round-trips through encodeCifar10', () => {
    const bytes = cifarBytes(4, (n) => (n * 3) % 10);
    expect(encodeCifar10(parseCifarBin({ name: 'x.bin', bytes }, 1, 10))).toEqual(bytes);
  });

  it('rejects a truncated file, naming it and the leftover bytes', () => {
    const bytes = cifarBytes(2, () => 1).subarray(0, 3073 * 2 - 5);
    expect(() => parseCifarBin({ name: 'data_batch_3.bin', bytes }, 1, 10)).toThrow(
      /data_batch_3\.bin: .*3068 bytes left over/,
    );
  });

  it('rejects a label outside the class range, naming the record', () => {
    const bytes = cifarBytes(3, (n) => (n === 2 ? 10 : 0));
    expect(() => parseCifarBin({ name: 'test_batch.bin', bytes }, 1, 10)).toThrow(
      /test_batch\.bin: record 2 has label 10/,
    );
  });

  it('loads the distributed tar.gz with class names and splits', async () => {
    const archive = tarGz({
      'cifar-10-batches-bin/batches.meta.txt': text('a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n'),
      'cifar-10-batches-bin/data_batch_1.bin': cifarBytes(5, (n) => n % 10),
      'cifar-10-batches-bin/data_batch_2.bin': cifarBytes(4, () => 9),
      'cifar-10-batches-bin/test_batch.bin': cifarBytes(3, () => 2),
    });
    const ds = await loadDatasetFiles([{ name: 'cifar-10-binary.tar.gz', bytes: archive }]);
    expect(ds.format).toBe('cifar10');
    expect(ds.classes).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
    expect(ds.splits.train?.count).toBe(9);
    expect(Array.from(ds.splits.train!.labels)).toEqual([0, 1, 2, 3, 4, 9, 9, 9, 9]);
    expect(ds.splits.test?.count).toBe(3);
  });

  it('loads CIFAR-100 fine labels and keeps coarse labels', async () => {
    const names = Array.from({ length: 100 }, (_, i) => `f${i}`).join('\n');
    const ds = await loadDatasetFiles([
      { name: 'train.bin', bytes: cifarBytes(4, (n) => 97 + (n % 3), 2) },
      { name: 'fine_label_names.txt', bytes: text(names) },
    ]);
    expect(ds.format).toBe('cifar100');
    expect(Array.from(ds.splits.train!.labels)).toEqual([97, 98, 99, 97]);
    expect(Array.from(ds.splits.train!.coarseLabels!)).toEqual([
      19 - 17,
      19 - 18,
      19 - 19,
      19 - 17,
    ]);
    expect(ds.classes[99]).toBe('f99');
  });

  it('tells a CIFAR-10 train.bin (as cli poison writes it) from CIFAR-100 by its record size', async () => {
    const ten = await loadDatasetFiles([{ name: 'train.bin', bytes: cifarBytes(5, (n) => n) }]);
    expect(ten.format).toBe('cifar10');
    expect(Array.from(ten.splits.train!.labels)).toEqual([0, 1, 2, 3, 4]);
    const hundred = await loadDatasetFiles([
      { name: 'train.bin', bytes: cifarBytes(5, (n) => 90 + n, 2) },
    ]);
    expect(hundred.format).toBe('cifar100');
    expect(Array.from(hundred.splits.train!.labels)).toEqual([90, 91, 92, 93, 94]);
  });

  it('treats any other single .bin as a CIFAR-10 training split', async () => {
    const ds = await loadDatasetFiles([{ name: 'poisoned.bin', bytes: cifarBytes(2, () => 4) }]);
    expect(ds.format).toBe('cifar10');
    expect(ds.splits.train?.count).toBe(2);
  });

  it('rejects an empty dataset file and a corrupt archive', async () => {
    await expect(
      loadDatasetFiles([{ name: 'data_batch_1.bin', bytes: new Uint8Array(0) }]),
    ).rejects.toThrow(/data_batch_1\.bin: 0 bytes is not a whole number/);
    await expect(
      loadDatasetFiles([{ name: 'cifar-10-binary.tar.gz', bytes: text('not gzip at all') }]),
    ).rejects.toThrow(/cifar-10-binary\.tar\.gz: not a valid gzip file/);
    const emptyZip = zip({ 'readme.txt': text('nothing here') });
    await expect(loadDatasetFiles([{ name: 'empty.zip', bytes: emptyZip }])).rejects.toThrow(
      /empty\.zip: no dataset recognised/,
    );
  });

  it('rejects an empty set of files and unknown files', async () => {
    await expect(loadDatasetFiles([])).rejects.toThrow(/no files/);
    await expect(loadDatasetFiles([{ name: 'notes.txt', bytes: text('hi') }])).rejects.toThrow(
      /notes\.txt: no dataset recognised/,
    );
  });
});

describe('PPM', () => {
  it('parses P6 with comments', () => {
    const img = parsePpm({ name: 'a.ppm', bytes: ppm(3, 2, (x, y) => [x, y, 7]) });
    expect(img.width).toBe(3);
    expect(img.height).toBe(2);
    expect(Array.from(img.data.subarray(15, 18))).toEqual([2, 1, 7]);
  });
  it('rejects non-P6, truncated and corrupt files', () => {
    expect(() => parsePpm({ name: 'p3.ppm', bytes: text('P3\n1 1\n255\n0 0 0\n') })).toThrow(
      /p3\.ppm: not a binary PPM/,
    );
    expect(() =>
      parsePpm({ name: 't.ppm', bytes: ppm(4, 4, () => [1, 2, 3]).subarray(0, 30) }),
    ).toThrow(/t\.ppm: PPM is truncated/);
    expect(() => parsePpm({ name: 'c.ppm', bytes: text('P6\nxx 2\n255\n') })).toThrow(
      /c\.ppm: corrupt PPM header/,
    );
  });
});

function gtsrbTrainZip(extraCsv?: string): Uint8Array {
  // class 0: 40×50 image, ROI x 5..34, y 10..39 is red, outside is blue.
  // class 14: 20×16 image (enlarged), ROI the whole image, green.
  const red = ppm(40, 50, (x, y) =>
    x >= 5 && x <= 34 && y >= 10 && y <= 39 ? [200, 0, 0] : [0, 0, 255],
  );
  const green = ppm(20, 16, () => [0, 180, 0]);
  return zip({
    'GTSRB/Training/00000/00000_00000.ppm': red,
    'GTSRB/Training/00000/GT-00000.csv': text(
      extraCsv ??
        'Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n00000_00000.ppm;40;50;5;10;34;39;0\n',
    ),
    'GTSRB/Training/00014/00000_00001.ppm': green,
    'GTSRB/Training/00014/GT-00014.csv': text(
      'Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n00000_00001.ppm;20;16;0;0;19;15;14\n',
    ),
  });
}

describe('GTSRB', () => {
  it('crops to the ROI and resizes to 32×32', async () => {
    const ds = await loadDatasetFiles([
      { name: 'GTSRB_Final_Training_Images.zip', bytes: gtsrbTrainZip() },
    ]);
    expect(ds.format).toBe('gtsrb');
    expect(ds.classes).toHaveLength(43);
    const tr = ds.splits.train!;
    expect(Array.from(tr.labels)).toEqual([0, 14]);
    // every pixel of the cropped image is pure red: the blue margin was cut away
    for (const [y, x] of [
      [0, 0],
      [31, 31],
      [0, 31],
      [16, 16],
    ])
      expect(px(tr.images, 0, y, x)).toEqual([200, 0, 0]);
    expect(px(tr.images, 1, 5, 5)).toEqual([0, 180, 0]);
  });

  it('reads the test split with GT-final_test.csv', async () => {
    const test = zip({
      'GTSRB/Final_Test/Images/00000.ppm': ppm(30, 30, () => [9, 9, 9]),
      'GTSRB/Final_Test/Images/00001.ppm': ppm(33, 31, () => [50, 60, 70]),
    });
    const csv = text(
      'Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n00000.ppm;30;30;2;2;27;27;3\n00001.ppm;33;31;1;1;30;28;42\n',
    );
    const ds = await loadDatasetFiles([
      { name: 'GTSRB_Final_Test_Images.zip', bytes: test },
      { name: 'GT-final_test.csv', bytes: csv },
    ]);
    expect(Array.from(ds.splits.test!.labels)).toEqual([3, 42]);
    expect(px(ds.splits.test!.images, 1, 10, 10)).toEqual([50, 60, 70]);
  });

  it('rejects a CSV missing columns and an image missing from the zip', async () => {
    const badCols = gtsrbTrainZip('Filename;Width;Height;ClassId\n00000_00000.ppm;40;50;0\n');
    await expect(loadDatasetFiles([{ name: 'g.zip', bytes: badCols }])).rejects.toThrow(
      /GT-00000\.csv: CSV is missing column\(s\) Roi\.X1, Roi\.Y1, Roi\.X2, Roi\.Y2/,
    );
    const missing = gtsrbTrainZip(
      'Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\nnope.ppm;40;50;5;10;34;39;0\n',
    );
    await expect(loadDatasetFiles([{ name: 'g.zip', bytes: missing }])).rejects.toThrow(
      /line 2: image .*nope\.ppm is missing/,
    );
  });

  it('rejects test images without labels', async () => {
    const test = zip({ 'GTSRB/Final_Test/Images/00000.ppm': ppm(30, 30, () => [9, 9, 9]) });
    await expect(loadDatasetFiles([{ name: 't.zip', bytes: test }])).rejects.toThrow(
      /GT-final_test\.csv/,
    );
  });
});

describe('image folder zip', () => {
  it('reads train/test class folders of PNGs, centre-cropped', async () => {
    const z = zip({
      'pets/train/cat/a.png': png(40, 20, [255, 0, 0]),
      'pets/train/dog/b.png': png(16, 16, [0, 0, 255]),
      'pets/test/cat/c.png': png(32, 32, [1, 2, 3]),
      'pets/test/dog/d.png': png(64, 64, [4, 5, 6]),
    });
    const ds = await loadDatasetFiles([{ name: 'pets.zip', bytes: z }], { decode: nodeDecoder });
    expect(ds.format).toBe('image-folder');
    expect(ds.classes).toEqual(['cat', 'dog']);
    expect(Array.from(ds.splits.train!.labels)).toEqual([0, 1]);
    expect(px(ds.splits.train!.images, 0, 31, 0)).toEqual([255, 0, 0]);
    expect(px(ds.splits.test!.images, 1, 3, 3)).toEqual([4, 5, 6]);
  });

  it('rejects images outside class folders and undecodable images', async () => {
    const flat = zip({ 'a.png': png(4, 4, [0, 0, 0]), 'b.png': png(4, 4, [0, 0, 0]) });
    await expect(
      loadDatasetFiles([{ name: 'flat.zip', bytes: flat }], { decode: nodeDecoder }),
    ).rejects.toThrow(/a\.png: an image-folder zip needs one folder per class/);
    const broken = zip({
      'x/a.png': png(4, 4, [0, 0, 0]),
      'y/b.png': new Uint8Array([0x89, 0x50, 1, 2, 3]),
    });
    await expect(
      loadDatasetFiles([{ name: 'broken.zip', bytes: broken }], { decode: nodeDecoder }),
    ).rejects.toThrow(/y\/b\.png: the image could not be decoded/);
  });

  it('rejects a corrupt zip', async () => {
    await expect(
      loadDatasetFiles([{ name: 'bad.zip', bytes: text('PK not really') }]),
    ).rejects.toThrow(/bad\.zip: not a valid zip/);
  });
});
