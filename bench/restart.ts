/**
 * What a restart of `spoa -n 2` costs under load, through a real HAProxy: requests let through
 * without the agent's score (SPOE `timeout processing 100ms`, 8 client loops, one SPOE message per
 * request: test-support's scoredLoad).
 *
 *   node --import tsx bench/restart.ts [--versions 2.6,3.2] [--how stop-start,sigusr2,sigkill] [--rounds 1] [--spoa <bin/spoa.js>]
 *
 *   stop-start  SIGTERM to the primary, a new `spoa` started 500 ms later (what a service restart did)
 *   sigusr2     a rolling restart (SIGUSR2 to the primary), until the old workers exited
 *   sigkill     SIGKILL to one worker, until it was replaced
 *
 * Every process is started through test-support, on free loopback ports, and stopped by pid.
 */
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

function workerPids(agent: ManagedProcess): number[] {
  return [...agent.output().matchAll(/agent listening\b.*?\bpid=(\d+)/g)].map((m) => Number(m[1]));
}

async function startAgent(port: number): Promise<ManagedProcess> {
  const agent = startProcess(process.execPath, [values.spoa, '-p', String(port), '-n', '2', '--host', '127.0.0.1'], { name: 'spoa -n 2', processGroup: true });
  await waitFor('2 workers listen', () => workerPids(agent).length === 2, 20_000);
  for (const pid of workerPids(agent)) killAtEnd(pid);
  return agent;
}

async function measure(version: HaproxyVersion, how: string): Promise<string> {
  const [port, agentPort] = [await freePort(), await freePort()];
  let agent = await startAgent(agentPort);
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
        await agent.waitForOutput(/rolling restart: new workers ready/, 20_000);
        await waitFor('the old workers exit', () => old.every((pid) => !running(pid)), 10_000);
        for (const pid of workerPids(agent)) killAtEnd(pid);
      } else if (how === 'sigkill') {
        process.kill(old[0]!, 'SIGKILL');
        await waitFor('a worker replaces the one killed', () => workerPids(agent).length > old.length, 10_000);
        for (const pid of workerPids(agent)) killAtEnd(pid);
      } else throw new Error(`--how: stop-start, sigusr2 or sigkill: ${how}`);
    });
    const seconds = (performance.now() - started) / 1000;
    const marks = [
      ...agent.output().matchAll(/^time=(\S+) level=\w+ msg="(rolling restart[^\n]*|shutting down[^\n]*|worker died[^\n]*|connections handed over[^\n]*)/gm),
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
