/**
 * `npx tsx bench/rounds.ts`: which of the default's tests removes which rows, round by round
 * (docs/detection.md, "The tests in the first round only"). For each seed it runs the default
 * (DEFAULT_DETECT, the probe bank) through the run orchestrator at the product owner's scale
 * (bench/detection-data.ts; BENCH_DATA for natural images), then scores each round's model again
 * with each test alone — the k-NN at its round's budget, the easiness and mirror tests at the
 * first round's — and prints per round and test the clean rows it flags (% of all clean rows) and
 * each attack's poisons, flagged by the test and flagged by it alone. The second round's easiness
 * and mirror rows are what those tests would have removed there: the default runs the k-NN alone
 * in that round, and the row "removed" is what it did remove. BENCH_SEEDS (default "3"). About
 * two and a half minutes a seed with two threads.
 */
import { detect, flaggedRows, type DetectOptions } from '../src/core/detect/index.ts';
import { probeRowsFromKinds } from '../src/core/detect/knn.ts';
import { subsetSplit } from '../src/core/dataset.ts';
import { DEFAULT_DETECT, DEFAULT_PROBE_TRIGGER } from '../src/core/experiment.ts';
import { PROBE_NONE } from '../src/core/probes.ts';
import { firstRound, MemoryRunStore } from '../src/core/run.ts';
import { mirrorGapOf, RunOrchestrator, type TrainerFactory } from '../src/ml/run.ts';
import { Trainer } from '../src/ml/train.ts';
import { benchConfig, benchDataset, theEngine } from './detection-data.ts';

const seeds = (process.env.BENCH_SEEDS ?? '3').split(',').map(Number);
const log = (s: string) => process.stdout.write(s + '\n');
const pct = (x: number) => (100 * x).toFixed(1);
const { easiness, mirror, secondRound, ...knn } = DEFAULT_DETECT;

log('| seed | round | test | clean rows | poisons flagged (by this test alone) |');
log('|---|---|---|---|---|');
for (const seed of seeds) {
  const ds = await benchDataset(seed);
  const store = new MemoryRunStore();
  const createTrainer: TrainerFactory = (c, split, n, ck) =>
    Trainer.create(theEngine(), c, split, n, ck);
  const runs = new RunOrchestrator({ store, loadDataset: async () => ds, createTrainer });
  const config = { ...benchConfig(seed, DEFAULT_PROBE_TRIGGER), detect: { ...DEFAULT_DETECT } };
  const created = await runs.createRun({ datasetId: ds.name, datasetName: ds.name, config });
  // Up to the second round's detection: the retraining does not change what was removed.
  let run = created;
  for (const stage of ['prepare', 'probationary', 'detect', 'recheck'] as const)
    run = await runs.runStage(created.id, stage);
  const p = await runs.prepared(run);
  const ids = p.attacks.map((a) => a.id);
  const isClean = (i: number) => p.probes.probeKind[i] === PROBE_NONE && p.truth[i] === -1;
  const cleanRows = [...Array(p.train.count).keys()].filter(isClean).length;
  const first = new Set(firstRound(run.detection!).flagged);
  const secondKept = [...Array(p.train.count).keys()].filter((i) => !first.has(i));
  for (const [round, rows, budget] of [
    [1, [...Array(p.train.count).keys()], knn.targetFpr],
    [2, secondKept, secondRound],
  ] as const) {
    const ck = (await store.loadCheckpoint(run.id, round === 1 ? 'probationary' : 'recheck'))!;
    const split = subsetSplit(p.train, rows);
    // The gaps under this round's model (the default keeps the first round's only).
    const trainer = await createTrainer(ck.config, split, p.numClasses, ck);
    let gap: Float32Array;
    try {
      gap = await mirrorGapOf(trainer, split);
    } finally {
      trainer.dispose();
    }
    const kinds = Uint8Array.from(rows, (i) => p.probes.probeKind[i]);
    const flagsOf = (o: DetectOptions): Set<number> => {
      const d = detect(
        { n: rows.length, epochs: ck.config.epochs, losses: ck.trajectories },
        probeRowsFromKinds(kinds),
        o,
        { labels: split.labels, numClasses: p.numClasses, mirrorGap: gap },
      );
      return new Set(flaggedRows(d.scores, d.threshold).map((j) => rows[j]));
    };
    // A test alone: the k-NN at a budget too small to flag anything, united with it.
    const none = { ...knn, targetFpr: 1e-9 };
    const tests: [string, Set<number>][] = [
      ['k-NN', flagsOf({ ...knn, targetFpr: budget })],
      ['easiness', flagsOf({ ...none, easiness })],
      ['mirror', flagsOf({ ...none, mirror })],
    ];
    const removed =
      round === 1
        ? first
        : new Set(run.detection!.secondRound!.summary.flagged.filter((i) => !first.has(i)));
    const line = (name: string, f: Set<number>, alone?: Set<number>) => {
      const clean = [...f].filter(isClean).length;
      const per = ids.map((id, k) => {
        const pois = [...f].filter((i) => p.truth[i] === k && p.probes.probeKind[i] === PROBE_NONE);
        const only = alone ? ` (${pois.filter((i) => alone.has(i)).length})` : '';
        return `${id} ${pois.length}${only}`;
      });
      log(
        `| ${seed} | ${round} | ${name} | ${clean} (${pct(clean / cleanRows)}%) | ${per.join(', ')} |`,
      );
    };
    for (const [name, f] of tests) {
      const others = tests.filter(([n]) => n !== name).map(([, g]) => g);
      line(name, f, new Set([...f].filter((i) => others.every((g) => !g.has(i)))));
    }
    line('removed', removed);
  }
}
process.exit(0);
