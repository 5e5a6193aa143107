import 'fake-indexeddb/auto';
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore } from 'idb-keyval';
import { generateDemoDataset } from '../../src/core/demo.ts';
import type { Dataset } from '../../src/core/dataset.ts';
import { prepareExperiment, preset, type RunConfig } from '../../src/core/experiment.ts';
import { classPrior, priorWeights } from '../../src/core/reweight.ts';
import { probeFit } from '../../src/core/detect/fit.ts';
import { detect as detectTrajectories, flaggedRows } from '../../src/core/detect/index.ts';
import { probeRowsFromKinds } from '../../src/core/detect/knn.ts';
import { mirroredSplit, mirrorGaps, mirrorTest } from '../../src/core/detect/mirror.ts';
import {
  clearFrom,
  configChange,
  firstRound,
  downstreamOf,
  MemoryRunStore,
  nextStage,
  phaseEpochs,
  RETRAIN_PHASES,
  retrainEpochs,
  retrainRowCount,
  stagesWithResults,
  testsThatRan,
  type Checkpoint,
  type Phase,
  type RunRecord,
  type RunStore,
  type SecondRoundRecord,
} from '../../src/core/run.ts';
import { RunOrchestrator, trainConfigOf, type TrainerFactory } from '../../src/ml/run.ts';
import { Trainer } from '../../src/ml/train.ts';
import { createWasmEngine } from '../../src/ml/wasm-engine-node.ts';
import { IdbRunStore } from '../../src/storage/runs.ts';
import { FileRunStore } from '../../src/cli/file-run-store.ts';
import { recordedFiles } from './recorded-fixture.ts';
import { parseCifarBin } from '../../src/core/formats/cifar.ts';
import { encodeNpy, parseNpy } from '../../src/core/formats/npy.ts';

let factory: TrainerFactory;
let ds: Dataset;

beforeAll(async () => {
  // The orchestrator is engine-agnostic: the WebAssembly engine keeps these tests fast.
  const engine = await createWasmEngine({});
  factory = (cfg, split, numClasses, ckpt) => Trainer.create(engine, cfg, split, numClasses, ckpt);
  ds = generateDemoDataset({ seed: 4, train: 240, test: 60 });
});

/** A run small enough to train in seconds: every stage, two epochs, a few probes. */
function tinyConfig(over: Partial<RunConfig> = {}): RunConfig {
  const q = preset('quick');
  return {
    ...q,
    attacks: [{ id: 'patch', ratio: 0.1 }],
    probes: { n: 8, trigger: 'sinusoid', trusted: 'train-untouched' },
    train: { ...q.train, width: 0.25, epochs: 2, batchSize: 32 },
    detect: { method: 'knn', k: 5, threshold: 0.1 },
    ...over,
  };
}

/**
 * Two detection rounds at budgets large enough to flag rows with 8 probes of each kind (a
 * conformal level needs ⌈1/α⌉ − 1 clean probes), with the tie-broken score so the levels differ.
 */
const TWO_ROUNDS = {
  method: 'knn',
  k: 5,
  threshold: 'auto',
  targetFpr: 0.3,
  calibration: 'pooled',
  score: 'knn+distance',
  secondRound: 0.3,
} as const;

function orchestrator(store: RunStore, trainers: TrainerFactory = factory) {
  let t = 1_000;
  return new RunOrchestrator({
    store,
    loadDataset: async (id) => {
      if (id !== 'demo') throw new Error(`unknown dataset ${id}`);
      return ds;
    },
    createTrainer: trainers,
    newId: () => 'run-1',
    now: () => t++,
  });
}

async function newRun(runs: RunOrchestrator, over: Partial<RunConfig> = {}) {
  return runs.createRun({ datasetId: 'demo', datasetName: 'Demo', config: tinyConfig(over) });
}

/** A store that "crashes" (throws) on its n-th epoch commit, like a tab closed mid-run. */
class CrashingStore extends MemoryRunStore {
  commits = 0;
  constructor(private readonly crashAt: number) {
    super();
  }
  override async commitEpoch(r: RunRecord, phase: Phase, c: Checkpoint): Promise<void> {
    if (++this.commits === this.crashAt) throw new Error('simulated crash');
    return super.commitEpoch(r, phase, c);
  }
}

