import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { expose } from 'comlink';
import { createMeasureApi } from '../src/ml/backend.ts';
import { createWasmEngine } from '../src/ml/wasm-engine-web.ts';

expose(createMeasureApi(tf, () => createWasmEngine()));
