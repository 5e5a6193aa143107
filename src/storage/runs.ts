import { del, delMany, get, keys, set } from 'idb-keyval';
import type { RunConfig } from '../core/experiment.ts';
import type { Checkpoint, EpochStats } from '../ml/train.ts';
import type { DetectionSummary, ModelEvaluation, Report } from '../core/report.ts';
import { labStore, SCHEMA_VERSION } from './db.ts';
import { NotFoundError } from '../core/errors.ts';

/** The training phases of a run: the probationary model, the retrained one, the optional baseline. */
export type Phase = 'probationary' | 'retrain' | 'baseline';

/** What the Probes step shows: sizes of everything the experiment built. */
export interface PreparedSummary {
  trainCount: number;
  testCount: number;
  numClasses: number;
  attacks: { id: string; name: string; target: number; count: number; perClass: number[] }[];
  probes: {
    clean: number;
    backdoor: number;
    mislabeled: number;
    backdoorLabel: number;
    perClass: number[];
  };
  /** Examples per class of the (poisoned, probed) training set. */
  classCounts: number[];
  /** SHA-256 of the training set's labels and images: identical for the same seed in Node and the browser. */
  fingerprint: string;
}

export interface PhaseResult {
  history: EpochStats[];
  /** e.g. "ResNet-8 ×0.5 · 0.02 M parameters". */
  model?: string;
  evaluation?: ModelEvaluation;
  done: boolean;
  rows: number;
}

export interface DetectionRecord {
  summary: DetectionSummary;
  /** Per-row scores (NaN for probes), and the options used. */
  scores: Float32Array;
  k?: number;
  looAuroc?: { k: number; auroc: number }[];
}

/** A run: its configuration, dataset, and the result of every step so far. */
export interface RunRecord {
  schema: number;
  id: string;
  datasetId: string;
  datasetName: string;
  config: RunConfig;
  createdAt: number;
  updatedAt: number;
  prepared?: PreparedSummary;
  phases: Partial<Record<Phase, PhaseResult>>;
  detection?: DetectionRecord;
  report?: Report;
}

const runKey = (id: string) => `run:${id}`;
const ckptKey = (id: string, phase: Phase) => `ckpt:${id}:${phase}`;

export async function saveRun(r: RunRecord): Promise<void> {
  await set(runKey(r.id), { ...r, updatedAt: Date.now() }, labStore());
}

export async function getRun(id: string): Promise<RunRecord> {
  const r = await get<RunRecord>(runKey(id), labStore());
  if (!r || r.schema !== SCHEMA_VERSION)
    throw new NotFoundError(`run ${id} is not stored (it may have been deleted); start a new run`);
  return r;
}

export async function findRun(id: string): Promise<RunRecord | undefined> {
  const r = await get<RunRecord>(runKey(id), labStore());
  return r && r.schema === SCHEMA_VERSION ? r : undefined;
}

export async function listRuns(): Promise<RunRecord[]> {
  const store = labStore();
  const ks = (await keys(store)).filter(
    (k): k is string => typeof k === 'string' && k.startsWith('run:'),
  );
  const rs = await Promise.all(ks.map((k) => get<RunRecord>(k, store)));
  return rs
    .filter((r): r is RunRecord => !!r && r.schema === SCHEMA_VERSION)
    .sort((a, b) => b.updatedAt - a.updatedAt);
}

/** Writes a checkpoint (weights, optimizer, RNG, trajectories) in one transaction: all or nothing. */
export async function saveCheckpoint(id: string, phase: Phase, c: Checkpoint): Promise<void> {
  await set(ckptKey(id, phase), c, labStore());
}

export async function loadCheckpoint(id: string, phase: Phase): Promise<Checkpoint | undefined> {
  return get<Checkpoint>(ckptKey(id, phase), labStore());
}

export async function deleteCheckpoint(id: string, phase: Phase): Promise<void> {
  await del(ckptKey(id, phase), labStore());
}

export async function deleteRun(id: string): Promise<void> {
  const store = labStore();
  const ks = (await keys(store)).filter(
    (k): k is string => typeof k === 'string' && (k === runKey(id) || k.startsWith(`ckpt:${id}:`)),
  );
  await delMany(ks, store);
}

export { SCHEMA_VERSION };
