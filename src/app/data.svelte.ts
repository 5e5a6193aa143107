import { proxy, type Remote } from 'comlink';
import { createDataWorker } from './compute.ts';
import type { DataApi } from '../../workers/data.worker.ts';
import type { ImageSplit, SplitName } from '../core/dataset.ts';
import {
  deleteDataset,
  listDatasets,
  loadSplit,
  removeOrphans,
  renameDataset,
  type DatasetManifest,
} from '../storage/datasets.ts';
import type { ImportResult, ImportStatus } from '../storage/import.ts';

const SELECTED_KEY = 'badloss-dataset';

/**
 * Stored datasets and imports. Each import runs in its own data worker; cancelling terminates
 * it (squoosh's pattern) and then removes whatever chunks it had written, so nothing is kept.
 */
export class DataState {
  datasets = $state.raw<DatasetManifest[]>([]);
  selectedId = $state<string | null>(null);
  importing = $state<ImportStatus | null>(null);
  importStarted = $state(0);
  loaded = $state(false);
  /** The selected dataset's split currently shown (gallery, previews). */
  preview = $state.raw<{ id: string; split: SplitName; data: ImageSplit } | null>(null);
  private worker: Worker | null = null;
  private runId = 0;

  selected = $derived(this.datasets.find((d) => d.id === this.selectedId) ?? null);

  async refresh(): Promise<void> {
    this.datasets = await listDatasets();
    if (this.selectedId && !this.datasets.some((d) => d.id === this.selectedId))
      this.selectedId = null;
    this.loaded = true;
  }

  /**
   * At start-up: drop leftovers of interrupted imports, list datasets, and make sure one is chosen
   * (the demo set if none is stored). The user's own last choice wins over `fallbackId` (the
   * run's dataset): a reload never silently switches datasets.
   */
  async init(fallbackId?: string | null): Promise<void> {
    await removeOrphans();
    await this.refresh();
    if (this.datasets.length === 0) {
      const res = await this.run((api, p) => api.importDemo(0, p));
      if (!res) return;
    }
    const stored = localStorage.getItem(SELECTED_KEY);
    const known = (id: string | null | undefined) =>
      !!id && this.datasets.some((d) => d.id === id) ? id : null;
    this.select(
      known(stored) ?? known(fallbackId) ?? this.selectedId ?? this.datasets[0]?.id ?? null,
    );
  }

  /** Chooses the dataset to work on; remembered across reloads. */
  select(id: string | null): void {
    this.selectedId = id;
    if (id) localStorage.setItem(SELECTED_KEY, id);
    else localStorage.removeItem(SELECTED_KEY);
  }

  /** Imports files; `select: false` keeps the current selection (a trusted set imported on the Probes step). */
  importFiles(files: File[], opts: { select?: boolean } = {}): Promise<ImportResult | null> {
    return this.run((api, p) => api.importFiles(files, p), opts.select ?? true);
  }

  importUrl(url: string): Promise<ImportResult | null> {
    return this.run((api, p) => api.importUrl(url, p));
  }

  importDemo(seed: number): Promise<ImportResult | null> {
    return this.run((api, p) => api.importDemo(seed, p));
  }

  /** Cancels the running import: kills its worker and removes its partial data. */
  async cancel(): Promise<void> {
    this.runId++;
    this.worker?.terminate();
    this.worker = null;
    // Keep the progress bar (as "cancelling") until the partial data is gone.
    if (this.importing)
      this.importing = { ...this.importing, detail: `${this.importing.detail} — cancelling` };
    try {
      await removeOrphans();
      await this.refresh();
    } finally {
      this.importing = null;
    }
  }

  async rename(id: string, name: string): Promise<void> {
    await renameDataset(id, name);
    await this.refresh();
  }

  async remove(id: string): Promise<void> {
    await deleteDataset(id);
    if (this.preview?.id === id) this.preview = null;
    await this.refresh();
  }

  async loadPreview(id: string, split: SplitName): Promise<ImageSplit> {
    if (this.preview && this.preview.id === id && this.preview.split === split)
      return this.preview.data;
    const data = await loadSplit(id, split);
    this.preview = { id, split, data };
    return data;
  }

  private async run(
    job: (api: Remote<DataApi>, onProgress: (s: ImportStatus) => void) => Promise<ImportResult>,
    select = true,
  ): Promise<ImportResult | null> {
    if (this.worker) throw new Error('an import is already running; wait for it or cancel it');
    const myRun = ++this.runId;
    const { worker, api } = createDataWorker();
    this.worker = worker;
    this.importStarted = performance.now();
    this.importing = { stage: 'reading', detail: '', done: 0, total: 1, unit: 'bytes' };
    try {
      const res = await job(
        api,
        proxy((s: ImportStatus) => {
          if (myRun === this.runId) this.importing = s;
        }),
      );
      if (myRun !== this.runId) return null;
      await this.refresh();
      if (select) this.select(res.manifest.id);
      return res;
    } finally {
      if (myRun === this.runId) {
        this.worker?.terminate();
        this.worker = null;
        this.importing = null;
      }
    }
  }
}
