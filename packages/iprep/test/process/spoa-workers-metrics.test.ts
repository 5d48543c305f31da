/**
 * End to end: `spoa -n 2` in reputation mode, with the memory store (the primary holds it) and with
 * Redis (no store in the primary). Both workers score messages; every admin answer, whichever worker
 * gives it, reports the whole agent's figures.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeHaproxy, freePort } from 'spop/testkit';
import type { StatusSnapshot } from '../../src/admin/index.js';
import { ownerOf, running } from 'test-support/processes';
import { adminCall, spawnSpoaWorkers, writeReputationConfig } from './spoa-workers.js';
import { RedisServer } from 'test-support/redis';

/** Sum of every series of `name` (with any labels) in the exposition text. */
function total(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function startSpoa(
  configLines: readonly string[],
  dir: string,
  behaviour = false,
): Promise<{ child: ChildProcess; port: number; adminPort: number; pids: number[]; log: () => string }> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const config = writeReputationConfig(dir, adminPort, [`behaviour: { enabled: ${behaviour} }`, 'decisions: { file: null }', ...configLines]);
  const { child, pids, log } = await spawnSpoaWorkers(['--config', config, '-p', String(port), '-n', '2', '--host', '127.0.0.1']);
  return { child, port, adminPort, pids, log };
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
      // Behaviour on: every message is from a new source, which the doorkeepers of both workers turn away.
      const spoa = await startSpoa(storeLines, dir, true);

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
        const metrics = await adminCall(spoa.adminPort, 'GET', '/metrics', spoa.pids);
        assert.equal(metrics.status, 200, metrics.body);
        answeredBy.add(metrics.pid);
        const where = `scrape ${scrape} answered by ${metrics.pid} (messages by worker: ${JSON.stringify([...sentBy])})`;
        assert.equal(total(metrics.body, 'iprep_messages_total'), 52, where);
        assert.equal(total(metrics.body, 'iprep_score_count'), 52, where);
        assert.equal(total(metrics.body, 'iprep_connections'), 8, where);
        assert.equal(total(metrics.body, 'iprep_workers'), 2, where);
        assert.equal(total(metrics.body, 'iprep_workers_missing'), 0, where);
        assert.equal(total(metrics.body, 'iprep_behaviour_turned_away_total'), 52, where);
        assert.equal(total(metrics.body, 'iprep_behaviour_clients'), 0, where);
        assert.equal(metrics.body.match(/^# TYPE iprep_messages_total counter$/gm)?.length, 1, 'each metric once');

        const status = await adminCall(spoa.adminPort, 'GET', '/status.json', spoa.pids);
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

describe('spoa -n 2: connections refused at the SPOP port show in /metrics', () => {
  it('counts the connections beyond listen.max-connections, summed over the workers, whichever answers', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'spoa-cluster-refused-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const spoa = await startSpoa(['listen: { max-connections: 1 }'], dir);
    t.after(() => {
      if (spoa.child.exitCode === null) spoa.child.kill('SIGTERM');
    });

    // Six at once: node:cluster hands them to the workers in turn, each keeps one and refuses the rest.
    const sockets = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const socket = connect(spoa.port, '127.0.0.1');
        socket.on('error', () => {});
        let closed = false;
        socket.once('close', () => (closed = true));
        await once(socket, 'connect');
        return { socket, closed: () => closed };
      }),
    );
    t.after(() => {
      for (const s of sockets) s.socket.destroy();
    });
    // A refused socket is closed at accept; a kept one waits for its HELLO (10 s).
    for (const deadline = Date.now() + 5000; sockets.filter((s) => s.closed()).length < 4 && Date.now() < deadline; ) await sleep(20);
    await sleep(200);
    const refused = sockets.filter((s) => s.closed()).length;
    // Each worker keeps one: 4 refused, or 5 should node:cluster have given one worker all six.
    assert.ok(refused === 4 || refused === 5, `${refused} refused: ${spoa.log()}`);

    for (let scrape = 0; scrape < 2; scrape++) {
      const metrics = await adminCall(spoa.adminPort, 'GET', '/metrics', spoa.pids);
      assert.equal(metrics.status, 200, metrics.body);
      assert.match(metrics.body, /^# TYPE iprep_connections_refused_total counter$/m);
      assert.equal(total(metrics.body, 'iprep_connections_refused_total'), refused, `scrape ${scrape} answered by ${metrics.pid}`);
      assert.equal(total(metrics.body, 'iprep_connections_total'), 6 - refused, 'the connections the workers kept');
      assert.equal(total(metrics.body, 'iprep_connections_denied_total'), 0);
      assert.equal(total(metrics.body, 'iprep_connections'), 6 - refused);
    }

    for (const s of sockets) s.socket.destroy();
    spoa.child.kill('SIGTERM');
    const [code] = (await once(spoa.child, 'exit')) as [number | null];
    assert.equal(code, 0, spoa.log());
  });
});
