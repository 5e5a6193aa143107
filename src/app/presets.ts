import {
  CLASSROOM_DETECT,
  DEFAULT_DETECT,
  preset,
  type PresetName,
  type RunConfig,
} from '../core/experiment.ts';
import { ATTACK_NAMES } from '../core/attacks/triggers.ts';

/** The presets the Attacks step offers, in order, with their button labels. */
export const PRESET_LABELS: Record<PresetName | 'audit', string> = {
  paper: 'Paper multi-attack setting',
  quick: 'Quick demo',
  tiny: 'Tiny (no GPU)',
  compare: 'Paper comparison (every defense)',
  audit: 'No attacks — audit my data',
};

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return (
    ka.length === kb.length &&
    ka.every((k) => equal((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
}

/**
 * Which preset the configuration is exactly (key order and undefined fields ignored), or
 * 'audit' for any configuration in audit mode, or null once the user has changed something.
 */
export function activePreset(cfg: RunConfig, gtsrb = false): PresetName | 'audit' | null {
  if (cfg.mode === 'audit') return 'audit';
  for (const name of ['paper', 'quick', 'tiny', 'compare'] as const)
    if (equal(preset(name, gtsrb), cfg)) return name;
  return null;
}

/**
 * The configuration for auditing the user's own data: no attacks, trusted probes never from the
 * data under audit (SPEC §3: the test split when there is one, else a separately uploaded set),
 * and — unless the user chose other settings on the Detect step — the default detection the
 * command line audits with (DEFAULT_DETECT: the easiness and mirror tests and a second round), not the
 * classroom presets' one-round k-NN: it was chosen on natural images, the presets' on the demo set.
 */
export function auditConfig(cfg: RunConfig, hasTestSplit: boolean): RunConfig {
  return {
    ...cfg,
    mode: 'audit',
    attacks: [],
    probes: { ...cfg.probes, trusted: hasTestSplit ? 'test' : 'dataset' },
    detect: equal(cfg.detect, CLASSROOM_DETECT) ? { ...DEFAULT_DETECT } : cfg.detect,
  };
}

/** One line saying what a configuration will do: attacks, model, epochs, data size. */
export function configSummary(cfg: RunConfig): string {
  const attacks =
    cfg.mode === 'audit' || cfg.attacks.length === 0
      ? 'no attacks (your data as it is)'
      : cfg.attacks
          .map(
            (a) => `${ATTACK_NAMES[a.id]}${a.ratio ? ` at ${+(100 * a.ratio).toFixed(2)}%` : ''}`,
          )
          .join(', ');
  const model = `${cfg.train.model.replace('resnet', 'ResNet-')}${cfg.train.width !== 1 ? ` ×${cfg.train.width}` : ''}`;
  const limit = cfg.limit?.train
    ? `up to ${cfg.limit.train.toLocaleString('en')} training images`
    : 'every training image';
  return `${attacks}; ${model}, ${cfg.train.epochs} epochs on ${limit}; ${cfg.probes.n} probes of each kind.`;
}
