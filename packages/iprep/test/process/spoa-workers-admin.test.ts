/**
 * End to end: `spoa -n 2` in reputation mode. `POST /reload` through either worker reloads both (a list
 * added to the configuration then decides on connections held by each worker), and `/health` reports
 * both workers, whichever answers.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AckFrame } from 'spop';
import { FakeHaproxy, freePort } from 'spop/testkit';
import type { ClusterHealth, ClusterReloadResult, StatusSnapshot } from '../../src/admin/index.js';
import { ownerOf, running } from 'test-support/processes';
import { type WorkerAnswer, adminCall, spawnSpoaWorkers } from './spoa-workers.js';

function scoreOf(ack: AckFrame): unknown {
  for (const action of ack.actions) if (action.type === 'set-var' && action.name === 'ip_score') return 'value' in action.value ? action.value.value : null;
  return undefined;
}

describe('spoa -n 2: POST /reload and /health cover both workers', () => {
  it('a reload through either worker reloads both; /health reports both; a failed reload names each worker', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'spoa-cluster-admin-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const [port, adminPort] = [await freePort(), await freePort()];
    const listFile = join(dir, 'extra.netset');
    writeFileSync(listFile, '203.0.113.0/24\n');
    // The agent reads `iprep.yaml`, a link to a file in another directory: its watcher (on the link's
    // directory) does not see that file change, so only POST /reload applies a change.
    mkdirSync(join(dir, 'real'));
    const realConfig = join(dir, 'real', 'iprep.yaml');
    const config = join(dir, 'iprep.yaml');
    symlinkSync(realConfig, config);
    const writeConfig = (lists: readonly string[]): void =>
      writeFileSync(
        realConfig,
        [
          'mode: reputation',
          `cache-dir: ${JSON.stringify(join(dir, 'cache'))}`,
          'special: { enabled: false }',
          'behaviour: { enabled: false }',
          'decisions: { file: null }',
          `admin: { enabled: true, host: 127.0.0.1, port: ${adminPort} }`,
          lists.length === 0 ? 'lists: []' : `lists:\n${lists.map((list) => `  - ${list}`).join('\n')}`,
          '',
        ].join('\n'),
      );
    writeConfig([]);

    const { child, pids, log } = await spawnSpoaWorkers(['--config', config, '-p', String(port), '-n', '2', '--host', '127.0.0.1']);

    // Connections held by each worker: node:cluster hands them out in turn; /proc tells which took each.
    const clients = await Promise.all(Array.from({ length: 6 }, () => FakeHaproxy.connect({ port })));
    t.after(() => {
      for (const c of clients) c.close();
    });
    await Promise.all(clients.map((c) => c.hello()));
    const owners = clients.map((c) => ownerOf(c.socket.localPort ?? -1, pids));
    assert.deepEqual(new Set(owners), new Set(pids), `connections by worker: ${owners.join(',')}`);
    let sid = 0;
    const scores = (): Promise<unknown[]> =>
      Promise.all(
        clients.map(async (client) =>
          scoreOf(await client.notify(++sid, 1, [{ name: 'check-client-ip', args: [{ name: '', value: { type: 'ipv4', value: '203.0.113.5' } }] }])),
        ),
      );
    assert.deepEqual(await scores(), [100, 100, 100, 100, 100, 100], 'no list yet');

    // /health through both workers: each answer covers both.
    const healthBy = new Set<number | undefined>();
    for (let i = 0; i < 4; i++) {
      const health = await adminCall(adminPort, 'GET', '/health', pids);
      assert.equal(health.status, 200, health.body);
      healthBy.add(health.pid);
      const body = JSON.parse(health.body) as ClusterHealth;
      assert.equal(body.status, 'ok', health.body);
      assert.equal(body.workers, 2, health.body);
      assert.equal(body.workersMissing, 0);
      assert.deepEqual(new Set(body.perWorker.map((w) => w.pid)), new Set(pids));
      assert.equal(body.perWorker[0]?.pid, health.pid, 'the answering worker first');
    }
    assert.deepEqual(healthBy, new Set(pids), 'both workers answered /health');

    // The list is added to the configuration: nothing happens until a reload...
    writeConfig([`{ name: extra, path: ${JSON.stringify(listFile)}, score: 0, category: test }`]);
    await sleep(800); // past the watcher's debounce, had it seen the change
    assert.deepEqual(await scores(), [100, 100, 100, 100, 100, 100], 'no worker reloaded by itself');

    // ...then one POST /reload, to whichever worker takes the connection, reloads both.
    const reload = await adminCall(adminPort, 'POST', '/reload', pids);
    assert.equal(reload.status, 200, reload.body);
    const result = JSON.parse(reload.body) as ClusterReloadResult;
    assert.equal(result.ok, true, reload.body);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(
      result.lists.map((l) => [l.name, l.entries]),
      [['extra', 1]],
    );
    assert.equal(result.workers, 2);
    assert.deepEqual(new Set(result.perWorker.map((w) => w.pid)), new Set(pids));
    assert.ok(
      result.perWorker.every((w) => w.ok && w.errors.length === 0),
      reload.body,
    );
    assert.deepEqual(await scores(), [0, 0, 0, 0, 0, 0], `the list decides on both workers' connections (owners ${owners.join(',')})`);

    // A reload through the other worker too: POST on new connections until the other one answers.
    let other: WorkerAnswer | undefined;
    for (let i = 0; i < 6 && other === undefined; i++) {
      const answer = await adminCall(adminPort, 'POST', '/reload', pids);
      assert.equal(answer.status, 200, answer.body);
      assert.deepEqual(new Set((JSON.parse(answer.body) as ClusterReloadResult).perWorker.map((w) => w.pid)), new Set(pids));
      if (answer.pid !== reload.pid) other = answer;
    }
    assert.ok(other !== undefined, `only worker ${reload.pid} answered POST /reload`);

    // Each worker counted its start and every reload: the same number in both.
    const status = await adminCall(adminPort, 'GET', '/status.json', pids);
    const snapshot = JSON.parse(status.body) as StatusSnapshot;
    assert.equal(snapshot.workers, 2);
    assert.equal(snapshot.reloads.failed, 0);
    assert.equal(snapshot.reloads.ok % 2, 0, `reloads counted: ${snapshot.reloads.ok}`);
    assert.ok(snapshot.reloads.ok >= 6, `a start and two reloads or more in each worker: ${snapshot.reloads.ok}`);

    // A reload that fails fails in both workers, and the answer says so for each.
    writeConfig([`{ name: extra, path: ${JSON.stringify(join(dir, 'missing.netset'))}, score: 0, category: test }`]);
    const failed = await adminCall(adminPort, 'POST', '/reload', pids);
    assert.equal(failed.status, 500, failed.body);
    const failure = JSON.parse(failed.body) as ClusterReloadResult;
    assert.equal(failure.ok, false);
    assert.deepEqual(new Set(failure.perWorker.map((w) => w.pid)), new Set(pids));
    for (const worker of failure.perWorker) {
      assert.equal(worker.ok, false);
      assert.match(worker.errors.join(), /missing\.netset/);
    }
    assert.equal(failure.errors.length, 2, failed.body);
    assert.deepEqual(new Set(failure.errors.map((e) => /^worker (\d+): /.exec(e)?.[1])), new Set(pids.map(String)));
    assert.deepEqual(await scores(), [0, 0, 0, 0, 0, 0], 'the previous lists stay');

    // The failure stays in /health, through either worker, until a reload succeeds.
    const healthOf = async (): Promise<ClusterHealth & { reloadError?: string }> => {
      const health = await adminCall(adminPort, 'GET', '/health', pids);
      assert.equal(health.status, 200, health.body);
      return JSON.parse(health.body) as ClusterHealth & { reloadError?: string };
    };
    for (let i = 0; i < 4; i++) {
      const health = await healthOf();
      assert.equal(health.status, 'degraded', JSON.stringify(health));
      assert.match(health.reloadError ?? '', /missing\.netset/, JSON.stringify(health));
      for (const worker of health.perWorker) assert.match((worker as { reloadError?: string }).reloadError ?? '', /missing\.netset/);
    }
    // SIGHUP to the primary reloads every worker: a good configuration clears it, a broken one sets it.
    const healthUntil = async (status: 'ok' | 'degraded'): Promise<ClusterHealth & { reloadError?: string }> => {
      for (const deadline = Date.now() + 10_000; ; await sleep(50)) {
        const health = await healthOf();
        if (health.status === status && health.perWorker.every((w) => w.status === status)) return health;
        assert.ok(Date.now() < deadline, `not ${status}: ${JSON.stringify(health)}`);
      }
    };
    writeConfig([`{ name: extra, path: ${JSON.stringify(listFile)}, score: 0, category: test }`]);
    child.kill('SIGHUP');
    assert.equal((await healthUntil('ok')).reloadError, undefined);
    writeFileSync(realConfig, 'thresholds: { deny: 300 }\n', { flag: 'a' });
    child.kill('SIGHUP');
    assert.match((await healthUntil('degraded')).reloadError ?? '', /thresholds\.deny must be an integer from 0 to 100, got 300/);

    for (const c of clients) c.close();
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, log());
    for (const pid of [child.pid!, ...pids]) {
      for (const deadline = Date.now() + 5000; running(pid) && Date.now() < deadline; ) await sleep(20);
      assert.equal(running(pid), false, `process ${pid} still running`);
    }
  });
});
