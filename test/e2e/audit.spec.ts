import { expect, test, type Page } from '@playwright/test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { encode as encodePng } from 'fast-png';
import { preset } from '../../src/core/experiment.ts';
import { loadDatasetFiles } from '../../src/core/formats/load.ts';
import { nodeDecoder } from '../../src/cli/node-decoder.ts';
import { openApp, watchConsole } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'badloss-audit-'));
const CLASSES = ['circle', 'stripes', 'square'];

/** A 24×24 PNG of class `c`, varied by `n`: a disc, horizontal stripes or a filled square. */
function classPng(c: number, n: number): Uint8Array {
  const W = 24;
  const data = new Uint8Array(W * W * 3);
  for (let y = 0; y < W; y++)
    for (let x = 0; x < W; x++) {
      const on =
        c === 0
          ? (x - 12) ** 2 + (y - 12) ** 2 < 49 + (n % 5) * 6
          : c === 1
            ? Math.floor((y + n) / 3) % 2 === 0
            : x > 4 + (n % 4) && x < 18 && y > 5 && y < 19 - (n % 3);
      const o = (y * W + x) * 3;
      data[o] = on ? 220 - (n % 7) * 5 : 30 + ((x * 7 + n * 13) % 40);
      data[o + 1] = on ? 60 + c * 70 : 30 + ((y * 5 + n) % 40);
      data[o + 2] = on ? 40 + (n % 11) * 3 : 60;
    }
  return encodePng({ width: W, height: W, data, channels: 3, depth: 8 });
}

/** pets.zip: train/<class>/<class>-NN.png (40 per class) and test/<class>/… (30 per class). */
function auditZip(): string {
  const files: Record<string, Uint8Array> = {};
  CLASSES.forEach((name, c) => {
    for (let n = 0; n < 40; n++)
      files[`shapes/train/${name}/${name}-${String(n).padStart(2, '0')}.png`] = classPng(c, n);
    for (let n = 0; n < 30; n++)
      files[`shapes/test/${name}/t-${name}-${n}.png`] = classPng(c, n + 100);
  });
  const path = join(dir, 'shapes.zip');
  writeFileSync(path, zipSync(files));
  return path;
}

function auditConfig() {
  const cfg = preset('tiny');
  cfg.mode = 'audit';
  cfg.attacks = [];
  cfg.probes = { ...cfg.probes, n: 20, trusted: 'train-untouched' };
  cfg.train = { ...cfg.train, width: 0.25, epochs: 2, batchSize: 32 };
  cfg.detect = { method: 'knn', k: 5, threshold: 0.1 };
  cfg.limit = undefined;
  return cfg;
}

const nav = (page: Page, name: string) =>
  page
    .getByRole('navigation', { name: 'Workflow' })
    .getByRole('button', { name: new RegExp(`^\\d\\s*${name}$`) });

async function download(
  page: Page,
  button: string | RegExp,
): Promise<{ name: string; path: string }> {
  const wait = page.waitForEvent('download');
  await page.getByRole('button', { name: button }).click();
  const d = await wait;
  return { name: d.suggestedFilename(), path: (await d.path())! };
}

