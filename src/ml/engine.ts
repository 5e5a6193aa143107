import type { ModelConfig } from './resnet.ts';

/**
 * A training engine: something that builds ResNets (src/ml/resnet.ts) for a fixed batch shape and
 * runs their training steps and evaluation passes. Two implementations: tfjs (any backend:
 * WebGPU, WebGL, CPU; `createTfjsEngine`) and our WebAssembly engine (`createWasmEngine`).
 * The Trainer (train.ts) runs on either, so shuffling, batching, schedules, trajectories and
 * checkpoints are written once.
 */
export interface TrainingEngine {
  /** e.g. "tfjs-cpu", "tfjs-webgpu", "wasm". */
  readonly name: string;
  /** Threads the engine computes on (1 for tfjs). */
  readonly threads: number;
  /** A model for batches of exactly `batchSize` images, with the seeded initialization. */
  createModel(config: EngineModelConfig): Promise<EngineModel>;
}

export interface EngineModelConfig extends ModelConfig {
  /** Every batch has exactly this many images (the last batch of an epoch is padded). */
  batchSize: number;
}

/** One training batch. B = the model's batch size. */
export interface TrainBatch {
  /** B × 32 × 32 × 3 normalized float32 images, NHWC row-major. */
  x: Float32Array;
  /** B class indices. */
  labels: Int32Array;
  /**
   * B loss weights: > 0 for real examples (1, or their class's weight: TrainConfig.classWeights),
   * 0 for padding (padding still enters BatchNorm statistics).
   */
  mask: Float32Array;
  /** Learning rate of this step (after the schedule). */
  lr: number;
  /** AdamW decoupled weight decay. */
  weightDecay: number;
  /** 1-based AdamW step count, for bias correction 1 − βᵗ. */
  t: number;
  /** Also return the per-example losses of this (training-mode) forward pass. */
  perExample: boolean;
}

/** What a training step computed (before the update). */
export interface StepResult {
  /** Σ mask·CE / Σ mask, nats. */
  loss: number;
  /** Count of the examples with mask > 0 whose top-1 prediction equals the label. */
  correct: number;
  /** B per-example cross-entropies (nats, unclamped), when asked for. */
  perExample?: Float32Array;
}

/**
 * A step whose results may still be on the device (tfjs defers readback so that the GPU is not
 * synchronized every step). `read` resolves them and releases what the step held; call it once.
 */
export interface PendingStep {
  read(): Promise<StepResult>;
}

/** An evaluation-mode forward pass over one batch. */
export interface EvalResult {
  /** B × C logits, row-major. */
  logits: Float32Array;
  /** B × D penultimate features (global-average-pooled), row-major. */
  features: Float32Array;
}

/** Named float arrays by the tfjs model's variable names (`stem.w`, `s0b0.c1.g`, `fc.b`, …). */
export type NamedArrays = Record<string, Float32Array>;

/** Everything a model holds: parameters + BatchNorm buffers (`weights`) and AdamW moments. */
export interface ModelState {
  weights: NamedArrays;
  m: NamedArrays;
  v: NamedArrays;
}

/** A model living in an engine, for one fixed batch size. */
export interface EngineModel {
  readonly config: EngineModelConfig;
  /** Trainable scalars. */
  readonly parameterCount: number;
  /** Penultimate feature width D. */
  readonly featureDim: number;
  /** One AdamW step on `batch`: forward in training mode, masked mean CE, backward, update. */
  trainStep(batch: TrainBatch): PendingStep;
  /** Evaluation-mode forward pass (BatchNorm with running statistics) of B images. */
  evaluate(x: Float32Array): Promise<EvalResult>;
  /** Copies of every parameter, buffer and AdamW moment. */
  getState(): Promise<ModelState>;
  /** Restores a state written by getState (same names and sizes, else InvalidOptionError). */
  setState(state: ModelState): void;
  /** e.g. "ResNet-8 ×1 · 0.08 M parameters". */
  describe(): string;
  /** What the engine holds now: bytes (and tfjs tensors): flat from epoch to epoch. */
  memory(): { bytes: number; tensors: number };
  dispose(): void;
}
