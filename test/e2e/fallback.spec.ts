import { expect, test } from '@playwright/test';
import { openApp, watchConsole } from './helpers.ts';

test('without WebGPU the worker chooses among the others and says why WebGPU is missing', async ({
  page,
}) => {
  const console = watchConsole(page);
  await openApp(page);
  const backend = page.getByTestId('backend');
  await expect(backend).toContainText(/WebGL|CPU/);
  await expect(backend).not.toContainText('WebGPU ·');
  await expect(page.getByTestId('fallback-reason')).toContainText('WEBGPU: no WebGPU adapter');
  await expect(page.getByTestId('compute-check')).toContainText('check passed');
  console.check();
});
