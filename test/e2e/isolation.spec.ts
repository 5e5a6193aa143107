import { expect, test, type Page } from '@playwright/test';
import { openApp, watchConsole } from './helpers.ts';
import type { BackendMeasurement } from '../../src/ml/backend-select.ts';

async function storedMeasurement(page: Page): Promise<BackendMeasurement> {
  const entries = await page.evaluate(() =>
    Object.keys(localStorage)
      .filter((k) => k.startsWith('badloss-backend:'))
      .map((k) => localStorage.getItem(k)!),
  );
  expect(entries).toHaveLength(1);
  return JSON.parse(entries[0]) as BackendMeasurement;
}

test('served as `npm start` serves it, the page is cross-origin isolated and trains on the measured-fastest backend', async ({
  page,
}) => {
  const console = watchConsole(page);
  const res = await page.goto('./');
  expect(res?.headers()['cross-origin-opener-policy']).toBe('same-origin');
  expect(res?.headers()['cross-origin-embedder-policy']).toBe('require-corp');
  await openApp(page);
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
  const backend = page.getByTestId('backend');
  await expect(backend).toContainText('fastest here:');
  // the choice is the highest measured rate, and the status bar names it
  const m = await storedMeasurement(page);
  expect(m.results.map((r) => r.name).sort()).toEqual(['cpu', 'wasm', 'webgl', 'webgpu']);
  // every backend ran here and was timed or stopped at its cap
  for (const r of m.results) {
    expect(r.unavailable).toBeUndefined();
    expect(r.imagesPerSecond !== undefined || r.timedOutMs !== undefined).toBe(true);
  }
  const timed = m.results.filter((r) => r.imagesPerSecond !== undefined && !r.error);
  const fastest = timed.reduce((a, b) => (b.imagesPerSecond! > a.imagesPerSecond! ? b : a));
  expect(m.chosen).toBe(fastest.name);
  const text = (await backend.textContent())!.replace(/\s+/g, ' ').trim();
  expect(text.startsWith(`Compute: ${fastest.label}`)).toBe(true);
  // the software WebGPU adapter is measured and shown, and is not chosen unless it is fastest
  const webgpu = m.results.find((r) => r.name === 'webgpu')!;
  expect(webgpu.software).toBe(true);
  if (m.chosen === 'webgpu') expect(webgpu).toBe(fastest);
  await expect(backend).toContainText('WebGPU (software)');
  // threads available to a multithreaded engine: all of this machine's (2 or more)
  const threads = Number(
    /(\d+) threads/.exec((await page.getByTestId('threads').textContent())!)?.[1],
  );
  expect(threads).toBe(await page.evaluate(() => navigator.hardwareConcurrency));
  expect(threads).toBeGreaterThan(1);
  // our WebAssembly engine computes on every core of this cross-origin-isolated page
  const wasm = m.results.find((r) => r.name === 'wasm')!;
  expect(wasm.label).toBe(`WASM · ${threads} threads`);
  await expect(page.getByTestId('compute-check')).toContainText('check passed');

  // a reload uses the remembered measurement instead of timing every backend again
  await page.reload();
  await openApp(page, page.url());
  expect((await storedMeasurement(page)).measuredAt).toBe(m.measuredAt);
  await expect(backend).toContainText('fastest here:');

  // Diagnostics sits beside the workflow and can measure again
  await page.getByRole('button', { name: 'Diagnostics', exact: true }).click();
  const panel = page.getByRole('complementary', { name: 'Diagnostics' });
  await expect(panel.getByTestId('backend-table')).toContainText('CPU');
  const main = await page.locator('main').boundingBox();
  const side = await panel.boundingBox();
  expect(main!.x + main!.width).toBeLessThanOrEqual(side!.x + 1); // no overlap
  // training in the worker runs on the chosen backend's engine
  await panel.getByLabel('Speed test steps').fill('1');
  await panel.getByRole('button', { name: 'Measure training speed' }).click();
  const speed = JSON.parse((await panel.getByTestId('speed-result').getAttribute('data-json'))!);
  expect(speed.backend).toBe(m.chosen);
  expect(speed.trainImagesPerSecond).toBeGreaterThan(0);
  await panel.getByRole('button', { name: 'Re-measure' }).click();
  await expect(panel.getByRole('button', { name: 'Re-measure' })).toBeEnabled({ timeout: 60_000 });
  expect((await storedMeasurement(page)).measuredAt).toBeGreaterThan(m.measuredAt);
  console.check();
});

test('?backend=cpu forces the CPU backend, still showing the figures', async ({ page }) => {
  await openApp(page, './?backend=cpu');
  const backend = page.getByTestId('backend');
  await expect(backend).toContainText(/^\s*Compute:\s*CPU/);
  await expect(backend).toContainText('chosen by ?backend=cpu');
  await expect(page.getByTestId('compute-check')).toContainText('check passed');
});
