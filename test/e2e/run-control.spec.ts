import { expect, test, type Page } from '@playwright/test';
import { preset, type RunConfig } from '../../src/core/experiment.ts';
import { openApp, watchConsole } from './helpers.ts';

/** A run that trains in seconds on the CPU backend. */
function tinyHash(seed = 0, over: Partial<RunConfig> = {}): string {
  const cfg: RunConfig = { ...preset('tiny'), ...over };
  cfg.train = { ...cfg.train, epochs: 6, width: 0.25, batchSize: 16 };
  cfg.limit = { train: 160, test: 20 };
  cfg.probes.n = 4;
  cfg.seed = seed;
  return `#cfg=${Buffer.from(JSON.stringify(cfg)).toString('base64url')}`;
}

const nav = (page: Page, name: string) =>
  page
    .getByRole('navigation', { name: 'Workflow' })
    .getByRole('button', { name: new RegExp(`^\\d\\s*${name}$`) });

async function build(page: Page) {
  await nav(page, 'Data').click();
  await expect(page.getByTestId('dataset-list')).toContainText('Demo shapes');
  await nav(page, 'Probes').click();
  await page.getByRole('button', { name: /^Build the training set/ }).click();
  await expect(page.getByTestId('prepared-summary')).toContainText('160 images');
}

test('pause, resume and cancel through the real worker settle, keep the backend and leave nothing half-written', async ({
  page,
}) => {
  test.setTimeout(300_000);
  const console = watchConsole(page);
  await openApp(page, `./?backend=cpu${tinyHash()}`);
  const backend = (await page.getByTestId('backend').textContent())?.trim();
  expect(backend).toContain('CPU');
  await build(page);
  await nav(page, 'Train').click();
  const phase = page.getByTestId('phase-probationary');

  // Pause: the call returns, the finished epoch stays, the button offers to resume.
  await phase.getByRole('button', { name: 'Start training' }).click();
  await expect(page.getByTestId('bundles')).toBeVisible({ timeout: 120_000 });
  await phase.getByRole('button', { name: 'Pause' }).click();
  const resume = phase.getByRole('button', { name: /Resume from epoch [2-6]/ });
  await expect(resume).toBeVisible({ timeout: 60_000 });
  // a phase the user paused stays paused across a reload (an interrupted one would go on)
  await page.reload();
  await expect(page.getByTestId('backend')).toHaveText(backend!);
  await expect(resume).toBeVisible();
  await expect(phase.getByRole('progressbar')).toHaveCount(0);

  // Cancel mid-epoch, keep the finished epochs: the pending call settles at once and a fresh
  // worker starts on the same backend.
  await resume.click();
  await expect(phase.getByRole('progressbar')).toBeVisible();
  await phase.getByRole('button', { name: 'Cancel' }).click();
  const dialog = page.getByTestId('confirm-dialog');
  await expect(dialog).toContainText('Discard this model?');
  await dialog.getByRole('button', { name: 'Keep it' }).click();
  await expect(phase.getByRole('button', { name: /Resume from epoch [2-6]/ })).toBeVisible();
  await expect(phase.getByRole('progressbar')).toHaveCount(0);
  await expect(page.getByTestId('backend')).toHaveText(backend!);

  // Cancel again and discard: the phase is gone, also after a reload (nothing half-written).
  await phase.getByRole('button', { name: /Resume from epoch/ }).click();
  await expect(phase.getByRole('progressbar')).toBeVisible();
  await phase.getByRole('button', { name: 'Cancel' }).click();
  await dialog.getByRole('button', { name: 'Discard' }).click();
  await expect(phase.getByRole('button', { name: 'Start training' })).toBeVisible();
  await page.reload();
  await expect(page.getByTestId('backend')).toHaveText(backend!);
  await nav(page, 'Train').click();
  await expect(
    page.getByTestId('phase-probationary').getByRole('button', { name: 'Start training' }),
  ).toBeVisible();

  // The fresh worker trains to the end.
  await page
    .getByTestId('phase-probationary')
    .getByRole('button', { name: 'Start training' })
    .click();
  await expect(page.getByTestId('phase-probationary')).toContainText(
    '✓ trained 6 epochs on 160 images',
    { timeout: 120_000 },
  );
  console.check();
});

test('run history: a second build keeps the first run; open, rename, compare and delete', async ({
  page,
}) => {
  test.setTimeout(180_000);
  const console = watchConsole(page);
  await openApp(page, `./?backend=cpu${tinyHash(1)}`);
  await build(page);
  await openApp(page, `./?backend=cpu${tinyHash(2, { retrainMatchSteps: true })}`);
  await build(page);
  await page.getByRole('button', { name: /^Runs \(2\)$/ }).click();
  const history = page.getByTestId('run-history');
  await expect(history.getByTestId('run-row')).toHaveCount(2);

  await history.getByRole('button', { name: 'Rename' }).first().click();
  await history.getByLabel('New name').fill('Seed two');
  await history.getByRole('button', { name: 'Save' }).click();
  await expect(history.getByTestId('run-row').first()).toContainText('Seed two');

  for (const box of await history.getByRole('checkbox').all()) await box.check();
  await expect(page.getByTestId('run-compare')).toContainText('Side by side');
  await expect(page.getByTestId('run-compare')).toContainText('Seed two');
  // the two runs differ in the retraining's recipe, and the comparison says so
  await expect(page.getByTestId('run-compare')).toContainText(
    'with each image blurred very slightly, faint random stripes added to each image and more epochs to make up for the examples removed',
  );
  await expect(page.getByTestId('run-compare')).toContainText(
    /with each image blurred very slightly and faint random stripes added to each image(?! and)/,
  );

  await history.getByRole('button', { name: 'Delete' }).last().click();
  await page.getByTestId('confirm-dialog').getByRole('button', { name: 'Delete' }).click();
  await expect(history.getByTestId('run-row')).toHaveCount(1);
  console.check();
});
