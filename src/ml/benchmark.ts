import type * as tfType from '@tensorflow/tfjs';
import { generateDemoDataset } from '../core/demo.ts';
import { subsetSplit } from '../core/dataset.ts';
import type { ModelName } from './resnet.ts';
import { Trainer } from './train.ts';

export interface Throughput {
  backend: string;
  model: ModelName;
  batchSize: number;
  /** Images per second through training steps (forward, backward, AdamW). */
  trainImagesPerSecond: number;
  /** Images per second through the evaluation-mode loss-recording pass. */
  recordImagesPerSecond: number;
  /** tfjs tensors held before and after (a leak shows as a difference). */
  tensorsBefore: number;
  tensorsAfter: number;
}

/**
 * Measures training and loss-recording throughput on the active backend: a warm-up pass first
 * (WebGPU and WebGL compile their kernels on first use), then `steps` training steps of
 * `batchSize` demo images and one recording pass over the same images.
 */
export async function measureThroughput(
  tf: typeof tfType,
  model: ModelName,
  batchSize: number,
  steps: number,
): Promise<Throughput> {
  const n = batchSize * steps;
  const ds = generateDemoDataset({ seed: 1, train: n, test: 10 });
  const data = ds.splits.train!;
  const cfg = {
    model,
    width: 1,
    epochs: 1,
    batchSize,
    lr: 1e-3,
    weightDecay: 1e-4,
    augment: false,
    seed: 1,
    record: 'train' as const,
  };
  const tensorsBefore = tf.memory().numTensors;
  const warm = new Trainer(tf, cfg, subsetSplit(data, [...Array(batchSize).keys()]), 10);
  await warm.trainEpoch();
  await warm.perExampleLosses(subsetSplit(data, [0]));
  warm.dispose();
  const tr = new Trainer(tf, cfg, data, 10);
  let t0 = performance.now();
  await tr.trainEpoch();
  const trainS = (performance.now() - t0) / 1000;
  t0 = performance.now();
  await tr.perExampleLosses(data);
  const recordS = (performance.now() - t0) / 1000;
  tr.dispose();
  return {
    backend: tf.getBackend(),
    model,
    batchSize,
    trainImagesPerSecond: n / trainS,
    recordImagesPerSecond: n / recordS,
    tensorsBefore,
    tensorsAfter: tf.memory().numTensors,
  };
}
