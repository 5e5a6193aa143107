import { describe, expect, it } from 'vitest';
import { unzipSync } from 'fflate';
import { decode as decodePng } from 'fast-png';
import { loadDatasetFiles } from '../../src/core/formats/load.ts';
import { nodeDecoder } from '../../src/cli/node-decoder.ts';
import { concatSources, sourceOf } from '../../src/core/sources.ts';
import {
  base64,
  cleanedDataset,
  cleanedRows,
  fileSlug,
  flaggedEntries,
  twoRoundEntries,
  flaggedEntriesCsv,
  imageFolderZip,
  rowSourceResolver,
} from '../../src/core/exports.ts';
import { IMAGE_BYTES, subsetSplit } from '../../src/core/dataset.ts';
import { byScore } from '../../src/core/metrics.ts';
import { ORIGIN_TEST, ORIGIN_TRAIN, preset, prepareExperiment } from '../../src/core/experiment.ts';
import { generateDemoDataset } from '../../src/core/demo.ts';
import { PROBE_NONE } from '../../src/core/probes.ts';
import { cifarBytes, png, tarGz, text, zip } from './fixtures.ts';

describe('per-image sources', () => {
  it('name CIFAR records by file and record, across concatenated batches', async () => {
    const ds = await loadDatasetFiles([
      {
        name: 'cifar-10-binary.tar.gz',
        bytes: tarGz({
          'cifar-10-batches-bin/data_batch_1.bin': cifarBytes(3, (n) => n % 10),
          'cifar-10-batches-bin/data_batch_2.bin': cifarBytes(4, (n) => n % 10),
          'cifar-10-batches-bin/test_batch.bin': cifarBytes(2, (n) => n % 10),
        }),
      },
    ]);
    const s = ds.splits.train!.sources;
    expect(sourceOf(s, 0)).toBe('data_batch_1.bin#0');
    expect(sourceOf(s, 2)).toBe('data_batch_1.bin#2');
    expect(sourceOf(s, 3)).toBe('data_batch_2.bin#0');
    expect(sourceOf(s, 6)).toBe('data_batch_2.bin#3');
    expect(sourceOf(s, 7)).toBe('row 7');
    expect(sourceOf(ds.splits.test!.sources, 1)).toBe('test_batch.bin#1');
    expect(sourceOf(undefined, 12)).toBe('row 12');
  });
  it('name image-folder images by their path in the zip', async () => {
    const ds = await loadDatasetFiles(
      [
        {
          name: 'pets.zip',
          bytes: zip({
            'pets/train/cat/c1.png': png(8, 8, [200, 0, 0]),
            'pets/train/dog/d1.png': png(8, 8, [0, 200, 0]),
            'pets/test/cat/c2.png': png(8, 8, [200, 0, 0]),
            'pets/test/dog/d2.png': png(8, 8, [0, 200, 0]),
          }),
        },
      ],
      { decode: nodeDecoder },
    );
    expect(sourceOf(ds.splits.train!.sources, 1)).toBe('pets/train/dog/d1.png');
    expect(sourceOf(ds.splits.test!.sources, 0)).toBe('pets/test/cat/c2.png');
  });
  it('concatenate mixed kinds as paths, and unknown as unknown', () => {
    expect(
      concatSources([
        { count: 2, sources: { kind: 'records', files: [{ name: 'a.bin', count: 2 }] } },
        { count: 1, sources: { kind: 'paths', paths: ['x/y.png'] } },
      ]),
    ).toEqual({ kind: 'paths', paths: ['a.bin#0', 'a.bin#1', 'x/y.png'] });
    expect(concatSources([{ count: 2 }])).toBeUndefined();
  });
});

