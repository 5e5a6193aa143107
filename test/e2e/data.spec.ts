import { expect, test, type Page } from '@playwright/test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cifarBytes } from '../unit/fixtures.ts';
import { openApp, watchConsole } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'badloss-e2e-'));

/** Keys in the app's IndexedDB store: [all dataset keys, manifest keys]. */
async function storedKeys(page: Page): Promise<{ all: number; manifests: number }> {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const req = indexedDB.open('badloss-lab');
        req.onerror = () => reject(req.error);
        req.onsuccess = () => {
          const db = req.result;
          const get = db.transaction('kv').objectStore('kv').getAllKeys();
          get.onsuccess = () => {
            const keys = (get.result as string[]).filter((k) => k.startsWith('ds:'));
            resolve({
              all: keys.length,
              manifests: keys.filter((k) => k.endsWith(':manifest')).length,
            });
          };
        };
      }),
  );
}

test('a CIFAR file chosen in the file picker is imported, survives a reload, and shows in the gallery', async ({
  page,
}) => {
  const console = watchConsole(page);
  const file = join(dir, 'data_batch_1.bin');
  writeFileSync(
    file,
    cifarBytes(200, (n) => n % 10),
  );
  await openApp(page);
  await expect(page.getByTestId('dataset-list')).toContainText('Demo shapes');
  await page.getByTestId('file-input').setInputFiles(file);
  const list = page.getByTestId('dataset-list');
  await expect(list).toContainText('data_batch_1.bin');
  await page.reload();
  await expect(page.getByTestId('dataset-list')).toContainText('data_batch_1.bin');
  await page.getByLabel('Use data_batch_1.bin').check();
  await expect(page.getByText('200 images', { exact: true })).toBeVisible();
  await expect(page.getByTestId('gallery').locator('canvas').first()).toBeVisible();
  // filter by class: 20 of each
  await page.getByLabel('Show class').selectOption({ label: 'cat' });
  await expect(page.getByText('20 images', { exact: true })).toBeVisible();
  // the same data again is recognised, not stored twice
  await page.getByTestId('file-input').setInputFiles(file);
  await expect(page.getByRole('status')).toContainText('already stored');
  expect((await storedKeys(page)).manifests).toBe(2);
  console.check();
});

test('a bad file is reported with its name and nothing is stored', async ({ page }) => {
  const file = join(dir, 'data_batch_2.bin');
  writeFileSync(file, cifarBytes(3, () => 1).subarray(0, 3073 * 3 - 7));
  await openApp(page);
  await expect(page.getByTestId('dataset-list')).toContainText('Demo shapes');
  const before = await storedKeys(page);
  await page.getByTestId('file-input').setInputFiles(file);
  const alert = page.getByRole('alert');
  await expect(alert).toContainText('DatasetFormatError');
  await expect(alert).toContainText('data_batch_2.bin');
  expect(await storedKeys(page)).toEqual(before);
});

test('cancelling an import halfway stores nothing and keeps what was there', async ({ page }) => {
  const file = join(dir, 'big.bin');
  writeFileSync(
    file,
    cifarBytes(50_000, (n) => n % 10),
  );
  await openApp(page);
  await expect(page.getByTestId('dataset-list')).toContainText('Demo shapes');
  const before = await storedKeys(page);
  await page.getByTestId('file-input').setInputFiles(file);
  const bar = page.getByRole('progressbar');
  await expect(bar).toBeVisible();
  // cancel while chunks are being written: poll every 10 ms and click in the same tick, since
  // storing 154 MB takes only a second or two
  await page.waitForFunction(
    () => {
      const bar = document.querySelector('[role=progressbar]');
      const label = bar?.getAttribute('aria-label') ?? '';
      // halfway through storing, well before the manifest that would commit the dataset
      if (!label.startsWith('Storing') || Number(bar?.getAttribute('aria-valuenow')) > 50)
        return false;
      const cancel = [...document.querySelectorAll('button')].find(
        (b) => b.textContent?.trim() === 'Cancel import',
      );
      cancel?.click();
      return !!cancel;
    },
    null,
    { polling: 10, timeout: 120_000 },
  );
  await expect(bar).toBeHidden();
  expect(await storedKeys(page)).toEqual(before);
  await page.reload();
  await expect(page.getByTestId('dataset-list')).toContainText('Demo shapes');
  await expect(page.getByTestId('dataset-list')).not.toContainText('big.bin');
  expect(await storedKeys(page)).toEqual(before);
});