describe('stage sequence (core)', () => {
  const base: RunRecord = {
    schema: 1,
    id: 'r',
    name: 'r',
    datasetId: 'd',
    datasetName: 'd',
    config: tinyConfig(),
    createdAt: 0,
    updatedAt: 0,
    phases: {},
  };
  const evaluation = { cleanAccuracy: 1, asr: {}, asrBoosted: {} };
  const phase = { history: [], done: true, rows: 1, evaluation };

  it('walks prepare → probationary → detect → (recheck) → (baseline) → retrain → report', () => {
    const walk = (config: RunConfig) => {
      const seen: (string | null)[] = [];
      let r: RunRecord = { ...base, config };
      for (let i = 0; i < 8 && (i === 0 || seen.at(-1)); i++) {
        const s = nextStage(r);
        seen.push(s);
        if (s === 'prepare') r = { ...r, prepared: {} as RunRecord['prepared'] };
        else if (s === 'detect') r = { ...r, detection: {} as RunRecord['detection'] };
        else if (s === 'report') r = { ...r, report: {} as RunRecord['report'] };
        else if (s === 'recheck')
          r = {
            ...r,
            phases: { ...r.phases, recheck: phase },
            detection: { ...r.detection!, secondRound: {} as SecondRoundRecord },
          };
        else if (s) r = { ...r, phases: { ...r.phases, [s]: phase } };
      }
      return seen;
    };
    expect(walk({ ...base.config, separateBaseline: true })).toEqual([
      'prepare',
      'probationary',
      'detect',
      'baseline',
      'retrain',
      'report',
      null,
    ]);
    // a second detection round: its model trains, then its detection, before the retraining
    expect(walk({ ...base.config, detect: { ...base.config.detect, secondRound: 0.03 } })).toEqual([
      'prepare',
      'probationary',
      'detect',
      'recheck',
      'retrain',
      'report',
      null,
    ]);
  });

  it('clears a stage and everything downstream, naming the checkpoints to delete', () => {
    const full: RunRecord = {
      ...base,
      prepared: {} as RunRecord['prepared'],
      phases: { probationary: phase, baseline: phase, retrain: phase },
      detection: {} as RunRecord['detection'],
      report: {} as RunRecord['report'],
    };
    const p = clearFrom(full, 'probationary');
    expect(p.dropCheckpoints).toEqual(['probationary', 'recheck', 'retrain', ...RETRAIN_PHASES]);
    expect(p.run.phases.baseline).toBeDefined();
    expect(p.run.detection).toBeUndefined();
    expect(p.run.report).toBeUndefined();
    expect(p.run.prepared).toBeDefined();
    const all = clearFrom(full, 'prepare');
    expect(all.dropCheckpoints).toEqual([
      'probationary',
      'recheck',
      'baseline',
      'retrain',
      ...RETRAIN_PHASES,
    ]);
    expect(all.run.prepared).toBeUndefined();
  });

  it('jitters every retraining and nothing else', () => {
    const on = { ...tinyConfig(), retrainJitter: true };
    for (const p of ['probationary', 'recheck', 'baseline'] as const)
      expect(trainConfigOf(on, p).jitter).toBeUndefined();
    for (const p of ['retrain', ...RETRAIN_PHASES] as const) {
      expect(trainConfigOf(on, p).jitter).toBe(true);
      expect(trainConfigOf({ ...on, retrainJitter: false }, p)).not.toHaveProperty('jitter');
    }
    // the classroom presets and the command line's default retrain with it; the paper does not
    expect(preset('quick').retrainJitter).toBe(true);
    expect(preset('tiny').retrainJitter).toBe(true);
    expect(preset('paper').retrainJitter).toBeUndefined();
  });

  it('adds the stripes to every retraining and nothing else', () => {
    const on = { ...tinyConfig(), retrainStripes: true };
    for (const p of ['probationary', 'recheck', 'baseline'] as const)
      expect(trainConfigOf(on, p)).not.toHaveProperty('waves');
    for (const p of ['retrain', ...RETRAIN_PHASES] as const) {
      expect(trainConfigOf(on, p).waves).toEqual({ max: 18, share: 1 });
      expect(trainConfigOf({ ...on, retrainStripes: false }, p)).not.toHaveProperty('waves');
    }
    // independent of the jitter
    const alone = trainConfigOf({ ...on, retrainJitter: false }, 'retrain');
    expect(alone).not.toHaveProperty('jitter');
    expect(alone.waves).toEqual({ max: 18, share: 1 });
    const both = trainConfigOf({ ...on, retrainJitter: true }, 'retrain');
    expect([both.jitter, both.waves]).toEqual([true, { max: 18, share: 1 }]);
    // the classroom presets and the command line's default retrain with them; the paper does not
    for (const name of ['quick', 'tiny', 'compare'] as const)
      expect(preset(name).retrainStripes).toBe(true);
    expect(preset('paper').retrainStripes).toBeUndefined();
  });

  it('retrains for as many steps as the first model: its epochs scaled by the rows it keeps', () => {
    // oracle values: 10 epochs on 6,000 rows, retrained on 4,763 (CIFAR-10 seed 0) or 4,870 (seed 4)
    expect(retrainEpochs(10, true, 4763, 6000)).toBe(13);
    expect(retrainEpochs(10, true, 4870, 6000)).toBe(12);
    expect(retrainEpochs(10, false, 4763, 6000)).toBe(10);
    expect(retrainEpochs(10, undefined, 4763, 6000)).toBe(10);
    // never fewer epochs than the recipe's, never past the epochs' limit, no rows: the recipe's
    expect(retrainEpochs(10, true, 5990, 6000)).toBe(10);
    expect(retrainEpochs(10, true, 6000, 6000)).toBe(10);
    expect(retrainEpochs(10, true, 0, 6000)).toBe(10);
    expect(retrainEpochs(900, true, 3000, 6000)).toBe(1000);
    // steps match within half an epoch of the kept rows, for any removal
    for (let kept = 600; kept <= 6000; kept += 97) {
      const e = retrainEpochs(10, true, kept, 6000);
      expect(Math.abs(e * kept - 10 * 6000)).toBeLessThanOrEqual(kept / 2);
    }
    // only the retrainings get it
    const on = { ...tinyConfig(), retrainMatchSteps: true };
    const rows = { kept: 100, full: 240 };
    for (const p of ['probationary', 'recheck', 'baseline'] as const)
      expect(trainConfigOf(on, p, rows).epochs).toBe(2);
    for (const p of ['retrain', ...RETRAIN_PHASES] as const) {
      expect(trainConfigOf(on, p, rows).epochs).toBe(5);
      expect(trainConfigOf({ ...on, retrainMatchSteps: false }, p, rows).epochs).toBe(2);
      // a caller that forgets the rows is told, not given the recipe's epochs
      expect(() => trainConfigOf(on, p)).toThrow(/pass its rows/);
    }
    // the command line's default has it; no preset does (they were measured without it)
    for (const name of ['quick', 'tiny', 'compare', 'paper'] as const)
      expect(preset(name)).not.toHaveProperty('retrainMatchSteps');
  });

  it('reweights the classes of every retraining and nothing else, given its labels and a prior', () => {
    const on = { ...tinyConfig(), retrainReweight: true };
    // 3 rows of class 0, 1 of class 1, to a prior of one half each: weights 2/3 and 2
    const rows = { kept: 4, full: 240, labels: [0, 0, 0, 1], prior: [0.5, 0.5] };
    for (const p of ['probationary', 'recheck', 'baseline'] as const)
      expect(trainConfigOf(on, p, rows)).not.toHaveProperty('classWeights');
    for (const p of ['retrain', ...RETRAIN_PHASES] as const) {
      const w = trainConfigOf(on, p, rows).classWeights!;
      expect(w[0]).toBeCloseTo(2 / 3, 12);
      expect(w[1]).toBeCloseTo(2, 12);
      expect(trainConfigOf({ ...on, retrainReweight: false }, p, rows)).not.toHaveProperty(
        'classWeights',
      );
      // no test split (no prior): not reweighted
      expect(trainConfigOf(on, p, { kept: 4, full: 240, labels: [0, 0, 0, 1] })).not.toHaveProperty(
        'classWeights',
      );
      // a caller that forgets the labels is told, not given an unweighted retraining
      expect(() => trainConfigOf(on, p, { kept: 4, full: 240 })).toThrow(/pass its rows' labels/);
    }
  });

  it('says how many epochs a phase plans: a matched retraining knows once it has its rows', () => {
    const rec = (over: Partial<RunRecord>): RunRecord => ({
      schema: 1,
      id: 'r',
      name: 'r',
      datasetId: 'd',
      datasetName: 'd',
      config: { ...tinyConfig(), retrainMatchSteps: true },
      createdAt: 0,
      updatedAt: 0,
      phases: {},
      ...over,
    });
    const prepared = { trainCount: 240 } as RunRecord['prepared'];
    const started = { history: [], done: false, rows: 100 };
    expect(phaseEpochs(rec({ prepared }), 'probationary')).toEqual({ epochs: 2, more: false });
    expect(phaseEpochs(rec({ prepared }), 'retrain')).toEqual({ epochs: 2, more: true });
    // detected: 240 rows less 124 flagged and 16 backdoor and mislabeled probes = 100 kept
    const detected = {
      prepared: {
        trainCount: 240,
        probes: { backdoor: 8, mislabeled: 8 },
      } as RunRecord['prepared'],
      detection: { summary: { flagged: Array.from({ length: 124 }, (_, i) => i) } },
    } as Partial<RunRecord>;
    expect(retrainRowCount(rec(detected), 'retrain')).toBe(100);
    expect(phaseEpochs(rec(detected), 'retrain')).toEqual({ epochs: 5, more: false });
    // a compared defense's retraining counts its own removals
    expect(phaseEpochs(rec(detected), 'retrain:spectral')).toEqual({ epochs: 2, more: true });
    expect(phaseEpochs(rec({ prepared, phases: { retrain: started } }), 'retrain')).toEqual({
      epochs: 5,
      more: false,
    });
    const off = rec({ prepared, phases: { retrain: started }, config: tinyConfig() });
    expect(phaseEpochs(off, 'retrain')).toEqual({ epochs: 2, more: false });
  });

  it('classifies configuration changes by what they invalidate', () => {
    const c = tinyConfig();
    expect(configChange(c, structuredClone(c))).toEqual({ clear: [], what: [] });
    expect(configChange(c, { ...c, seed: 9 }).clear).toEqual(['prepare']);
    expect(configChange(c, { ...c, train: { ...c.train, epochs: 3 } }).clear).toEqual([
      'probationary',
      'baseline',
    ]);
    expect(configChange(c, { ...c, detect: { ...c.detect, k: 7 } }).clear).toEqual(['recheck']);
    expect(downstreamOf('recheck')).toEqual(['recheck', 'retrain', 'report']);
    // Turning the baseline on discards nothing but the report; turning it off drops that model.
    expect(configChange(c, { ...c, separateBaseline: true }).clear).toEqual(['report']);
    expect(configChange({ ...c, separateBaseline: true }, c).clear).toEqual(['baseline']);
    // The retraining jitter: every retrained model goes (BaDLoss's and the compared defenses'),
    // nothing upstream; absent and false are the same recipe.
    const still = { ...c, retrainJitter: !c.retrainJitter };
    expect(configChange(c, still)).toEqual({
      clear: ['retrain', ...RETRAIN_PHASES],
      what: [
        still.retrainJitter ? 'retraining with sub-pixel jitter' : 'retraining without jitter',
      ],
    });
    const { retrainJitter: _j, ...absent } = c;
    expect(configChange({ ...absent }, { ...absent, retrainJitter: false }).clear).toEqual([]);
    // the stripes likewise
    const { retrainStripes: _s, ...plain } = c;
    expect(configChange(plain, { ...plain, retrainStripes: true })).toEqual({
      clear: ['retrain', ...RETRAIN_PHASES],
      what: ['retraining with random stripes'],
    });
    expect(configChange({ ...plain, retrainStripes: true }, plain).what).toEqual([
      'retraining without stripes',
    ]);
    expect(configChange(plain, { ...plain, retrainStripes: false }).clear).toEqual([]);
    // and the retraining's steps
    expect(configChange(c, { ...c, retrainMatchSteps: true })).toEqual({
      clear: ['retrain', ...RETRAIN_PHASES],
      what: ['retraining for as many steps as the first model'],
    });
    expect(configChange({ ...c, retrainMatchSteps: true }, c).what).toEqual([
      "retraining for the recipe's epochs",
    ]);
    // and the classes' weights
    expect(configChange(c, { ...c, retrainReweight: true })).toEqual({
      clear: ['retrain', ...RETRAIN_PHASES],
      what: ["retraining with the classes reweighted to the test split's frequencies"],
    });
    expect(configChange({ ...c, retrainReweight: true }, c).what).toEqual([
      'retraining without reweighting the classes',
    ]);
    expect(downstreamOf('retrain')).toEqual(['retrain', 'report']);
    const r: RunRecord = { ...base, phases: { probationary: phase } };
    expect(stagesWithResults(r, ['report'])).toEqual([]);
    expect(stagesWithResults(r, ['probationary'])).toEqual(['probationary']);
  });
});

describe('run orchestrator', () => {
  it('runs every stage on the IndexedDB store, and a crash between epochs resumes to the same result', async () => {
    // Uninterrupted, on IndexedDB (fake-indexeddb): the store the worker uses.
    const idb = new IdbRunStore(createStore('orchestrator-test', 'kv'));
    const a = orchestrator(idb);
    const runA = await a.runAll((await newRun(a)).id);
    expect(nextStage(runA)).toBeNull();
    expect(runA.report?.dataset.train).toBe(240);
    expect(runA.phases.probationary?.history).toHaveLength(2);
    expect(runA.phases.retrain?.rows).toBe(
      240 - runA.detection!.summary.flagged.length - 2 * 8, // backdoor + mislabeled probes go
    );
    const trajA = (await idb.loadCheckpoint('run-1', 'probationary'))!.trajectories;

    // Interrupted: the 4th epoch commit (2 probationary epochs, the commit that adds the features,
    // then the retrained model's first epoch) fails, and a fresh orchestrator (a reloaded tab)
    // continues from what was stored.
    const store = new CrashingStore(4);
    const b = orchestrator(store);
    const id = (await newRun(b)).id;
    await expect(b.runAll(id)).rejects.toThrow('simulated crash');
    const stored = await store.findRun(id);
    expect(nextStage(stored!)).toBe('retrain');
    const runB = await orchestrator(store).runAll(id);
    const trajB = (await store.loadCheckpoint(id, 'probationary'))!.trajectories;
    expect(Array.from(trajB)).toEqual(Array.from(trajA));
    expect(runB.detection!.summary.flagged).toEqual(runA.detection!.summary.flagged);
    expect(runB.report!.cleanAccuracy).toEqual(runA.report!.cleanAccuracy);
    expect(runB.report!.asr).toEqual(runA.report!.asr);
  }, 120_000);

  it('a threshold moved on calibrated scores is stored as the clean-removal budget', async () => {
    const detect = {
      method: 'knn',
      k: 5,
      threshold: 'auto',
      targetFpr: 0.2,
      calibration: 'pooled',
    } as const;
    const store = new MemoryRunStore();
    const runs = orchestrator(store);
    const done = await runs.runAll((await newRun(runs, { detect })).id);
    // the detection keeps how far the probationary model fit its probes (the underfit warning)
    const ck = (await store.loadCheckpoint(done.id, 'probationary'))!;
    const fit = probeFit(
      {
        n: ck.trajectories.length / ck.config.epochs,
        epochs: ck.config.epochs,
        losses: ck.trajectories,
      },
      (await runs.prepared(done)).probes.probeKind,
    );
    expect(done.detection!.probeFit).toEqual(fit);
    expect(Number.isFinite(fit.clean) && Number.isFinite(fit.mislabeled)).toBe(true);
    const moved = await runs.setThreshold(done.id, 0.6, true);
    expect(moved.detection!.probeFit).toEqual(fit);
    expect(moved.config.detect.threshold).toBe('auto');
    expect(moved.config.detect.targetFpr).toBeCloseTo(0.4, 12);
    expect(moved.detection!.summary.flagged.length).toBeGreaterThan(
      done.detection!.summary.flagged.length,
    );
    // detecting again from the stored settings removes what the slider showed
    const again = await runs.detect(done.id, undefined, true);
    expect(again.detection!.summary.flagged).toEqual(moved.detection!.summary.flagged);
  }, 120_000);

  it('a reweighted retraining weighs its kept rows to the test split; no other model is weighted', async () => {
    const detect = { method: 'knn', k: 9, threshold: 0.01 } as const;
    const seen: { phaseRows: number; labels: Uint8Array; weights?: number[] }[] = [];
    const watching: TrainerFactory = (cfg, split, n, ck) => {
      seen.push({
        phaseRows: split.count,
        labels: split.labels.slice(),
        weights: cfg.classWeights,
      });
      return factory(cfg, split, n, ck);
    };
    const runs = orchestrator(new MemoryRunStore(), watching);
    const done = await runs.runAll((await newRun(runs, { detect, retrainReweight: true })).id);
    expect(seen).toHaveLength(2);
    expect(seen[0].weights).toBeUndefined(); // the probationary model, whose losses are read
    const p = prepareExperiment(ds, done.config);
    const want = priorWeights(seen[1].labels, classPrior(p.test.labels, p.numClasses)!);
    expect(seen[1].weights).toEqual(want);
    expect(done.report!.config.retrainReweight).toBe(true);
  }, 120_000);

  it('a matched retraining trains for more epochs on the rows it keeps, and resumes', async () => {
    // flags a row with any anomalous probe among its neighbours: a large removal
    const detect = { method: 'knn', k: 9, threshold: 0.01 } as const;
    const seen: { epochs: number; rows: number }[] = [];
    const watching: TrainerFactory = (cfg, split, n, ck) => {
      seen.push({ epochs: cfg.epochs, rows: split.count });
      return factory(cfg, split, n, ck);
    };
    const store = new MemoryRunStore();
    const runs = orchestrator(store, watching);
    const done = await runs.runAll((await newRun(runs, { detect, retrainMatchSteps: true })).id);
    const full = done.prepared!.trainCount;
    const kept = done.phases.retrain!.rows;
    expect(kept).toBeLessThan(0.8 * full); // the detection removed enough to matter
    const epochs = retrainEpochs(2, true, kept, full);
    expect(epochs).toBeGreaterThan(2);
    expect(seen).toEqual([
      { epochs: 2, rows: full },
      { epochs, rows: kept },
    ]);
    expect(done.phases.retrain!.history).toHaveLength(epochs);
    expect(done.phases.probationary!.history).toHaveLength(2);
    expect(phaseEpochs(done, 'retrain')).toEqual({ epochs, more: false });
    expect((await store.loadCheckpoint(done.id, 'retrain'))!.config.epochs).toBe(epochs);
    expect(done.report!.config.retrainMatchSteps).toBe(true);
    // interrupted after the retraining's first epoch (commits: the probationary's two epochs and its
    // final pass, then the retraining's), a new orchestrator resumes it to the same model
    const crashing = new CrashingStore(5);
    const a = orchestrator(crashing);
    const { id } = await newRun(a, { detect, retrainMatchSteps: true });
    await expect(a.runAll(id)).rejects.toThrow('simulated crash');
    expect((await crashing.loadCheckpoint(id, 'retrain'))!.epoch).toBe(1);
    const handed: (number | undefined)[] = [];
    const resumed = await orchestrator(crashing, (cfg, split, n, ck) => {
      if (split.count === kept) handed.push(ck?.epoch, cfg.epochs);
      return factory(cfg, split, n, ck);
    }).runAll(id);
    expect(handed).toEqual([1, epochs]); // resumed from its first epoch, not started over
    expect(resumed.phases.retrain!.history.map((h) => h.loss)).toEqual(
      done.phases.retrain!.history.map((h) => h.loss),
    );
    expect(resumed.report!.cleanAccuracy).toEqual(done.report!.cleanAccuracy);
  }, 120_000);

  it('with the easiness test, a moved threshold scales both budgets and detecting again agrees', async () => {
    const runs = orchestrator(new MemoryRunStore());
    const detect = {
      method: 'knn',
      k: 5,
      threshold: 'auto',
      targetFpr: 0.1,
      easiness: 0.05,
      calibration: 'pooled',
    } as const;
    const done = await runs.runAll((await newRun(runs, { detect })).id);
    expect(done.detection!.summary.threshold).toBeCloseTo(0.85, 12);
    const moved = await runs.setThreshold(done.id, 0.55, true);
    // the cut at 1 − 0.45: the budgets 0.1 and 0.05 scaled by 3, in proportion
    expect(moved.config.detect.targetFpr).toBeCloseTo(0.3, 12);
    expect(moved.config.detect.easiness).toBeCloseTo(0.15, 12);
    expect(moved.detection!.summary.flagged.length).toBeGreaterThan(
      done.detection!.summary.flagged.length,
    );
    const again = await runs.detect(done.id, undefined, true);
    expect(again.detection!.summary.flagged).toEqual(moved.detection!.summary.flagged);
    // the slider's end is a fixed cut: the easiness test goes with the calibration
    const fixed = await runs.setThreshold(done.id, 0, true);
    expect(fixed.config.detect.threshold).toBe(0);
    expect(fixed.config.detect).not.toHaveProperty('easiness');
  }, 120_000);

  it("keeps the probationary model's mirror gaps, the mirror test adds its flags and budget, and the second round is the k-NN alone", async () => {
    const store = new MemoryRunStore();
    const runs = orchestrator(store);
    // 8 clean probes: a conformal test flags nothing below a budget of 1/9, so the mirror
    // test gets 0.15
    const detect = { ...TWO_ROUNDS, easiness: 0.05, mirror: 0.15 } as const;
    const done = await runs.runAll((await newRun(runs, { detect })).id);
    const p = await runs.prepared(done);
    // the probationary model's gaps: its losses on the mirrored images minus on the images
    const ck = (await store.loadCheckpoint(done.id, 'probationary'))!;
    const trainer = await factory(ck.config, p.train, p.numClasses, ck);
    const want = mirrorGaps(
      await trainer.perExampleLosses(p.train),
      await trainer.perExampleLosses(mirroredSplit(p.train)),
    );
    trainer.dispose();
    expect(Array.from(ck.mirrorGap!)).toEqual(Array.from(want));
    // the first round is the union of the three tests, at the summed budget
    const det = done.detection!;
    expect(det.calibration).toMatchObject({ easiness: 0.05, mirror: 0.15 });
    expect(firstRound(det).threshold).toBeCloseTo(1 - 0.5, 12);
    // the second round is the k-NN alone at α2 on its model's trajectories: no gaps measured
    const recheck = (await store.loadCheckpoint(done.id, 'recheck'))!;
    expect(recheck.mirrorGap).toBeUndefined();
    const firstFlags = new Set(firstRound(det).flagged);
    const kept = [...Array(p.train.count).keys()].filter((i) => !firstFlags.has(i));
    expect(recheck.count).toBe(kept.length);
    // (it flags something, so the equality below compares rows, not two empty lists)
    expect(det.secondRound!.summary.flagged.length).toBeGreaterThan(0);
    const knnOnly = detectTrajectories(
      { n: kept.length, epochs: recheck.config.epochs, losses: recheck.trajectories },
      probeRowsFromKinds(Uint8Array.from(kept, (i) => p.probes.probeKind[i])),
      { ...TWO_ROUNDS, targetFpr: TWO_ROUNDS.secondRound },
      { labels: Uint8Array.from(kept, (i) => p.train.labels[i]), numClasses: p.numClasses },
    );
    expect(det.secondRound!.summary.flagged).toEqual(
      flaggedRows(knnOnly.scores, knnOnly.threshold).map((j) => kept[j]),
    );
    expect(det.secondRound!.calibration).not.toHaveProperty('easiness');
    expect(det.secondRound!.calibration).not.toHaveProperty('mirror');
    // the report names the tests that ran, and in which round
    expect(done.report!.detection.tests).toEqual({ easiness: 0.05, mirror: 0.15 });
    expect(done.report!.detection.secondRound).not.toHaveProperty('easiness');
    expect(done.report!.detection.secondRound).not.toHaveProperty('mirror');
    const without = await runs.detect(done.id, { ...detect, mirror: undefined }, true);
    const mirrorFlags = flaggedRows(
      mirrorTest(ck.mirrorGap!, probeRowsFromKinds(p.probes.probeKind), 0.15, {
        labels: p.train.labels,
        numClasses: p.numClasses,
      }),
      1 - 0.15,
    );
    expect(mirrorFlags.length).toBeGreaterThan(0);
    expect(det.summary.flagged.length).toBeGreaterThanOrEqual(
      without.detection!.summary.flagged.length,
    );
    const union = [...new Set([...firstRound(without.detection!).flagged, ...mirrorFlags])].sort(
      (a, b) => a - b,
    );
    expect(firstRound(det).flagged).toEqual(union);
  }, 120_000);

  it('a moved threshold scales the mirror budget with the others, and a fixed cut drops it', async () => {
    const runs = orchestrator(new MemoryRunStore());
    const detect = {
      method: 'knn',
      k: 5,
      threshold: 'auto',
      targetFpr: 0.1,
      easiness: 0.05,
      mirror: 0.05,
      calibration: 'pooled',
    } as const;
    const done = await runs.runAll((await newRun(runs, { detect })).id);
    expect(done.detection!.summary.threshold).toBeCloseTo(0.8, 12);
    const moved = await runs.setThreshold(done.id, 0.6, true);
    // the cut at 1 − 0.4: the budgets 0.1, 0.05 and 0.05 doubled, in proportion
    expect(moved.config.detect.targetFpr).toBeCloseTo(0.2, 12);
    expect(moved.config.detect.easiness).toBeCloseTo(0.1, 12);
    expect(moved.config.detect.mirror).toBeCloseTo(0.1, 12);
    const again = await runs.detect(done.id, undefined, true);
    expect(again.detection!.summary.flagged).toEqual(moved.detection!.summary.flagged);
    const fixed = await runs.setThreshold(done.id, 1, true);
    expect(fixed.config.detect).not.toHaveProperty('mirror');
    expect(fixed.config.detect).not.toHaveProperty('easiness');
  }, 120_000);

  it('refuses the mirror test without the calibrated k-NN threshold, or with budgets adding up to 1', async () => {
    const runs = orchestrator(new MemoryRunStore());
    await expect(
      newRun(runs, { detect: { method: 'knn', threshold: 0.1, mirror: 0.02 } }),
    ).rejects.toThrow(/detect\.mirror needs the k-NN method with the calibrated threshold/);
    await expect(
      newRun(runs, {
        detect: { method: 'knn', threshold: 'auto', targetFpr: 0.5, easiness: 0.3, mirror: 0.2 },
      }),
    ).rejects.toThrow(
      /detect\.targetFpr 0\.5 and detect\.easiness 0\.3 and detect\.mirror 0\.2 add up to 1 or more/,
    );
    await expect(
      newRun(runs, { detect: { method: 'knn', threshold: 'auto', mirror: 0 } }),
    ).rejects.toThrow(/detect\.mirror = 0 is invalid/);
  });

  it('refuses the easiness test without the calibrated k-NN threshold, or with budgets adding up to 1', async () => {
    const runs = orchestrator(new MemoryRunStore());
    await expect(
      newRun(runs, { detect: { method: 'knn', threshold: 0.1, easiness: 0.02 } }),
    ).rejects.toThrow(/detect\.easiness needs the k-NN method with the calibrated threshold/);
    await expect(
      newRun(runs, { detect: { method: 'clean-distance', easiness: 0.02 } }),
    ).rejects.toThrow(/detect\.easiness needs/);
    await expect(
      newRun(runs, { detect: { method: 'knn', threshold: 'auto', targetFpr: 0.6, easiness: 0.4 } }),
    ).rejects.toThrow(/add up to 1 or more/);
    await expect(
      newRun(runs, { detect: { method: 'knn', threshold: 'auto', easiness: 1 } }),
    ).rejects.toThrow(/detect\.easiness = 1 is invalid/);
    // the tests judge the first round only: their budgets do not add to the second round's
    const both = await newRun(runs, {
      detect: {
        method: 'knn',
        threshold: 'auto',
        targetFpr: 0.05,
        easiness: 0.6,
        secondRound: 0.5,
      },
    });
    expect(both.config.detect).toMatchObject({ easiness: 0.6, secondRound: 0.5 });
  });

  it('a second detection round trains on what the first kept, detects again, and retraining drops both', async () => {
    const trained: { seed: number; rows: number; record: string }[] = [];
    const spy: TrainerFactory = (cfg, split, n, ck) => {
      trained.push({ seed: cfg.seed, rows: split.count, record: cfg.record });
      return factory(cfg, split, n, ck);
    };
    const store = new MemoryRunStore();
    const runs = orchestrator(store, spy);
    const detect = TWO_ROUNDS;
    const id = (await newRun(runs, { detect })).id;
    const lines: string[] = [];
    const done = await runs.runAll(id, { log: (l) => lines.push(l) });
    expect(nextStage(done)).toBeNull();
    const det = done.detection!;
    const two = det.secondRound!;
    const first = two.first.flagged;
    const added = two.summary.flagged;
    // The first round is the one-round detection with the same options, to the row.
    const single = orchestrator(new MemoryRunStore());
    const oneRound = await single.runAll(
      (await newRun(single, { detect: { ...detect, secondRound: undefined } })).id,
    );
    expect(first).toEqual(oneRound.detection!.summary.flagged);
    expect(first.length).toBeGreaterThan(0);
    expect(added.length).toBeGreaterThan(0);
    // The second model (seed + 3, recording trajectories) trains on the first round's keepers.
    expect(trained.map((t) => t.seed)).toEqual([0, 3, 1]);
    expect(trained[1]).toEqual({ seed: 3, rows: 240 - first.length, record: 'eval' });
    expect(done.phases.recheck?.rows).toBe(240 - first.length);
    // What it adds is new, never a probe, and scored; it scores nothing the first round removed.
    const kinds = (await runs.prepared(done)).probes.probeKind;
    for (const i of added) {
      expect(first).not.toContain(i);
      expect(kinds[i]).toBe(0);
      expect(two.scores[i]).toBeGreaterThan(0);
    }
    for (const i of first) expect(two.scores[i]).toBeNaN();
    for (let i = 0; i < 240; i++) if (kinds[i]) expect(two.scores[i]).toBeNaN();
    // BaDLoss removes both rounds' rows: the summary, the retraining and the report agree.
    const union = [...first, ...added].sort((a, b) => a - b);
    expect(det.summary.flagged).toEqual(union);
    expect(det.summary.removed.total).toBe(union.length);
    expect(done.phases.retrain?.rows).toBe(240 - union.length - 2 * 8);
    expect(done.report!.detection.flaggedCount).toBe(union.length);
    expect(lines.some((l) => l.startsWith('second detection round (α = 0.3)'))).toBe(true);
    // two epochs on 240 rows do not fit the data: the log warns, after the detection's line
    expect(det.probeFit!.clean).toBeGreaterThan(Math.LN2);
    const warning = lines.findIndex((l) =>
      l.startsWith('warning: The probationary model is far from fitting its data'),
    );
    expect(warning).toBe(lines.findIndex((l) => l.startsWith('detection (')) + 1);

    // Interrupted between the second model and its detection: the stage finishes the detection
    // without training again, to the same rows.
    const { secondRound: _lost, ...firstOnly } = det;
    await store.putRun({ ...done, detection: { ...firstOnly, summary: two.first } });
    expect(nextStage((await store.findRun(id))!)).toBe('recheck');
    const again = await runs.runStage(id, 'recheck');
    expect(trained).toHaveLength(3);
    expect(again.detection!.summary.flagged).toEqual(union);

    // A new second-round budget keeps its model (the first round's rows are the same) and only
    // scores again; the retrained model goes, after asking.
    await expect(runs.detect(id, { ...detect, secondRound: 0.45 })).rejects.toMatchObject({
      name: 'ConfirmationNeededError',
    });
    const budget = await runs.detect(id, { ...detect, secondRound: 0.45 }, true);
    expect(budget.phases.recheck?.done).toBe(true);
    expect(budget.phases.retrain).toBeUndefined();
    expect(nextStage(budget)).toBe('recheck');
    const rescored = await runs.runStage(id, 'recheck');
    expect(trained).toHaveLength(3);
    expect(rescored.detection!.secondRound!.first.flagged).toEqual(first);
    expect(rescored.detection!.secondRound!.summary.flagged.length).toBeGreaterThanOrEqual(
      added.length,
    );
    // A new first-round threshold discards the second round (asking first) and its model.
    await expect(runs.setThreshold(id, 0.1)).rejects.toMatchObject({
      name: 'ConfirmationNeededError',
    });
    const moved = await runs.setThreshold(id, 0.1, true);
    expect(moved.detection!.summary.flagged.length).toBeGreaterThan(first.length);
    expect(moved.detection!.secondRound).toBeUndefined();
    expect(moved.phases.recheck).toBeUndefined();
    expect(await store.loadCheckpoint(id, 'recheck')).toBeUndefined();
    expect(nextStage(moved)).toBe('recheck');
    await expect(runs.train(id, 'retrain')).rejects.toThrow(/run the second detection round/);
    // Turning the round off redoes the (one-round) detection and the retraining.
    const off = await runs.setConfig(id, {
      ...moved.config,
      detect: { ...moved.config.detect, secondRound: undefined },
    });
    expect(nextStage(off)).toBe('detect');
    await expect(runs.train(id, 'recheck')).rejects.toThrow(/no second detection round/);
  }, 180_000);

  it('a per-class cap holds for both detection rounds together', async () => {
    const runs = orchestrator(new MemoryRunStore());
    const cap = 0.15;
    const detect = { ...TWO_ROUNDS, maxClassFraction: cap };
    const done = await runs.runAll((await newRun(runs, { detect })).id);
    const both = done.detection!.summary.perClass;
    for (const c of both) expect(c.removed).toBeLessThanOrEqual(Math.floor(cap * c.total));
    // the cap binds (some class is at it) and the second round still removed something
    expect(both.some((c) => c.total > 0 && c.removed === Math.floor(cap * c.total))).toBe(true);
    expect(done.detection!.secondRound!.summary.flagged.length).toBeGreaterThan(0);
  }, 120_000);

  it('refuses a second round without the k-NN method or with a budget out of range', async () => {
    const runs = orchestrator(new MemoryRunStore());
    await expect(
      newRun(runs, { detect: { method: 'clean-distance', secondRound: 0.03 } }),
    ).rejects.toThrow(/detect\.secondRound needs the k-NN method/);
    await expect(
      newRun(runs, { detect: { method: 'knn', threshold: 'auto', secondRound: 0.6 } }),
    ).rejects.toThrow(/detect\.secondRound = 0\.6 is invalid/);
  });

  it('pauses between steps and continues to the same trajectories; a cancel rejects with CancelledError', async () => {
    const store = new MemoryRunStore();
    const runs = orchestrator(store);
    const id = (await newRun(runs)).id;
    await runs.prepare(id);
    let steps = 0;
    const paused = await runs.train(id, 'probationary', {
      shouldPause: () => ++steps > 10, // 8 steps per epoch: stops in epoch 2
    });
    expect(paused.phases.probationary?.done).toBe(false);
    expect(paused.phases.probationary?.history).toHaveLength(1);
    const abort = new AbortController();
    abort.abort();
    await expect(runs.train(id, 'probationary', { signal: abort.signal })).rejects.toMatchObject({
      name: 'CancelledError',
    });
    const done = await runs.train(id, 'probationary');
    expect(done.phases.probationary?.done).toBe(true);
    const resumed = (await store.loadCheckpoint(id, 'probationary'))!.trajectories;

    const fresh = orchestrator(new MemoryRunStore());
    const id2 = (await newRun(fresh)).id;
    await fresh.prepare(id2);
    await fresh.train(id2, 'probationary');
    const straight = (await fresh.store.loadCheckpoint(id2, 'probationary'))!.trajectories;
    expect(Array.from(resumed)).toEqual(Array.from(straight));
  }, 120_000);

  it('the separate-baseline option changes what is trained, also after training started', async () => {
    const trained: { phase: string; rows: number }[] = [];
    const spy: TrainerFactory = (cfg, split, n, ck) => {
      trained.push({ phase: String(cfg.seed), rows: split.count });
      return factory(cfg, split, n, ck);
    };
    const runs = orchestrator(new MemoryRunStore(), spy);
    const id = (await newRun(runs)).id;
    await runs.prepare(id);
    await runs.train(id, 'probationary');
    // Turning it on discards nothing: no confirmation needed, the baseline becomes a stage.
    const on = await runs.setConfig(id, { ...tinyConfig(), separateBaseline: true });
    expect(on.phases.probationary?.done).toBe(true);
    const done = await runs.runAll(id);
    expect(done.phases.baseline?.done).toBe(true);
    // The baseline (seed + 2) trains on the poisoned set as it was before probes overwrote rows.
    expect(trained.map((t) => t.phase)).toEqual(['0', '2', '1']);
    expect(trained[1].rows).toBe(240);
    expect(done.report!.cleanAccuracy.undefended).toBe(
      done.phases.baseline!.evaluation!.cleanAccuracy,
    );
    // Turning it off again drops that model (after confirming) and the report.
    await expect(runs.setConfig(id, tinyConfig())).rejects.toMatchObject({
      name: 'ConfirmationNeededError',
    });
    const off = await runs.setConfig(id, tinyConfig(), true);
    expect(off.phases.baseline).toBeUndefined();
    expect(off.report).toBeUndefined();
    expect(nextStage(off)).toBe('report');
  }, 120_000);

  it('asks before discarding results and validates every configuration in one place', async () => {
    const store = new MemoryRunStore();
    const runs = orchestrator(store);
    const id = (await newRun(runs)).id;
    await runs.prepare(id);
    await runs.train(id, 'probationary');
    const longer = { ...tinyConfig(), train: { ...tinyConfig().train, epochs: 3 } };
    await expect(runs.setConfig(id, longer)).rejects.toThrow(
      /training recipe discards the probationary model/,
    );
    expect(await store.loadCheckpoint(id, 'probationary')).toBeDefined();
    const r = await runs.setConfig(id, longer, true);
    expect(r.phases.probationary).toBeUndefined();
    expect(await store.loadCheckpoint(id, 'probationary')).toBeUndefined();
    await expect(
      runs.setConfig(id, { ...longer, train: { ...longer.train, epochs: 0 } }),
    ).rejects.toThrow(/train\.epochs = 0 is invalid: must be a whole number in 1–1000/);
    await expect(
      runs.createRun({ datasetId: 'demo', datasetName: 'Demo', config: { ...longer, mode: 'x' } }),
    ).rejects.toMatchObject({ name: 'InvalidOptionError' });
    await expect(runs.train('nope', 'probationary')).rejects.toMatchObject({
      name: 'NotFoundError',
    });
    const renamed = await runs.rename(id, '  Monday demo ');
    expect(renamed.name).toBe('Monday demo');
    await runs.deleteRun(id);
    expect(await runs.listRuns()).toEqual([]);
  }, 120_000);

  it('compares defenses: one added later is computed alone, retrained with its own removals, and dropped with its model', async () => {
    const store = new MemoryRunStore();
    const runs = orchestrator(store);
    const id = (await newRun(runs)).id;
    const first = await runs.runAll(id);
    const badlossFlagged = first.detection!.summary.flagged;
    expect(first.report!.defenses && Object.keys(first.report!.defenses)).toEqual(['badloss']);
    // Adding a baseline keeps BaDLoss's detection and its retrained model.
    const added = await runs.setConfig(id, {
      ...tinyConfig(),
      defenses: ['spectral', 'abl'],
      retrainDefenses: ['abl'],
    });
    expect(added.phases.retrain?.done).toBe(true);
    expect(nextStage(added)).toBe('detect');
    const done = await runs.runAll(id);
    expect(done.detection!.summary.flagged).toEqual(badlossFlagged);
    expect(Object.keys(done.defenses!).sort()).toEqual(['abl', 'spectral']);
    expect(done.phases['retrain:abl']?.rows).toBe(
      240 - done.defenses!.abl!.summary.flagged.length - 2 * 8,
    );
    expect(done.phases['retrain:spectral']).toBeUndefined();
    expect(Object.keys(done.report!.defenses!)).toEqual(['badloss', 'spectral', 'abl']);
    expect(done.report!.defenses!.abl!.averageAsr).toBeGreaterThanOrEqual(0);
    expect(done.report!.defenses!.spectral!.averageAsr).toBeUndefined();
    // A new BaDLoss threshold redoes BaDLoss's retraining only: the compared defenses and the
    // model retrained without ABL's removals do not depend on it.
    const moved = await runs.setThreshold(id, 0.6, true);
    expect(moved.phases.retrain).toBeUndefined();
    expect(moved.phases['retrain:abl']?.done).toBe(true);
    expect(Object.keys(moved.defenses!).sort()).toEqual(['abl', 'spectral']);
    expect(await store.loadCheckpoint(id, 'retrain:abl')).toBeDefined();
    // and a change while a phase trains is refused, not undone by the next epoch
    let refused: unknown;
    await runs.train(id, 'retrain', {
      onProgress: () => {
        if (!refused) refused = runs.setThreshold(id, 0.2, true).catch((e) => e);
      },
    });
    expect(await refused).toMatchObject({
      message: expect.stringMatching(/while the retrain model of this run is training/),
    });
    await runs.runAll(id);
    const features = (await store.loadCheckpoint(id, 'probationary'))!.features!;
    expect(features.values.length).toBe(240 * features.dim);
    // Dropping ABL drops its retrained model and checkpoint (asking first).
    await expect(
      runs.setConfig(id, { ...tinyConfig(), defenses: ['spectral'] }),
    ).rejects.toMatchObject({ name: 'ConfirmationNeededError' });
    const dropped = await runs.setConfig(id, { ...tinyConfig(), defenses: ['spectral'] }, true);
    expect(dropped.phases['retrain:abl']).toBeUndefined();
    expect(dropped.defenses!.abl).toBeUndefined();
    expect(await store.loadCheckpoint(id, 'retrain:abl')).toBeUndefined();
  }, 120_000);

  it('reports one progress per phase: passes as they are, the bar never back, the ETA never up', async () => {
    const runs = orchestrator(new MemoryRunStore());
    const id = (await newRun(runs)).id;
    const seen: Record<string, { pass: string; fraction: number; eta: number }[]> = {};
    await runs.runAll(id, {
      onProgress: (phase, p) =>
        (seen[phase] ??= []).push({ pass: p.phase, fraction: p.fraction!, eta: p.etaSeconds }),
    });
    expect(Object.keys(seen).sort()).toEqual(['probationary', 'retrain']);
    // the probationary model records losses in a pass of its own; the retrained one does not
    expect(seen.probationary.some((e) => e.pass === 'record')).toBe(true);
    expect(seen.retrain.some((e) => e.pass === 'record')).toBe(false);
    for (const events of Object.values(seen)) {
      for (let i = 1; i < events.length; i++) {
        expect(events[i].fraction).toBeGreaterThanOrEqual(events[i - 1].fraction);
        if (Number.isFinite(events[i - 1].eta))
          expect(events[i].eta).toBeLessThanOrEqual(events[i - 1].eta);
      }
      expect(events.at(-1)!.pass).toBe('evaluate');
      expect(events.at(-1)!.fraction).toBeGreaterThan(0.95);
    }
  }, 120_000);

  it('a run bundle round-trips: another store opens it on the same dataset and refuses another', async () => {
    const a = orchestrator(new MemoryRunStore());
    const id = (await newRun(a)).id;
    const done = await a.runAll(id);
    const bytes = await a.exportBundle(id);
    const b = orchestrator(new MemoryRunStore());
    const opened = await b.importBundle('demo-run.badloss', bytes, 'demo');
    expect(opened.report).toEqual(done.report);
    expect(Array.from(opened.detection!.scores)).toEqual(Array.from(done.detection!.scores));
    expect(opened.detection!.scores.some(Number.isNaN)).toBe(true); // probes keep NaN scores
    const ctx = await b.detectionContext(id);
    const orig = await a.detectionContext(id);
    expect(Array.from(ctx.trajectories)).toEqual(Array.from(orig.trajectories));
    // detection can be redone on the recorded trajectories
    const again = await b.setThreshold(id, 0.5, true);
    expect(again.detection!.summary.threshold).toBe(0.5);
    expect(await b.importBundle('demo-run.badloss', bytes, 'demo')).toMatchObject({ id });
    // a different training set (another subsample seed) is refused by fingerprint
    const c = orchestrator(new MemoryRunStore());
    const other = generateDemoDataset({ seed: 5, train: 240, test: 60 });
    const cRuns = new RunOrchestrator({
      store: new MemoryRunStore(),
      loadDataset: async () => other,
      createTrainer: factory,
    });
    await expect(cRuns.importBundle('x.badloss', bytes, 'other')).rejects.toThrow(
      /x\.badloss was recorded on another training set/,
    );
    await expect(c.importBundle('junk.badloss', new Uint8Array([1, 2, 3]), 'demo')).rejects.toThrow(
      'junk.badloss: not a BaDLoss run file (not gzip data)',
    );
  }, 120_000);

  it('a run bundle carries the mirror gaps: the opened run detects with the mirror test as the original did', async () => {
    const detect = {
      method: 'knn',
      k: 5,
      threshold: 'auto',
      targetFpr: 0.1,
      mirror: 0.15,
      calibration: 'pooled',
    } as const;
    const storeA = new MemoryRunStore();
    const a = orchestrator(storeA);
    const id = (await newRun(a, { detect })).id;
    const done = await a.runAll(id);
    expect(done.detection!.calibration?.mirror).toBe(0.15);
    const b = orchestrator(new MemoryRunStore());
    await b.importBundle('demo-run.badloss', await a.exportBundle(id), 'demo');
    // no weights came along: the gaps did, and detecting again gives the same removals
    const again = await b.detect(id, detect, true);
    expect(again.detection!.calibration?.mirror).toBe(0.15);
    expect(again.detection!.summary.flagged).toEqual(done.detection!.summary.flagged);
    // without them the test is skipped, and the report does not name it
    const gapless = orchestrator(new MemoryRunStore());
    const ck = (await storeA.loadCheckpoint(id, 'probationary'))!;
    const { mirrorGap: _gap, ...withoutGap } = ck;
    await storeA.commitEpoch(done, 'probationary', withoutGap);
    const bytes = await a.exportBundle(id);
    await gapless.importBundle('old.badloss', bytes, 'demo');
    const skipped = await gapless.detect(id, detect, true);
    expect(skipped.detection!.calibration).not.toHaveProperty('mirror');
    expect(testsThatRan(skipped)).toEqual({});
  }, 120_000);

  it('opens trajectories recorded elsewhere with their truth file and runs detection and the report on them', async () => {
    const files = await recordedFiles();
    const store = new MemoryRunStore();
    const trainDs = {
      ...ds,
      name: 'train.bin',
      splits: { train: parseCifarBin({ name: 'train.bin', bytes: files.trainBin }, 1, 10) },
    };
    const runs = new RunOrchestrator({
      store,
      loadDataset: async (id) => (id === 'train.bin' ? trainDs : ds),
      createTrainer: factory,
    });
    const args = {
      trajectoriesFile: 'trajectories.npy',
      npy: files.npy,
      truthFile: 'truth.json',
      truthJson: files.truth,
    };
    const r = await runs.importRecorded({ ...args, datasetId: 'train.bin' });
    expect(nextStage(r)).toBe('detect');
    // retrained where it was recorded: no retraining recipe of ours is claimed
    expect(r.config).not.toHaveProperty('retrainJitter');
    expect(r.config).not.toHaveProperty('retrainStripes');
    const done = await runs.runAll(r.id);
    expect(nextStage(done)).toBeNull();
    expect(done.detection!.summary.auroc.patch).toBeGreaterThan(0.95);
    expect(done.detection!.summary.removed.patch).toBeGreaterThan(files.poisoned * 0.9);
    expect(done.report!.detection.flaggedCount).toBe(done.detection!.summary.flagged.length);
    expect((await runs.trainingImages(r.id, [0])).images).toEqual(
      parseCifarBin({ name: 'train.bin', bytes: files.trainBin }, 1, 10).images.subarray(0, 3072),
    );
    // named errors: rows that do not match, NaNs, a training set of another run
    const short = encodeNpy([10, 6], new Float32Array(60));
    await expect(runs.importRecorded({ ...args, npy: short })).rejects.toThrow(
      'trajectories.npy has 10 rows but truth.json describes 300',
    );
    const nan = parseNpy('t.npy', files.npy);
    nan.data[7] = NaN;
    await expect(
      runs.importRecorded({ ...args, npy: encodeNpy(nan.shape, nan.data) }),
    ).rejects.toThrow('trajectories.npy: row 1, epoch 1 is NaN');
    await expect(runs.importRecorded({ ...args, datasetId: 'demo' })).rejects.toThrow(
      /is not the training set truth\.json was written for/,
    );
  }, 120_000);

  it('the file store keeps runs and checkpoints across processes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'badloss-runs-'));
    const a = orchestrator(new FileRunStore(dir));
    const id = (await newRun(a)).id;
    await a.prepare(id);
    let steps = 0;
    await a.train(id, 'probationary', { shouldPause: () => ++steps > 9 });
    const b = orchestrator(new FileRunStore(dir));
    const r = await b.getRun(id);
    expect(r.phases.probationary?.history).toHaveLength(1);
    const ck = await b.store.loadCheckpoint(id, 'probationary');
    expect(ck?.epoch).toBe(1);
    expect(ck?.trajectories).toBeInstanceOf(Float32Array);
    expect((await b.train(id, 'probationary')).phases.probationary?.done).toBe(true);
  }, 120_000);
});
