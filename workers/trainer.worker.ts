import { expose } from 'comlink';
import { createTrainerApi } from '../src/ml/trainer-api.ts';
import { IdbRunStore } from '../src/storage/runs.ts';
import { loadDataset } from '../src/storage/datasets.ts';

// The worker plugs the IndexedDB stores into the orchestrator; src/ml knows no IndexedDB.
const api = createTrainerApi({ store: new IdbRunStore(), loadDataset });
expose(api);
export type TrainerApi = typeof api;
