/**
 * Restarts under load, through real HAProxy 2.6 and 3.2 in front of `spoa -n 2`: a rolling restart
 * (SIGUSR2) leaves no request unscored: the old workers hand their live connections over to the new
 * ones instead of closing them (closing a busy connection fails the NOTIFY HAProxy already sent on
 * it), and a worker killed with SIGKILL costs at most the requests it had in flight and is replaced.
 * A stop and start of the service leaves tens unscored (bench/restart.ts); replacing the primary
 * itself (`spoa restart --primary`, socket-activated as examples/systemd runs it: the documented path
 * for a package upgrade) hands the socket and the connections to the successor and leaves none.
 * A request is unscored when HAProxy let it through without the agent's score (no x-ip-score value):
 * the SPOE processing timeout passed, or the agent failed it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startActivated } from 'test-support/socket-activation';
import {
  type HaproxyHandle,
  type ManagedProcess,
  freePort,
  httpGet,
  scoredLoad,
  killAtEnd,
  requireHaproxy,
  running,
  seedConfig,
  seedSpoeConfig,
  spoaBin,
  startHaproxy,
  startProcess,
  waitFor,
  waitServerStatus,
} from 'test-support';

/** Concurrent client loops: at most this many requests are in flight at once. */
const CLIENTS = 8;
/**
 * Long enough that an answer slowed by the machine (forking the new workers takes the CPU of a small
 * host) is not taken for a lost one: a request lost with its connection is failed by HAProxy at once,
 * whatever this timeout.
 */
const PROCESSING_TIMEOUT_MS = 1000;

/** `spoa -n 2`: the primary, and the pids of the workers listening (from their log lines). */
async function startAgent(port: number): Promise<{ agent: ManagedProcess; workerPids(): number[] }> {
  const agent = startProcess(process.execPath, [spoaBin, '-p', String(port), '-n', '2', '--host', '127.0.0.1'], { name: 'spoa -n 2' });
  const workerPids = (): number[] => [...agent.output().matchAll(/agent listening\b.*pid=(\d+)/g)].map((m) => Number(m[1]));
  await waitFor('2 workers listen', () => workerPids().length === 2, 20_000);
  for (const pid of workerPids()) killAtEnd(pid);
  return { agent, workerPids };
}

for (const version of ['2.6', '3.2'] as const) {
  describe(`HAProxy ${version} under load, spoa -n 2 restarted`, { timeout: 120_000 }, () => {
    let haproxy: HaproxyHandle | undefined;
    let spoa: Awaited<ReturnType<typeof startAgent>> | undefined;
    let port = 0;
    before(async () => {
      requireHaproxy(version);
      const agentPort = await freePort();
      port = await freePort();
      spoa = await startAgent(agentPort);
      haproxy = await startHaproxy({
        version,
        config: seedConfig({ frontendPort: port, agentPort }),
        files: { 'spoe-iprep.conf': seedSpoeConfig({ processingTimeout: `${PROCESSING_TIMEOUT_MS}ms` }) },
        port,
      });
      await waitServerStatus(haproxy, 'iprep-backend', 'iprep-srv', 'UP', 10_000);
      // Connections to the agent opened and warm (3.2 may drop the first NOTIFY of a fresh one).
      for (let i = 0; i < 20; i++) await httpGet(port, '/warm-up');
    });
    after(async () => {
      await haproxy?.stop();
      await spoa?.agent.stop();
    });

    it('SIGUSR2: a rolling restart hands the connections over and leaves no request unscored', async () => {
      const { agent, workerPids } = spoa!;
      const oldPids = workerPids();
      const mark = agent.outputLength();
      const load = await scoredLoad(
        port,
        async () => {
          process.kill(agent.pid, 'SIGUSR2');
          await agent.waitForOutput(/rolling restart: new workers ready/, 20_000);
          await waitFor('the old workers exit', () => oldPids.every((pid) => !running(pid)), 10_000);
        },
        { clients: CLIENTS },
      );
      const newPids = workerPids().filter((pid) => !oldPids.includes(pid));
      for (const pid of newPids) killAtEnd(pid);
      console.log(`HAProxy ${version}, rolling restart: ${load.requests} requests, ${load.unscored} unscored`);
      assert.equal(newPids.length, 2, agent.outputSince(mark));
      assert.deepEqual(load.errors, []);
      assert.ok(load.requests > 200, `load ran: ${load.requests} requests`);
      const log = agent.outputSince(mark);
      assert.equal(load.unscored, 0, `${load.unscored} of ${load.requests} unscored at ${load.unscoredAt.join(' ')} ms: ${log}`);
      const handedOver = [...log.matchAll(/connections handed over to the new workers\b.*?\bsent=(\d+) closed=(\d+)/g)].map((m) => [
        Number(m[1]),
        Number(m[2]),
      ]);
      assert.equal(handedOver.length, oldPids.length, `each old worker handed its connections over: ${log}`);
      assert.ok(
        handedOver.some(([sent]) => sent! > 0),
        `connections were handed over: ${log}`,
      );
      // The new workers serve: once they alone do, every request is scored.
      const afterwards = await scoredLoad(port, async () => {}, { clients: CLIENTS });
      assert.equal(afterwards.unscored, 0, `${afterwards.unscored} of ${afterwards.requests} unscored after the restart`);
    });

    it('SIGKILL of a worker costs at most what it had in flight, and it is replaced', async () => {
      const { agent, workerPids } = spoa!;
      const victim = workerPids().filter(running)[0]!;
      const before = workerPids().length;
      const load = await scoredLoad(
        port,
        async () => {
          process.kill(victim, 'SIGKILL');
          await waitFor('a worker replaces the one killed', () => workerPids().length > before, 10_000);
        },
        { clients: CLIENTS },
      );
      for (const pid of workerPids()) killAtEnd(pid);
      console.log(`HAProxy ${version}, worker killed: ${load.requests} requests, ${load.unscored} unscored`);
      assert.match(agent.output(), /worker died: restarting it/);
      assert.deepEqual(load.errors, []);
      assert.ok(load.unscored <= CLIENTS, `${load.unscored} unscored: more than the ${CLIENTS} requests that can be in flight`);
      // ...and once replaced, every request is scored again.
      const afterwards = await scoredLoad(port, async () => {}, { clients: CLIENTS });
      assert.equal(afterwards.unscored, 0, `${afterwards.unscored} of ${afterwards.requests} unscored after the replacement`);
    });
  });
}

