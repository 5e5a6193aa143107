import { ATTACK_NAMES, isAttackId } from '../core/attacks/triggers.ts';

/** "12.3 MB" style sizes (decimal units, as browsers report quota). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let u = 0;
  while (n >= 1000 && u < units.length - 1) {
    n /= 1000;
    u++;
  }
  return `${n.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/** "1 h 02 min", "3 min 05 s", "12 s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** A fraction as a percentage with one decimal. */
export function pct(x: number | undefined | null): string {
  return x === undefined || x === null || Number.isNaN(x) ? '—' : `${(100 * x).toFixed(1)}%`;
}

/**
 * The name of a detection group: attacks by their full names; clean examples flagged are false
 * positives; in audit mode nothing is known to be clean, so say so.
 */
export function groupName(key: string, mode: 'benchmark' | 'audit'): string {
  if (key === 'clean')
    return mode === 'audit'
      ? 'your examples (no ground truth)'
      : 'clean (removed = false positives)';
  if (key === 'all') return 'all poisons';
  return isAttackId(key) ? ATTACK_NAMES[key] : key;
}

/**
 * A small fraction with enough digits to be non-zero when it is: 0.004 → "0.4%", 0.00004 →
 * "0.004%", 0 → "0%", 0.25 → "25%".
 */
export function pctFine(x: number): string {
  if (!Number.isFinite(x)) return '—';
  if (x === 0) return '0%';
  const p = 100 * x;
  const digits = p >= 10 ? 0 : Math.min(4, Math.max(1, 1 - Math.floor(Math.log10(p))));
  return `${Number(p.toFixed(digits))}%`;
}

/**
 * Round tick values from 0 to at least `max` (about `count` of them, steps of 1, 2 or 5 × 10^k,
 * never fractional when `integer`): for axis labels.
 */
export function niceTicks(max: number, count = 4, integer = true): number[] {
  if (!(max > 0)) return [0];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const out: number[] = [];
  for (let v = 0; v < max + step - 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}
