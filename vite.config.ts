import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

/**
 * Cross-origin isolation (COOP same-origin + COEP require-corp): without it there is no
 * SharedArrayBuffer, so the WebAssembly training engine runs on one thread. require-corp rather
 * than credentialless because Safari supports only the former; every resource the app loads is
 * same-origin, data: or blob:, and the dataset URL import fetches in CORS mode, which COEP accepts.
 * A static host must send the same two headers on every response (README).
 */
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  plugins: [svelte()],
  // Relative asset URLs so the built app also works from a sub-path or a file share.
  base: './',
  worker: { format: 'es' },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  preview: { host: '127.0.0.1', headers: isolation },
  server: { host: '127.0.0.1', headers: isolation },
  test: {
    include: ['test/unit/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    pool: 'forks',
  },
});
