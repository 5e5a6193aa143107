/**
 * `npx tsx bench/knn-scale.ts [N] [E,...]`: seconds of the k-NN detector (src/core/detect/knn.ts)
 * (with the WebAssembly SIMD kernel the CLI and the app use) on N random trajectories × E epochs against 750 probes (250 clean, 500 anomalous), for
 * docs/scale.md. Times k chosen by leave-one-out ('auto', what `detect` does by default) and a
 * fixed k = 30. Single-threaded Node; nothing is asserted. Prints wall-clock and CPU seconds: on
 * a shared machine the CPU seconds are what an idle core would take.
 */
import { knnScores } from '../src/core/detect/knn.ts';
import { wasmNearest } from '../src/ml/fast-knn.ts';
import { Rng } from '../src/core/rng.ts';

const n = Number(process.argv[2] ?? 50_000);
const epochsList = (process.argv[3] ?? '20,50,100').split(',').map(Number);
const clean = [...Array(250).keys()];
const anomalous = [...Array(500).keys()].map((i) => 250 + i);
const rows: Record<string, number>[] = [];
/** Runs fn; returns [wall seconds, CPU seconds (user + system) of this process]. */
function timed(fn: () => void): [number, number] {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const c = process.cpuUsage(c0);
  return [(performance.now() - t0) / 1000, (c.user + c.system) / 1e6];
}
for (const epochs of epochsList) {
  const rng = new Rng(1);
  const losses = new Float32Array(n * epochs);
  for (let i = 0; i < losses.length; i++) losses[i] = rng.float() * 3;
  const t = { n, epochs, losses };
  const [autoSeconds, autoCpu] = timed(() =>
    knnScores(t, { clean, anomalous }, 'auto', undefined, wasmNearest),
  );
  const [fixedSeconds, fixedCpu] = timed(() =>
    knnScores(t, { clean, anomalous }, 30, undefined, wasmNearest),
  );
  rows.push({ n, epochs, autoSeconds, autoCpu, fixedSeconds, fixedCpu });
  process.stdout.write(
    `N = ${n}, E = ${epochs}, P = 750: k auto ${autoSeconds.toFixed(2)} s (CPU ${autoCpu.toFixed(2)} s), k = 30 ${fixedSeconds.toFixed(2)} s (CPU ${fixedCpu.toFixed(2)} s)\n`,
  );
}
process.stdout.write(JSON.stringify(rows) + '\n');
