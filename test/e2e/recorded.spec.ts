import { expect, test, type Page } from '@playwright/test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordedFiles } from '../unit/recorded-fixture.ts';
import { openApp, watchConsole } from './helpers.ts';

const nav = (page: Page, name: string) =>
  page
    .getByRole('navigation', { name: 'Workflow' })
    .getByRole('button', { name: new RegExp(`^\\d\\s*${name}`) });

test('trajectories recorded elsewhere open in the Detect step with their truth file and training set', async ({
  page,
}) => {
  test.setTimeout(180_000);
  const console = watchConsole(page);
  const files = await recordedFiles();
  const dir = mkdtempSync(join(tmpdir(), 'badloss-recorded-'));
  writeFileSync(join(dir, 'train.bin'), files.trainBin);
  writeFileSync(join(dir, 'truth.json'), JSON.stringify(files.truth));
  writeFileSync(join(dir, 'trajectories.npy'), files.npy);

  await openApp(page, './?backend=cpu');
  await nav(page, 'Data').click();
  await page.getByTestId('file-input').setInputFiles(join(dir, 'train.bin'));
  await expect(page.getByTestId('dataset-list')).toContainText('train.bin', { timeout: 60_000 });

  await nav(page, 'Detect').click();
  const card = page.getByTestId('import-recorded');
  await card.locator('summary').click();
  await card.getByTestId('recorded-npy').setInputFiles(join(dir, 'trajectories.npy'));
  await card.getByTestId('recorded-truth').setInputFiles(join(dir, 'truth.json'));
  await card.getByLabel('Training set of the recording').selectOption({ label: 'train.bin' });
  await card.getByRole('button', { name: 'Open' }).click();

  await page.getByRole('button', { name: 'Run detection' }).click();
  await expect(page.getByTestId('score-histogram')).toBeVisible();
  await expect(page.getByTestId('removal-table')).toContainText(/Patch/);
  await nav(page, 'Retrain').click();
  await expect(page.getByTestId('recorded-elsewhere')).toContainText('trajectories.npy');
  await page.getByRole('button', { name: 'See the report →' }).click();
  await expect(page.getByTestId('verdict')).toBeVisible();
  console.check();
});
