/**
 * The SPOP port of the real `spoa` process: who may connect (`allow-from`,
 * loopback by default, a warning otherwise), how many at once
 * (`max-connections`), and how long a connection that never asks anything
 * is kept (`idle-timeout`).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeHaproxy, freePort } from 'spop/testkit';
import { waitFor } from 'test-support';
import { allowFromFilter, isLoopbackHost } from '../../src/net/peer-filter.js';
import { spawnSpoaWorkers } from './spoa-workers.js';

const checkClientIp = [{ name: 'check-client-ip', args: [{ name: '', value: { type: 'ipv4', value: '192.0.2.1' } as const }] }];

/** A raw socket to the port, open once connected; resolves `closed` when the agent closes it. */
async function rawSocket(port: number): Promise<{ socket: Socket; closed: Promise<unknown> }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const closed = once(socket, 'close');
  await once(socket, 'connect');
  return { socket, closed };
}

async function stop(child: import('node:child_process').ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

describe('allowFromFilter and isLoopbackHost', () => {
  it('match addresses, prefixes and ranges; IPv4-mapped peers match IPv4 entries', () => {
    const allow = allowFromFilter(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32', '198.51.100.1-198.51.100.9']);
    const peer = (address: string): boolean => allow({ address, family: address.includes(':') ? 'IPv6' : 'IPv4', port: 1 });
    for (const a of ['10.1.2.3', '::ffff:10.1.2.3', '192.0.2.7', '2001:db8:1::5', '198.51.100.9']) assert.equal(peer(a), true, a);
    for (const a of ['11.0.0.1', '192.0.2.8', '2001:db9::1', '198.51.100.10', '::1', 'fe80::1%eth0', '']) assert.equal(peer(a), false, a);
    assert.equal(allowFromFilter([])({ address: '127.0.0.1', family: 'IPv4', port: 1 }), false, 'an empty list allows nobody');
  });

  it('loopback is 127/8, ::1, their mapped form and localhost', () => {
    for (const h of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1', 'localhost']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '::ffff:10.0.0.1', 'example.org']) assert.equal(isLoopbackHost(h), false, h);
  });
});

describe('spoa SPOP port', () => {
  it('listens on 127.0.0.1 by default, without warning', async () => {
    const port = await freePort();
    const spoa = await spawnSpoaWorkers(['-p', String(port), '-n', '1', '--admin-port', '0'], 1);
    assert.match(spoa.log(), /msg="agent listening" address=127\.0\.0\.1:/);
    assert.doesNotMatch(spoa.log(), /allow-from/);
    await stop(spoa.child);
  });

  it('warns at start when it listens beyond loopback without allow-from', async () => {
    const port = await freePort();
    const spoa = await spawnSpoaWorkers(['-p', String(port), '-n', '1', '--admin-port', '0', '--host', '0.0.0.0'], 1);
    // The warning and the listening line come from different places: wait for the warning rather than race it.
    const warning = /level=warn msg="SPOP port reachable from other machines .*allow-from/;
    await waitFor(
      () => `the warning in:\n${spoa.log()}`,
      () => warning.test(spoa.log()),
      5000,
    );
    await stop(spoa.child);
  });

  it('with allow-from, serves listed peers only and does not warn', async () => {
    const port = await freePort();
    const refusing = await spawnSpoaWorkers(['-p', String(port), '-n', '1', '--admin-port', '0', '--host', '0.0.0.0', '--allow-from', '192.0.2.0/24'], 1);
    assert.doesNotMatch(refusing.log(), /reachable from other machines/);
    const { closed } = await rawSocket(port);
    await closed;
    for (const deadline = Date.now() + 5000; !/connection refused: peer not allowed/.test(refusing.log()); await sleep(20)) {
      assert.ok(Date.now() < deadline, refusing.log());
    }
    await stop(refusing.child);

    const serving = await spawnSpoaWorkers(['-p', String(port), '-n', '1', '--admin-port', '0', '--host', '0.0.0.0', '--allow-from', '127.0.0.0/8'], 1);
    const client = await FakeHaproxy.connect({ port });
    assert.equal((await client.hello()).type, 'agent-hello');
    assert.equal((await client.notify(1, 1, checkClientIp)).type, 'ack');
    client.close();
    await stop(serving.child);
  });

  it('refuses connections beyond max-connections, then serves a new client once others close', async () => {
    const port = await freePort();
    const max = 4;
    const spoa = await spawnSpoaWorkers(['-p', String(port), '-n', '1', '--admin-port', '0', '--max-connections', String(max)], 1);
    const held = await Promise.all(Array.from({ length: max }, () => rawSocket(port)));
    await sleep(100); // let the agent accept them all
    const excess = await Promise.all(Array.from({ length: 3 }, () => rawSocket(port)));
    await Promise.all(excess.map((e) => e.closed)); // closed at once, well before any HELLO timeout
    for (const deadline = Date.now() + 5000; !/connection refused: max-connections reached/.test(spoa.log()); await sleep(20)) {
      assert.ok(Date.now() < deadline, spoa.log());
    }
    for (const h of held) h.socket.destroy();
    await sleep(100);
    const client = await FakeHaproxy.connect({ port });
    assert.equal((await client.hello()).type, 'agent-hello');
    assert.equal((await client.notify(1, 1, checkClientIp)).type, 'ack');
    client.close();
    await stop(spoa.child);
  });

  it('closes a connection that sent HELLO and no NOTIFY within listen.idle-timeout', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'spoa-port-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'iprep.yaml');
    writeFileSync(file, 'mode: random\nlisten: { idle-timeout: 300ms }\nadmin: { enabled: false }\n');
    const port = await freePort();
    const spoa = await spawnSpoaWorkers(['-c', file, '-p', String(port), '-n', '1'], 1);
    const idle = await FakeHaproxy.connect({ port });
    const busy = await FakeHaproxy.connect({ port });
    assert.equal((await idle.hello()).type, 'agent-hello');
    assert.equal((await busy.hello()).type, 'agent-hello');
    assert.equal((await busy.notify(1, 1, checkClientIp)).type, 'ack');
    const bye = await idle.waitFor((f) => f.type === 'agent-disconnect', 3000);
    assert.ok(bye.type === 'agent-disconnect' && bye.kv.some(([k, v]) => k === 'status-code' && 'value' in v && Number(v.value) === 2));
    await idle.closed;
    await sleep(400);
    assert.equal(busy.ended, false, 'a connection that sent a NOTIFY stays');
    assert.equal((await busy.notify(2, 1, checkClientIp)).type, 'ack');
    busy.close();
    await stop(spoa.child);
  });
});
