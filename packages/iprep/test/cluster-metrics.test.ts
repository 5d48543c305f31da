/**
 * End to end: `spoa -n 2` in reputation mode, with the memory store (the primary holds it) and with
 * Redis (no store in the primary). Both workers score messages; every admin answer, whichever worker
 * gives it, reports the whole agent's figures.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from 'spop/bench';
import { FakeHaproxy } from 'spop/testkit';
import type { StatusSnapshot } from '../src/admin/index.js';
import { ownerOf, running } from './processes.js';
import { RedisServer } from './redis-server.js';

const bin = fileURLToPath(new URL('../bin/spoa.js', import.meta.url));
const pidsToStop = new Set<number>();
after(() => {
  for (const pid of pidsToStop) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

interface Answer {
  readonly status: number;
  readonly body: string;
  /** The worker that answered. */
  readonly pid: number | undefined;
}

/** GET on a new connection of its own: node:cluster hands each connection to a worker in turn. */
function get(port: number, path: string, workerPids: readonly number[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // Keep-alive so the worker keeps its end open until /proc was read; the connection is closed after.
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'keep-alive' } }, (response) => {
      const pid = ownerOf(req.socket?.localPort ?? -1, workerPids);
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        req.destroy();
        resolve({ status: response.statusCode ?? 0, body, pid });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sum of every series of `name` (with any labels) in the exposition text. */
function total(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function startSpoa(configLines: readonly string[], dir: string): Promise<{ child: ChildProcess; port: number; adminPort: number; pids: number[]; log: () => string }> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const config = join(dir, 'iprep.yaml');
  writeFileSync(
    config,
    [
      'mode: reputation',
      `cache-dir: ${JSON.stringify(join(dir, 'cache'))}`,
      'special: { enabled: false }',
      'behaviour: { enabled: false }',
      'decisions: { file: null }',
      `admin: { enabled: true, host: 127.0.0.1, port: ${adminPort} }`,
      ...configLines,
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [bin, '--config', config, '-p', String(port), '-n', '2', '--host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  pidsToStop.add(child.pid!);
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const workerPids = (): number[] => [...log.matchAll(/agent listening .*pid=(\d+)/g)].map((m) => Number(m[1]));
  for (const deadline = Date.now() + 20_000; workerPids().length < 2; await sleep(20)) {
    assert.equal(child.exitCode, null, `spoa exited: ${log}`);
    assert.ok(Date.now() < deadline, `two workers did not start: ${log}`);
  }
  const pids = workerPids();
  for (const pid of pids) pidsToStop.add(pid);
  assert.equal(new Set(pids).size, 2, log);
  return { child, port, adminPort, pids, log: () => log };
}

for (const store of ['memory', 'redis'] as const) {
  describe(`spoa -n 2 with the ${store} store: the admin API answers for both workers`, () => {
    it('every /metrics and /status.json answer reports the messages of both workers, whichever worker answers', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'spoa-cluster-metrics-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      let storeLines: string[] = [];
      if (store === 'redis') {
        const redis = await RedisServer.start();
        t.after(() => redis.destroy());
        storeLines = [`store: { type: redis, url: ${JSON.stringify(redis.url)}, prefix: metrics-test }`];
      }
      const spoa = await startSpoa(storeLines, dir);

      // Eight connections at once: node:cluster hands them to the workers in turn; /proc tells which took each.
      const clients = await Promise.all(Array.from({ length: 8 }, () => FakeHaproxy.connect({ port: spoa.port })));
      t.after(() => {
        for (const c of clients) c.close();
      });
      await Promise.all(clients.map((c) => c.hello()));
      const owners = clients.map((c) => ownerOf(c.socket.localPort ?? -1, spoa.pids));
      assert.deepEqual(new Set(owners), new Set(spoa.pids), `connections by worker: ${owners.join(',')}`);

      // Connection i sends i + 3 messages: 52 in all, split unevenly between the workers.
      const sentBy = new Map<number | undefined, number>();
      let sent = 0;
      await Promise.all(
        clients.map(async (client, i) => {
          for (let n = 0; n < i + 3; n++) {
            const ack = await client.notify(n + 1, 1, [
              { name: 'check-client-ip', args: [{ name: '', value: { type: 'ipv4', value: `198.51.100.${i * 10 + n}` } }] },
            ]);
            assert.equal(ack.type, 'ack');
          }
          sentBy.set(owners[i], (sentBy.get(owners[i]) ?? 0) + i + 3);
          sent += i + 3;
        }),
      );
      assert.equal(sent, 52);
      for (const pid of spoa.pids) assert.ok((sentBy.get(pid) ?? 0) > 0, `worker ${pid} scored messages`);

      const answeredBy = new Set<number | undefined>();
      for (let scrape = 0; scrape < 6; scrape++) {
        const metrics = await get(spoa.adminPort, '/metrics', spoa.pids);
        assert.equal(metrics.status, 200, metrics.body);
        answeredBy.add(metrics.pid);
        const where = `scrape ${scrape} answered by ${metrics.pid} (messages by worker: ${JSON.stringify([...sentBy])})`;
        assert.equal(total(metrics.body, 'iprep_messages_total'), 52, where);
        assert.equal(total(metrics.body, 'iprep_score_count'), 52, where);
        assert.equal(total(metrics.body, 'iprep_connections'), 8, where);
        assert.equal(total(metrics.body, 'iprep_workers'), 2, where);
        assert.equal(total(metrics.body, 'iprep_workers_missing'), 0, where);
        assert.equal(metrics.body.match(/^# TYPE iprep_messages_total counter$/gm)?.length, 1, 'each metric once');

        const status = await get(spoa.adminPort, '/status.json', spoa.pids);
        assert.equal(status.status, 200, status.body);
        answeredBy.add(status.pid);
        const snapshot = JSON.parse(status.body) as StatusSnapshot;
        assert.equal(snapshot.messages.total, 52, `status ${scrape} answered by ${status.pid}`);
        assert.equal(
          snapshot.actions.reduce((sum, a) => sum + a.count, 0),
          52,
        );
        assert.equal(
          snapshot.scores.reduce((sum, b) => sum + b.count, 0),
          52,
        );
        assert.deepEqual(snapshot.agent, { connections: 8, inFlight: 0 });
        assert.equal(snapshot.workers, 2);
        assert.equal(snapshot.workersMissing, 0);
        assert.equal(snapshot.store?.kind, store);
      }
      assert.deepEqual(answeredBy, new Set(spoa.pids), 'both workers answered admin requests');

      for (const c of clients) c.close();
      spoa.child.kill('SIGTERM');
      const [code] = (await once(spoa.child, 'exit')) as [number | null];
      assert.equal(code, 0, spoa.log());
      for (const pid of [spoa.child.pid!, ...spoa.pids]) {
        for (const deadline = Date.now() + 5000; running(pid) && Date.now() < deadline; ) await sleep(20);
        assert.equal(running(pid), false, `process ${pid} still running`);
      }
    });
  });
}