describe('row origins through an experiment', () => {
  const ds = generateDemoDataset({ seed: 3, train: 400, test: 150 });
  it('subsampling, poisoning and appended test probes keep the stored index of every row', () => {
    const cfg = {
      ...preset('quick'),
      mode: 'audit' as const,
      attacks: [],
      limit: { train: 120, test: 90 },
      probes: { n: 5, trigger: 'patch' as const, trusted: 'test' as const },
    };
    const p = prepareExperiment(ds, cfg);
    expect(p.train.count).toBe(135);
    for (let r = 0; r < 120; r++) {
      expect(p.origin.split[r]).toBe(ORIGIN_TRAIN);
      const i = p.origin.index[r];
      // same image and label as the stored row it names
      expect(p.train.images.subarray(r * IMAGE_BYTES, (r + 1) * IMAGE_BYTES)).toEqual(
        ds.splits.train!.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES),
      );
      expect(p.train.labels[r]).toBe(ds.splits.train!.labels[i]);
    }
    for (let r = 120; r < 135; r++) {
      expect(p.origin.split[r]).toBe(ORIGIN_TEST);
      expect(p.sourceLabels[r]).toBe(ds.splits.test!.labels[p.origin.index[r]]);
    }
    const names = rowSourceResolver(p.origin, {
      train: {
        kind: 'paths',
        paths: ds.splits.train!.labels.reduce<string[]>((a, _, i) => [...a, `tr/${i}.png`], []),
      },
    });
    expect(names(0)).toBe(`tr/${p.origin.index[0]}.png`);
    expect(names(125)).toBe(`test: row ${p.origin.index[125]}`);
  });
  it('benchmark probes overwrite rows in place and keep their origin', () => {
    const cfg = {
      ...preset('quick'),
      limit: { train: 300 },
      probes: { n: 10, trigger: 'patch' as const, trusted: 'train-untouched' as const },
    };
    const p = prepareExperiment(ds, cfg);
    expect(p.train.count).toBe(300);
    expect(p.origin.split.every((s) => s === ORIGIN_TRAIN)).toBe(true);
    const sorted = Array.from(p.origin.index);
    expect(sorted).toEqual([...sorted].sort((a, b) => a - b));
    expect(new Set(sorted).size).toBe(300);
  });
  it('a separately uploaded trusted dataset supplies the probes (appended), never the data under audit', () => {
    const trusted = generateDemoDataset({ seed: 9, train: 60, test: 10 });
    const cfg = {
      ...preset('quick'),
      mode: 'audit' as const,
      attacks: [],
      limit: undefined,
      probes: {
        n: 10,
        trigger: 'patch' as const,
        trusted: 'dataset' as const,
        trustedDatasetId: 'x',
      },
    };
    const p = prepareExperiment(ds, cfg, trusted);
    expect(p.train.count).toBe(430);
    expect(p.test.count).toBe(150); // the test split stays whole for evaluation
    for (let r = 0; r < 400; r++) expect(p.probes.probeKind[r]).toBe(PROBE_NONE);
    expect(p.origin.split[400]).toBe(2);
    expect(() => prepareExperiment(ds, cfg)).toThrow(/trusted dataset x is not available/);
  });
});

describe('flagged list', () => {
  it('orders by score with rank, source, label, class, and quotes fields', () => {
    const scores = Float32Array.from([0.1, 0.9, NaN, 0.5, 0.9]);
    const labels = Uint8Array.from([0, 1, 0, 0, 1]);
    const e = flaggedEntries(
      [1, 3, 4],
      scores,
      labels,
      ['cat', 'dog, big'],
      (r) => `f/${r}.png`,
      (r) => (r === 1 ? 'patch' : 'clean'),
    );
    expect(e.map((x) => [x.rank, x.row])).toEqual([
      [1, 1],
      [2, 4],
      [3, 3],
    ]);
    const csv = flaggedEntriesCsv(e).split('\n');
    expect(csv[0]).toBe('rank,source,row,label,class,score,truth');
    expect(csv[1]).toBe('1,f/1.png,1,1,"dog, big",0.900000,patch');
    expect(csv[3]).toBe('3,f/3.png,3,0,cat,0.500000,clean');
    // two rounds: the first round's rows by their scores, then the second's by its own
    const second = flaggedEntries(
      [0, 2],
      Float32Array.from([0.2, 0, 0.7]),
      labels,
      ['cat', 'dog, big'],
      (r) => `f/${r}.png`,
    );
    const both = twoRoundEntries(e, second);
    expect(both.map((x) => [x.rank, x.row, x.round])).toEqual([
      [1, 1, 1],
      [2, 4, 1],
      [3, 3, 1],
      [4, 2, 2],
      [5, 0, 2],
    ]);
    const csv2 = flaggedEntriesCsv(both).split('\n');
    expect(csv2[0]).toBe('rank,source,row,label,class,score,round,truth');
    expect(csv2[4]).toBe('4,f/2.png,2,0,cat,0.700000,2,');
  });

  it('orders rows by score, highest first, ties by row, unscored rows last', () => {
    const scores = Float32Array.from([0.3, NaN, 0.9, 0.3, -Infinity, NaN]);
    expect(byScore([0, 1, 2, 3, 4, 5], scores)).toEqual([2, 0, 3, 4, 1, 5]);
    expect(byScore([5, 4, 1], scores)).toEqual([4, 1, 5]);
    expect(byScore(new Set([5, 3, 0]), scores)).toEqual([0, 3, 5]);
    expect(byScore([], scores)).toEqual([]);
  });
});

