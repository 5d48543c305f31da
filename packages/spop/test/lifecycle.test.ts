/**
 * Connection and agent lifecycle: graceful close, refused connections, Unix
 * sockets, resets, hello timeout, HAPROXY-DISCONNECT with work in flight
 * (docs/protocol.md §8, §9, §10.14).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Agent, Status, encodeFrame, setVar } from '../src/index.js';
import { FakeHaproxy } from '../src/testkit/index.js';
import {
  capturingLogger,
  connectTo,
  deferred,
  expectDisconnect,
  msg,
  notifyFrame,
  silent,
  sleep,
  startAgent,
  statusOf,
  until,
  wire,
  withTimeout,
} from './agent-helpers.js';

describe('agent.close()', () => {
  test('an in-flight NOTIFY still gets its ACK, then DISCONNECT 0, then close; close() resolves', async (t) => {
    const gate = deferred();
    const started = deferred();
    const h = await startAgent(t, {}, (a) =>
      a.message('slow', async () => {
        started.resolve();
        await gate.promise;
        return setVar('txn', 'slow', 1);
      }),
    );
    const fake = await h.ready();
    fake.send(notifyFrame(1, 1, [msg('slow')]));
    await withTimeout(started.promise, 1000, 'handler started');
    let closed = false;
    const closing = h.agent.close({ timeout: 5000 }).then(() => {
      closed = true;
    });
    await sleep(20);
    assert.equal(closed, false, 'close() waits for the in-flight NOTIFY');
    assert.deepEqual(
      wire(fake).map((f) => f.type),
      ['agent-hello'],
      'nothing sent while the handler runs',
    );
    gate.resolve();
    await withTimeout(closing, 2000, 'agent.close() resolves');
    await withTimeout(fake.closed, 1000, 'connection closed');
    const log = wire(fake);
    assert.deepEqual(
      log.map((f) => f.type),
      ['agent-hello', 'ack', 'agent-disconnect'],
    );
    const [, ack, disconnect] = log;
    assert.ok(ack?.type === 'ack' && ack.actions.length === 1);
    assert.ok(disconnect);
    assert.equal(statusOf(disconnect), Status.NORMAL);
    assert.equal(h.agent.stats.connections, 0);
  });

  test('a NOTIFY arriving while closing is not answered and does not hold close() up', async (t) => {
    const gate = deferred();
    const h = await startAgent(t, {}, (a) =>
      a.message('slow', async () => {
        await gate.promise;
        return setVar('txn', 'slow', 1);
      }),
    );
    const fake = await h.ready();
    fake.send(notifyFrame(1, 1, [msg('slow')]));
    await until(() => h.agent.stats.inFlight === 1, 'handler running');
    const closing = h.agent.close({ timeout: 5000 });
    await sleep(10);
    fake.send(notifyFrame(2, 1, [msg('slow')])); // HAProxy did not know yet
    await sleep(10);
    gate.resolve();
    const t0 = performance.now();
    await withTimeout(closing, 1500, 'agent.close() resolves');
    assert.ok(performance.now() - t0 < 1000, `close() took ${performance.now() - t0} ms after the last ACK`);
    await expectDisconnect(fake, Status.NORMAL);
    assert.deepEqual(
      wire(fake).map((f) => f.type),
      ['agent-hello', 'ack', 'agent-disconnect'],
    );
    assert.equal(h.agent.stats.notifies, 1);
  });

  test('the deadline cuts a handler that does not finish: DISCONNECT 0 without the ACK', async (t) => {
    const h = await startAgent(t, { handlerTimeout: 300 }, (a) => a.message('never', () => new Promise(() => {})));
    const fake = await h.ready();
    fake.send(notifyFrame(1, 1, [msg('never')]));
    await until(() => h.agent.stats.inFlight === 1, 'handler running');
    const t0 = performance.now();
    await withTimeout(h.agent.close({ timeout: 50 }), 2000, 'close() resolves after its deadline');
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 45 && elapsed < 1000, `closed after ${elapsed} ms`);
    await expectDisconnect(fake, Status.NORMAL);
    assert.deepEqual(
      wire(fake).map((f) => f.type),
      ['agent-hello', 'agent-disconnect'],
    );
  });

  test('idle ready connections all get DISCONNECT 0', async (t) => {
    const h = await startAgent(t);
    const fakes = await Promise.all([h.ready(), h.ready(), h.ready()]);
    await withTimeout(h.agent.close(), 2000, 'close()');
    for (const f of fakes) await expectDisconnect(f, Status.NORMAL);
    assert.equal(h.agent.stats.connections, 0);
    assert.equal(h.agent.stats.connectionsTotal, 3);
  });

  test('a connection in the middle of the HELLO phase is closed too', async (t) => {
    const h = await startAgent(t);
    const silentOne = await h.connect();
    const halfHello = await h.connect();
    halfHello.send(Buffer.from([0, 0, 0, 100, 1, 0, 0])); // a HELLO prefix, never finished
    await until(() => h.agent.stats.connections === 2, 'both accepted');
    await withTimeout(h.agent.close(), 2000, 'close()');
    await expectDisconnect(silentOne, Status.NORMAL);
    await expectDisconnect(halfHello, Status.NORMAL);
  });

  test('a health check connection being answered does not hold close() up', async (t) => {
    const h = await startAgent(t);
    const fake = await h.connect();
    await fake.hello({ healthcheck: true });
    await withTimeout(h.agent.close(), 2000, 'close()');
    await withTimeout(fake.closed, 1000, 'closed');
  });

  test('new connections are refused after close; close() is idempotent', async (t) => {
    const h = await startAgent(t);
    const first = h.agent.close();
    assert.equal(h.agent.close(), first, 'the same promise');
    await first;
    await assert.rejects(FakeHaproxy.connect(h.target), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED');
    assert.equal(h.agent.stats.connectionsTotal, 0);
  });

  test('a socket handed to handle() after close() gets DISCONNECT 0 at once', async (t) => {
    const agent = new Agent({ logger: silent() });
    await agent.close();
    const server = createServer((socket) => agent.handle(socket));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => new Promise((r) => server.close(r)));
    const fake = await connectTo(t, { port: (server.address() as { port: number }).port });
    await expectDisconnect(fake, Status.NORMAL);
  });

  test('close() on an agent that never listened resolves', async () => {
    await withTimeout(new Agent({ logger: silent() }).close(), 1000, 'close()');
  });

  test('listen() twice is refused', async (t) => {
    const h = await startAgent(t);
    await assert.rejects(h.agent.listen({ port: 0, host: '127.0.0.1' }), /already listening/);
  });
});

describe('transports', () => {
  test('listen({ path }) on a Unix socket', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'spop-agent-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'agent.sock');
    const agent = new Agent({ logger: silent() }).message('m', () => setVar('txn', 'unix', true));
    t.after(() => agent.close({ timeout: 0 }));
    assert.equal(await agent.listen({ path }), path);
    const fake = await connectTo(t, { path });
    assert.equal((await fake.hello()).type, 'agent-hello');
    const ack = await fake.notify(1, 1, [msg('m')]);
    assert.equal(ack.actions[0]?.name, 'unix');
    await agent.close();
    await withTimeout(fake.closed, 1000, 'closed');
    assert.equal(statusOf(wire(fake).at(-1) ?? assert.fail('no frame')), Status.NORMAL);
  });
});

describe('resets and timeouts', () => {
  test('ECONNRESET from HAProxy: no crash, nothing logged above debug', async (t) => {
    const log = capturingLogger();
    const h = await startAgent(t, { logger: log }, (a) =>
      a
        .message('m', () => setVar('txn', 'm', 1))
        .message('slow', async () => {
          await sleep(30);
          return setVar('txn', 's', 1);
        }),
    );
    // reset an idle connection, one right after a NOTIFY, one with a handler running
    const idle = await h.ready();
    idle.socket.resetAndDestroy();
    const busy = await h.ready();
    busy.send(notifyFrame(1, 1, [msg('m')]));
    busy.socket.resetAndDestroy();
    const slow = await h.ready();
    slow.send(notifyFrame(1, 1, [msg('slow')]));
    await until(() => h.agent.stats.inFlight === 1, 'slow handler running');
    slow.socket.resetAndDestroy();
    // and one before the HELLO
    const early = await h.connect();
    early.socket.resetAndDestroy();
    await until(() => h.agent.stats.connections === 0, 'all four connections forgotten');
    await sleep(50); // the slow handler finishes on a dead connection
    assert.equal(h.agent.stats.inFlight, 0);
    assert.deepEqual(log.atLeast('info'), []);
    // the agent still serves
    const after = await h.ready();
    assert.equal((await after.notify(2, 1, [msg('m')])).actions.length, 1);
  });

  test('a handler honouring the signal after a reset is not logged as a failure', async (t) => {
    const log = capturingLogger();
    const h = await startAgent(t, { logger: log, handlerTimeout: 5000 }, (a) =>
      a.message('wait', (_m, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))),
    );
    const fake = await h.ready();
    fake.send(notifyFrame(1, 1, [msg('wait')]));
    await until(() => h.agent.stats.inFlight === 1, 'handler running');
    fake.socket.resetAndDestroy();
    await until(() => h.agent.stats.connections === 0, 'connection gone');
    await sleep(10);
    assert.deepEqual(log.atLeast('info'), []);
    assert.equal(h.agent.stats.handlerErrors, 0);
    assert.equal(h.agent.stats.inFlight, 0);
  });

  test('a handler that never settles on a lost connection: no timeout reported for it', async (t) => {
    const log = capturingLogger();
    // the timeout must not expire before the close is seen, or it would rightly be reported
    const h = await startAgent(t, { logger: log, handlerTimeout: 300 }, (a) => a.message('never', () => new Promise(() => {})));
    const fake = await h.ready();
    fake.send(notifyFrame(1, 1, [msg('never')]));
    await until(() => h.agent.stats.inFlight === 1, 'handler running');
    fake.close();
    await until(() => h.agent.stats.connections === 0, 'connection gone');
    await sleep(350); // past the handler timeout
    assert.equal(h.agent.stats.handlerTimeouts, 0);
    assert.equal(h.agent.stats.inFlight, 0);
    assert.deepEqual(log.atLeast('warn'), []);
  });

  test('hello timeout: a silent connection gets DISCONNECT 2 and is closed', async (t) => {
    const h = await startAgent(t, { helloTimeout: 100 });
    const t0 = performance.now();
    const fake = await h.connect();
    await expectDisconnect(fake, Status.TIMEOUT);
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 90 && elapsed < 1500, `after ${elapsed} ms`);
    assert.deepEqual(
      wire(fake).map((f) => f.type),
      ['agent-disconnect'],
    );
  });

  test('hello timeout does not fire once the HELLO is done', async (t) => {
    const h = await startAgent(t, { helloTimeout: 50 }, (a) => a.message('m', () => setVar('txn', 'm', 1)));
    const fake = await h.ready();
    await sleep(120);
    assert.equal(fake.ended, false);
    assert.equal((await fake.notify(1, 1, [msg('m')])).actions.length, 1);
  });

  test('a raw TCP client that connects and leaves does not disturb the agent', async (t) => {
    const log = capturingLogger();
    const h = await startAgent(t, { logger: log });
    const s = connect(h.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    s.end(Buffer.from([0, 0])); // half a length prefix, then FIN
    await new Promise((r) => s.once('close', r));
    await until(() => h.agent.stats.connections === 0, 'connection gone');
    assert.deepEqual(log.atLeast('warn'), []);
  });
});

describe('closing promptly', () => {
  // Once the agent has ended its side, HAProxy's FIN must be seen at once even
  // if a few more bytes came first; otherwise the socket lingers until the
  // agent's 2 s grace timer destroys it.
  const closesSoon = async (h: Awaited<ReturnType<typeof startAgent>>): Promise<void> => {
    const t0 = performance.now();
    await until(() => h.agent.stats.connections === 0, 'agent side of the socket closed', 5000);
    const elapsed = performance.now() - t0;
    assert.ok(elapsed < 1000, `agent side closed after ${elapsed} ms`);
  };

  test('bytes arriving after a health check was answered', async (t) => {
    const h = await startAgent(t);
    const fake = await h.connect();
    await fake.hello({ healthcheck: true });
    fake.send(Buffer.from([0, 0])); // written before the agent's FIN is processed
    await closesSoon(h);
  });

  test('bytes arriving after the answer to a HAPROXY-DISCONNECT', async (t) => {
    const h = await startAgent(t);
    const fake = await h.ready();
    fake.disconnect();
    await fake.waitFor((f) => f.type === 'agent-disconnect');
    fake.send(Buffer.from([0, 0]));
    await closesSoon(h);
  });

  test('bytes arriving after a protocol error', async (t) => {
    const h = await startAgent(t);
    const fake = await h.ready();
    fake.send(Buffer.from([0, 0, 0, 1]));
    await fake.waitFor((f) => f.type === 'agent-disconnect');
    fake.send(Buffer.from([0, 0]));
    await closesSoon(h);
  });
});

describe('HAPROXY-DISCONNECT', () => {
  test('answered with DISCONNECT 0 and close, counted', async (t) => {
    const h = await startAgent(t);
    const fake = await h.ready();
    fake.disconnect(0, 'normal');
    await expectDisconnect(fake, Status.NORMAL);
    assert.equal(h.agent.stats.haproxyDisconnects, 1);
    await until(() => h.agent.stats.connections === 0, 'connection forgotten');
  });

  test('with a handler in flight: no ACK after the DISCONNECT', async (t) => {
    const gate = deferred();
    const h = await startAgent(t, {}, (a) =>
      a.message('slow', async () => {
        await gate.promise;
        return setVar('txn', 's', 1);
      }),
    );
    const fake = await h.ready();
    fake.send(notifyFrame(1, 1, [msg('slow')]));
    await until(() => h.agent.stats.inFlight === 1, 'handler running');
    fake.disconnect(0, 'normal');
    await expectDisconnect(fake, Status.NORMAL);
    gate.resolve();
    await sleep(10);
    assert.deepEqual(
      wire(fake).map((f) => f.type),
      ['agent-hello', 'agent-disconnect'],
    );
    assert.equal(h.agent.stats.inFlight, 0);
  });

  test('frames after the HAPROXY-DISCONNECT are ignored', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('m', () => assert.fail('must not run')));
    const fake = await h.ready();
    const disconnect = {
      type: 'haproxy-disconnect',
      flags: 1,
      streamId: 0,
      frameId: 0,
      kv: [['status-code', { type: 'uint32', value: 0 }]],
    } as const;
    fake.send(Buffer.concat([encodeFrame(disconnect), encodeFrame(notifyFrame(1, 1, [msg('m')]))]));
    await expectDisconnect(fake, Status.NORMAL);
    assert.equal(h.agent.stats.notifies, 0);
  });
});
