#!/usr/bin/env node
// Runs the test suites with Node's own runner. Node 20's --test does not expand
// globs nor find .ts files, so the files are listed here.
// Usage: node scripts/run-tests.mjs [unit|process|e2e|all] [extra node --test flags]
// unit: in one process; process: tests that start `spoa`, redis-server, a browser or forked
// workers; e2e: against real HAProxy.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const suites = {
  unit: ['packages/spop/test', 'packages/spop-bench/test', 'packages/test-support/test', 'packages/iprep/test/unit', 'test/scripts'],
  process: ['packages/iprep/test/process'],
  e2e: ['test/e2e'],
};

function findTests(dir) {
  let found = [];
  let entries;
  try {
    entries = readdirSync(join(root, dir));
  } catch {
    return found;
  }
  for (const name of entries.sort()) {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) found = found.concat(findTests(path));
    else if (name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

const [which = 'all', ...extra] = process.argv.slice(2);
const dirs = which === 'all' ? [...suites.unit, ...suites.process, ...suites.e2e] : suites[which];
if (!dirs) {
  console.error(`unknown suite ${which}: use unit, process, e2e or all`);
  process.exit(2);
}
const files = dirs.flatMap(findTests);
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
console.log(`running ${files.length} test files: ${files.map((f) => relative('.', join(root, f))).join(' ')}`);
// E2E files start HAProxy processes and agents: one file at a time keeps them from starving each other.
// Node 20 applies --test-timeout to each test FILE as a whole, not to each test: seed.test.ts takes
// 30 s to a minute on a loaded 2-core machine, so a minute failed it now and then. Five minutes per
// file; a hanging e2e test still fails sooner, at its describe's own timeout.
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=300000', ...extra, ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
