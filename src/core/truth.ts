import { InvalidOptionError } from './errors.ts';
import type { AttackRequest, ResolvedAttack } from './attacks/plan.ts';
import { isAttackId, type AttackId } from './attacks/triggers.ts';
import type { ImageSplit } from './dataset.ts';
import type { ProbeRows } from './detect/knn.ts';
import type { RunConfig } from './experiment.ts';
import { PROBE_BACKDOOR, PROBE_CLEAN, PROBE_MISLABELED, type ProbeResult } from './probes.ts';

/**
 * The ground-truth file `poison` writes next to a prepared training set (CIFAR-10 binary, rows in
 * training order) so that trajectories recorded elsewhere (PyTorch, any cluster) can be scored
 * here. JSON; row indices are 0-based training rows.
 *
 * - `probes.clean` / `probes.anomalous`: the k-NN's labeled points (SPEC §5), the exact format
 *   `detect --probes` reads; `backdoor` ∪ `mislabeled` = `anomalous`.
 * - `rows[i]`: the attack id that poisoned row i, or null (clean or probe); evaluation only.
 * - `labels[i]`: row i's training label (after attacks and probes), for per-class removal.
 * - `fingerprint`: SHA-256 of the training set (splitFingerprint: labels, then NHWC images), so a
 *   file made for another dataset is refused.
 */
export interface TruthFile {
  format: 'badloss-truth';
  version: 1;
  /** The dataset the rows were drawn from (e.g. "Demo shapes (seed 0)"). */
  dataset: string;
  classes: string[];
  /** Training rows (N). */
  count: number;
  fingerprint: string;
  seed: number;
  config: {
    mode: RunConfig['mode'];
    attacks: AttackRequest[];
    probes: (RunConfig['probes'] & { backdoorLabel: number }) | null;
    limit?: RunConfig['limit'];
  };
  attacks: Record<
    string,
    { target: number; indices: number[]; params: Record<string, unknown> & { ratio: number } }
  >;
  probes: {
    clean: number[];
    anomalous: number[];
    backdoor: number[];
    mislabeled: number[];
  };
  rows: (AttackId | null)[];
  labels: number[];
}

/** What `buildTruthFile` needs: a poisoned (and optionally probed) training set. */
export interface TruthInput {
  dataset: string;
  classes: string[];
  train: ImageSplit;
  fingerprint: string;
  seed: number;
  /** Per row: index into `attacks`, or −1. */
  truth: Int8Array;
  attacks: ResolvedAttack[];
  requests: AttackRequest[];
  mode: RunConfig['mode'];
  probes?: { result: ProbeResult; config: RunConfig['probes'] };
  limit?: RunConfig['limit'];
}

/** Assembles the truth file of a prepared training set (see TruthFile). */
export function buildTruthFile(t: TruthInput): TruthFile {
  const p = t.probes?.result.indices;
  const anomalous = p ? [...p.backdoor, ...p.mislabeled].sort((a, b) => a - b) : [];
  return {
    format: 'badloss-truth',
    version: 1,
    dataset: t.dataset,
    classes: t.classes,
    count: t.train.count,
    fingerprint: t.fingerprint,
    seed: t.seed,
    config: {
      mode: t.mode,
      attacks: t.requests,
      probes: t.probes
        ? { ...t.probes.config, backdoorLabel: t.probes.result.backdoorLabel }
        : null,
      ...(t.limit ? { limit: t.limit } : {}),
    },
    attacks: Object.fromEntries(
      t.attacks.map((a) => [
        a.id,
        {
          target: a.target,
          indices: a.indices,
          params: { ratio: a.ratio, strength: a.strength, ...a.params },
        },
      ]),
    ),
    probes: {
      clean: p ? [...p.clean] : [],
      anomalous,
      backdoor: p ? [...p.backdoor] : [],
      mislabeled: p ? [...p.mislabeled] : [],
    },
    rows: Array.from(t.truth, (k) => (k >= 0 ? t.attacks[k].id : null)),
    labels: Array.from(t.train.labels),
  };
}

