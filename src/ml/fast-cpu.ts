import type * as tfType from '@tensorflow/tfjs';
import { registerFastCpuConv, restoreStockCpuConv } from './fast-cpu-conv.ts';
import { registerFastCpuElementwise, restoreStockCpuElementwise } from './fast-cpu-elementwise.ts';

/**
 * Makes tfjs's CPU backend fast enough to train (Node tests, the CLI, the CPU fallback in the
 * browser): direct convolution kernels and flat broadcast/reduction loops. Idempotent.
 */
export function registerFastCpuKernels(tf: typeof tfType): void {
  registerFastCpuConv(tf);
  registerFastCpuElementwise(tf);
}

/** Restores tfjs's stock CPU kernels (for the benchmark's comparison). */
export function restoreStockCpuKernels(tf: typeof tfType): void {
  restoreStockCpuConv(tf);
  restoreStockCpuElementwise(tf);
}
