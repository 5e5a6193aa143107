import { expect, test } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { preset, prepareExperiment } from '../../src/core/experiment.ts';
import { generateDemoDataset } from '../../src/core/demo.ts';
import { splitFingerprint } from '../../src/core/dataset.ts';
import { openApp, watchConsole } from './helpers.ts';

/** The quick-demo preset shrunk to what software WebGPU trains in a minute or two. */
function tinyQuickDemo() {
  const cfg = preset('quick');
  cfg.train = { ...cfg.train, width: 0.25, epochs: 2, batchSize: 32 };
  cfg.probes.n = 8;
  // a fixed first-round threshold, and a second round as the default has
  cfg.detect = { method: 'knn', k: 5, threshold: 0.1, secondRound: 0.3 };
  cfg.limit = { train: 160, test: 60 };
  return cfg;
}

test('the quick demo runs the whole flow: data → attacks → probes → train → detect → retrain → report, with exports', async ({
  page,
}) => {
  test.setTimeout(900_000);
  const console = watchConsole(page);
  const hash = Buffer.from(JSON.stringify(tinyQuickDemo())).toString('base64url');
  await openApp(page, `./#cfg=${hash}`);
  // the app opens on the built-in demo dataset
  await expect(page.getByTestId('dataset-list')).toContainText('Demo shapes', { timeout: 60_000 });
  const nav = (name: string) =>
    page
      .getByRole('navigation', { name: 'Workflow' })
      .getByRole('button', { name: new RegExp(`^\\d\\s*${name}$`) });

  await nav('Attacks').click();
  await expect(page.getByTestId('mode')).toHaveText('benchmark');
  await expect(page.getByTestId('trigger-previews')).toBeVisible();

  await nav('Probes').click();
  await page.getByRole('button', { name: 'Build the training set' }).click();
  const summary = page.getByTestId('prepared-summary');
  await expect(summary).toContainText('160 images');
  await expect(summary).toContainText('Patch (BadNets checkerboard)');
  // the browser built byte-for-byte the training set Node builds from the same seed
  const node = await splitFingerprint(
    prepareExperiment(generateDemoDataset({ seed: 0 }), tinyQuickDemo()).train,
  );
  await expect(page.getByTestId('fingerprint')).toHaveText(node.slice(0, 16));
  // the line naming the dataset says the run uses a subsample of it
  await expect(page.getByTestId('dataset-context')).toContainText('this run uses 160 / 60');

  await nav('Train').click();
  await page
    .getByTestId('phase-probationary')
    .getByRole('button', { name: 'Start training' })
    .click();
  await expect(page.getByTestId('phase-probationary')).toContainText('✓ trained 2 epochs', {
    timeout: 600_000,
  });
  await expect(page.getByTestId('evaluation-probationary')).toContainText(
    'ASR Patch (BadNets checkerboard)',
  );
  await expect(page.getByTestId('bundles')).toBeVisible();

  await nav('Detect').click();
  await page.getByRole('button', { name: 'Run detection' }).click();
  await expect(page.getByTestId('removal-table')).toContainText('Patch (BadNets checkerboard)');
  await expect(page.getByTestId('score-histogram')).toBeVisible();
  await expect(page.getByTestId('roc')).toBeVisible();
  await expect(page.getByTestId('embedding')).toBeVisible();
  // the threshold slider recounts removals live
  const before = await page.getByTestId('flagged-count').textContent();
  await page.getByLabel('Threshold slider').fill('1');
  await expect(page.getByTestId('flagged-count')).toHaveText('0');
  await page.getByLabel('Threshold slider').fill('0');
  await expect(page.getByTestId('flagged-count')).not.toHaveText('0');
  await page.getByRole('button', { name: /^Back to/ }).click();
  await expect(page.getByTestId('flagged-count')).toHaveText(before ?? '');

  // the second round: retraining waits for it; its model trains on what the first round kept
  await nav('Retrain').click();
  await expect(page.getByTestId('second-round-pending')).toBeVisible();
  await nav('Detect').click();
  const recheck = page.getByTestId('phase-recheck');
  await recheck.getByRole('button', { name: 'Start training' }).click();
  await expect(recheck).toContainText(`✓ trained 2 epochs on ${160 - Number(before)} images`, {
    timeout: 600_000,
  });
  const rounds = page.getByTestId('second-round-result');
  await expect(rounds).toContainText('Second round');
  const both = Number(await rounds.getByTestId('flagged-both').textContent());
  expect(both).toBeGreaterThanOrEqual(Number(before));
  // the second round's own picks, as pictures: exactly what it added (up to 48)
  const added = both - Number(before);
  const picks = page.getByTestId('second-round-picks');
  if (added > 0)
    await expect(picks.locator('.count')).toHaveText(
      new RegExp(`^${Math.min(48, added)} images?$`),
    );
  else await expect(picks).toHaveCount(0);

  await nav('Retrain').click();
  await expect(page.getByText(/from the first detection round, \d+ from the second/)).toBeVisible();
  // weight the classes back to the test split's shares: the lead says so, and the retraining (on
  // this browser's engine) trains with the class weights
  const reweight = page.getByTestId('retrain-reweight');
  await expect(reweight).not.toBeChecked();
  await reweight.check();
  await expect(page.getByText(/A fresh model is trained from scratch/)).toContainText(
    'each class weighted to its share of the test set',
  );
  await page.getByTestId('phase-retrain').getByRole('button', { name: 'Start training' }).click();
  await expect(page.getByTestId('phase-retrain')).toContainText('✓ trained 2 epochs', {
    timeout: 600_000,
  });
  await page.getByRole('button', { name: 'See the report →' }).click();
  await expect(page.getByTestId('verdict')).toBeVisible();

  const table = page.getByTestId('report-table');
  await expect(table).toContainText('No defense');
  await expect(table).toContainText('BaDLoss');
  await expect(table).toContainText(/\d+\.\d%/);
  for (const [button, ext] of [
    ['Report (JSON)', 'json'],
    ['Flagged examples (CSV)', 'csv'],
    ['Report (HTML, self-contained)', 'html'],
  ] as const) {
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: button }).click();
    const d = await download;
    expect(d.suggestedFilename()).toMatch(new RegExp(`\\.${ext}$`));
    const body = readFileSync((await d.path())!, 'utf8');
    if (ext === 'json') {
      const r = JSON.parse(body);
      expect(r.cleanAccuracy.undefended).toBeGreaterThanOrEqual(0);
      expect(r.asr.defended.patch).toBeGreaterThanOrEqual(0);
      expect(r.detection.auroc.patch).toBeGreaterThanOrEqual(0);
      expect(r.config.retrainReweight).toBe(true);
    }
    if (ext === 'csv') {
      expect(body.split('\n')[0]).toBe('rank,source,row,label,class,score,round,truth');
      // the demo set has no files: sources are stored rows
      if (body.split('\n').length > 2) expect(body.split('\n')[1]).toMatch(/^1,row \d+,/);
    }
    if (ext === 'html') {
      expect(body).toContain('<h1>BaDLoss Lab report</h1>');
      expect(body).toContain('each class weighted to its share of the test set');
    }
    expect(d.suggestedFilename()).not.toContain('--');
  }
  console.check();
});