/**
 * The config of the socket-activated agent: reputation mode (`spoa restart --primary` talks to its
 * admin API), no special ranges (the clients are 127.0.0.x), no behaviour counters.
 */
function primaryAgentConfig(dir: string, adminPort: number): string {
  const file = join(dir, 'iprep.yaml');
  const lines = [
    'mode: reputation',
    `cache-dir: ${JSON.stringify(join(dir, 'cache'))}`,
    'special: { enabled: false }',
    'behaviour: { enabled: false }',
    'decisions: { file: null }',
    `admin: { enabled: true, host: 127.0.0.1, port: ${adminPort} }`,
  ];
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** Runs `spoa <args>` (an operator command) to its end, without blocking the load in this process. */
function spoaCommand(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [spoaBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

for (const version of ['2.6', '3.2'] as const) {
  describe(`HAProxy ${version} under load, the primary replaced (spoa restart --primary)`, { timeout: 120_000 }, () => {
    let haproxy: HaproxyHandle | undefined;
    let spoa: Awaited<ReturnType<typeof startActivated>> | undefined;
    let port = 0;
    let adminPort = 0;
    const dir = mkdtempSync(join(tmpdir(), 'spoa-e2e-primary-'));
    before(async () => {
      requireHaproxy(version);
      adminPort = await freePort();
      port = await freePort();
      spoa = await startActivated(['--config', primaryAgentConfig(dir, adminPort), '-n', '2'], 2);
      haproxy = await startHaproxy({
        version,
        config: seedConfig({ frontendPort: port, agentPort: spoa.port }),
        files: { 'spoe-iprep.conf': seedSpoeConfig({ processingTimeout: `${PROCESSING_TIMEOUT_MS}ms` }) },
        port,
      });
      await waitServerStatus(haproxy, 'iprep-backend', 'iprep-srv', 'UP', 10_000);
      for (let i = 0; i < 20; i++) await httpGet(port, '/warm-up');
    });
    after(async () => {
      await haproxy?.stop();
      for (const pid of spoa?.pids() ?? []) if (running(pid)) process.kill(pid, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    });

    it('the successor takes the socket and the live connections: no request unscored, the old primary exits', async () => {
      const { child, pids, log } = spoa!;
      const oldPids = pids();
      let successor = 0;
      const load = await scoredLoad(
        port,
        async () => {
          const restart = await spoaCommand(['restart', '--primary', '--admin', `127.0.0.1:${adminPort}`]);
          assert.equal(restart.code, 0, `${restart.output}${log()}`);
          successor = Number(/primary (\d+) serves/.exec(restart.output)?.[1]);
          killAtEnd(successor);
          await waitFor('the old primary exits', () => child.exitCode !== null, 20_000);
          await waitFor('the old workers exit', () => oldPids.every((pid) => !running(pid)), 10_000);
        },
        { clients: CLIENTS },
      );
      const newPids = pids().filter((pid) => !oldPids.includes(pid));
      for (const pid of newPids) killAtEnd(pid);
      console.log(`HAProxy ${version}, primary replaced: ${load.requests} requests, ${load.unscored} unscored`);
      assert.equal(child.exitCode, 0, log());
      assert.equal(newPids.length, 2, log());
      assert.ok(running(successor), 'the successor serves');
      assert.deepEqual(load.errors, []);
      assert.ok(load.requests > 200, `load ran: ${load.requests} requests`);
      assert.equal(load.unscored, 0, `${load.unscored} of ${load.requests} unscored at ${load.unscoredAt.join(' ')} ms: ${log()}`);
      assert.match(log(), /connections handed over to the new workers\b.*sent=[1-9]/);
      const afterwards = await scoredLoad(port, async () => {}, { clients: CLIENTS });
      assert.equal(afterwards.unscored, 0, `${afterwards.unscored} of ${afterwards.requests} unscored after the replacement`);
      process.kill(successor, 'SIGTERM');
      await waitFor('the successor and its workers exit', () => ![successor, ...newPids].some(running), 15_000);
    });
  });
}
