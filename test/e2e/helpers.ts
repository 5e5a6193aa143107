import { expect, type Page } from '@playwright/test';

/** Collects console errors and uncaught page errors; call `check()` at the end of a test. */
export function watchConsole(page: Page) {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`${e.name}: ${e.message}`));
  return {
    errors,
    check: () => expect(errors, `console errors:\n${errors.join('\n')}`).toEqual([]),
  };
}

/** Opens the app on a fresh origin state (IndexedDB cleared) and waits for the compute backend. */
export async function openApp(page: Page, path = './') {
  await page.goto(path);
  await expect(page.getByTestId('backend')).not.toContainText('starting', { timeout: 60_000 });
}
