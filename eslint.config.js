import js from '@eslint/js';
import ts from 'typescript-eslint';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';

export default ts.config(
  { ignores: ['dist', 'node_modules', 'test-results', 'playwright-report'] },
  js.configs.recommended,
  ...ts.configs.recommended,
  ...svelte.configs.recommended,
  {
    languageOptions: { globals: { ...globals.browser, ...globals.node, ...globals.worker } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: { parserOptions: { parser: ts.parser, extraFileExtensions: ['.svelte'] } },
  },
  {
    // The math has no imports: src/core, at every depth, stays free of the browser, tfjs,
    // storage, the app and the engine. Imports are matched at any nesting ('../../ml/…').
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@tensorflow/*', 'idb-keyval', 'comlink', 'svelte', 'svelte/*'],
              message: 'src/core is pure TypeScript: no tfjs, IndexedDB, comlink or Svelte.',
            },
            {
              group: ['**/ml', '**/ml/**', '**/storage', '**/storage/**', '**/app', '**/app/**'],
              message: 'src/core imports nothing from src/ml, src/storage or src/app.',
            },
            {
              group: ['node:*', 'fs', 'path', 'os', 'child_process', 'worker_threads'],
              message: 'src/core runs in the browser too: no Node built-ins.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...[
          'window',
          'document',
          'navigator',
          'location',
          'history',
          'localStorage',
          'sessionStorage',
          'indexedDB',
          'self',
          'Worker',
          'OffscreenCanvas',
          'HTMLElement',
          'HTMLCanvasElement',
          'Image',
          'createImageBitmap',
          'fetch',
          'XMLHttpRequest',
          'postMessage',
          'caches',
          'alert',
          'process',
        ].map((name) => ({ name, message: `src/core is pure: no ${name} (DOM or Node global).` })),
      ],
    },
  },
);
