/**
 * `npm run bench`: throughput numbers and ratios (never asserted in tests). Prints one line per
 * measurement and, last, one JSON object with every figure:
 *   cpuTrainStepSpeedup                 stock tfjs CPU kernels vs ours, ResNet-8 step at batch 64
 *   trainImagesPerSecond[backend][model], recordImagesPerSecond[backend][model]   (batch 64)
 *   detectSeconds                       k-NN scores of 50,000 × 100 trajectories against 750 probes
 *   importMBps                          a 50,000-record CIFAR file (153.6 MB) into IndexedDB in Chromium
 * Set BENCH_NODE=0 or BENCH_BROWSER=0 to skip a part, BENCH_STEPS to change the browser's step count.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from '@playwright/test';
import { setupNodeTf } from '../src/cli/node-tf.ts';
import { registerFastCpuKernels, restoreStockCpuKernels } from '../src/ml/fast-cpu.ts';
import { measureThroughput } from '../src/ml/benchmark.ts';
import { Trainer } from '../src/ml/train.ts';
import { generateDemoDataset } from '../src/core/demo.ts';
import { knnScores } from '../src/core/detect/knn.ts';
import { wasmNearest } from '../src/ml/fast-knn.ts';
import { Rng } from '../src/core/rng.ts';
import { cifarBytes } from '../test/unit/fixtures.ts';

const results: {
  cpuTrainStepSpeedup?: number;
  trainImagesPerSecond: Record<string, Record<string, number>>;
  recordImagesPerSecond: Record<string, Record<string, number>>;
  detectSeconds?: number;
  importMBps?: number;
  demoGenerateSeconds?: number;
} = { trainImagesPerSecond: {}, recordImagesPerSecond: {} };
const log = (s: string) => process.stdout.write(s + '\n');

async function cpuKernels() {
  const tf = await setupNodeTf();
  const data = generateDemoDataset({ seed: 1, train: 64, test: 10 }).splits.train!;
  const step = async (): Promise<number> => {
    const cfg = {
      model: 'resnet8' as const,
      width: 1,
      epochs: 1,
      batchSize: 64,
      lr: 1e-3,
      weightDecay: 1e-4,
      augment: false,
      seed: 1,
      record: 'train' as const,
    };
    const tr = new Trainer(tf, cfg, data, 10);
    const t0 = performance.now();
    await tr.trainEpoch();
    const s = (performance.now() - t0) / 1000;
    tr.dispose();
    return s;
  };
  registerFastCpuKernels(tf);
  await step(); // JIT warm-up
  const ours = await step();
  restoreStockCpuKernels(tf);
  const stock = await step();
  registerFastCpuKernels(tf);
  results.cpuTrainStepSpeedup = stock / ours;
  log(
    `CPU kernels: ResNet-8 step at batch 64 takes ${stock.toFixed(1)} s with stock tfjs, ${ours.toFixed(2)} s with ours: ${(stock / ours).toFixed(1)}× faster`,
  );
  for (const model of ['resnet8', 'resnet20'] as const) {
    const r = await measureThroughput(tf, model, 64, 2);
    (results.trainImagesPerSecond['node-cpu'] ??= {})[model] = r.trainImagesPerSecond;
    (results.recordImagesPerSecond['node-cpu'] ??= {})[model] = r.recordImagesPerSecond;
    log(
      `Node CPU ${model}: train ${r.trainImagesPerSecond.toFixed(1)} img/s, record ${r.recordImagesPerSecond.toFixed(1)} img/s (tensors ${r.tensorsBefore} → ${r.tensorsAfter})`,
    );
  }
}

function detection() {
  const n = 50_000;
  const epochs = 100;
  const rng = new Rng(1);
  const losses = new Float32Array(n * epochs);
  for (let i = 0; i < losses.length; i++) losses[i] = rng.float() * 3;
  const clean = [...Array(250).keys()];
  const anomalous = [...Array(500).keys()].map((i) => 250 + i);
  const t0 = performance.now();
  const res = knnScores(
    { n, epochs, losses },
    { clean, anomalous },
    'auto',
    undefined,
    wasmNearest,
  );
  const s = (performance.now() - t0) / 1000;
  results.detectSeconds = s;
  log(
    `Detection: k-NN over 50,000 × 100 trajectories vs 750 probes, k chosen by leave-one-out (k = ${res.k}): ${s.toFixed(2)} s`,
  );
  const t1 = performance.now();
  generateDemoDataset({ seed: 2 });
  results.demoGenerateSeconds = (performance.now() - t1) / 1000;
  log(
    `Demo dataset (5,000 + 1,000 images) generated in ${results.demoGenerateSeconds.toFixed(2)} s`,
  );
}

async function browser() {
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  const port = 4190;
  const build = spawn('npx', ['vite', 'build'], { stdio: 'ignore' });
  await new Promise((r) => build.on('exit', r));
  const server = spawn('npx', ['vite', 'preview', '--port', String(port), '--strictPort'], {
    stdio: 'ignore',
    detached: true,
  });
  try {
    await new Promise((r) => setTimeout(r, 2500));
    const browserApp = await chromium.launch({
      executablePath,
      args: [
        '--no-sandbox',
        '--enable-unsafe-webgpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        '--disable-quic',
      ],
    });
    const steps = Number(process.env.BENCH_STEPS ?? 1);
    for (const backend of ['webgpu', 'webgl', 'cpu']) {
      const page = await browserApp.newPage();
      await page.goto(
        `http://127.0.0.1:${port}/${backend === 'webgpu' ? '' : `?backend=${backend}`}`,
      );
      await page
        .getByTestId('compute-check')
        .filter({ hasText: 'check passed' })
        .waitFor({ timeout: 120_000 });
      const label = (await page.getByTestId('backend').textContent())?.trim();
      await page.getByText('Diagnostics').click();
      for (const model of ['resnet8', 'resnet20']) {
        await page.getByLabel('Speed test model').selectOption(model);
        await page.getByLabel('Speed test steps').fill(String(steps));
        await page.getByRole('button', { name: 'Measure training speed' }).click();
        const el = page.getByTestId('speed-result');
        await el.waitFor({ timeout: 1_200_000 });
        const r = JSON.parse((await el.getAttribute('data-json')) ?? '{}');
        const key = `chromium-${r.backend}`;
        (results.trainImagesPerSecond[key] ??= {})[model] = r.trainImagesPerSecond;
        (results.recordImagesPerSecond[key] ??= {})[model] = r.recordImagesPerSecond;
        log(
          `Chromium ${label} ${model}: train ${r.trainImagesPerSecond.toFixed(2)} img/s, record ${r.recordImagesPerSecond.toFixed(2)} img/s`,
        );
        await page.evaluate(() => document.querySelector('[data-testid=speed-result]')?.remove());
      }
      await page.close();
    }
    // Import throughput: 50,000 CIFAR records through the file picker into IndexedDB.
    const dir = mkdtempSync(join(tmpdir(), 'badloss-bench-'));
    const file = join(dir, 'data_batch_1.bin');
    const bytes = cifarBytes(50_000, (n) => n % 10);
    writeFileSync(file, bytes);
    const page = await browserApp.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.getByTestId('dataset-list').waitFor({ timeout: 60_000 });
    const t0 = performance.now();
    await page.getByTestId('file-input').setInputFiles(file);
    await page
      .getByTestId('dataset-list')
      .getByText('data_batch_1.bin')
      .waitFor({ timeout: 600_000 });
    const s = (performance.now() - t0) / 1000;
    results.importMBps = bytes.length / 1e6 / s;
    log(
      `Import: ${(bytes.length / 1e6).toFixed(1)} MB CIFAR file parsed and stored in IndexedDB in ${s.toFixed(1)} s: ${results.importMBps.toFixed(1)} MB/s (target ≥ 30)`,
    );
    await browserApp.close();
  } finally {
    if (server.pid) process.kill(-server.pid);
  }
}

if (process.env.BENCH_NODE !== '0') {
  await cpuKernels();
  detection();
}
if (process.env.BENCH_BROWSER !== '0') await browser();
log(JSON.stringify(results));
