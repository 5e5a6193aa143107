/**
 * `npm run bench`: throughput numbers and ratios (never asserted in tests). Prints one line per
 * measurement and, last, one JSON object with every figure:
 *   cpuTrainStepSpeedup                 stock tfjs CPU kernels vs ours, ResNet-8 step at batch 64
 *   trainImagesPerSecond[backend][model], recordImagesPerSecond[backend][model]   (batch 64;
 *     node-wasm = our WebAssembly engine on every core, node-wasm-1t on one, node-cpu = tfjs CPU)
 *   detectSeconds                       k-NN scores of 50,000 × 100 trajectories against 750 probes
 *   importMBps                          a 50,000-record CIFAR file (153.6 MB) into IndexedDB in Chromium
 *   tinyPresetSeconds                   the tiny preset end to end in the tab (build → report), seconds
 *   pytorch                             bench/pytorch_ref.py: the same ResNets in PyTorch on this CPU
 *   vsPytorch.train|record[backend]     our images/s ÷ PyTorch's, per model, for every node-* and
 *                                       chromium-* backend measured
 * Set BENCH_NODE=0, BENCH_BROWSER=0, BENCH_PYTORCH=0, BENCH_TINY=0 or BENCH_IMPORT=0 to skip a part,
 * BENCH_COMPARE=1 to also time the paper comparison preset end to end in the tab,
 * BENCH_STEPS to change the browser's step count, BENCH_BROWSER_BACKENDS for the browser's
 * backends (comma-separated; default "auto,cpu,wasm": the app's measured choice, then the CPU
 * backends; add webgl,webgpu for the GPU ones — slow with software adapters).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from '@playwright/test';
import { setupNodeTf } from '../src/cli/node-tf.ts';
import { registerFastCpuKernels, restoreStockCpuKernels } from '../src/ml/fast-cpu.ts';
import { measureThroughput } from '../src/ml/benchmark.ts';
import { Trainer } from '../src/ml/train.ts';
import { createTfjsEngine } from '../src/ml/tfjs-engine.ts';
import { createWasmEngine } from '../src/ml/wasm-engine-node.ts';
import { availableParallelism } from 'node:os';
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
  /** The tiny preset end to end in the tab (build → report), seconds. */
  tinyPresetSeconds?: number;
  /** The paper comparison preset end to end in the tab (BENCH_COMPARE=1), seconds. */
  comparePresetSeconds?: number;
  demoGenerateSeconds?: number;
  pytorch?: PytorchRef;
  vsPytorch?: {
    train: Record<string, Record<string, number>>;
    record: Record<string, Record<string, number>>;
  };
} = { trainImagesPerSecond: {}, recordImagesPerSecond: {} };

interface PytorchRef {
  python: string;
  torch: string;
  threads: number;
  batchSize: number;
  trainImagesPerSecond: Record<string, number>;
  recordImagesPerSecond: Record<string, number>;
}
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
    const tr = await Trainer.create(createTfjsEngine(tf), cfg, data, 10);
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
    const r = await measureThroughput(
      createTfjsEngine(tf),
      model,
      64,
      2,
      () => tf.memory().numTensors,
    );
    (results.trainImagesPerSecond['node-cpu'] ??= {})[model] = r.trainImagesPerSecond;
    (results.recordImagesPerSecond['node-cpu'] ??= {})[model] = r.recordImagesPerSecond;
    log(
      `Node CPU ${model}: train ${r.trainImagesPerSecond.toFixed(1)} img/s, record ${r.recordImagesPerSecond.toFixed(1)} img/s (tensors ${r.tensorsBefore} → ${r.tensorsAfter})`,
    );
  }
}

