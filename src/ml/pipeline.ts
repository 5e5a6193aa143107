import type * as tfType from '@tensorflow/tfjs';
import { splitFingerprint, subsetSplit, type Dataset, type ImageSplit } from '../core/dataset.ts';
import { detect, type Detection } from '../core/detect/index.ts';
import { probeRowsFromKinds } from '../core/detect/knn.ts';
import { keptRows, prepareExperiment, type Prepared, type RunConfig } from '../core/experiment.ts';
import type { TriggeredTestSet } from '../core/attacks/plan.ts';
import { accuracy } from '../core/metrics.ts';
import {
  buildReport,
  summarizeDetection,
  type ModelEvaluation,
  type Report,
} from '../core/report.ts';
import { Trainer, type TrainConfig, type TrainProgress } from './train.ts';
import { wasmNearest } from './fast-knn.ts';

type Tf = typeof tfType;

/**
 * The training recipe of a run configuration for one phase. Only the probationary model's
 * trajectories are used, so the retrained and baseline models record from their training pass,
 * which costs nothing, instead of a separate evaluation pass.
 */
export function trainConfigOf(
  cfg: RunConfig,
  phase: 'probationary' | 'retrain' | 'baseline' = 'probationary',
): TrainConfig {
  const { evalEachEpoch: _unused, ...train } = cfg.train;
  const offset = { probationary: 0, retrain: 1, baseline: 2 }[phase];
  return {
    ...train,
    record: phase === 'probationary' ? train.record : 'train',
    seed: cfg.seed + offset,
  };
}

/** Clean test accuracy and ASR (+ boosted) of a trained model (SPEC §6). */
export async function evaluateModel(
  trainer: Trainer,
  test: ImageSplit,
  triggered: TriggeredTestSet[],
): Promise<ModelEvaluation> {
  const cleanAccuracy = test.count ? accuracy(await trainer.predict(test), test.labels) : NaN;
  const asr: Record<string, number> = {};
  const asrBoosted: Record<string, number> = {};
  for (const t of triggered) {
    asr[t.attack] = accuracy(await trainer.predict(t.set), t.set.labels);
    if (t.boosted)
      asrBoosted[t.attack] = accuracy(await trainer.predict(t.boosted), t.boosted.labels);
  }
  return { cleanAccuracy, asr, asrBoosted };
}

export interface PipelineHooks {
  /** One line of human-readable status. */
  log?: (line: string) => void;
  progress?: (stage: string, p: TrainProgress) => void;
}

export interface PipelineResult {
  report: Report;
  prepared: Prepared;
  detection: Detection;
  trajectories: Float32Array;
}

/** After an epoch: test accuracy and ASR attached to the epoch's statistics. */
export async function evaluateEpoch(
  trainer: Trainer,
  test: ImageSplit,
  triggered: TriggeredTestSet[],
): Promise<void> {
  const last = trainer.history.at(-1);
  if (!last) return;
  const e = await evaluateModel(trainer, test, triggered);
  last.test = { cleanAccuracy: e.cleanAccuracy, asr: e.asr };
}

/** Trains a fresh model for all epochs of `cfg` on `split`, evaluating after each epoch when `each` is given. */
export async function trainFully(
  tf: Tf,
  cfg: TrainConfig,
  split: ImageSplit,
  numClasses: number,
  stage: string,
  hooks: PipelineHooks,
  each?: { test: ImageSplit; triggered: TriggeredTestSet[] },
): Promise<Trainer> {
  const tr = new Trainer(tf, cfg, split, numClasses);
  while (!tr.done) {
    const s = await tr.trainEpoch((p) => hooks.progress?.(stage, p));
    if (!s) continue;
    if (each) await evaluateEpoch(tr, each.test, each.triggered);
    const t = s.test
      ? `; test acc ${(100 * s.test.cleanAccuracy).toFixed(1)}%${Object.entries(s.test.asr)
          .map(([id, v]) => `, ASR ${id} ${(100 * v).toFixed(1)}%`)
          .join('')}`
      : '';
    hooks.log?.(
      `${stage}: epoch ${s.epoch + 1}/${cfg.epochs} loss ${s.loss.toFixed(3)} acc ${(100 * s.accuracy).toFixed(1)}%${t} (${s.imagesPerSecond.toFixed(0)} img/s)`,
    );
  }
  return tr;
}

