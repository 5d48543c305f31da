/**
 * `spoa restart --primary`: the primary replaced by its successor from the code on disk, as a package
 * upgrade needs. Socket-activated (the descriptor passed on to the successor), under pipelined load:
 * every NOTIFY is ACKed once, no DISCONNECT, no connection closed; the old primary exits, the new one
 * serves, answers `spoa status`, holds the decisions, and was announced to systemd (MAINPID) through
 * a stand-in `systemd-notify` that records its arguments.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from 'spop/testkit';
import { spoaBin } from 'test-support/paths';
import { killAtEnd, running } from 'test-support/processes';
import { waitFor } from 'test-support/wait';
import { startActivated } from 'test-support/socket-activation';
import { pipelinedLoad } from './pipelined-load.js';
import { spawnSpoaWorkers, writeReputationConfig } from './spoa-workers.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `spoa <args>` to its end. */
function spoa(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [spoaBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Until `spoa <args>` exits 0 (the successor's workers bind the admin port once the old ones left). */
async function spoaUntilOk(args: readonly string[], timeoutMs: number): Promise<Run> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await spoa(args);
    if (run.code === 0 || Date.now() > deadline) return run;
    await sleep(100);
  }
}

describe('spoa restart --primary: the primary replaced by its successor', () => {
  it('passes the socket, the live connections and the decisions on; announces MAINPID; the old primary exits; and again', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'spoa-primary-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const adminPort = await freePort();
    const config = writeReputationConfig(dir, adminPort, ['behaviour: { enabled: false }', 'decisions: { file: null }']);
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const notifyLog = join(dir, 'notify.log');
    writeFileSync(join(bin, 'systemd-notify'), `#!/bin/sh\necho "$@" >> ${JSON.stringify(notifyLog)}\n`);
    chmodSync(join(bin, 'systemd-notify'), 0o755);
    const { child, port, log, pids } = await startActivated(['--config', config, '-n', '2'], 2, {
      PATH: `${bin}:${process.env['PATH'] ?? ''}`,
      NOTIFY_SOCKET: join(dir, 'notify.sock'),
    });
    const oldPids = pids();
    const admin = ['--admin', `127.0.0.1:${adminPort}`];
    const added = await spoaUntilOk(
      ['decisions', 'add', '192.0.2.7', '--action', 'deny', '--duration', '3h', '--reason', 'held by the primary', ...admin],
      10_000,
    );
    assert.equal(added.code, 0, added.stderr);

    const load = await pipelinedLoad(port, 6, 20);
    t.after(() => load.stop());
    await waitFor('the old workers answer', () => load.sent() > 2000, 20_000);
    const restart = await spoa(['restart', '--primary', ...admin]);
    assert.equal(restart.code, 0, `${restart.stdout}${restart.stderr}${log()}`);
    const successor = Number(/primary (\d+) serves/.exec(restart.stdout)?.[1]);
    assert.ok(Number.isSafeInteger(successor) && successor !== child.pid, restart.stdout);
    killAtEnd(successor);
    for (const pid of pids()) killAtEnd(pid);

    await waitFor(
      () => `the old primary did not exit: ${log()}`,
      () => child.exitCode !== null,
      20_000,
    );
    assert.equal(child.exitCode, 0, log());
    await waitFor('the old workers exit', () => oldPids.every((pid) => !running(pid)), 15_000);
    const newPids = pids().filter((pid) => !oldPids.includes(pid));
    assert.equal(newPids.length, 2, log());
    const sentAtExit = load.sent();
    await waitFor('the new workers answer', () => load.sent() > sentAtExit + 2000, 20_000);
    const { sent, acked, errors, ended } = await load.stop();
    console.log(`spoa restart --primary under pipelined load: ${sent} NOTIFY`);
    assert.deepEqual(errors, [], log());
    assert.equal(ended, 0, 'no connection closed');
    assert.equal(acked.size, sent, 'every NOTIFY ACKed');
    assert.deepEqual(
      [...acked].filter(([, count]) => count !== 1),
      [],
      'each ACKed once',
    );
    assert.match(log(), /connections handed over to the new workers\b.*sent=[1-9]/);

    assert.equal(readFileSync(notifyLog, 'utf8').trim(), `--pid=${successor} MAINPID=${successor}`, 'systemd told the new main process');
    const status = await spoaUntilOk(['status', ...admin], 10_000);
    assert.equal(status.code, 0, `${status.stderr}${log()}`);
    for (const pid of newPids) assert.match(status.stdout, new RegExp(`\\b${pid}\\b`), "the successor's workers answer spoa status");
    const decisions = await spoa(['decisions', 'list', ...admin]);
    assert.match(decisions.stdout, /192\.0\.2\.7\s+deny/, 'the decision went to the successor');

    // The successor is replaced in turn (the next upgrade): it passes on the socket it was given.
    const again = await spoa(['restart', '--primary', ...admin]);
    assert.equal(again.code, 0, `${again.stdout}${again.stderr}${log()}`);
    const third = Number(/primary (\d+) serves/.exec(again.stdout)?.[1]);
    killAtEnd(third);
    for (const pid of pids()) killAtEnd(pid);
    await waitFor('the second primary leaves', () => !running(successor), 20_000);
    const lastPids = pids().filter((pid) => !oldPids.includes(pid) && !newPids.includes(pid));
    assert.equal(lastPids.length, 2, log());
    const lastStatus = await spoaUntilOk(['status', ...admin], 10_000);
    assert.equal(lastStatus.code, 0, `${lastStatus.stderr}${log()}`);
    assert.match((await spoa(['decisions', 'list', ...admin])).stdout, /192\.0\.2\.7\s+deny/);
    assert.equal(readFileSync(notifyLog, 'utf8').trim().split('\n')[1], `--pid=${third} MAINPID=${third}`);

    process.kill(third, 'SIGTERM');
    await waitFor('the last primary and its workers exit', () => ![third, ...lastPids].some(running), 15_000);
  });

  it('refuses without socket activation (and a malformed ?primary=), and the agent serves on', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'spoa-primary-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const adminPort = await freePort();
    const config = writeReputationConfig(dir, adminPort, ['decisions: { file: null }']);
    const { child, log } = await spawnSpoaWorkers(['--config', config, '-p', String(await freePort()), '-n', '2', '--host', '127.0.0.1']);
    await waitFor(
      () => `the admin API did not start: ${log()}`,
      () => (log().match(/admin API listening/g) ?? []).length === 2,
      10_000,
    );
    const restart = await spoa(['restart', '--primary', '--admin', `127.0.0.1:${adminPort}`]);
    assert.equal(restart.code, 1, `${restart.stdout}${restart.stderr}`);
    assert.match(restart.stdout, /socket activation/);
    const bad = await fetch(`http://127.0.0.1:${adminPort}/restart?primary=yes`, { method: 'POST' });
    assert.equal(bad.status, 400, 'primary is 0 or 1');
    assert.equal(child.exitCode, null, log());
    child.kill('SIGTERM');
    await waitFor('spoa exits', () => child.exitCode !== null, 10_000);
  });
});