/** A truth file unpacked into the arrays the detector and summarizeDetection take. */
export interface TruthArrays {
  count: number;
  /** Per row: index into `attacks`, or −1 (clean or probe). */
  truth: Int8Array;
  /** Per row: PROBE_* code. */
  probeKind: Uint8Array;
  attacks: { id: AttackId }[];
  labels: Uint8Array;
  classes: string[];
  probes: ProbeRows;
  fingerprint: string;
  /** The dataset's name as poison saw it ('' when the file has none). */
  dataset: string;
}

/**
 * Validates a parsed truth file (named errors: `name` is the file's name) and unpacks it. Probe
 * rows, attack rows and labels must all lie inside the `count` rows; a row cannot be both a probe
 * and poisoned.
 */
export function readTruthFile(name: string, json: unknown): TruthArrays {
  const bad = (what: string): never => {
    throw new InvalidOptionError(
      `${name}: ${what}; expected a truth file written by "npm run cli -- poison ... --truth"`,
    );
  };
  if (typeof json !== 'object' || json === null) return bad('not a JSON object');
  const f = json as Partial<TruthFile>;
  if (f.format !== 'badloss-truth') bad(`"format" is ${JSON.stringify(f.format)}`);
  if (f.version !== 1) bad(`version ${JSON.stringify(f.version)} is not supported (1 is)`);
  const n = f.count;
  if (!Number.isInteger(n) || (n as number) < 1) return bad(`"count" ${n} is not a row count`);
  const count = n as number;
  if (!Array.isArray(f.classes) || f.classes.some((c) => typeof c !== 'string'))
    bad('"classes" is not a list of names');
  const classes = f.classes as string[];
  if (typeof f.fingerprint !== 'string' || !/^[0-9a-f]{64}$/.test(f.fingerprint))
    bad('"fingerprint" is not a SHA-256 hex digest');
  const rowList = (x: unknown, key: string): number[] => {
    if (!Array.isArray(x) || x.some((r) => !Number.isInteger(r) || r < 0 || r >= count))
      bad(`"${key}" must be a list of row indices in 0–${count - 1}`);
    return x as number[];
  };
  const p = (f.probes ?? {}) as Partial<TruthFile['probes']>;
  const probes = {
    clean: rowList(p.clean ?? [], 'probes.clean'),
    anomalous: rowList(p.anomalous ?? [], 'probes.anomalous'),
  };
  const mislabeled = new Set(rowList(p.mislabeled ?? [], 'probes.mislabeled'));
  if (!Array.isArray(f.rows) || f.rows.length !== count)
    bad(`"rows" must list an attack id or null for each of the ${count} rows`);
  if (!Array.isArray(f.labels) || f.labels.length !== count)
    bad(`"labels" must list a label for each of the ${count} rows`);
  // The file's attack order first (an attack may have poisoned no row), then any other id in rows.
  const attacks: AttackId[] = Object.keys(f.attacks ?? {}).filter(isAttackId);
  const truth = new Int8Array(count).fill(-1);
  (f.rows as unknown[]).forEach((id, i) => {
    if (id === null) return;
    if (typeof id !== 'string' || !isAttackId(id)) return bad(`row ${i} has unknown attack ${id}`);
    if (!attacks.includes(id)) attacks.push(id);
    truth[i] = attacks.indexOf(id);
  });
  const labels = new Uint8Array(count);
  (f.labels as unknown[]).forEach((l, i) => {
    if (!Number.isInteger(l) || (l as number) < 0 || (l as number) >= classes.length)
      bad(`row ${i} has label ${l}, outside the ${classes.length} classes`);
    labels[i] = l as number;
  });
  const probeKind = new Uint8Array(count);
  for (const r of probes.clean) probeKind[r] = PROBE_CLEAN;
  for (const r of probes.anomalous) {
    if (probeKind[r] === PROBE_CLEAN) bad(`row ${r} is both a clean and an anomalous probe`);
    probeKind[r] = mislabeled.has(r) ? PROBE_MISLABELED : PROBE_BACKDOOR;
  }
  for (let i = 0; i < count; i++)
    if (probeKind[i] !== 0 && truth[i] >= 0) bad(`row ${i} is both a probe and poisoned`);
  return {
    count,
    truth,
    probeKind,
    attacks: attacks.map((id) => ({ id })),
    labels,
    classes,
    probes,
    fingerprint: f.fingerprint as string,
    dataset: typeof f.dataset === 'string' ? f.dataset : '',
  };
}
