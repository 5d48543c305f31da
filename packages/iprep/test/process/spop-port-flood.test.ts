/**
 * The SPOP port under a flood at real size: 15,000 connections that each send a HELLO and
 * then nothing (what exhausted the agent's file descriptors before max-connections: new
 * clients, HAProxy among them, were then refused silently). The test process shares the
 * machine's limit of open files with the agent, hence 15,000 rather than 20,000.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FrameFlags, encodeFrame, haproxyHelloKv } from 'spop';
import { FakeHaproxy, freePort } from 'spop/testkit';
import { spawnSpoaWorkers } from './spoa-workers.js';

const FLOOD = 15_000;
const MAX_CONNECTIONS = 1000; // the default
const checkClientIp = [{ name: 'check-client-ip', args: [{ name: '', value: { type: 'ipv4', value: '192.0.2.1' } as const }] }];

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !check(); await sleep(50)) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
  }
}

describe('the SPOP port flooded with idle connections', () => {
  it('holds at most max-connections, says so in a bounded number of lines, cuts the idle ones, then serves HAProxy', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'spoa-flood-'));
    const sockets: Socket[] = [];
    t.after(() => {
      for (const socket of sockets) socket.destroy();
      rmSync(dir, { recursive: true, force: true });
    });
    const file = join(dir, 'iprep.yaml');
    writeFileSync(file, 'mode: random\nlisten: { idle-timeout: 2s }\nadmin: { enabled: false }\n');
    const port = await freePort();
    const spoa = await spawnSpoaWorkers(['-c', file, '-p', String(port), '-n', '1'], 1);
    const pid = spoa.child.pid as number;

    const hello = encodeFrame({ type: 'haproxy-hello', flags: FrameFlags.FIN, streamId: 0, frameId: 0, kv: haproxyHelloKv() });
    let closed = 0;
    for (let opened = 0; opened < FLOOD; ) {
      const batch = Math.min(500, FLOOD - opened);
      await Promise.all(
        Array.from({ length: batch }, () => {
          const socket = connect(port, '127.0.0.1');
          sockets.push(socket);
          socket.on('error', () => {});
          socket.on('data', () => {}); // the AGENT-HELLO, then the DISCONNECT
          socket.on('close', () => closed++);
          return new Promise<void>((resolve) => {
            socket.once('connect', () => {
              socket.write(hello);
              resolve();
            });
            socket.once('close', () => resolve());
          });
        }),
      );
      opened += batch;
    }

    // Every connection beyond the limit is closed at once, long before the idle timeout ends any other.
    await until(`${FLOOD - MAX_CONNECTIONS} refusals`, () => closed >= FLOOD - MAX_CONNECTIONS, 15_000);
    const descriptors = readdirSync(`/proc/${pid}/fd`).length;
    assert.ok(descriptors < MAX_CONNECTIONS + 100, `the agent holds ${descriptors} file descriptors`);
    const refusedLines = spoa
      .log()
      .split('\n')
      .filter((line) => /max-connections reached/.test(line));
    assert.ok(refusedLines.length > 0 && refusedLines.length <= 20, `${refusedLines.length} lines about refused connections`);
    await until('the summary of the lines left out', () => /suppressed \d+ similar/.test(spoa.log()), 15_000);

    // The connections it kept sent a HELLO and no NOTIFY: cut after listen.idle-timeout, so HAProxy gets in again.
    await until('every connection closed', () => closed === FLOOD, 15_000);
    const haproxy = await FakeHaproxy.connect({ port });
    assert.equal((await haproxy.hello()).type, 'agent-hello');
    assert.equal((await haproxy.notify(1, 1, checkClientIp)).type, 'ack');
    haproxy.close();
    spoa.child.kill('SIGTERM');
  });
});
