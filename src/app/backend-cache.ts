import type { BackendMeasurement } from '../ml/backend-select.ts';

// The worker has no localStorage, so the page keeps each device's backend measurement and hands
// it to the worker's init; the worker uses it only if its own device key matches.
const PREFIX = 'badloss-backend:';

/** Every device's cached measurement (usually one); the worker picks the one for its key. */
export function loadMeasurements(): BackendMeasurement[] {
  const out: BackendMeasurement[] = [];
  try {
    for (let i = 0; i < localStorage.length; i++) {
      const k = localStorage.key(i);
      if (!k?.startsWith(PREFIX)) continue;
      try {
        out.push(JSON.parse(localStorage.getItem(k)!) as BackendMeasurement);
      } catch {
        localStorage.removeItem(k); // a corrupt entry: that device measures again
      }
    }
  } catch {
    // storage disabled: measure every time
  }
  return out;
}

export function saveMeasurement(m: BackendMeasurement): void {
  try {
    localStorage.setItem(PREFIX + m.key, JSON.stringify(m));
  } catch {
    // storage full or disabled: the next start measures again
  }
}
