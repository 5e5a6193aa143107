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

/** The name of a detection group: in audit mode nothing is known to be clean, so say so. */
export function groupName(key: string, mode: 'benchmark' | 'audit'): string {
  if (key === 'clean') return mode === 'audit' ? 'your examples (no ground truth)' : 'clean';
  if (key === 'all') return 'all poisons';
  return key;
}
