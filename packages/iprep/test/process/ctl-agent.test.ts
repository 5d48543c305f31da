/**
 * The operator commands (`spoa decisions|explain|lists|reload|status`) against a real `spoa` on free
 * ports: every command end to end, the token path, and the error when no agent answers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from 'spop/testkit';
import { spoaBin } from 'test-support/paths';
import { spawnSpoaWorkers } from './spoa-workers.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `spoa <args>` to its end, with only the environment given (no SPOA_* from the caller's shell). */
function spoa(args: readonly string[], env: Record<string, string> = {}, input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [spoaBin, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: process.env['PATH'] ?? '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

const TOKEN = 'op-secret-7f3a9c';
const TOOL_JA4 = 't13d1516h2_8daaf6152771_e5627efa2ab1';
// Started at the top level, not in a before() hook: spawnSpoaWorkers stops its processes in an after()
// of the scope that first calls it, and a hook's scope ends with the hook.
const dir = mkdtempSync(join(tmpdir(), 'spoa-ctl-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const config = join(dir, 'iprep.yaml');
const tokenFile = join(dir, 'token');
const admin = await (async (): Promise<string> => {
  const [port, adminPort] = [await freePort(), await freePort()];
  writeFileSync(tokenFile, `${TOKEN}\n`);
  writeFileSync(join(dir, 'bad.netset'), '198.51.100.0/24\n');
  writeFileSync(join(dir, 'tools.ja4'), `${TOOL_JA4} scanner 1.0\n`);
  writeFileSync(
    config,
    [
      'mode: reputation',
      `cache-dir: ${JSON.stringify(join(dir, 'cache'))}`,
      'special: { enabled: false }',
      'behaviour: { enabled: false }',
      'decisions: { file: null }',
      `admin: { enabled: true, host: 127.0.0.1, port: ${adminPort}, token-file: token }`,
      'lists:',
      '  - { name: bad-nets, format: netset, path: bad.netset, score: 5, category: abuse }',
      'tls:',
      '  lists: [{ name: tls-tools, path: tools.ja4, score: 0, action: deny, category: tool }]',
      '',
    ].join('\n'),
  );
  const { log } = await spawnSpoaWorkers(['--config', config, '-p', String(port), '-n', '2', '--host', '127.0.0.1']);
  // Each worker opens the admin port after its SPOP port.
  for (const deadline = Date.now() + 10_000; (log().match(/admin API listening/g) ?? []).length < 2; await sleep(20)) {
    assert.ok(Date.now() < deadline, `the admin API did not start: ${log()}`);
  }
  return `127.0.0.1:${adminPort}`;
})();

describe('spoa decisions', () => {
  it('add, list (table and --json), delete, with the token from SPOA_TOKEN', async () => {
    const env = { SPOA_ADMIN: admin, SPOA_TOKEN: TOKEN };
    const added = await spoa(['decisions', 'add', '192.0.2.7', '--action', 'deny', '--duration', '3h', '--reason', 'scanner'], env);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /192\.0\.2\.7/);

    const table = await spoa(['decisions', 'list'], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^VALUE\s+ACTION\s+SCORE\s+EXPIRES\s+ORIGIN\s+REASON/m);
    assert.match(table.stdout, /192\.0\.2\.7\s+deny\s+0\s+(2h59m|3h)\S*\s+cli\s+scanner/, 'spoa decisions add says X-Spoa-Client: cli');
    assert.doesNotMatch(table.stdout, /\x1b\[/, 'no colour codes when piped');

    const json = await spoa(['decisions', 'list', '--json'], env);
    const decisions = JSON.parse(json.stdout) as { value: string; action: string }[];
    assert.deepEqual(
      decisions.map((d) => [d.value, d.action]),
      [['192.0.2.7', 'deny']],
    );

    const deleted = await spoa(['decisions', 'delete', '192.0.2.7'], env);
    assert.equal(deleted.code, 0, deleted.stderr);
    const again = await spoa(['decisions', 'delete', '192.0.2.7'], env);
    assert.equal(again.code, 1, 'not found');
    assert.match(again.stderr, /not found/);
  });

  it('the agent says no: a /4 without --force is refused with the reason, exit 1', async () => {
    const refused = await spoa(['decisions', 'add', '16.0.0.0/4', '--admin', admin, '--token-file', tokenFile]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /force/);
  });

  it('import: a CSV with a bad line adds the good ones and names the bad line', async () => {
    const file = join(dir, 'ban.csv');
    writeFileSync(file, 'value,action,duration,reason\n192.0.2.10,deny,1h,"scan, then brute force"\nnot-an-address,deny,1h,x\n192.0.2.11,tarpit,,\n');
    const run = await spoa(['decisions', 'import', file, '--admin', admin, '--token-file', tokenFile]);
    assert.equal(run.code, 1, 'a refused line makes the import exit 1');
    assert.match(run.stdout, /added 2/);
    assert.match(run.stdout, /line 3: .*not-an-address/);
    const json = await spoa(['decisions', 'list', '--json', '--admin', admin, '--token-file', tokenFile]);
    const byValue = new Map((JSON.parse(json.stdout) as { value: string; action: string; reason: string }[]).map((d) => [d.value, d]));
    assert.equal(byValue.get('192.0.2.10')?.reason, 'scan, then brute force');
    assert.equal(byValue.get('192.0.2.11')?.action, 'tarpit');
  });

  it('import from stdin, plain values', async () => {
    const run = await spoa(
      ['decisions', 'import', '-', '--format', 'plain', '--reason', 'feed', '--admin', admin, '--token-file', tokenFile],
      {},
      '# list\n192.0.2.20\n\n192.0.2.21\n',
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /added 2, refused 0/);
  });
});

describe('spoa explain, lists, reload, status', () => {
  const env = (): Record<string, string> => ({ SPOA_ADMIN: admin, SPOA_TOKEN: TOKEN });

  it('explain names the deciding list', async () => {
    const run = await spoa(['explain', '198.51.100.9'], env());
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /score 5/);
    assert.match(run.stdout, /bad-nets/);
    const bad = await spoa(['explain', 'nope'], env());
    assert.equal(bad.code, 1);
  });

  it('explain --ja4 adds what the TLS fingerprint gets, with the list entry it hit', async () => {
    const run = await spoa(['explain', '203.0.113.1', '--ja4', TOOL_JA4], env());
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /score 0, deny \(category tool, source tls-tools\)/);
    assert.match(run.stdout, /list tls-tools \[tool\] score 0, deny: t13d1516h2_8daaf6152771_e5627efa2ab1 scanner 1\.0/);
    const bad = await spoa(['explain', '203.0.113.1', '--ja4', 'nope'], env());
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not a JA4 or JA3 fingerprint/);
  });

  it('lists prints a table; reload reports each worker', async () => {
    const lists = await spoa(['lists'], env());
    assert.equal(lists.code, 0, lists.stderr);
    assert.match(lists.stdout, /bad-nets\s+netset\s+1\b/);
    const reload = await spoa(['reload'], env());
    assert.equal(reload.code, 0, reload.stderr);
    assert.equal((reload.stdout.match(/worker \d+: ok/g) ?? []).length, 2, reload.stdout);
  });

  it('status summarises throughput, verdicts, lists, store and workers', async () => {
    const run = await spoa(['status'], env());
    assert.equal(run.code, 0, run.stderr);
    for (const word of ['health', 'messages', 'deny', 'lists', 'store', 'workers']) assert.match(run.stdout, new RegExp(word, 'i'));
  });
});

describe('spoa <command>: configuration, token and errors', () => {
  it('finds the address and token in the configuration file', async () => {
    const run = await spoa(['lists', '--config', config]);
    assert.equal(run.code, 0, run.stderr);
  });

  it('a wrong token: exit 1, and the token is never printed', async () => {
    const run = await spoa(['lists'], { SPOA_ADMIN: admin, SPOA_TOKEN: 'wrong-token-123' });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /token/);
    assert.doesNotMatch(run.stderr + run.stdout, /wrong-token-123/);
  });

  it('no agent: exit 3 with a clear message', async () => {
    const port = await freePort();
    const run = await spoa(['status', '--admin', `127.0.0.1:${port}`]);
    assert.equal(run.code, 3);
    assert.match(
      run.stderr,
      new RegExp(`cannot reach the agent at 127\\.0\\.0\\.1:${port}: connection refused; is spoa running with the admin API enabled\\?`),
    );
  });

  it('usage: exit 2; per-command help', async () => {
    assert.equal((await spoa(['decisions', 'frobnicate'])).code, 2);
    const help = await spoa(['help', 'decisions']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /spoa decisions import/);
    assert.match((await spoa(['explain', '-h'])).stdout, /spoa explain <address>/);
    assert.match((await spoa(['-h'])).stdout, /decisions/);
    const overview = await spoa(['help']);
    assert.equal(overview.code, 0);
    assert.match(overview.stdout, /^Usage: spoa \[-h\]/);
    const unknown = await spoa(['help', 'frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /decisions, explain, lists, reload, restart, status/);
  });
});