test('an audit of a zip of class folders probes from the test split, names files in its exports, and exports a cleaned dataset and a self-contained HTML report', async ({
  page,
  browser,
}) => {
  test.setTimeout(900_000);
  const console = watchConsole(page);
  const hash = Buffer.from(JSON.stringify(auditConfig())).toString('base64url');
  await openApp(page, `./?backend=cpu#cfg=${hash}`);
  await expect(page.getByTestId('dataset-list')).toContainText('Demo shapes', { timeout: 60_000 });
  await page.getByTestId('file-input').setInputFiles(auditZip());
  await expect(page.getByTestId('current-dataset')).toHaveText('shapes.zip', { timeout: 60_000 });

  // the selection survives a reload (it used to fall back to the run's dataset)
  await page.reload();
  await expect(page.getByTestId('current-dataset')).toHaveText('shapes.zip', { timeout: 60_000 });

  await nav(page, 'Attacks').click();
  await page.getByRole('button', { name: /No attacks — audit my data/ }).click();
  await expect(page.getByTestId('mode')).toHaveText('audit');
  await expect(page.getByRole('button', { name: /No attacks — audit my data/ })).toHaveAttribute(
    'aria-pressed',
    'true',
  );
  await nav(page, 'Probes').click();
  // audit mode: never the data under audit
  await expect(page.getByTestId('trusted-source')).toHaveValue('test');
  await expect(page.getByTestId('dataset-context')).toContainText('shapes.zip');
  await page.getByRole('button', { name: 'Build the training set' }).click();
  await expect(page.getByTestId('prepared-summary')).toContainText('180 images');
  await expect(page.getByTestId('probe-source')).toContainText('the test split');

  await nav(page, 'Train').click();
  const train = page.getByTestId('phase-probationary');
  await train.getByRole('button', { name: 'Start training' }).click();
  await expect(train).toContainText('✓ trained 2 epochs', { timeout: 600_000 });
  await nav(page, 'Detect').click();
  await page.getByRole('button', { name: 'Run detection' }).click();
  await expect(page.getByTestId('flagged-count')).toBeVisible();
  // the step is in the URL and survives a reload
  expect(new URL(page.url()).searchParams.get('step')).toBe('detect');
  await page.reload();
  await expect(page.getByTestId('flagged-count')).toBeVisible({ timeout: 60_000 });
  const blocked = page.getByLabel('I understand; retrain anyway');
  if (await blocked.isVisible()) await blocked.check();
  await page.getByRole('button', { name: /retrain( anyway)? →/i }).click();
  const retrain = page.getByTestId('phase-retrain');
  await retrain.getByRole('button', { name: 'Start training' }).click();
  await expect(retrain).toContainText('✓ trained 2 epochs', { timeout: 600_000 });
  await page.getByRole('button', { name: 'See the report →' }).click();
  await expect(page.getByTestId('verdict')).toContainText('Audit:');
  await expect(page.getByTestId('caveats')).toContainText('the test split');

  // the flagged CSV names each file inside the zip
  const csv = await download(page, 'Flagged examples (CSV)');
  expect(csv.name).toBe('badloss-shapes-zip-flagged.csv');
  const lines = readFileSync(csv.path, 'utf8').trim().split('\n');
  expect(lines[0]).toBe('rank,source,row,label,class,score');
  const flagged = lines.slice(1).map((l) => l.split(',')[1]);
  // (seeded and on the CPU backend, so deterministic: this audit flags examples)
  expect(flagged.length).toBeGreaterThan(0);
  for (const f of flagged)
    expect(f).toMatch(/^shapes\/train\/(circle|stripes|square)\/\1-\d\d\.png$/);

  // the cleaned dataset re-imports, with the flagged examples gone
  const cleaned = await download(page, /^Cleaned dataset/);
  const back = await loadDatasetFiles(
    [{ name: cleaned.name, bytes: new Uint8Array(readFileSync(cleaned.path)) }],
    { decode: nodeDecoder },
  );
  // (a class whose every example was flagged has no folder left, so compare classes by name)
  for (const c of back.classes) expect(CLASSES).toContain(c);
  expect(back.splits.train!.count).toBe(120 - flagged.length);
  const names = back.splits.train!.sources!;
  const paths = names.kind === 'paths' ? names.paths : [];
  paths.forEach((p, j) => expect(p.split('/')[0]).toBe(back.classes[back.splits.train!.labels[j]]));
  const kept = new Set(paths);
  for (const f of flagged) {
    const [, , cls, file] = f.split('/');
    expect(kept.has(`${cls}/${file}`)).toBe(false);
  }
  expect(kept.size).toBe(120 - flagged.length);

  // the HTML report opens with the verdict, carries its images, and asks for nothing
  const html = await download(page, 'Report (HTML, self-contained)');
  const body = readFileSync(html.path, 'utf8');
  expect(body.indexOf('id="verdict"')).toBeGreaterThan(0);
  expect(body.indexOf('id="verdict"')).toBeLessThan(body.indexOf('<table'));
  if (flagged.length > 0) expect(body).toContain('<img src="data:image/png;base64,');
  const other = await browser.newPage();
  const requests: string[] = [];
  other.on('request', (r) => requests.push(r.url()));
  await other.setContent(body, { waitUntil: 'load' });
  await expect(other.locator('#verdict')).toContainText('Audit:');
  if (flagged.length > 0)
    expect(
      await other
        .locator('img')
        .first()
        .evaluate((i: HTMLImageElement) => i.naturalWidth),
    ).toBe(32);
  expect(requests.filter((u) => !u.startsWith('data:'))).toEqual([]);
  await other.close();
  console.check();
});

test('too few probes are called out before training, with a way on', async ({ page }) => {
  const console = watchConsole(page);
  const cfg = auditConfig();
  cfg.probes = { ...cfg.probes, n: 2, trusted: 'test' };
  const hash = Buffer.from(JSON.stringify(cfg)).toString('base64url');
  await openApp(page, `./?backend=cpu&step=probes#cfg=${hash}`);
  await expect(page.getByRole('heading', { level: 2 })).toHaveText('3 · Probes');
  await expect(page.getByTestId('few-probes')).toContainText('Only 2 probes of each kind');
  await expect(page.getByTestId('few-probes')).toContainText('Add trusted examples');
  console.check();
});