/**
 * The whole BaDLoss pipeline in one process (the CLI's `audit`): prepare (poison, probes),
 * probationary training with trajectories, detection, retraining without the flagged rows, and
 * evaluation of both models. The undefended model is the probationary one unless
 * `cfg.separateBaseline`, which trains one on the poisoned data without probes.
 */
export async function runPipeline(
  tf: Tf,
  ds: Dataset,
  cfg: RunConfig,
  hooks: PipelineHooks = {},
): Promise<PipelineResult> {
  const prep = prepareExperiment(ds, cfg);
  const fingerprint = await splitFingerprint(prep.train);
  hooks.log?.(
    `prepared ${prep.train.count} training rows, fingerprint ${fingerprint.slice(0, 16)} (${prep.attacks.map((a) => `${a.id}: ${a.indices.length} → class ${a.target}`).join(', ') || 'no attacks'}; ${cfg.probes.n} probes of each kind), ${prep.test.count} test images`,
  );
  const each = cfg.train.evalEachEpoch ? { test: prep.test, triggered: prep.triggered } : undefined;
  const probTrainer = await trainFully(
    tf,
    trainConfigOf(cfg),
    prep.train,
    prep.numClasses,
    'probationary',
    hooks,
    each,
  );
  const trajectories = probTrainer.trajectories.slice();
  const det = detect(
    { n: prep.train.count, epochs: cfg.train.epochs, losses: trajectories },
    probeRowsFromKinds(prep.probes.probeKind),
    cfg.detect,
    wasmNearest,
  );
  const summary = summarizeDetection(
    det,
    prep.truth,
    prep.probes.probeKind,
    prep.attacks,
    prep.train.labels,
    prep.numClasses,
  );
  hooks.log?.(
    `detection (${det.method}${det.k ? `, k = ${det.k}` : ''}): flagged ${summary.flagged.length} of ${prep.train.count}; AUROC ${
      Object.entries(summary.auroc)
        .map(([k, v]) => `${k} ${v.toFixed(3)}`)
        .join(', ') || 'n/a (no ground truth)'
    }`,
  );
  let undefendedTrainer = probTrainer;
  if (cfg.separateBaseline) {
    undefendedTrainer = await trainFully(
      tf,
      trainConfigOf(cfg, 'baseline'),
      prep.poisoned,
      prep.numClasses,
      'baseline',
      hooks,
      each,
    );
  }
  const undefended = await evaluateModel(undefendedTrainer, prep.test, prep.triggered);
  if (undefendedTrainer !== probTrainer) undefendedTrainer.dispose();
  probTrainer.dispose();
  const kept = keptRows(summary.flagged, prep.probes.probeKind);
  hooks.log?.(`retraining on ${kept.length} rows`);
  const retrainer = await trainFully(
    tf,
    trainConfigOf(cfg, 'retrain'),
    subsetSplit(prep.train, kept),
    prep.numClasses,
    'retrain',
    hooks,
    each,
  );
  const defended = await evaluateModel(retrainer, prep.test, prep.triggered);
  const report = buildReport({
    datasetName: ds.name,
    classes: ds.classes,
    trainCount: prep.train.count,
    testCount: prep.test.count,
    config: cfg,
    attacks: prep.attacks,
    probes: { n: cfg.probes.n, backdoorLabel: prep.probes.backdoorLabel },
    summary,
    undefended,
    defended,
    historyUndefended: probTrainer.history,
    historyDefended: retrainer.history,
    fingerprint,
  });
  retrainer.dispose();
  return { report, prepared: prep, detection: det, trajectories };
}
