#!/usr/bin/env node
// Runs the test suites with Node's own runner. Node 20's --test does not expand
// globs nor find .ts files, so the files are listed here.
// Usage: node scripts/run-tests.mjs [unit|process|e2e|all | test files...] [extra node --test flags]
// unit: in one process; process: tests that start `spoa`, redis-server, a browser or forked
// workers; e2e: against real HAProxy.
// Before the process and e2e suites, scripts/provision.mjs provides HAProxy, Redis and Chromium
// (or stops the run with one message naming what to do). The run's last line says whether it
// passed; cancelled tests (a file that timed out, a failed `before` hook) fail it as loudly as
// failed ones: Node's own summary then reads "fail 0".
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { provision } from './provision.mjs';

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

const args = process.argv.slice(2);
// A suite or files first; from the first flag on, everything goes to node --test (flag values too).
const firstFlag = args.findIndex((arg) => arg.startsWith('-'));
const named = firstFlag === -1 ? args : args.slice(0, firstFlag);
const extra = firstFlag === -1 ? [] : args.slice(firstFlag);
let files;
let needing;
if (named.length > 0 && named.every((arg) => arg.endsWith('.test.ts') || arg.endsWith('.test.mjs'))) {
  files = named.map((file) => relative(root, resolve(file)));
  // The suites these files belong to decide what to provide.
  needing = ['process', 'e2e'].filter((suite) => files.some((file) => suites[suite].some((dir) => file.startsWith(`${dir}/`))));
} else {
  const which = named[0] ?? 'all';
  const dirs = which === 'all' ? [...suites.unit, ...suites.process, ...suites.e2e] : suites[which];
  if (!dirs || named.length > 1) {
    console.error(`unknown suite ${named.join(' ')}: use unit, process, e2e or all, or name test files`);
    process.exit(2);
  }
  files = dirs.flatMap(findTests);
  needing = which === 'all' ? ['process', 'e2e'] : [which].filter((suite) => suite !== 'unit');
}
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
if (needing.length > 0 && provision(needing).length > 0) process.exit(1);

console.log(`running ${files.length} test files: ${files.map((f) => relative('.', join(root, f))).join(' ')}`);
// The human-readable report goes to the terminal (unless the flags name another reporter); a TAP
// copy goes to a file, whose closing counts this script reads.
const reportDir = mkdtempSync(join(tmpdir(), 'run-tests-'));
const tapFile = join(reportDir, 'report.tap');
const reporters = extra.some((arg) => arg.startsWith('--test-reporter')) ? [] : ['--test-reporter=spec', '--test-reporter-destination=stdout'];
// E2E files start HAProxy processes and agents: one file at a time keeps them from starving each other.
// Node 20 applies --test-timeout to each test FILE as a whole, not to each test: seed.test.ts takes
// 30 s to a minute on a loaded 2-core machine, so a minute failed it now and then. Five minutes per
// file; a hanging e2e test still fails sooner, at its describe's own timeout.
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=1',
    '--test-timeout=300000',
    ...reporters,
    ...extra,
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...files,
  ],
  // Run from inside another test run (this script's own test), Node would report to that parent
  // rather than to the reporters named here.
  { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_TEST_CONTEXT: undefined } },
);
let tap = '';
try {
  tap = readFileSync(tapFile, 'utf8');
} catch {
  // No report: the run itself failed to start; its status says so.
}
rmSync(reportDir, { recursive: true, force: true });
// The closing counts are the last ones at the start of a line (nested tests' counts are indented).
const count = (name) => Number([...tap.matchAll(new RegExp(`^# ${name} (\\d+)$`, 'gm'))].at(-1)?.[1] ?? Number.NaN);
const [passed, failed, cancelled] = [count('pass'), count('fail'), count('cancelled')];
const ok = result.status === 0 && failed === 0 && cancelled === 0;
const counts = Number.isNaN(passed) ? 'no summary from the test runner' : `${passed} passed, ${failed} failed, ${cancelled} cancelled`;
const why = cancelled > 0 ? ' (cancelled: a test file timed out or a `before` hook failed; the first error above says why)' : '';
console.log(`\n[run-tests] ${ok ? 'passed' : 'FAILED'}: ${counts}${ok ? '' : why}`);
process.exit(ok ? 0 : 1);
