/**
 * What the README shows of the code, checked against the code: the `spoa -h` text of the quick
 * start, and the scripts and variables its test section names.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');

describe('README', () => {
  it('shows the options and commands `spoa -h` prints', () => {
    const help = spawnSync(process.execPath, [join(repoRoot, 'packages/iprep/bin/spoa.js'), '-h'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(help.status, 0, help.stderr);
    // The README's block starts at the synopsis; the help's description lines before the options are left out there.
    const options = help.stdout.slice(help.stdout.indexOf('\n  -h, --help')).trimEnd();
    const synopsis = help.stdout.split('\n')[0]?.replace(/^Usage: /, '') ?? '';
    const block = readme.match(/^```\n(spoa \[-h\].*?)\n```$/ms)?.[1];
    assert.ok(block !== undefined, 'the README has no `spoa -h` block');
    assert.equal(block, `${synopsis}\n${options}`);
  });

  it('names scripts that exist and the variables the test run reads', () => {
    for (const path of readme.match(/scripts\/[\w./-]+\.(?:sh|mjs)/g) ?? []) assert.ok(existsSync(join(repoRoot, path)), `${path} is named but missing`);
    const provision = readFileSync(join(repoRoot, 'scripts/provision.mjs'), 'utf8');
    for (const variable of ['SPOA_TEST_INSTALL', 'CHROMIUM_BIN', 'HAPROXY_BIN_']) {
      assert.ok(provision.includes(variable), `scripts/provision.mjs does not read ${variable}`);
      assert.ok(readme.includes(variable), `the README does not say what ${variable} does`);
    }
  });
});
