/**
 * One progress model for every training phase: the passes a phase really makes, counted as they
 * are, timed by kind, so the bar and the ETA tell the truth for the probationary model (training
 * + a recording pass per epoch), a retraining (training only) and a resumed phase alike.
 */

/** A pass over rows: a training pass, the loss-recording pass, or an evaluation pass. */
export type PassKind = 'train' | 'record' | 'evaluate';

/**
 * Where a phase is, in words: "epoch 3 of 10: training 640/6000", and after the last epoch —
 * the model evaluated once more on the test images — "final evaluation: 1512/9060" (not
 * "epoch 11 of 10"). The Train step and the command line's progress lines both show it.
 */
export function progressWords(p: {
  phase: PassKind;
  epoch: number;
  epochs: number;
  done: number;
  total: number;
}): string {
  if (p.epoch >= p.epochs) return `final evaluation: ${p.done}/${p.total}`;
  const what =
    p.phase === 'train' ? 'training' : p.phase === 'record' ? 'recording every loss' : 'evaluating';
  return `epoch ${p.epoch + 1} of ${p.epochs}: ${what} ${p.done}/${p.total}`;
}

/** What a phase will do, in rows per pass. */
export interface PhasePlan {
  epochs: number;
  /** Epochs already finished when this session started (a resume). */
  startEpoch: number;
  /** Rows of each epoch's training pass. */
  trainRows: number;
  /** Rows of each epoch's recording pass (0 when losses come from the training pass). */
  recordRows: number;
  /** Rows evaluated after each epoch (0 unless evaluated every epoch). */
  evalRowsPerEpoch: number;
  /**
   * Rows evaluated once the last epoch is done: the test set and the triggered test sets, and any
   * passes over the training rows the phase makes then (features, mirror gaps).
   */
  finalEvalRows: number;
}

/** Where a phase stands: the fraction of its work done and the seconds left. */
export interface ProgressEstimate {
  /** In [0, 1]; never goes back within a phase. */
  fraction: number;
  /** Seconds left; never goes up within a phase; NaN until a rate has been measured. */
  etaSeconds: number;
}

/**
 * Before an evaluation-mode pass has been timed, it is assumed to cost this fraction of a
 * training pass per row (a forward pass alone is about a third of forward + backward + update).
 */
const EVAL_COST_PRIOR = 0.35;

/**
 * Estimates progress from observations `(kind, epoch, rows done, rows in the pass, time)`.
 * Rates are measured per pass kind from consecutive observations of the same pass (so a pass's
 * start-up is not counted), remaining work is the rows left in this pass and in every later pass
 * of the plan, and the ETA is clamped to fall by at least the time that passed — an estimate that
 * would rise holds instead — so it is monotone. Times are in seconds.
 */
export class PhaseProgress {
  private readonly plan: PhasePlan;
  private readonly start: number;
  private readonly rows: Record<PassKind, number> = { train: 0, record: 0, evaluate: 0 };
  private readonly secs: Record<PassKind, number> = { train: 0, record: 0, evaluate: 0 };
  private last: { kind: PassKind; epoch: number; done: number; t: number } | null = null;
  private prev: { eta: number; t: number } | null = null;
  private lastFraction = 0;

  constructor(plan: PhasePlan, now: number) {
    this.plan = plan;
    this.start = now;
  }

  /** Seconds per row of a pass kind (NaN until the training pass has been timed). */
  costPerRow(kind: PassKind): number {
    const own = this.rows[kind] > 0 ? this.secs[kind] / this.rows[kind] : NaN;
    if (Number.isFinite(own)) return own;
    const train = this.rows.train > 0 ? this.secs.train / this.rows.train : NaN;
    if (kind === 'train') return train;
    const other = kind === 'record' ? 'evaluate' : 'record';
    const sibling = this.rows[other] > 0 ? this.secs[other] / this.rows[other] : NaN;
    return Number.isFinite(sibling) ? sibling : train * EVAL_COST_PRIOR;
  }

  /**
   * Rows still to do, per kind, from a position in the plan (`done` rows into that pass); the
   * final evaluation is the position with `epoch` = epochs.
   */
  remainingRows(
    kind: PassKind,
    epoch: number,
    done: number,
    total: number,
  ): Record<PassKind, number> {
    const p = this.plan;
    const left: Record<PassKind, number> = { train: 0, record: 0, evaluate: 0 };
    left[kind] += Math.max(0, total - done);
    // epoch ≥ epochs marks the final evaluation: nothing follows it.
    if (epoch >= p.epochs) return left;
    const order: PassKind[] = ['train', 'record', 'evaluate'];
    for (const k of order.slice(order.indexOf(kind) + 1)) left[k] += this.epochRows(k);
    for (let e = epoch + 1; e < p.epochs; e++) for (const k of order) left[k] += this.epochRows(k);
    left.evaluate += p.finalEvalRows;
    return left;
  }

  /** Records an observation and returns the estimate at that moment. */
  observe(
    kind: PassKind,
    epoch: number,
    done: number,
    total: number,
    now: number,
  ): ProgressEstimate {
    const l = this.last;
    if (l && l.kind === kind && l.epoch === epoch && done > l.done && now > l.t) {
      this.rows[kind] += done - l.done;
      this.secs[kind] += now - l.t;
    }
    this.last = { kind, epoch, done, t: now };
    const left = this.remainingRows(kind, epoch, done, total);
    let raw = 0;
    for (const k of ['train', 'record', 'evaluate'] as const)
      if (left[k] > 0) raw += left[k] * this.costPerRow(k);
    let eta = raw;
    if (this.prev && Number.isFinite(this.prev.eta) && Number.isFinite(raw))
      eta = Math.min(raw, Math.max(0, this.prev.eta - (now - this.prev.t)));
    if (Number.isFinite(eta)) this.prev = { eta, t: now };
    // Epochs finished before this session count at today's rates, so a resumed phase's bar
    // starts where it stopped.
    const prior = this.plan.startEpoch * this.epochCost();
    const elapsed = now - this.start + (Number.isFinite(prior) ? prior : 0);
    let fraction = this.lastFraction;
    if (Number.isFinite(eta) && elapsed > 0) fraction = elapsed / (elapsed + eta);
    else if (total > 0 && kind === 'train') fraction = this.rowFraction(epoch, done);
    fraction = Math.min(1, Math.max(this.lastFraction, fraction));
    this.lastFraction = fraction;
    return { fraction, etaSeconds: eta };
  }

  /** Seconds one epoch of passes costs at the measured rates (NaN before any). */
  private epochCost(): number {
    let c = 0;
    for (const k of ['train', 'record', 'evaluate'] as const)
      if (this.epochRows(k) > 0) c += this.epochRows(k) * this.costPerRow(k);
    return c;
  }

  /** Rows of a kind in one epoch. */
  private epochRows(k: PassKind): number {
    const p = this.plan;
    return k === 'train' ? p.trainRows : k === 'record' ? p.recordRows : p.evalRowsPerEpoch;
  }

  /** Before any rate: the share of the phase's training rows done. */
  private rowFraction(epoch: number, done: number): number {
    const p = this.plan;
    if (p.epochs <= 0 || p.trainRows <= 0) return 0;
    return (Math.min(epoch, p.epochs) * p.trainRows + done) / (p.epochs * p.trainRows);
  }
}
