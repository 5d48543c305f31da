/**
 * Tests of test-support's HAProxy and process handling, against every HAProxy version, without SPOE:
 * HAProxy starts, serves, reports server health over its stats socket, closes
 * rejected connections, and leaves no process behind once stopped.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  type HaproxyHandle,
  freePort,
  haproxyVersions,
  httpGet,
  pidAlive,
  requireHaproxy,
  seedConfig,
  seedSpoeConfig,
  showStat,
  startHaproxy,
  startProcess,
  waitServerStatus,
} from 'test-support';

/** A TCP listener standing for a healthy server, so TCP health checks pass. */
async function listen(): Promise<net.Server> {
  const server = net.createServer((socket) => socket.on('error', () => {}).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function portOf(server: net.Server): number {
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

for (const version of haproxyVersions) {
  describe(`harness with HAProxy ${version}`, { timeout: 60_000 }, () => {
    let haproxy: HaproxyHandle;
    let healthy: net.Server;
    let port: number;
    let rejectPort: number;

    before(async () => {
      requireHaproxy(version); // fail, not skip, when HAProxy was not fetched
      healthy = await listen();
      port = await freePort();
      rejectPort = await freePort();
      const nobody = await freePort();
      // No `global` section and no stats socket: startHaproxy adds them.
      haproxy = await startHaproxy({
        version,
        config: `
defaults
    mode http
    timeout connect 2s
    timeout client  5s
    timeout server  5s

frontend fe
    bind 127.0.0.1:${port}
    http-request return status 200 content-type text/plain string "hello" hdr x-test yes

frontend closer
    bind 127.0.0.1:${rejectPort}
    tcp-request content reject

backend checked
    mode tcp
    server healthy 127.0.0.1:${portOf(healthy)} check inter 500ms
    server missing 127.0.0.1:${nobody} check inter 500ms
`,
      });
    });

    after(async () => {
      await haproxy?.stop();
      healthy?.close();
    });

    it('answers an HTTP request from an http-request return rule', async () => {
      const res = await httpGet(port, '/');
      assert.equal(res.rejected, false);
      if (res.rejected) return;
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-test'], 'yes');
      assert.equal(res.body, 'hello');
    });

    it('reports a closed connection as rejected, not as an error', async () => {
      const res = await httpGet(rejectPort, '/');
      assert.equal(res.rejected, true);
    });

    it('shows frontends and servers on the stats socket', async () => {
      const rows = await showStat(haproxy);
      assert.ok(rows.some((r) => r.pxname === 'fe' && r.svname === 'FRONTEND'));
      const healthyRow = await waitServerStatus(haproxy, 'checked', 'healthy', 'UP', 5_000);
      assert.match(healthyRow.check_status ?? '', /L4OK/);
      await waitServerStatus(haproxy, 'checked', 'missing', 'DOWN', 5_000);
      await assert.rejects(waitServerStatus(haproxy, 'checked', 'missing', 'UP', 300), /is "DOWN".*not "UP"/s);
    });

    it('stops HAProxy: the pid is gone and the temp dir removed', async () => {
      assert.ok(pidAlive(haproxy.pid));
      const exit = await haproxy.stop();
      assert.ok(exit.code !== null || exit.signal !== null);
      assert.equal(pidAlive(haproxy.pid), false);
      assert.equal(existsSync(haproxy.dir), false);
      await assert.rejects(httpGet(port, '/'), /ECONNREFUSED/);
    });

    it('rejects an invalid configuration with HAProxy’s own message', async () => {
      await assert.rejects(
        startHaproxy({ version, config: 'frontend fe\n    bind 127.0.0.1:1\n    no-such-keyword\n' }),
        /rejected the configuration[\s\S]*no-such-keyword/,
      );
    });

    it('loads the example configuration (seedConfig); without an agent its server is DOWN', async () => {
      const example = await startHaproxy({
        version,
        config: seedConfig({ frontendPort: await freePort(), agentPort: await freePort() }),
        files: { 'spoe-iprep.conf': seedSpoeConfig() },
      });
      try {
        const row = await waitServerStatus(example, 'iprep-backend', 'iprep-srv', 'DOWN', 5_000);
        assert.match(row.check_status ?? '', /L4CON/);
      } finally {
        await example.stop();
      }
      assert.equal(pidAlive(example.pid), false);
    });
  });
}

describe('startProcess', () => {
  it('captures output and kills by pid, with SIGKILL after the grace period', async () => {
    const child = startProcess(
      process.execPath,
      ['-e', "process.on('SIGTERM', () => console.log('ignoring SIGTERM')); console.log('ready'); setInterval(() => {}, 1000);"],
      { name: 'stubborn' },
    );
    await child.waitForOutput(/ready/);
    const exit = await child.stop(300);
    assert.equal(exit.signal, 'SIGKILL');
    assert.match(child.output(), /ignoring SIGTERM/);
    assert.equal(pidAlive(child.pid), false);
  });

  it('with processGroup, also stops what the process forked', async () => {
    // The parent dies on SIGTERM; its child ignores SIGTERM and keeps the output pipes open.
    const grandchild = "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);";
    const parent = startProcess(
      process.execPath,
      [
        '-e',
        `const c = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(grandchild)}], { stdio: 'inherit' });` +
          "console.log('child', c.pid); setInterval(() => {}, 1000);",
      ],
      { name: 'forking parent', processGroup: true },
    );
    const match = await parent.waitForOutput(/child (\d+)/);
    const childPid = Number(match[1]);
    assert.ok(pidAlive(childPid));
    await parent.stop(300);
    assert.equal(pidAlive(parent.pid), false);
    assert.equal(pidAlive(-parent.pid), false);
    assert.equal(pidAlive(childPid), false);
  });

  it('gives the output since a mark, even once older output was dropped to bound memory', async () => {
    // 300 numbered lines of 10 characters, then "done": 3005 characters through a cap of 1000.
    const script = "for (let i = 0; i < 300; i++) process.stdout.write(String(i).padStart(9, '0') + '\\n'); setTimeout(() => console.log('done'), 50)";
    const child = startProcess(process.execPath, ['-e', script], { name: 'chatty', maxOutputChars: 1000 });
    await child.waitForOutput(/done/);
    await child.exited;
    assert.equal(child.outputLength(), 3005, 'every character received is counted');
    assert.ok(child.output().length <= 1000, 'the output kept is bounded');
    const since = child.outputSince(2500); // after line 249
    assert.equal(since.length, 505);
    assert.ok(since.startsWith('000000250\n000000251\n'), since.slice(0, 30));
    assert.equal(child.outputSince(2990), '000000299\ndone\n');
    assert.throws(() => child.outputSince(1000), /dropped/, 'a mark before what was kept is an error, not a shifted answer');
  });

  it('waits for a stats socket that exists but does not accept yet (ECONNREFUSED), as HAProxy starting up', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'stats-sock-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'stats.sock');
    // A socket file nobody listens on: its process was killed before it could remove it.
    const holder = startProcess(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => console.log('listening'))`]);
    await holder.waitForOutput(/listening/);
    await holder.stop(0);
    assert.ok(existsSync(path), 'the socket file stays');
    const stats = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => socket.end('# pxname,svname,status\nbe,srv,UP\n'));
    });
    t.after(() => stats.close());
    setTimeout(() => {
      rmSync(path, { force: true });
      stats.listen(path);
    }, 300);
    const handle = { version: '3.2', statsSocket: path, output: () => '' } as unknown as HaproxyHandle;
    const row = await waitServerStatus(handle, 'be', 'srv', 'UP', 5_000);
    assert.equal(row.status, 'UP');
  });

  it('gives free ports that can be listened on', async () => {
    const port = await freePort();
    assert.ok(port > 0);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});
