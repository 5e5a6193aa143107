import type { BackendMeasurement } from '../ml/backend-select.ts';

// The worker has no localStorage, so the page keeps each device's backend measurement and hands
// it to the worker's init; the worker uses it only if its own device key matches.
const PREFIX = 'badloss-backend:';

export function loadMeasurement(key: string): BackendMeasurement | null {
  try {
    const s = localStorage.getItem(PREFIX + key);
    return s ? (JSON.parse(s) as BackendMeasurement) : null;
  } catch {
    return null; // storage disabled or a corrupt entry: measure again
  }
}

export function saveMeasurement(m: BackendMeasurement): void {
  try {
    localStorage.setItem(PREFIX + m.key, JSON.stringify(m));
  } catch {
    // storage full or disabled: the next start measures again
  }
}
