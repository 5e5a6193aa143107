import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { expose } from 'comlink';
import { createMeasureApi } from '../src/ml/backend.ts';

expose(createMeasureApi(tf));
