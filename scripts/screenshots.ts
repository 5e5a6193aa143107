/**
 * Screenshots of every step of a small run, for the README and for reviewing the UI:
 * `npx vite build && npx tsx scripts/screenshots.ts` writes docs/step-<name>.png (1280×900
 * viewport, full page). It serves the built app with `vite preview` (PORT, default 4180), drives
 * the system Chromium (CHROMIUM_PATH, default /usr/bin/chromium) through data → report on the
 * demo set with the tiny classroom preset (four attacks at once; about a minute of training on
 * the backend the app measures fastest — our WebAssembly engine on a machine without a GPU), and
 * the exported HTML report as docs/step-report-html.png. Set STEPS=data,attacks to stop early.
 * SECOND_ROUND=0.03 adds a second detection round (the CLI's default) and its picture,
 * docs/step-detect-rounds.png. EPOCHS=n trains n epochs instead of the preset's (EPOCHS=2 leaves
 * the model far from fitting its data: the underfit warning), OUT=<dir> writes elsewhere.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { chromium } from '@playwright/test';
import { preset } from '../src/core/experiment.ts';

const PORT = Number(process.env.PORT ?? 4180);
const BASE = `http://127.0.0.1:${PORT}/`;
const OUT = process.env.OUT ?? 'docs';
const only = process.env.STEPS?.split(',');

const secondRound = process.env.SECOND_ROUND ? Number(process.env.SECOND_ROUND) : undefined;

/** The tiny classroom preset, exactly as its button sets it (with SECOND_ROUND, two rounds; EPOCHS). */
function config() {
  const c = preset('tiny');
  if (secondRound) c.detect = { ...c.detect, secondRound };
  if (process.env.EPOCHS) c.train = { ...c.train, epochs: Number(process.env.EPOCHS) };
  return c;
}

async function waitForServer(): Promise<void> {
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(BASE)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`vite preview did not answer on ${BASE}`);
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  const server = spawn('npx', ['vite', 'preview', '--port', String(PORT), '--strictPort'], {
    stdio: 'ignore',
  });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  try {
    await waitForServer();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (e) => console.error('page error:', e.message));
    const hash = Buffer.from(JSON.stringify(config())).toString('base64url');
    await page.goto(`${BASE}#cfg=${hash}`);
    await page.getByTestId('dataset-list').waitFor({ timeout: 120_000 });
    await page.getByTestId('gallery').waitFor({ timeout: 60_000 });
    const shot = async (name: string) => {
      // The status bar sticks to the viewport's bottom; in a full-page picture it would sit
      // across the middle of the page.
      await page.addStyleTag({ content: 'footer.status{position:static !important}' });
      await page.waitForTimeout(400); // charts draw on the next frame
      await page.screenshot({ path: `${OUT}/step-${name}.png`, fullPage: true });
      console.log(`wrote ${OUT}/step-${name}.png`);
    };
    const nav = (name: string) =>
      page
        .getByRole('navigation', { name: 'Workflow' })
        .getByRole('button', { name: new RegExp(`^\\d\\s*${name}$`) });
    const go = async (name: string) => {
      await nav(name).click();
      await page.getByRole('heading', { level: 2, name: new RegExp(name) }).waitFor();
    };
    const want = (s: string) => !only || only.includes(s);

    await shot('data');
    if (!want('attacks')) return;
    await go('Attacks');
    await page.getByTestId('trigger-previews').waitFor();
    await shot('attacks');
    if (!want('probes')) return;
    await go('Probes');
    await page.getByRole('button', { name: /Build the training set|Rebuild/ }).click();
    await page.getByTestId('prepared-summary').waitFor({ timeout: 120_000 });
    await shot('probes');
    if (!want('train')) return;
    await go('Train');
    const train = page.getByTestId('phase-probationary');
    await train.getByRole('button', { name: 'Start training' }).click();
    await train.getByText(/✓ trained/).waitFor({ timeout: 1_800_000 });
    await shot('train');
    if (!want('detect')) return;
    await go('Detect');
    await page.getByRole('button', { name: 'Run detection' }).click();
    await page.getByTestId('removal-table').waitFor({ timeout: 120_000 });
    await page.getByTestId('gallery').waitFor({ timeout: 60_000 });
    await shot('detect');
    if (secondRound) {
      const recheck = page.getByTestId('phase-recheck');
      await recheck.getByRole('button', { name: 'Start training' }).click();
      await recheck.getByText(/✓ trained/).waitFor({ timeout: 1_800_000 });
      await page.getByTestId('second-round-result').waitFor({ timeout: 60_000 });
      await shot('detect-rounds');
    }
    if (!want('retrain')) return;
    await go('Retrain');
    const retrain = page.getByTestId('phase-retrain');
    await retrain.getByRole('button', { name: 'Start training' }).click();
    await retrain.getByText(/✓ trained/).waitFor({ timeout: 1_800_000 });
    await shot('retrain');
    if (!want('report')) return;
    await page.getByRole('button', { name: 'See the report →' }).click();
    await page.getByTestId('verdict').waitFor({ timeout: 60_000 });
    await shot('report');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: `${OUT}/report.png` });
    console.log(`wrote ${OUT}/report.png (first screen, for the README)`);
    // The exported HTML report, as a reader opens it.
    const wait = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Report (HTML, self-contained)' }).click();
    const html = readFileSync((await (await wait).path())!, 'utf8');
    const reader = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await reader.setContent(html, { waitUntil: 'load' });
    // The first 1,800 px: verdict, tables and thumbnails (the flagged list below runs long).
    await reader.screenshot({
      path: `${OUT}/step-report-html.png`,
      fullPage: true,
      clip: { x: 0, y: 0, width: 1280, height: 1800 },
    });
    console.log(`wrote ${OUT}/step-report-html.png`);
  } finally {
    await browser.close();
    server.kill();
  }
}

await main();
