import 'fake-indexeddb/auto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clear, keys } from 'idb-keyval';
import { labStore } from '../../src/storage/db.ts';
import {
  CHUNK_BYTES,
  deleteDataset,
  listDatasets,
  loadDataset,
  removeOrphans,
  renameDataset,
  saveDataset,
  loadSources,
} from '../../src/storage/datasets.ts';
import { generateDemoDataset } from '../../src/core/demo.ts';
import { IMAGE_BYTES } from '../../src/core/dataset.ts';

/**
 * The storage module's atomicity, run against fake-indexeddb in Node (the real-browser path is
 * covered end to end in test/e2e/data.spec.ts). Quota and write failures cannot be provoked in
 * headless Chromium, so they are simulated here.
 */
let quota: { usage: number; quota: number } | null = null;
beforeEach(async () => {
  await clear(labStore());
  quota = null;
  Object.defineProperty(globalThis, 'navigator', {
    configurable: true,
    value: { storage: { estimate: async () => quota ?? { usage: 0, quota: 1e12 } } },
  });
});
afterEach(() => {
  // @ts-expect-error test-only cleanup of the stubbed global
  delete globalThis.navigator;
});

const small = generateDemoDataset({ seed: 1, train: 3000, test: 200 }); // 9.8 MB: two chunks of train
const other = generateDemoDataset({ seed: 2, train: 100, test: 10 });

async function storedKeys(): Promise<string[]> {
  return (await keys(labStore())).map(String).sort();
}

describe('dataset storage', () => {
  it('round-trips a dataset pixel-exact, in ≤ 8 MB chunks, and lists, renames and deletes it', async () => {
    const { manifest, duplicate } = await saveDataset(small);
    expect(duplicate).toBe(false);
    expect(manifest.splits.train?.chunks).toBe(Math.ceil((3000 * IMAGE_BYTES) / CHUNK_BYTES));
    expect(manifest.splits.train?.labelCounts.reduce((a, b) => a + b)).toBe(3000);
    const back = await loadDataset(manifest.id);
    expect(
      Buffer.from(back.splits.train!.images).equals(Buffer.from(small.splits.train!.images)),
    ).toBe(true);
    expect(back.splits.test!.labels).toEqual(small.splits.test!.labels);
    expect((await listDatasets()).map((m) => m.name)).toEqual([small.name]);
    await renameDataset(manifest.id, '  My demo ');
    expect((await listDatasets())[0].name).toBe('My demo');
    await expect(renameDataset(manifest.id, '   ')).rejects.toThrow(/cannot be empty/);
    await deleteDataset(manifest.id);
    expect(await storedKeys()).toEqual([]);
    await expect(loadDataset(manifest.id)).rejects.toThrow(/not stored/);
  });

  it('recognises the same content and does not store it twice', async () => {
    const a = await saveDataset(small);
    const b = await saveDataset({ ...small, name: 'renamed copy' });
    expect(b.duplicate).toBe(true);
    expect(b.manifest.id).toBe(a.manifest.id);
    expect(await listDatasets()).toHaveLength(1);
  });

  it('refuses up front when the quota is too small, saying how much is needed and free', async () => {
    await saveDataset(other);
    const before = await storedKeys();
    quota = { usage: 5_000_000, quota: 8_000_000 };
    await expect(saveDataset(small)).rejects.toThrow(
      /needs 9\.8 MB of browser storage but only 3\.0 MB is free/,
    );
    expect(await storedKeys()).toEqual(before);
  });

  it('a write that fails half-way (disk full) leaves nothing behind and keeps what was stored', async () => {
    await saveDataset(other);
    const before = await storedKeys();
    const proto = IDBObjectStore.prototype;
    const put = proto.put;
    let calls = 0;
    proto.put = function (this: IDBObjectStore, ...args: Parameters<typeof put>) {
      if (++calls === 2)
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return put.apply(this, args);
    };
    try {
      await expect(saveDataset(small)).rejects.toMatchObject({
        name: 'QuotaError',
        message: expect.stringMatching(
          /browser storage is full: .* needs 9\.8 MB.*nothing was stored/,
        ),
      });
    } finally {
      proto.put = put;
    }
    expect(await storedKeys()).toEqual(before);
    expect((await loadDataset((await listDatasets())[0].id)).splits.train!.count).toBe(100);
  });

  it('a cancelled write removes its chunks; orphans of a crashed import are cleaned up', async () => {
    let polls = 0;
    await expect(saveDataset(small, { cancelled: () => ++polls > 1 })).rejects.toMatchObject({
      name: 'CancelledError',
    });
    expect(await storedKeys()).toEqual([]);
    // a crash after chunks but before the manifest: chunks without a manifest are orphans
    const { set } = await import('idb-keyval');
    await set('ds:dead-beef:train:img:0', new Uint8Array(10), labStore());
    await saveDataset(other);
    expect(await removeOrphans()).toBe(1);
    expect((await storedKeys()).some((k) => k.includes('dead-beef'))).toBe(false);
    expect(await listDatasets()).toHaveLength(1);
  });

  it('keeps per-image sources; datasets stored without them read as unknown and gain them on re-import', async () => {
    const paths = Array.from({ length: other.splits.train!.count }, (_, i) => `z/c/${i}.png`);
    const bare = await saveDataset(other);
    expect(bare.manifest.splits.train!.hasSources).toBe(false);
    expect(await loadSources(bare.manifest.id, 'train')).toBeUndefined();
    expect((await loadDataset(bare.manifest.id)).splits.train!.sources).toBeUndefined();
    const withSources = {
      ...other,
      splits: {
        ...other.splits,
        train: { ...other.splits.train!, sources: { kind: 'paths' as const, paths } },
      },
    };
    const again = await saveDataset(withSources);
    expect(again.duplicate).toBe(true);
    expect(again.manifest.splits.train!.hasSources).toBe(true);
    expect((await loadDataset(bare.manifest.id)).splits.train!.sources).toEqual({
      kind: 'paths',
      paths,
    });
    // the test split had no sources, and still has none
    expect(await loadSources(bare.manifest.id, 'test')).toBeUndefined();
    await deleteDataset(bare.manifest.id);
    expect(await storedKeys()).toEqual([]);
  });
});