describe('exports', () => {
  it('file slugs never double or dangle a hyphen', () => {
    expect(fileSlug('Demo shapes (seed 0)')).toBe('demo-shapes-seed-0');
    expect(`badloss-${fileSlug('  --pets.zip--  ')}-report.html`).toBe(
      'badloss-pets-zip-report.html',
    );
    expect(fileSlug('***')).toBe('run');
  });
  it('base64 matches Node', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 100]) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 255);
      expect(base64(b)).toBe(Buffer.from(b).toString('base64'));
    }
  });
  it('cleaned CIFAR-10 re-imports without the flagged examples', async () => {
    const ds = await loadDatasetFiles([
      { name: 'data_batch_1.bin', bytes: cifarBytes(12, (n) => n % 10) },
    ]);
    const train = ds.splits.train!;
    const probeKind = new Uint8Array(12);
    probeKind[5] = 2; // a backdoor probe: never exported
    const flagged = [2, 7];
    const keep = cleanedRows(probeKind, flagged);
    expect(keep).toEqual([0, 1, 3, 4, 6, 8, 9, 10, 11]);
    const bytes = cleanedDataset(subsetSplit(train, keep), 'cifar10', ds.classes, []);
    const back = await loadDatasetFiles([{ name: 'cleaned.zip', bytes }]);
    expect(back.classes).toEqual(ds.classes);
    const b = back.splits.train!;
    expect(b.count).toBe(9);
    // image n has R = n: the records are exactly the kept ones, in order
    expect(Array.from({ length: 9 }, (_, j) => b.images[j * IMAGE_BYTES])).toEqual(keep);
    expect(Array.from(b.labels)).toEqual(keep.map((n) => n % 10));
  });
  it('cleaned CIFAR-100 keeps coarse labels', async () => {
    const classes = Array.from({ length: 100 }, (_, i) => `c${i}`);
    const ds = await loadDatasetFiles([
      { name: 'train.bin', bytes: cifarBytes(6, (n) => n * 3, 2) },
      { name: 'fine_label_names.txt', bytes: text(classes.join('\n')) },
    ]);
    const keep = [0, 2, 5];
    const sub = {
      ...subsetSplit(ds.splits.train!, keep),
      coarseLabels: Uint8Array.from(keep.map((i) => ds.splits.train!.coarseLabels![i])),
    };
    const back = await loadDatasetFiles([
      { name: 'c.zip', bytes: cleanedDataset(sub, 'cifar100', classes, []) },
    ]);
    expect(Array.from(back.splits.train!.labels)).toEqual([0, 6, 15]);
    expect(Array.from(back.splits.train!.coarseLabels!)).toEqual(Array.from(sub.coarseLabels));
  });
  it('cleaned image folders re-import as class folders of the kept images, named after their sources', async () => {
    const ds = generateDemoDataset({ seed: 2, train: 20, test: 4 });
    const train = ds.splits.train!;
    const keep = [0, 3, 4, 9, 15];
    const names = keep.map((i) => `zoo/train/${ds.classes[train.labels[i]]}/img ${i}.jpg`);
    const bytes = cleanedDataset(subsetSplit(train, keep), 'image-folder', ds.classes, names);
    const files = Object.keys(unzipSync(bytes));
    expect(files).toContain(`${ds.classes[train.labels[3]]}/img_3.png`);
    const back = await loadDatasetFiles([{ name: 'x.zip', bytes }], { decode: nodeDecoder });
    const b = back.splits.train!;
    expect(b.count).toBe(keep.length);
    // pixel-exact PNGs: every kept image is there, the others are not
    const key = (imgs: Uint8Array, i: number) =>
      Buffer.from(imgs.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES)).toString('base64');
    const got = new Set(Array.from({ length: b.count }, (_, j) => key(b.images, j)));
    for (let i = 0; i < train.count; i++)
      expect(got.has(key(train.images, i))).toBe(keep.includes(i));
  });
  it('flagged images zip: unique names per class, decodable PNGs', () => {
    const ds = generateDemoDataset({ seed: 2, train: 4, test: 1 });
    const split = { ...ds.splits.train!, labels: Uint8Array.from([0, 0, 0, 1]) };
    const files = unzipSync(imageFolderZip(split, ds.classes, ['a/x.png', 'b/x.png', '', 'y.ppm']));
    const names = Object.keys(files).sort();
    expect(names).toEqual(
      [
        `${ds.classes[0]}/image-2.png`,
        `${ds.classes[0]}/x-2.png`,
        `${ds.classes[0]}/x.png`,
        `${ds.classes[1]}/y.png`,
      ].sort(),
    );
    const img = decodePng(files[`${ds.classes[1]}/y.png`]);
    expect([img.width, img.height, img.channels]).toEqual([32, 32, 3]);
  });
});
