/**
 * `npm run docs:api` builds the API reference of spop with no warning: every
 * exported symbol documented, no broken link, nothing referenced but hidden
 * (typedoc.json treats warnings as errors). Checked without writing the HTML.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from 'test-support/paths';

test('the API reference builds without a warning', () => {
  const typedoc = join(repoRoot, 'node_modules/typedoc/bin/typedoc');
  const run = spawnSync(process.execPath, [typedoc, '--emit', 'none', '--logLevel', 'Warn'], { cwd: repoRoot, encoding: 'utf8', timeout: 90_000 });
  const output = `${run.stdout}${run.stderr}`;
  assert.equal(run.error, undefined, String(run.error));
  assert.equal(run.status, 0, output);
  assert.doesNotMatch(output, /warning|error/i, output);
});
