import { expect, test } from '@playwright/test';
import { openApp, watchConsole } from './helpers.ts';

test('the shell loads, the worker runs a checked tfjs computation on the chosen backend', async ({
  page,
}) => {
  const console = watchConsole(page);
  await openApp(page);
  await expect(page.getByRole('heading', { name: 'BaDLoss Lab' })).toBeVisible();
  for (const step of ['Data', 'Attacks', 'Probes', 'Train', 'Detect', 'Retrain', 'Report']) {
    await expect(
      page
        .getByRole('navigation', { name: 'Workflow' })
        // the accessible name: the done-mark ✓ is aria-hidden
        .getByRole('button', { name: new RegExp(`^\\d+\\s*${step}$`) }),
    ).toBeVisible();
  }
  // every backend was timed; the software WebGPU adapter is among them
  await expect(page.getByTestId('backend')).toContainText('fastest here:');
  await expect(page.getByTestId('backend')).toContainText('WebGPU (software)');
  // the self-test ran inside the worker and its checksum equals the closed form n·n(n+1)/2
  await expect(page.getByTestId('compute-check')).toContainText('check passed');
  await expect(page.getByTestId('storage')).toContainText(/used of/);
  // the worker really is a worker, and tfjs is not on the page
  expect(await page.evaluate(() => 'tf' in globalThis)).toBe(false);
  console.check();
});

test('an error thrown inside the worker reaches the page with its name and message', async ({
  page,
}) => {
  await openApp(page);
  await page.getByRole('button', { name: 'Diagnostics', exact: true }).click();
  await page.getByLabel('Compute check size').fill('0');
  await page.getByRole('button', { name: 'Run check' }).click();
  const alert = page.getByRole('alert');
  await expect(alert).toHaveCount(1);
  await expect(alert).toContainText('InvalidOptionError');
  await expect(alert).toContainText('self-test size 0 must be a whole number in 1–4096');
});

test('the app sends nothing beyond its own origin', async ({ page }) => {
  const foreign: string[] = [];
  const origin = new URL(test.info().project.use.baseURL!).origin;
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!['data:', 'blob:'].includes(u.protocol) && u.origin !== origin) foreign.push(r.url());
  });
  page.on('worker', (w) => {
    if (!w.url().startsWith(origin) && !w.url().startsWith('blob:')) foreign.push(w.url());
  });
  await openApp(page);
  await expect(page.getByTestId('compute-check')).toContainText('check passed');
  for (const step of ['Data', 'Attacks', 'Probes', 'Train', 'Detect', 'Retrain', 'Report']) {
    await page
      .getByRole('navigation', { name: 'Workflow' })
      .getByRole('button', { name: new RegExp(`^\\d+\\s*${step}$`) })
      .click();
  }
  expect(foreign).toEqual([]);
});
