import { expect, test } from '@playwright/test';
import { preset } from '../../src/core/experiment.ts';
import { openApp, watchConsole } from './helpers.ts';

test('a WebGPU training run in the worker records a trajectory column, survives a reload and resumes', async ({
  page,
}) => {
  test.setTimeout(600_000);
  const console = watchConsole(page);
  const cfg = preset('tiny');
  cfg.train = { ...cfg.train, epochs: 4, width: 0.25, batchSize: 16 };
  cfg.limit = { train: 96, test: 20 };
  cfg.probes.n = 4;
  await openApp(
    page,
    `./?backend=webgpu#cfg=${Buffer.from(JSON.stringify(cfg)).toString('base64url')}`,
  );
  await expect(page.getByTestId('backend')).toContainText('WebGPU');
  await expect(page.getByTestId('dataset-list')).toContainText('Demo shapes');
  const nav = (name: string) =>
    page
      .getByRole('navigation', { name: 'Workflow' })
      .getByRole('button', { name: new RegExp(`^\\d\\s*${name}$`) });
  await nav('Probes').click();
  await page.getByRole('button', { name: 'Build the training set' }).click();
  await expect(page.getByTestId('prepared-summary')).toContainText('96 images');
  await nav('Train').click();
  const phase = page.getByTestId('phase-probationary');
  await phase.getByRole('button', { name: 'Start training' }).click();
  await expect(phase.getByRole('progressbar')).toBeVisible();
  // after the first epoch its trajectory column is drawn
  await expect(page.getByTestId('bundles')).toBeVisible({ timeout: 300_000 });
  await page.reload();
  // The GPU process first drains the software adapter's queue of the killed worker's step (20–40 s
  // on a busy 2-core machine), so the new worker's WebGPU device comes up late.
  await expect(page.getByTestId('backend')).toContainText('WebGPU', { timeout: 120_000 });
  // the interrupted phase continues by itself from the last finished epoch, not from scratch
  await expect(page.getByRole('status').filter({ hasText: 'Resuming' })).toBeVisible();
  await expect(page.getByTestId('phase-probationary').getByRole('progressbar')).toBeVisible();
  await expect(page.getByTestId('phase-probationary')).toContainText(
    '✓ trained 4 epochs on 96 images',
    { timeout: 300_000 },
  );
  await expect(page.getByTestId('evaluation-probationary')).toContainText('Test accuracy');
  // GPU memory held by tfjs stays flat from epoch to epoch (epochs after the reload share one
  // worker). The figures are developer diagnostics, not shown on the Train step: read them from
  // the stored run.
  const runId = /run=([0-9a-f-]{36})/.exec(await page.evaluate(() => location.hash))?.[1];
  const counts = await page.evaluate(
    (id) =>
      new Promise<number[]>((resolve, reject) => {
        const open = indexedDB.open('badloss-lab');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const get = open.result.transaction('kv').objectStore('kv').get(`run:${id}`);
          get.onsuccess = () =>
            resolve(
              (get.result.phases.probationary.history as { tensors: number }[]).map(
                (h) => h.tensors,
              ),
            );
          get.onerror = () => reject(get.error);
        };
      }),
    runId,
  );
  expect(counts).toHaveLength(4);
  const afterReload = counts.slice(-2);
  expect(afterReload[0]).toBe(afterReload[1]);
  await expect(page.getByTestId('phase-probationary')).toContainText('ResNet-8 ×0.25');
  console.check();
});
