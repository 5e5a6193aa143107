import { expose } from 'comlink';
import { importDemo, importFiles, importUrl } from '../src/storage/import.ts';

const api = { importFiles, importUrl, importDemo };
expose(api);
export type DataApi = typeof api;
