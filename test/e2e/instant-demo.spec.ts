import { expect, test } from '@playwright/test';
import { openApp, watchConsole } from './helpers.ts';

test('the recorded demo opens the Report with a verdict in seconds, and its Detect step works', async ({
  page,
}) => {
  const console = watchConsole(page);
  await openApp(page, './?backend=cpu');
  await expect(page.getByTestId('dataset-list')).toContainText('Demo shapes (seed 0)');
  await page.getByRole('button', { name: 'Open the recorded demo' }).click();
  // the bar: the Report with its verdict within 5 s of the click
  await expect(page.getByTestId('verdict')).toBeVisible({ timeout: 5_000 });
  await expect(page.getByTestId('verdict')).toContainText(/took hold/);
  // the paper's comparison was recorded with it
  await expect(page.getByTestId('defense-tables').getByTestId('retrained-row')).toHaveCount(5);
  await page
    .getByRole('navigation', { name: 'Workflow' })
    .getByRole('button', { name: /^\d+\s*Detect$/ })
    .click();
  await expect(page.getByTestId('score-histogram')).toBeVisible();
  await expect(page.getByTestId('defense-comparison').getByTestId('defense-row')).toHaveCount(5);
  console.check();
});
