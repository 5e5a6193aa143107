import { describe, expect, it } from 'vitest';
import {
  PhaseProgress,
  progressWords,
  type PassKind,
  type PhasePlan,
} from '../../src/core/progress.ts';
import { Rng } from '../../src/core/rng.ts';

/**
 * Simulates a phase: every pass of the plan at a rate per kind (rows/s, optionally jittered),
 * observed every `step` rows; returns each observation's estimate and the true time left.
 */
function simulate(
  plan: PhasePlan,
  rates: Record<PassKind, number>,
  step = 10,
  jitter = 0,
  seed = 1,
) {
  const rng = new Rng(seed);
  const passes: { kind: PassKind; epoch: number; rows: number }[] = [];
  for (let e = plan.startEpoch; e < plan.epochs; e++) {
    passes.push({ kind: 'train', epoch: e, rows: plan.trainRows });
    if (plan.recordRows) passes.push({ kind: 'record', epoch: e, rows: plan.recordRows });
    if (plan.evalRowsPerEpoch)
      passes.push({ kind: 'evaluate', epoch: e, rows: plan.evalRowsPerEpoch });
  }
  passes.push({ kind: 'evaluate', epoch: plan.epochs, rows: plan.finalEvalRows });
  // true durations of every chunk, drawn up front so the time left is known exactly
  const chunks: { kind: PassKind; epoch: number; done: number; total: number; dt: number }[] = [];
  for (const p of passes)
    for (let d = 0; d < p.rows; d += step) {
      const n = Math.min(step, p.rows - d);
      const rate = rates[p.kind] * (1 + jitter * (2 * rng.float() - 1));
      chunks.push({ kind: p.kind, epoch: p.epoch, done: d + n, total: p.rows, dt: n / rate });
    }
  const total = chunks.reduce((s, c) => s + c.dt, 0);
  const progress = new PhaseProgress(plan, 0);
  let t = 0;
  const out: { eta: number; fraction: number; left: number; t: number }[] = [];
  for (const c of chunks) {
    // each pass starts with an observation at 0 rows, as the trainer reports
    if (c.done <= step) progress.observe(c.kind, c.epoch, 0, c.total, t);
    t += c.dt;
    const e = progress.observe(c.kind, c.epoch, c.done, c.total, t);
    out.push({ eta: e.etaSeconds, fraction: e.fraction, left: total - t, t });
  }
  return out;
}

const probationary: PhasePlan = {
  epochs: 4,
  startEpoch: 0,
  trainRows: 200,
  recordRows: 200,
  evalRowsPerEpoch: 0,
  finalEvalRows: 100,
};

describe('phase progress', () => {
  it('at steady rates the ETA equals the time left once every pass kind has been timed', () => {
    const obs = simulate(probationary, { train: 100, record: 400, evaluate: 400 });
    // from the second recording chunk on, training and evaluation-mode passes are timed
    for (const o of obs.slice(22)) expect(o.eta).toBeCloseTo(o.left, 6);
    // a retraining has no recording pass: its final evaluation is estimated from the training
    // rate until it is timed (close), then exact
    const retrain = simulate(
      { ...probationary, recordRows: 0 },
      { train: 100, record: 1, evaluate: 400 },
    );
    // the prior's error is at most the final evaluation's 100 rows × (0.35/100 − 1/400) s = 0.1 s
    for (const o of retrain.slice(2, 80))
      expect(Math.abs(o.eta - o.left)).toBeLessThanOrEqual(0.1 + 1e-9);
    for (const o of retrain.slice(82)) expect(o.eta).toBeCloseTo(o.left, 6);
  });

  it('counts only the passes a phase makes: a retraining bar does not jump at epoch ends', () => {
    const obs = simulate(
      { ...probationary, recordRows: 0 },
      { train: 100, record: 1, evaluate: 400 },
    );
    // training only: the bar advances by the same amount per chunk (constant rate, 10 rows)
    const steps = obs.slice(2, 78).map((o, i, a) => (i ? o.fraction - a[i - 1].fraction : 0));
    for (const d of steps.slice(1)) expect(d).toBeCloseTo(steps[1], 6);
    expect(obs.at(-1)!.fraction).toBeCloseTo(1, 6);
  });

  it('never raises the ETA nor lowers the bar, with noisy rates', () => {
    for (const seed of [1, 2, 3]) {
      const obs = simulate(probationary, { train: 80, record: 300, evaluate: 300 }, 10, 0.5, seed);
      for (let i = 1; i < obs.length; i++) {
        if (Number.isFinite(obs[i - 1].eta)) expect(obs[i].eta).toBeLessThanOrEqual(obs[i - 1].eta);
        expect(obs[i].fraction).toBeGreaterThanOrEqual(obs[i - 1].fraction);
      }
      expect(obs.at(-1)!.eta).toBe(0);
    }
  });

  it('after a resume the ETA is the remaining epochs and the bar starts where it stopped', () => {
    const plan = { ...probationary, epochs: 10, startEpoch: 6 };
    const obs = simulate(plan, { train: 100, record: 400, evaluate: 400 });
    const first = obs[22]; // epoch 6, recording timed
    expect(first.eta).toBeCloseTo(first.left, 6);
    // 6 of 10 epochs were done before: the bar is past half, not back at zero
    expect(first.fraction).toBeGreaterThan(0.6);
    expect(first.fraction).toBeLessThan(0.75);
  });

  it('says nothing about time before a training rate exists', () => {
    const p = new PhaseProgress(probationary, 0);
    const e = p.observe('train', 0, 0, 200, 0);
    expect(e.etaSeconds).toBeNaN();
    expect(e.fraction).toBe(0);
  });
});

describe('progress in words', () => {
  it('names the epoch and the pass, and after the last epoch the final evaluation', () => {
    const at = (phase: PassKind, epoch: number) =>
      progressWords({ phase, epoch, epochs: 10, done: 64, total: 6000 });
    expect(at('train', 0)).toBe('epoch 1 of 10: training 64/6000');
    expect(at('record', 9)).toBe('epoch 10 of 10: recording every loss 64/6000');
    expect(at('evaluate', 4)).toBe('epoch 5 of 10: evaluating 64/6000');
    // the trainer reports the final evaluation at epoch = epochs: never "epoch 11 of 10"
    expect(at('evaluate', 10)).toBe('final evaluation: 64/6000');
  });
});
