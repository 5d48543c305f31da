/**
 * spop-bench is a package of its own, on the library's public API only: the
 * command runs from its bin, the library no longer carries it, and no source
 * file reaches into the library's internals.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';

const packageDir = new URL('../', import.meta.url);
const readJson = (url: URL): Record<string, unknown> => JSON.parse(readFileSync(url, 'utf8')) as Record<string, unknown>;

test('the spop-bench command prints its usage and exits 0', () => {
  const bin = new URL('bin/spop-bench.js', packageDir);
  const run = spawnSync(process.execPath, [bin.pathname, '-h'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^Usage: spop-bench /);
});

test('the package depends on spop by its workspace version; spop carries no bench', () => {
  const bench = readJson(new URL('package.json', packageDir));
  const spop = readJson(new URL('../spop/package.json', packageDir));
  assert.equal(bench.name, 'spop-bench');
  assert.deepEqual(bench.bin, { 'spop-bench': './bin/spop-bench.js' });
  assert.deepEqual(bench.dependencies, { spop: spop.version });
  assert.equal(spop.bin, undefined);
  assert.deepEqual(Object.keys(spop.exports as object).sort(), ['.', './testkit']);
});

test('its sources import only node built-ins, the public entry points of spop, and each other', () => {
  const dir = new URL('src/', packageDir);
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    const source = readFileSync(new URL(name, dir), 'utf8');
    for (const [, specifier] of source.matchAll(/(?:from|import\()\s*'([^']+)'/g)) {
      const allowed = specifier!.startsWith('node:') || specifier === 'spop' || specifier === 'spop/testkit' || /^\.\/[\w-]+\.js$/.test(specifier!);
      assert.ok(allowed, `src/${name} imports ${specifier}`);
    }
  }
});
