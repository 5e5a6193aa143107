import { delMany, get, keys, promisifyRequest, set, setMany, type UseStore } from 'idb-keyval';
import { PHASES, type Checkpoint, type Phase, type RunRecord, type RunStore } from '../core/run.ts';
import { labStore, SCHEMA_VERSION } from './db.ts';

const runKey = (id: string) => `run:${id}`;
const ckptKey = (id: string, phase: Phase) => `ckpt:${id}:${phase}`;

/** Runs written before run names existed get their dataset name. */
function upgrade(r: RunRecord | undefined): RunRecord | undefined {
  if (!r || r.schema !== SCHEMA_VERSION) return undefined;
  return r.name ? r : { ...r, name: r.datasetName };
}

/**
 * Runs and checkpoints in the lab's IndexedDB store. A run and its epoch checkpoint are written
 * in one transaction (idb-keyval's setMany), so a tab closed mid-write leaves the previous epoch.
 */
export class IdbRunStore implements RunStore {
  private readonly store: UseStore;

  constructor(store: UseStore = labStore()) {
    this.store = store;
  }

  async findRun(id: string): Promise<RunRecord | undefined> {
    return upgrade(await get<RunRecord>(runKey(id), this.store));
  }

  async listRuns(): Promise<RunRecord[]> {
    const ks = (await keys(this.store)).filter(
      (k): k is string => typeof k === 'string' && k.startsWith('run:'),
    );
    const rs = await Promise.all(ks.map((k) => get<RunRecord>(k, this.store)));
    return rs
      .map(upgrade)
      .filter((r): r is RunRecord => !!r)
      .sort((a, b) => b.updatedAt - a.updatedAt);
  }

  async putRun(r: RunRecord): Promise<void> {
    await set(runKey(r.id), r, this.store);
  }

  async deleteRun(id: string): Promise<void> {
    await delMany([runKey(id), ...PHASES.map((p) => ckptKey(id, p))], this.store);
  }

  async loadCheckpoint(id: string, phase: Phase): Promise<Checkpoint | undefined> {
    return get<Checkpoint>(ckptKey(id, phase), this.store);
  }

  async commitEpoch(r: RunRecord, phase: Phase, c: Checkpoint): Promise<void> {
    await setMany(
      [
        [runKey(r.id), r],
        [ckptKey(r.id, phase), c],
      ],
      this.store,
    );
  }

  async putRunDropping(r: RunRecord, drop: Phase[]): Promise<void> {
    // One readwrite transaction for the put and the deletes.
    await this.store('readwrite', (s) => {
      s.put(r, runKey(r.id));
      for (const p of drop) s.delete(ckptKey(r.id, p));
      return promisifyRequest(s.transaction);
    });
  }
}

export { SCHEMA_VERSION };
