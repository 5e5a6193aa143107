import { existsSync } from 'node:fs';
import { defineConfig } from '@playwright/test';

/**
 * End-to-end tests run the built app (`vite preview`) in a system Chromium: Playwright cannot
 * download its own browsers on our machines. WebGPU works headless through Chromium's software
 * adapter with --enable-unsafe-webgpu on a localhost page.
 */
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(executablePath)) {
  throw new Error(
    `No Chromium at ${executablePath}. Install one (Debian/Ubuntu: sudo apt-get install -y chromium) or set CHROMIUM_PATH to a Chromium/Chrome executable.`,
  );
}

// E2E_PORT lets two checkouts on one machine test at the same time.
const PORT = Number(process.env.E2E_PORT ?? 4173);
// Flags that keep a sandboxed CI machine quiet: no background connections, no sandbox as root.
const quiet = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export default defineConfig({
  testDir: 'test/e2e',
  timeout: 180_000,
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: true,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${PORT}/`,
    trace: 'off',
  },
  webServer: {
    command: `npx vite preview --port ${PORT} --strictPort`,
    url: `http://127.0.0.1:${PORT}/`,
    reuseExistingServer: !process.env.CI,
    timeout: 60_000,
  },
  projects: [
    {
      name: 'webgpu',
      testIgnore: /fallback\.spec\.ts/,
      use: { launchOptions: { executablePath, args: [...quiet, '--enable-unsafe-webgpu'] } },
    },
    {
      // No --enable-unsafe-webgpu: Chromium offers no adapter here, so the app must fall back.
      name: 'no-webgpu',
      testMatch: /fallback\.spec\.ts/,
      use: { launchOptions: { executablePath, args: quiet } },
    },
  ],
});
