/**
 * The real `spoa -n 2` and SIGUSR2: a rolling restart. New workers start and listen before the old
 * ones leave; the port never refuses a connection meanwhile; the connections the old workers held are
 * handed over to the new ones, with no DISCONNECT and no lost frame; the old workers exit and the new
 * ones serve.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeHaproxy, freePort } from 'spop/testkit';
import { spoaBin } from 'test-support/paths';
import { killAtEnd, running } from 'test-support/processes';
import { waitFor } from 'test-support/wait';
import { pipelinedLoad, scoreMessage } from './pipelined-load.js';
import { spawnSpoaWorkers, writeReputationConfig } from './spoa-workers.js';

/** Connects and says hello again and again until stopped: counts the attempts and the failures. */
function connectLoop(port: number): { stop(): Promise<{ attempts: number; failures: string[] }> } {
  let running = true;
  const failures: string[] = [];
  let attempts = 0;
  const loop = (async () => {
    while (running) {
      attempts++;
      try {
        const client = await FakeHaproxy.connect({ port });
        await client.hello();
        client.close();
      } catch (err) {
        failures.push(String(err));
      }
      await sleep(5);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { attempts, failures };
    },
  };
}

describe('spoa -n 2: SIGUSR2 restarts the workers without a gap', () => {
  it('starts new workers, then stops the old ones gracefully; the port answers throughout', async (t) => {
    const port = await freePort();
    const { child, pids: oldPids, log } = await spawnSpoaWorkers(['-p', String(port), '-n', '2', '--host', '127.0.0.1']);
    const held = await FakeHaproxy.connect({ port });
    t.after(() => held.close());
    await held.hello();
    const probes = connectLoop(port);
    t.after(() => probes.stop());
    await sleep(100);

    child.kill('SIGUSR2');
    await waitFor(
      () => `no rolling restart: ${log()}`,
      () => /rolling restart: new workers ready/.test(log()),
      20_000,
    );
    const listening = [...log().matchAll(/agent listening\b.*pid=(\d+)/g)].map((m) => Number(m[1]));
    const newPids = listening.filter((pid) => !oldPids.includes(pid));
    for (const pid of newPids) killAtEnd(pid);
    assert.equal(newPids.length, 2, log());
    await waitFor('the old workers exit', () => oldPids.every((pid) => !running(pid)), 10_000);
    await sleep(100);
    const { attempts, failures } = await probes.stop();

    assert.ok(attempts > 10, `the port was probed (${attempts})`);
    assert.deepEqual(failures, [], 'every connection during the restart was accepted and answered');
    // Handed over, not closed: a new worker answers on the same connection.
    const ack = await held.notify(1, 1, [scoreMessage(1)], 5000);
    assert.equal(ack.type, 'ack');
    assert.equal(held.ended, false);
    assert.equal(
      held.received.some((f) => f.type === 'agent-disconnect'),
      false,
      'no DISCONNECT on the held connection',
    );
    assert.equal(child.exitCode, null, 'the primary still runs');
    assert.ok(newPids.every(running), 'the new workers run');
    // A stop (no new generation) still closes gracefully: DISCONNECT 0 on the connection handed over.
    child.kill('SIGTERM');
    const bye = await held.waitFor((f) => f.type === 'agent-disconnect', 5000);
    assert.ok(
      bye.type === 'agent-disconnect' && bye.kv.some(([k, v]) => k === 'status-code' && 'value' in v && Number(v.value) === 0),
      'the worker said goodbye, status 0',
    );
    held.close();
    await waitFor('the primary exits', () => child.exitCode !== null, 10_000);
    assert.equal(child.exitCode, 0);
  });
});

describe('spoa -n 2: SIGUSR2 under pipelined load', () => {
  it('hands every connection over: every NOTIFY is ACKed exactly once, no DISCONNECT, no connection closed', async (t) => {
    const port = await freePort();
    const { child, pids: oldPids, log } = await spawnSpoaWorkers(['-p', String(port), '-n', '2', '--host', '127.0.0.1']);
    const load = await pipelinedLoad(port, 6, 20);
    t.after(() => load.stop());
    await waitFor('the old workers answer', () => load.sent() > 2000, 20_000);
    child.kill('SIGUSR2');
    await waitFor(
      () => `no rolling restart: ${log()}`,
      () => /rolling restart: new workers ready/.test(log()),
      20_000,
    );
    const newPids = [...log().matchAll(/agent listening\b.*pid=(\d+)/g)].map((m) => Number(m[1])).filter((pid) => !oldPids.includes(pid));
    for (const pid of newPids) killAtEnd(pid);
    await waitFor('the old workers exit', () => oldPids.every((pid) => !running(pid)), 15_000);
    const sentAtExit = load.sent();
    await waitFor('the new workers answer', () => load.sent() > sentAtExit + 2000, 20_000);
    const { sent, acked, slowest, errors, ended } = await load.stop();
    console.log(`spoa -n 2, SIGUSR2 under pipelined load: ${sent} NOTIFY, the slowest ACK after ${slowest.toFixed(0)} ms`);
    assert.deepEqual(errors, [], log());
    assert.equal(ended, 0, 'no connection closed');
    assert.equal(acked.size, sent, 'every NOTIFY ACKed');
    assert.deepEqual(
      [...acked].filter(([, count]) => count !== 1),
      [],
      'each ACKed once',
    );
    assert.match(log(), /handed over/);
    child.kill('SIGTERM');
    await waitFor('the primary exits', () => child.exitCode !== null, 10_000);
  });
});

describe('spoa -n 1 --supervise: one supervised worker, restarted without a gap', () => {
  it('runs the agent in a worker of its own, and SIGUSR2 replaces it', async (t) => {
    const port = await freePort();
    const { child, pids: oldPids, log } = await spawnSpoaWorkers(['-p', String(port), '-n', '1', '--supervise', '--host', '127.0.0.1'], 1);
    assert.notEqual(oldPids[0], child.pid, 'the agent runs in a worker, not in the primary');
    const probes = connectLoop(port);
    t.after(() => probes.stop());
    await sleep(100);
    child.kill('SIGUSR2');
    await waitFor(
      () => `no rolling restart: ${log()}`,
      () => /rolling restart: new workers ready/.test(log()),
      20_000,
    );
    const newPids = [...log().matchAll(/agent listening\b.*pid=(\d+)/g)].map((m) => Number(m[1])).filter((pid) => !oldPids.includes(pid));
    for (const pid of newPids) killAtEnd(pid);
    assert.equal(newPids.length, 1, log());
    await waitFor('the old worker exits', () => !running(oldPids[0]!), 10_000);
    const { attempts, failures } = await probes.stop();
    assert.ok(attempts > 10, `the port was probed (${attempts})`);
    assert.deepEqual(failures, []);
    child.kill('SIGTERM');
    await waitFor('the primary exits', () => child.exitCode !== null, 10_000);
    assert.equal(child.exitCode, 0);
  });
});

/** Runs `spoa <args>` (an operator command) to its end: exit code and output. */
function spoaCommand(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [spoaBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A reputation-mode configuration with the admin API on `adminPort`, in a directory removed at the end. */
function reputationConfig(t: { after(fn: () => void): void }, adminPort: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'spoa-restart-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return writeReputationConfig(dir, adminPort, ['behaviour: { enabled: false }', 'decisions: { file: null }', 'lists: []']);
}

describe('spoa restart (POST /restart): a rolling restart asked through the admin API', () => {
  it('restarts the supervised worker and says which workers serve now', async (t) => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const config = reputationConfig(t, adminPort);
    const { child, pids: oldPids, log } = await spawnSpoaWorkers(['--config', config, '-p', String(port), '-n', '1', '--supervise', '--host', '127.0.0.1'], 1);
    await waitFor('the admin API listens', () => /admin API listening/.test(log()), 10_000);
    const run = await spoaCommand(['restart', '--admin', `127.0.0.1:${adminPort}`, '--json']);
    const newPids = [...log().matchAll(/agent listening\b.*pid=(\d+)/g)].map((m) => Number(m[1])).filter((pid) => !oldPids.includes(pid));
    for (const pid of newPids) killAtEnd(pid);
    assert.equal(run.code, 0, `${run.stdout}${run.stderr}${log()}`);
    const result = JSON.parse(run.stdout) as { ok: boolean; workers: number[]; retired: number[] };
    assert.equal(result.ok, true);
    assert.deepEqual(result.retired, oldPids);
    assert.deepEqual(result.workers, newPids);
    await waitFor('the old worker exits', () => !running(oldPids[0]!), 10_000);
    child.kill('SIGTERM');
    await waitFor('the primary exits', () => child.exitCode !== null, 10_000);
  });

  it('is refused (409, exit 1) by an agent that runs in one process', async (t) => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const config = reputationConfig(t, adminPort);
    const { child, log } = await spawnSpoaWorkers(['--config', config, '-p', String(port), '-n', '1', '--host', '127.0.0.1'], 1);
    await waitFor('the admin API listens', () => /admin API listening/.test(log()), 10_000);
    const run = await spoaCommand(['restart', '--admin', `127.0.0.1:${adminPort}`]);
    assert.equal(run.code, 1, `${run.stdout}${run.stderr}`);
    assert.match(run.stderr + run.stdout, /--supervise/);
    child.kill('SIGTERM');
    await waitFor('the agent exits', () => child.exitCode !== null, 10_000);
  });
});
