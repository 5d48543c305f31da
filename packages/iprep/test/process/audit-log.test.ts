/**
 * The audit trail and its counts end to end: `spoa -n 2 --log-format json` (every line one JSON
 * object), decisions added and deleted with `spoa decisions`, logged by the worker that made the
 * change as the command line's and by the other as received, and counted once across workers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from 'spop/testkit';
import { spoaBin } from 'test-support/paths';
import { VERSION } from '../../src/version.js';
import { adminCall, spawnSpoaWorkers, writeReputationConfig } from './spoa-workers.js';

/** Runs `spoa <args>` to its end; resolves with its exit code and output. */
function spoa(args: readonly string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [spoaBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** The value of one series line (`name{labels} value`) of the exposition text. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

interface LogRecord {
  readonly time: string;
  readonly level: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

describe('spoa -n 2 --log-format json: the audit trail', () => {
  it('logs each decision change in both workers (received in one), counts it once, every line JSON', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'spoa-audit-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const [port, adminPort] = [await freePort(), await freePort()];
    const config = writeReputationConfig(dir, adminPort, ['decisions: { file: null }']);
    const agent = await spawnSpoaWorkers(['--config', config, '--log-format', 'json', '-p', String(port), '-n', '2', '--host', '127.0.0.1']);
    for (const deadline = Date.now() + 10_000; (agent.log().match(/admin API listening/g) ?? []).length < 2; await sleep(20)) {
      assert.ok(Date.now() < deadline, `the admin API did not start: ${agent.log()}`);
    }
    const target = ['--admin', `127.0.0.1:${adminPort}`];
    const added = await spoa(['decisions', 'add', '192.0.2.7', '--action', 'tarpit', '--reason', 'scan "x" level=error', ...target]);
    assert.equal(added.code, 0, added.out);
    const records = (): LogRecord[] =>
      agent
        .log()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as LogRecord);
    const audit = (msg: string): LogRecord[] => records().filter((r) => r.msg === msg && r.key === 'ip:192.0.2.7');
    for (const deadline = Date.now() + 5000; audit('decision added').length < 2; await sleep(20)) assert.ok(Date.now() < deadline, agent.log());

    for (let scrape = 0; scrape < 4; scrape++) {
      const metrics = await adminCall(adminPort, 'GET', '/metrics', agent.pids);
      assert.equal(metrics.status, 200);
      assert.equal(sample(metrics.body, 'iprep_decisions_changes_total{origin="cli",action="tarpit",op="added"}'), 1, `answered by ${metrics.pid}`);
      assert.equal(sample(metrics.body, `iprep_build_info{version="${VERSION}",node="${process.version}"}`), 1);
      assert.ok((sample(metrics.body, 'iprep_last_reload_success_timestamp_seconds') ?? 0) > Date.now() / 1000 - 60);
    }

    const deleted = await spoa(['decisions', 'delete', '192.0.2.7', ...target]);
    assert.equal(deleted.code, 0, deleted.out);
    for (const deadline = Date.now() + 5000; audit('decision deleted').length < 2; await sleep(20)) assert.ok(Date.now() < deadline, agent.log());
    agent.child.kill('SIGTERM');
    await once(agent.child, 'exit');

    // Every line is one JSON object with time, level and msg.
    for (const r of records()) {
      assert.ok(!Number.isNaN(Date.parse(r.time)) && typeof r.msg === 'string' && ['debug', 'info', 'warn', 'error'].includes(r.level), JSON.stringify(r));
    }
    const adds = audit('decision added');
    assert.deepEqual(adds.map((r) => [r.level, r.origin, r.action, r.reason, r.received ?? 'here']).sort(), [
      ['info', 'cli', 'tarpit', 'scan "x" level=error', 'here'],
      ['info', 'cli', 'tarpit', 'scan "x" level=error', 'store'],
    ]);
    assert.equal(typeof adds[0]?.expiresAt, 'string');
    const deletes = audit('decision deleted');
    assert.deepEqual(deletes.map((r) => [r.origin, r.received ?? 'here']).sort(), [
      ['cli', 'here'],
      ['store', 'store'],
    ]);
  });
});
