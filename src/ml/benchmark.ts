import { generateDemoDataset } from '../core/demo.ts';
import { subsetSplit } from '../core/dataset.ts';
import type { TrainingEngine } from './engine.ts';
import type { ModelName } from './resnet.ts';
import { Trainer } from './train.ts';

export interface Throughput {
  /** What computed: the tfjs backend ("webgpu", "webgl", "cpu") or "wasm" (our engine). */
  backend: string;
  /** Threads it computed on. */
  threads: number;
  model: ModelName;
  batchSize: number;
  /** Images per second through training steps (forward, backward, AdamW). */
  trainImagesPerSecond: number;
  /** Images per second through the evaluation-mode loss-recording pass. */
  recordImagesPerSecond: number;
  /** tfjs tensors held before and after (a leak shows as a difference; 0 for other engines). */
  tensorsBefore: number;
  tensorsAfter: number;
}

/**
 * Measures training and loss-recording throughput of `engine` (ResNet `model` ×1, 10 classes): a
 * warm-up pass first (WebGPU and WebGL compile their kernels on first use, V8 tiers WebAssembly
 * up), then `steps` training steps of `batchSize` demo images and one recording pass over the
 * same images. `tensors` reports tfjs's live tensor count, when there is one.
 */
export async function measureThroughput(
  engine: TrainingEngine,
  model: ModelName,
  batchSize: number,
  steps: number,
  tensors: () => number = () => 0,
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
  const tensorsBefore = tensors();
  // warm-up: one epoch and one evaluation batch on a model of the same shape
  const warm = await Trainer.create(
    engine,
    { ...cfg, epochs: 2 },
    subsetSplit(data, [...Array(batchSize).keys()]),
    10,
  );
  await warm.trainEpoch();
  await warm.perExampleLosses(subsetSplit(data, [0]));
  warm.dispose();
  const tr = await Trainer.create(engine, cfg, data, 10);
  let t0 = performance.now();
  await tr.trainEpoch();
  const trainS = (performance.now() - t0) / 1000;
  t0 = performance.now();
  await tr.perExampleLosses(data);
  const recordS = (performance.now() - t0) / 1000;
  tr.dispose();
  return {
    // tfjs engines are named "tfjs-<backend>"; results are keyed by the backend alone
    backend: engine.name.replace(/^tfjs-/, ''),
    threads: engine.threads,
    model,
    batchSize,
    trainImagesPerSecond: n / trainS,
    recordImagesPerSecond: n / recordS,
    tensorsBefore,
    tensorsAfter: tensors(),
  };
}
