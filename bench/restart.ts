/**
 * What a restart of `spoa -n 2` costs under load, through a real HAProxy: requests let through
 * without the agent's score (SPOE `timeout processing 100ms`, 8 client loops, one SPOE message per
 * request: test-support's scoredLoad).
 *
 *   node --import tsx bench/restart.ts [--versions 2.6,3.2] [--how stop-start,sigusr2,sigkill,systemd-restart,primary] [--rounds 1] [--spoa <bin/spoa.js>]
 *
 *   stop-start  SIGTERM to the primary, a new `spoa` started 500 ms later (what a service restart did)
 *   sigusr2     a rolling restart (SIGUSR2 to the primary), until the old workers exited
 *   sigkill     SIGKILL to one worker, until it was replaced
 *   systemd-restart  what `systemctl restart` does with the socket unit of examples/systemd: the
 *               listening socket is held outside spoa (here a shell, as systemd would) and passed as
 *               descriptor 3 (LISTEN_FDS); SIGTERM to the primary, a new one started as soon as it
 *               exited, on the same socket (connections wait in its queue meanwhile)
 *   primary     `spoa restart --primary` (what `systemctl reload` runs with examples/systemd): the
 *               socket-activated primary starts its successor, hands it the socket and the live
 *               connections, and exits (reputation mode: the command talks to the admin API)
 *
 * Every process is started through test-support, on free loopback ports, and stopped by pid.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import {
  type HaproxyVersion,
  type ManagedProcess,
  freePort,
  httpGet,
  killAtEnd,
  running,
  scoredLoad,
  seedConfig,
  seedSpoeConfig,
  spoaBin,
  startHaproxy,
  startProcess,
  stopAll,
  waitFor,
  waitServerStatus,
} from 'test-support';

const { values } = parseArgs({
  options: {
    versions: { type: 'string', default: '2.6,3.2' },
    how: { type: 'string', default: 'stop-start,sigusr2,sigkill' },
    rounds: { type: 'string', default: '1' },
    spoa: { type: 'string', default: spoaBin },
  },
});

/** What measure() needs of the agent, however it was started. */
interface RunningAgent {
  readonly pid: number;
  output(): string;
  stop(): Promise<unknown>;
}

function workerPids(agent: RunningAgent): number[] {
  return [...agent.output().matchAll(/agent listening\b.*?\bpid=(\d+)/g)].map((m) => Number(m[1]));
}

async function startAgent(port: number): Promise<ManagedProcess> {
  const agent = startProcess(process.execPath, [values.spoa, '-p', String(port), '-n', '2', '--host', '127.0.0.1'], { name: 'spoa -n 2', processGroup: true });
  await waitFor('2 workers listen', () => workerPids(agent).length === 2, 20_000);
  for (const pid of workerPids(agent)) killAtEnd(pid);
  return agent;
}

