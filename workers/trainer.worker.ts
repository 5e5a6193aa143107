import { expose } from 'comlink';
import { createTrainerApi } from '../src/ml/trainer-api.ts';

const api = createTrainerApi();
expose(api);
export type TrainerApi = typeof api;
