/**
 * scripts/run-tests.mjs, what `npm test` runs: its last line says whether the run passed, and a
 * run whose tests were cancelled (a file that timed out, a failed `before` hook) fails loudly
 * rather than ending on Node's "fail 0".
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const runner = join(repoRoot, 'scripts/run-tests.mjs');

function runTests(...files: string[]): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [runner, ...files], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('run-tests', () => {
  const dir = mkdtempSync(join(tmpdir(), 'run-tests-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const passing = join(dir, 'passing.test.mjs');
  writeFileSync(passing, "import { it } from 'node:test';\nit('passes', () => {});\n");
  const cancelled = join(dir, 'cancelled.test.mjs');
  writeFileSync(
    cancelled,
    "import { before, describe, it } from 'node:test';\n" +
      "describe('set-up fails', () => {\n  before(() => { throw new Error('the server is missing'); });\n  it('one', () => {});\n  it('two', () => {});\n});\n",
  );

  it('runs the files it is given and ends on a summary that says passed', () => {
    const { status, output } = runTests(passing);
    assert.equal(status, 0, output);
    assert.match(output, /\[run-tests\] passed: 1 passed, 0 failed, 0 cancelled\n*$/);
  });

  it('fails loudly, counting them, when tests were cancelled', () => {
    const { status, output } = runTests(passing, cancelled);
    assert.equal(status, 1, output);
    assert.match(output, /the server is missing/);
    assert.match(output, /\[run-tests\] FAILED: 1 passed, 0 failed, 2 cancelled/);
  });
});