function parentPid(pid: number): number {
  // /proc/<pid>/stat: "pid (comm) state ppid ...", comm may hold spaces: read after its last ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/**
 * `spoa -n 2` socket-activated, as systemd runs it: a shell holds the listening socket on
 * descriptor 3 and (re)starts spoa each time it exits (LISTEN_PID set to spoa's pid by exec).
 * `pid` is the current primary's (the parent of its workers).
 */
async function startActivated(port: number): Promise<RunningAgent & { primaryPid(): number }> {
  const server = createServer();
  server.listen({ host: '127.0.0.1', port });
  await once(server, 'listening');
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const loop = 'while :; do sh -c \'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"\' "$0" "$@"; sleep 0.01; done';
  const holder = spawn('/bin/sh', ['-c', loop, process.execPath, values.spoa, '-p', String(port), '-n', '2', '--host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe', fd],
    detached: true,
  });
  killAtEnd(holder.pid!);
  server.close(); // the shell holds it now, as systemd does
  let log = '';
  holder.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  holder.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const agent = {
    pid: holder.pid!,
    output: () => log,
    primaryPid: () => parentPid(workerPids(agent).at(-1)!),
    stop: async () => {
      process.kill(-holder.pid!, 'SIGKILL'); // the shell, spoa and its workers: one process group
      await waitFor('the activated agent stops', () => !running(holder.pid!), 10_000);
    },
  };
  await waitFor('2 workers listen', () => workerPids(agent).length === 2, 20_000);
  for (const pid of workerPids(agent)) killAtEnd(pid);
  return agent;
}

/**
 * `spoa -n 2` in reputation mode (its admin API on `adminPort`), socket-activated once: a shell
 * passes the socket on descriptor 3 and exec's spoa, whose successors take it from there.
 */
async function startReplaceable(port: number, adminPort: number): Promise<RunningAgent> {
  const dir = mkdtempSync(join(tmpdir(), 'spoa-bench-'));
  const config = join(dir, 'iprep.yaml');
  const settings = ['mode: reputation', 'special: { enabled: false }', 'behaviour: { enabled: false }', 'decisions: { file: null }'];
  writeFileSync(config, `${[...settings, `admin: { enabled: true, host: 127.0.0.1, port: ${adminPort} }`].join('\n')}\n`);
  const server = createServer();
  server.listen({ host: '127.0.0.1', port });
  await once(server, 'listening');
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const primary = spawn('/bin/sh', ['-c', 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"', process.execPath, values.spoa, '--config', config, '-n', '2'], {
    stdio: ['ignore', 'pipe', 'pipe', fd],
    detached: true,
  });
  killAtEnd(primary.pid!);
  server.close();
  let log = '';
  primary.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  primary.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const agent: RunningAgent = {
    pid: primary.pid!,
    output: () => log,
    stop: async () => {
      // The primary now is the parent of the latest workers (a successor after a replacement).
      const current = parentPid(workerPids(agent).at(-1)!);
      process.kill(current, 'SIGTERM');
      await waitFor('the agent stops', () => !running(current), 20_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await waitFor('2 workers listen', () => workerPids(agent).length === 2, 20_000);
  for (const pid of workerPids(agent)) killAtEnd(pid);
  return agent;
}

async function replacePrimary(adminPort: number, agent: RunningAgent): Promise<void> {
  const old = workerPids(agent);
  const primary = parentPid(old.at(-1)!);
  const command = spawn(process.execPath, [values.spoa, 'restart', '--primary', '--admin', `127.0.0.1:${adminPort}`], { stdio: 'inherit' });
  const [code] = (await once(command, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`spoa restart --primary exited with ${code}`);
  await waitFor('the old primary exits', () => !running(primary), 20_000);
  await waitFor('the old workers exit', () => old.every((pid) => !running(pid)), 20_000);
  for (const pid of workerPids(agent)) killAtEnd(pid);
  killAtEnd(parentPid(workerPids(agent).at(-1)!));
}

async function measure(version: HaproxyVersion, how: string): Promise<string> {
  const [port, agentPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const activated = how === 'systemd-restart' ? await startActivated(agentPort) : undefined;
  let agent: RunningAgent = activated ?? (how === 'primary' ? await startReplaceable(agentPort, adminPort) : await startAgent(agentPort));
  const haproxy = await startHaproxy({
    version,
    config: seedConfig({ frontendPort: port, agentPort }),
    files: { 'spoe-iprep.conf': seedSpoeConfig({ processingTimeout: '100ms' }) },
    port,
  });
  try {
    await waitServerStatus(haproxy, 'iprep-backend', 'iprep-srv', 'UP', 10_000);
    for (let i = 0; i < 20; i++) await httpGet(port, '/warm-up');
    const started = performance.now();
    const load = await scoredLoad(port, async () => {
      console.log(`  event at ${new Date().toISOString()}`);
      const old = workerPids(agent);
      if (how === 'stop-start') {
        process.kill(agent.pid, 'SIGTERM');
        await new Promise((r) => setTimeout(r, 500));
        agent = await startAgent(agentPort);
      } else if (how === 'sigusr2') {
        process.kill(agent.pid, 'SIGUSR2');
        await waitFor('the new workers are ready', () => /rolling restart: new workers ready/.test(agent.output()), 20_000);
        await waitFor('the old workers exit', () => old.every((pid) => !running(pid)), 10_000);
        for (const pid of workerPids(agent)) killAtEnd(pid);
      } else if (how === 'systemd-restart' && activated !== undefined) {
        const primary = activated.primaryPid();
        process.kill(primary, 'SIGTERM');
        await waitFor('the old primary exits', () => !running(primary), 20_000);
        await waitFor('2 new workers listen', () => workerPids(agent).filter((pid) => !old.includes(pid)).length === 2, 20_000);
        for (const pid of workerPids(agent)) killAtEnd(pid);
      } else if (how === 'primary') {
        await replacePrimary(adminPort, agent);
      } else if (how === 'sigkill') {
        process.kill(old[0]!, 'SIGKILL');
        await waitFor('a worker replaces the one killed', () => workerPids(agent).length > old.length, 10_000);
        for (const pid of workerPids(agent)) killAtEnd(pid);
      } else throw new Error(`--how: stop-start, sigusr2, sigkill, systemd-restart or primary: ${how}`);
    });
    const seconds = (performance.now() - started) / 1000;
    const marks = [
      ...agent
        .output()
        .matchAll(
          /^time=(\S+) level=\w+ msg="(rolling restart[^\n]*|replacing the primary[^\n]*|successor ready[^\n]*|the successor is the primary[^\n]*|shutting down[^\n]*|worker died[^\n]*|connections handed over[^\n]*)/gm,
        ),
    ].map((m) => `${m[1]} ${m[2]}`);
    if (load.unscored > 0) console.log(`  unscored at (ms after the event): ${load.unscoredAt.join(' ')}\n  ${marks.join('\n  ')}`);
    return `HAProxy ${version} ${how}: ${load.unscored} unscored of ${load.requests} requests (${(load.requests / seconds).toFixed(0)}/s), ${load.errors.length} errors`;
  } finally {
    await haproxy.stop();
    await agent.stop();
  }
}

for (let round = 0; round < Number(values.rounds); round++) {
  for (const version of values.versions.split(',') as HaproxyVersion[]) {
    for (const how of values.how.split(',')) console.log(await measure(version, how));
  }
}
await stopAll();
