import { expect, test, type Page } from '@playwright/test';
import { preset } from '../../src/core/experiment.ts';
import { openApp, watchConsole } from './helpers.ts';

const nav = (page: Page, name: string) =>
  page
    .getByRole('navigation', { name: 'Workflow' })
    .getByRole('button', { name: new RegExp(`^\\d\\s*${name}`) });

test('the comparison view renders every chosen defense and the report has one row per retrained defense', async ({
  page,
}) => {
  test.setTimeout(400_000);
  const console = watchConsole(page);
  const cfg = preset('tiny');
  cfg.attacks = [
    { id: 'patch', ratio: 0.1 },
    { id: 'blend-r', ratio: 0.1 },
  ];
  cfg.train = { ...cfg.train, epochs: 2, width: 0.25, batchSize: 16 };
  cfg.limit = { train: 160, test: 40 };
  cfg.probes.n = 6;
  await openApp(
    page,
    `./?backend=cpu#cfg=${Buffer.from(JSON.stringify(cfg)).toString('base64url')}`,
  );
  await nav(page, 'Data').click();
  await expect(page.getByTestId('dataset-list')).toContainText('Demo shapes');
  await nav(page, 'Probes').click();
  await page.getByRole('button', { name: /^Build the training set/ }).click();
  await expect(page.getByTestId('prepared-summary')).toContainText('160 images');
  await nav(page, 'Train').click();
  const prob = page.getByTestId('phase-probationary');
  await prob.getByRole('button', { name: 'Start training' }).click();
  await expect(prob).toContainText('✓ trained 2 epochs', { timeout: 300_000 });

  await nav(page, 'Detect').click();
  await page.getByRole('button', { name: 'Run detection' }).click();
  const view = page.getByTestId('defense-comparison');
  await expect(view).toBeVisible();
  await view.getByRole('checkbox', { name: 'Spectral Signatures' }).check();
  await expect(view.getByTestId('defense-row')).toHaveCount(2);
  await view.getByRole('checkbox', { name: 'ABL (isolation)' }).check();
  await expect(view.getByTestId('defense-row')).toHaveCount(3);
  await expect(view.getByTestId('roc')).toBeVisible();
  // Retrain without ABL's removals: a phase like the others.
  const ablBox = view.locator('.choice').filter({ hasText: 'ABL (isolation)' });
  await ablBox.getByRole('checkbox', { name: 'retrain' }).check();
  const abl = page.getByTestId('phase-retrain:abl');
  await abl.getByRole('button', { name: 'Start training' }).click();
  await expect(abl).toContainText('✓ trained 2 epochs', { timeout: 300_000 });

  await nav(page, 'Retrain').click();
  await page.getByTestId('phase-retrain').getByRole('button', { name: 'Start training' }).click();
  await expect(page.getByTestId('phase-retrain')).toContainText('✓ trained 2 epochs', {
    timeout: 300_000,
  });
  await page.getByRole('button', { name: 'See the report →' }).click();
  const tables = page.getByTestId('defense-tables');
  await expect(tables.getByTestId('retrained-row')).toHaveCount(2);
  await expect(tables.getByTestId('retrained-row').nth(1)).toContainText('ABL (isolation)');
  await expect(tables.getByTestId('detection-row')).toHaveCount(3);
  await expect(page.getByTestId('defense-sentence')).toContainText('did best');
  console.check();
});