/** Our WebAssembly engine in Node, on every core and on one (best of a few runs: the machine is shared). */
async function wasmEngine() {
  const threads = availableParallelism();
  for (const t of threads > 1 ? [threads, 1] : [1]) {
    const key = t === threads ? 'node-wasm' : `node-wasm-${t}t`;
    for (const model of ['resnet8', 'resnet20'] as const) {
      let train = 0;
      let record = 0;
      for (let rep = 0; rep < 3; rep++) {
        const r = await measureThroughput(createWasmEngine({ threads: t }), model, 64, 4);
        train = Math.max(train, r.trainImagesPerSecond);
        record = Math.max(record, r.recordImagesPerSecond);
      }
      (results.trainImagesPerSecond[key] ??= {})[model] = train;
      (results.recordImagesPerSecond[key] ??= {})[model] = record;
      log(
        `Node wasm engine (${t} thread${t > 1 ? 's' : ''}) ${model}: train ${train.toFixed(1)} img/s, record ${record.toFixed(1)} img/s`,
      );
    }
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

/** A Python with torch: Debian's /usr/bin/python3 first (a pyenv python3 on PATH may lack it). */
function findTorchPython(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return null;
}

function pytorch() {
  const py = findTorchPython();
  if (!py) {
    log(
      'PyTorch reference: skipped (no python3 with torch; Debian: apt-get install python3-torch)',
    );
    return;
  }
  const out = execFileSync(py, ['bench/pytorch_ref.py'], { encoding: 'utf8' });
  const ref = JSON.parse(out.trim().split('\n').at(-1)!) as Omit<PytorchRef, 'python'>;
  results.pytorch = { python: py, ...ref };
  for (const m of Object.keys(ref.trainImagesPerSecond))
    log(
      `PyTorch ${ref.torch} CPU (${ref.threads} threads) ${m}: train ${ref.trainImagesPerSecond[m].toFixed(1)} img/s, record ${ref.recordImagesPerSecond[m].toFixed(1)} img/s`,
    );
}

/** Our images/s ÷ PyTorch's for every backend and model measured. */
function ratios() {
  const ref = results.pytorch;
  if (!ref) return;
  const of = (ours: Record<string, Record<string, number>>, theirs: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(ours).map(([backend, byModel]) => [
        backend,
        Object.fromEntries(
          Object.entries(byModel)
            .filter(([m]) => theirs[m] > 0)
            .map(([m, v]) => [m, v / theirs[m]]),
        ),
      ]),
    );
  results.vsPytorch = {
    train: of(results.trainImagesPerSecond, ref.trainImagesPerSecond),
    record: of(results.recordImagesPerSecond, ref.recordImagesPerSecond),
  };
  for (const [k, v] of Object.entries(results.vsPytorch.train))
    log(
      `vs PyTorch, ${k}: train ${Object.entries(v)
        .map(([m, r]) => `${m} ${r.toFixed(3)}×`)
        .join(', ')}; record ${Object.entries(results.vsPytorch.record[k] ?? {})
        .map(([m, r]) => `${m} ${r.toFixed(3)}×`)
        .join(', ')}`,
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
    const wanted = (process.env.BENCH_BROWSER_BACKENDS ?? 'auto,cpu,wasm')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const done = new Set<string>();
    // One browser context: the app's measurement is cached in localStorage after the first page.
    const context = await browserApp.newContext();
    for (const backend of wanted) {
      const page = await context.newPage();
      await page.goto(
        `http://127.0.0.1:${port}/${backend === 'auto' ? '' : `?backend=${backend}`}`,
      );
      await page
        .getByTestId('compute-check')
        .filter({ hasText: 'check passed' })
        .waitFor({ timeout: 180_000 });
      const label = (await page.getByTestId('backend').textContent())?.replace(/\s+/g, ' ').trim();
      if (backend === 'auto') log(`Chromium chooses: ${label}`);
      else if (!label?.includes(`chosen by ?backend=${backend}`)) {
        log(`Chromium ${backend}: not available here, skipped (${label})`);
        await page.close();
        continue;
      }
      const name =
        backend === 'auto'
          ? await page.evaluate(() => {
              const k = Object.keys(localStorage).find((x) => x.startsWith('badloss-backend:'));
              return k ? (JSON.parse(localStorage.getItem(k)!) as { chosen: string }).chosen : '';
            })
          : backend;
      if (done.has(name)) {
        log(`Chromium ${backend}: measured already (the app's choice)`);
        await page.close();
        continue;
      }
      done.add(name);
      await page.getByRole('button', { name: 'Diagnostics', exact: true }).click();
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
    await context.close();
    if (process.env.BENCH_TINY !== '0')
      results.tinyPresetSeconds = await presetEndToEnd(browserApp, port, 'tiny');
    if (process.env.BENCH_COMPARE === '1')
      results.comparePresetSeconds = await presetEndToEnd(browserApp, port, 'compare');
    if (process.env.BENCH_IMPORT === '0') {
      await browserApp.close();
      return;
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

/**
 * A preset end to end in the tab, driven as a user would on the backend the app chooses: preset →
 * build → train → detect (→ retrain every compared defense) → retrain → report. Seconds from
 * the Build click to the report.
 */
async function presetEndToEnd(
  browserApp: Browser,
  port: number,
  preset: 'tiny' | 'compare',
): Promise<number> {
  const page = await browserApp.newPage();
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.getByTestId('compute-check').filter({ hasText: 'check passed' }).waitFor({
    timeout: 180_000,
  });
  const nav = (name: string) =>
    page
      .getByRole('navigation', { name: 'Workflow' })
      .getByRole('button', { name: new RegExp(`^\\d+\\s*${name}$`) });
  await nav('Data').click();
  await page.getByTestId('dataset-list').getByText('Demo shapes (seed 0)').waitFor();
  await nav('Attacks').click();
  await page
    .getByRole('button', { name: preset === 'tiny' ? /Tiny \(no GPU\)/ : /Paper comparison/ })
    .click();
  await nav('Probes').click();
  const t0 = performance.now();
  await page.getByRole('button', { name: /^Build the training set/ }).click();
  await page.getByTestId('prepared-summary').waitFor({ timeout: 120_000 });
  await nav('Train').click();
  const prob = page.getByTestId('phase-probationary');
  await prob.getByRole('button', { name: 'Start training' }).click();
  await prob.getByText(/✓ trained/).waitFor({ timeout: 1_800_000 });
  await nav('Detect').click();
  await page.getByRole('button', { name: 'Run detection' }).click();
  await page.getByTestId('score-histogram').waitFor({ timeout: 300_000 });
  if (preset === 'compare') {
    // every compared defense is retrained too, one after the other
    await page.getByRole('button', { name: /^Retrain all \d+ queued/ }).click();
    for (const d of ['spectral', 'activation-clustering', 'frequency', 'abl'])
      await page
        .getByTestId(`phase-retrain:${d}`)
        .getByText(/✓ trained/)
        .waitFor({ timeout: 1_800_000 });
  }
  await nav('Retrain').click();
  const re = page.getByTestId('phase-retrain');
  await re.getByRole('button', { name: 'Start training' }).click();
  await re.getByText(/✓ trained/).waitFor({ timeout: 1_800_000 });
  await page.getByRole('button', { name: 'See the report →' }).click();
  await page.getByTestId('verdict').waitFor({ timeout: 120_000 });
  const seconds = (performance.now() - t0) / 1000;
  const verdict = (await page.getByTestId('verdict').textContent())?.replace(/\s+/g, ' ').trim();
  log(
    `${preset === 'tiny' ? 'Tiny preset' : 'Paper comparison preset'} end to end in the tab (${(await page.getByTestId('backend').textContent())?.replace(/\s+/g, ' ').trim().slice(0, 40)}…): ${seconds.toFixed(0)} s${preset === 'tiny' ? ' (target ≤ 180 s)' : ''}\n  ${verdict?.slice(0, 400)}`,
  );
  await page.close();
  return seconds;
}

if (process.env.BENCH_NODE !== '0') {
  await cpuKernels();
  await wasmEngine();
  detection();
}
if (process.env.BENCH_PYTORCH !== '0') pytorch();
if (process.env.BENCH_BROWSER !== '0') await browser();
ratios();
log(JSON.stringify(results));
