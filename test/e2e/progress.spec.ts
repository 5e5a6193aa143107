import { expect, test, type Page } from '@playwright/test';
import { preset } from '../../src/core/experiment.ts';
import { openApp, watchConsole } from './helpers.ts';

const nav = (page: Page, name: string) =>
  page
    .getByRole('navigation', { name: 'Workflow' })
    .getByRole('button', { name: new RegExp(`^\\d+\\s*${name}$`) });

test('the retraining progress bar only moves forward and its ETA never rises', async ({ page }) => {
  test.setTimeout(300_000);
  const console = watchConsole(page);
  const cfg = preset('tiny');
  cfg.train = { ...cfg.train, epochs: 6, width: 0.5, batchSize: 32 };
  cfg.limit = { train: 1500, test: 200 };
  cfg.probes.n = 20;
  await openApp(page, `./#cfg=${Buffer.from(JSON.stringify(cfg)).toString('base64url')}`);
  await nav(page, 'Probes').click();
  await page.getByRole('button', { name: /^Build the training set/ }).click();
  await expect(page.getByTestId('prepared-summary')).toBeVisible({ timeout: 60_000 });
  await nav(page, 'Train').click();
  const prob = page.getByTestId('phase-probationary');
  await prob.getByRole('button', { name: 'Start training' }).click();
  await expect(prob).toContainText('✓ trained 6 epochs', { timeout: 240_000 });
  await nav(page, 'Detect').click();
  await page.getByRole('button', { name: 'Run detection' }).click();
  await expect(page.getByTestId('score-histogram')).toBeVisible();
  await nav(page, 'Retrain').click();
  const re = page.getByTestId('phase-retrain');
  await re
    .getByRole('button', { name: /Start training|retrain anyway/ })
    .first()
    .click();
  // sample the bar while it runs: its share never goes back, its ETA never goes up
  const samples: { pct: number; eta: number }[] = [];
  const bar = re.getByRole('progressbar');
  await expect(bar).toBeVisible();
  // A short timeout per read: the bar can vanish between the count and the read (the phase ends),
  // and a read without one would wait for it until the test times out.
  const read = (name: string) => bar.getAttribute(name, { timeout: 500 }).catch(() => null);
  while ((await bar.count()) > 0) {
    const pct = Number((await read('aria-valuenow')) ?? NaN);
    const eta = Number((await read('data-eta')) || NaN);
    if (Number.isFinite(pct)) samples.push({ pct, eta });
    await page.waitForTimeout(100);
  }
  await expect(re).toContainText('✓ trained 6 epochs');
  expect(samples.length).toBeGreaterThan(3);
  for (let i = 1; i < samples.length; i++) {
    expect(samples[i].pct).toBeGreaterThanOrEqual(samples[i - 1].pct);
    if (Number.isFinite(samples[i].eta) && Number.isFinite(samples[i - 1].eta))
      expect(samples[i].eta).toBeLessThanOrEqual(samples[i - 1].eta + 1e-9);
  }
  console.check();
});
