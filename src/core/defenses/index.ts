import type { ResolvedAttack } from '../attacks/plan.ts';
import { detect, flaggedRows, type DetectOptions } from '../detect/index.ts';
import { probeRowsFromKinds } from '../detect/knn.ts';
import { InvalidOptionError } from '../errors.ts';
import { summarizeRemoval, type RemovalSummary } from '../report.ts';
import { ablIsolation, type AblOptions } from './abl.ts';
import { activationClustering, type ActivationClusteringOptions } from './activation-clustering.ts';
import { frequencyAnalysis, type FrequencyOptions } from './frequency.ts';
import { spectralSignatures, type SpectralOptions } from './spectral.ts';
import {
  checkInputs,
  DEFENSE_NAMES,
  requireTrajectories,
  type BadlossDetails,
  type DefenseInputs,
  type DefenseName,
  type DefenseResult,
} from './types.ts';
import { DEFENSE_LABELS } from './types.ts';

export * from './types.ts';
export { ablIsolation, type AblOptions } from './abl.ts';
export { activationClustering, type ActivationClusteringOptions } from './activation-clustering.ts';
export {
  dctLogMagnitude,
  DEFAULT_FREQUENCY_MODEL,
  FREQUENCY_FEATURES,
  frequencyAnalysis,
  type FrequencyOptions,
} from './frequency.ts';
export { spectralSignatures, type SpectralOptions } from './spectral.ts';

/** Per-defense options; anything unset takes the SPEC §5 / §10 defaults. */
export interface DefenseOptions {
  /** BaDLoss's detector (default: k-NN, k chosen by leave-one-out, threshold 0.1). */
  badloss?: DetectOptions;
  spectral?: SpectralOptions;
  activationClustering?: ActivationClusteringOptions;
  frequency?: FrequencyOptions;
  abl?: AblOptions;
}

function isDefenseName(s: string): s is DefenseName {
  return (DEFENSE_NAMES as readonly string[]).includes(s);
}

/**
 * Parses a defense list as the CLI takes it: "all", or names separated by commas
 * ("badloss,spectral,abl"); order kept, duplicates dropped. Throws InvalidOptionError on an
 * unknown name, listing the known ones.
 */
export function parseDefenseList(text: string): DefenseName[] {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (parts.length === 1 && parts[0] === 'all') return [...DEFENSE_NAMES];
  if (parts.length === 0)
    throw new InvalidOptionError(
      `no defense named; use "all" or some of ${DEFENSE_NAMES.join(', ')}`,
    );
  const out: DefenseName[] = [];
  for (const p of parts) {
    if (!isDefenseName(p))
      throw new InvalidOptionError(
        `unknown defense "${p}"; known: ${DEFENSE_NAMES.join(', ')} (or "all")`,
      );
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

/**
 * BaDLoss in the registry: the detector of src/core/detect over the loss trajectories with the
 * probes of `probeKind` (P1 clean; P2 ∪ P3 anomalous). Scores as that detector gives them (NaN
 * for probes); removed = rows with score > threshold.
 */
export function badlossDefense(
  inp: DefenseInputs,
  opts: DetectOptions = { method: 'knn', k: 'auto', threshold: 0.1 },
): DefenseResult<BadlossDetails> {
  checkInputs(inp);
  const t = requireTrajectories(inp, 'BaDLoss');
  const det = detect(t, probeRowsFromKinds(inp.probeKind), opts);
  return {
    name: 'badloss',
    scores: det.scores,
    removed: flaggedRows(det.scores, det.threshold),
    threshold: det.threshold,
    details: {
      kind: 'badloss',
      method: det.method,
      ...(det.k !== undefined ? { k: det.k } : {}),
      ...(det.looAuroc ? { looAuroc: det.looAuroc } : {}),
      threshold: det.threshold,
    },
  };
}

/** Runs one defense by name (see `runDefenses`). */
export function runDefense(
  name: DefenseName,
  inputs: DefenseInputs,
  options: DefenseOptions = {},
): DefenseResult {
  switch (name) {
    case 'badloss':
      return badlossDefense(inputs, options.badloss);
    case 'spectral':
      return spectralSignatures(inputs, options.spectral);
    case 'activation-clustering':
      return activationClustering(inputs, options.activationClustering);
    case 'frequency':
      return frequencyAnalysis(inputs, options.frequency);
    case 'abl':
      return ablIsolation(inputs, options.abl);
    default:
      throw new InvalidOptionError(
        `unknown defense "${String(name)}"; known: ${DEFENSE_NAMES.join(', ')}`,
      );
  }
}

/**
 * Runs the named defenses on one run's probationary data, in the order given, each independent
 * of the others. Every result has per-row scores (NaN for probes) and removed rows (never a
 * probe). Deterministic from `inputs.seed`. `onDone` is called after each defense (for progress).
 */
export function runDefenses(
  names: readonly DefenseName[],
  inputs: DefenseInputs,
  options: DefenseOptions = {},
  onDone?: (result: DefenseResult, index: number) => void,
): DefenseResult[] {
  return names.map((name, i) => {
    const r = runDefense(name, inputs, options);
    onDone?.(r, i);
    return r;
  });
}

/** A defense's summary: the same numbers as BaDLoss's DetectionSummary, plus its name. */
export interface DefenseSummary extends RemovalSummary {
  defense: DefenseName;
  /** Human-readable name (DEFENSE_LABELS). */
  method: string;
  /** Set where removal is "score > threshold" over all rows. */
  threshold?: number;
}

/**
 * Summarizes a defense against the run's ground truth exactly as BaDLoss is summarized
 * (`summarizeRemoval`): AUROC and ROC per attack and overall, removal per attack / clean /
 * class. `truth[i]` = attack index into `attacks` or −1 (all −1 in audit mode).
 */
export function summarizeDefense(
  result: DefenseResult,
  truth: Int8Array,
  probeKind: Uint8Array,
  attacks: readonly Pick<ResolvedAttack, 'id'>[],
  labels: Uint8Array,
  numClasses: number,
): DefenseSummary {
  return {
    defense: result.name,
    method: DEFENSE_LABELS[result.name],
    ...(result.threshold !== undefined ? { threshold: result.threshold } : {}),
    ...summarizeRemoval(
      result.scores,
      result.removed,
      truth,
      probeKind,
      attacks,
      labels,
      numClasses,
    ),
  };
}
