/**
 * The agent's bounds against what a peer can do to it: connections beyond
 * maxConnections or refused by allowConnection, connections that complete
 * HELLO and never send a NOTIFY, partial frames held across connections,
 * and the warnings hostile connections provoke.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameFlags, FrameParser, FrameType, MAX_MAX_FRAME_SIZE, SpopError, Status, resolveAgentOptions } from '../src/index.js';
import type { FakeHaproxy } from '../src/testkit/index.js';
import { capturingLogger, connectTo, expectDisconnect, int, msg, rawFrame, sleep, startAgent, until, withTimeout } from './agent-helpers.js';

/** A NOTIFY prefix announcing `length` bytes, and the first `sent` bytes of its body. */
function partialFrame(length: number, sent: number): Buffer {
  const b = Buffer.alloc(4 + sent);
  b.writeUInt32BE(length, 0);
  b[4] = 3; // NOTIFY
  b[8] = 1; // FIN
  return b;
}

describe('maxConnections', () => {
  it('refuses connections beyond the limit at once, counts and logs them, and serves again once one closes', async (t) => {
    const logger = capturingLogger();
    const h = await startAgent(t, { maxConnections: 2, logger });
    const a = await h.ready();
    const b = await h.ready();
    const c = await h.connect();
    await withTimeout(c.closed, 2000, 'the third connection is closed by the agent');
    assert.equal(c.received.length, 0, 'nothing is said to a refused connection');
    assert.equal(h.agent.stats.refusedConnections, 1);
    assert.equal(h.agent.stats.connections, 2);
    assert.ok(logger.lines.some((l) => l.level === 'warn' && /max-connections/.test(l.message)));
    assert.ok((await b.notify(1, 1, [msg('m', { x: int(1) })])).type === 'ack', 'the connections within the limit are served');
    a.close();
    await until(() => h.agent.stats.connections === 1, 'the agent forgets the closed connection');
    const d = await h.ready();
    assert.equal((await d.notify(1, 1, [msg('m')])).type, 'ack');
  });

  it('is validated', () => {
    assert.throws(() => resolveAgentOptions({ maxConnections: 0 }), RangeError);
    assert.throws(() => resolveAgentOptions({ maxConnections: 1.5 }), RangeError);
  });
});

describe('allowConnection', () => {
  it('is asked about every TCP peer; refused peers are closed at once, counted and logged', async (t) => {
    const logger = capturingLogger();
    const seen: Array<{ address: string; family: string; port: number }> = [];
    let allow = false;
    const h = await startAgent(t, {
      logger,
      allowConnection: (peer) => {
        seen.push(peer);
        return allow;
      },
    });
    const refused = await h.connect();
    await withTimeout(refused.closed, 2000, 'the refused peer is closed');
    assert.equal(refused.received.length, 0);
    assert.equal(h.agent.stats.deniedConnections, 1);
    assert.equal(h.agent.stats.connectionsTotal, 0, 'a refused peer never becomes a connection');
    assert.equal(seen.length, 1);
    assert.match(seen[0]?.address ?? '', /127\.0\.0\.1$/);
    assert.ok(seen[0]?.family === 'IPv4' || seen[0]?.family === 'IPv6');
    assert.ok(Number.isInteger(seen[0]?.port) && (seen[0]?.port ?? 0) > 0, 'the peer port');
    assert.ok(logger.lines.some((l) => l.level === 'warn' && /not allowed/.test(l.message)));
    allow = true;
    const accepted = await h.ready();
    assert.equal((await accepted.notify(1, 1, [msg('m')])).type, 'ack');
  });

  it('a filter that throws refuses the peer and does not crash the agent', async (t) => {
    const h = await startAgent(t, {
      allowConnection: () => {
        throw new Error('bug in the filter');
      },
    });
    const c = await h.connect();
    await withTimeout(c.closed, 2000, 'the peer is closed');
    assert.equal(h.agent.stats.deniedConnections, 1);
  });
});

describe('idleTimeout', () => {
  it('cuts a connection that completed HELLO and sent no NOTIFY, with DISCONNECT status 2', async (t) => {
    const h = await startAgent(t, { idleTimeout: 150 });
    const idle = await h.ready();
    const started = Date.now();
    await expectDisconnect(idle, Status.TIMEOUT, 3000);
    assert.ok(Date.now() - started >= 100, 'not before the timeout');
    assert.equal(h.agent.stats.idleTimeouts, 1);
  });

  it('never cuts a connection once it sent a NOTIFY (HAProxy keeps those idle in its pool)', async (t) => {
    const h = await startAgent(t, { idleTimeout: 100 });
    const used = await h.ready();
    assert.equal((await used.notify(1, 1, [msg('m')])).type, 'ack');
    await sleep(350);
    assert.equal(used.ended, false);
    assert.equal((await used.notify(2, 1, [msg('m')])).type, 'ack');
    assert.equal(h.agent.stats.idleTimeouts, 0);
  });

  it('0 disables it', async (t) => {
    const h = await startAgent(t, { idleTimeout: 0 });
    const idle = await h.ready();
    await sleep(200);
    assert.equal(idle.ended, false);
  });
});

describe('maxBufferedBytes: partial frames across all connections', () => {
  it('a connection whose partial frame would exceed the budget gets DISCONNECT 13; the total stays under it', async (t) => {
    const maxFrameSize = 1024;
    const budget = 3 * (maxFrameSize + 4);
    const logger = capturingLogger();
    const h = await startAgent(t, { maxFrameSize, maxBufferedBytes: budget, logger });
    const holders: FakeHaproxy[] = [];
    for (let i = 0; i < 6; i++) {
      const c = await h.ready({ maxFrameSize });
      c.send(partialFrame(maxFrameSize, maxFrameSize - 1));
      holders.push(c);
      await sleep(20);
      assert.ok(h.agent.stats.partialFrameBytes <= budget, `${h.agent.stats.partialFrameBytes} bytes held, budget ${budget}`);
    }
    await until(() => holders.filter((c) => c.ended).length >= 3, 'connections beyond the budget are cut');
    for (const c of holders.filter((x) => x.ended)) await expectDisconnect(c, Status.RESOURCE_ALLOCATION);
    assert.ok(h.agent.stats.bufferLimitDisconnects >= 3);
    assert.ok(h.agent.stats.partialFrameBytes > 0 && h.agent.stats.partialFrameBytes <= budget);
    const kept = holders.filter((c) => !c.ended);
    assert.ok(kept.length >= 1);
    for (const c of kept) c.close();
    await until(() => h.agent.stats.connections === 0, 'all closed');
    assert.equal(h.agent.stats.partialFrameBytes, 0, 'closed connections give their bytes back');
  });

  it('a frame arriving in pieces within the budget is answered', async (t) => {
    const h = await startAgent(t, { maxFrameSize: 1024, maxBufferedBytes: 1028 });
    const c = await h.ready({ maxFrameSize: 1024 });
    const notify = Buffer.from([0, 0, 0, 0, 3, 0, 0, 0, 1, 5, 1]);
    notify.writeUInt32BE(notify.length - 4, 0);
    for (const byte of notify) {
      c.send(Buffer.from([byte]));
      await sleep(1);
    }
    const ack = await c.waitForAck(5, 1);
    assert.equal(ack.type, 'ack');
    await until(() => h.agent.stats.partialFrameBytes === 0, 'nothing held once the frame is delivered');
  });

  it('fragmented NOTIFY payloads count too, and are given back when they end', async (t) => {
    const maxFrameSize = 256;
    const h = await startAgent(t, { maxFrameSize, maxBufferedBytes: 500, fragmentation: true });
    const a = await h.ready({ maxFrameSize });
    const piece = Buffer.alloc(200, 0);
    a.send(rawFrame(FrameType.NOTIFY, 0, 1, 1, piece));
    a.send(rawFrame(FrameType.UNSET, 0, 1, 1, piece));
    await until(() => h.agent.stats.partialFrameBytes === 400, 'two fragments held');
    a.send(rawFrame(FrameType.UNSET, FrameFlags.ABORT, 1, 1));
    await until(() => h.agent.stats.partialFrameBytes === 0, 'an aborted NOTIFY gives its bytes back');
    for (let i = 0; i < 3; i++) a.send(rawFrame(i === 0 ? FrameType.NOTIFY : FrameType.UNSET, 0, 2, 1, piece));
    await expectDisconnect(a, Status.RESOURCE_ALLOCATION);
    await until(() => h.agent.stats.partialFrameBytes === 0, 'a closed connection gives its fragments back');
  });

  it('must hold at least one whole frame', () => {
    assert.throws(() => resolveAgentOptions({ maxFrameSize: 16380, maxBufferedBytes: 16383 }), RangeError);
    assert.equal(resolveAgentOptions({ maxFrameSize: 16380, maxBufferedBytes: 16384 }).maxBufferedBytes, 16384);
  });
});

describe('partialFrameTimeout', () => {
  it('cuts a connection whose partial frame stays incomplete, with DISCONNECT status 2, and frees its bytes', async (t) => {
    const h = await startAgent(t, { partialFrameTimeout: 150 });
    const c = await h.ready();
    assert.equal((await c.notify(1, 1, [msg('m')])).type, 'ack', 'a connection in use (the idle timeout does not apply)');
    c.send(partialFrame(1000, 500));
    await until(() => h.agent.stats.partialFrameBytes > 0, 'the partial frame is held');
    await expectDisconnect(c, Status.TIMEOUT, 3000);
    assert.equal(h.agent.stats.partialFrameTimeouts, 1);
    await until(() => h.agent.stats.partialFrameBytes === 0, 'its bytes are given back');
  });

  it('does not cut a connection whose split frames keep completing', async (t) => {
    const h = await startAgent(t, { partialFrameTimeout: 200 });
    const c = await h.ready();
    // NOTIFY frames written so that every write ends inside the next frame: a partial frame is always held.
    const frame = Buffer.from([0, 0, 0, 7, 3, 0, 0, 0, 1, 0, 1]);
    const stream = Buffer.concat(Array.from({ length: 60 }, () => frame));
    for (let i = 0; i < stream.length; i += 7) {
      c.send(stream.subarray(i, i + 7));
      await sleep(10);
    }
    await until(() => h.agent.stats.acks === 60, 'every NOTIFY answered');
    assert.equal(c.ended, false);
    assert.equal(h.agent.stats.partialFrameTimeouts, 0);
  });
});

describe('maxFrameSize bound', () => {
  it('refuses values above what HAProxy can ever announce', () => {
    assert.throws(() => resolveAgentOptions({ maxFrameSize: MAX_MAX_FRAME_SIZE + 1 }), RangeError);
    assert.throws(() => resolveAgentOptions({ maxFrameSize: 0xffff_ffff }), RangeError);
    assert.equal(resolveAgentOptions({ maxFrameSize: MAX_MAX_FRAME_SIZE }).maxFrameSize, MAX_MAX_FRAME_SIZE);
  });
});

describe('rate-limited warnings about peers', () => {
  it('logs the first lines of each kind per interval, then one summary line', async (t) => {
    const logger = capturingLogger();
    const h = await startAgent(t, { logger, peerLogLimit: { lines: 3, intervalMs: 300 } });
    const garbage = Buffer.from('GET / HTTP/1.1\r\n\r\n');
    const clients = await Promise.all(Array.from({ length: 20 }, () => connectTo(t, h.target)));
    for (const c of clients) c.send(garbage);
    await Promise.all(clients.map((c) => withTimeout(c.closed, 3000, 'garbage connection closed')));
    const errors = (): number => logger.lines.filter((l) => /protocol error/.test(l.message)).length;
    assert.equal(errors(), 3, 'three lines within the interval');
    await until(() => logger.lines.some((l) => /suppressed 17 similar/.test(l.message)), 'summary line', 2000);
    assert.equal(h.agent.stats.protocolErrors, 20, 'every one is still counted');
    // A new interval logs again.
    const late = await connectTo(t, h.target);
    late.send(garbage);
    await withTimeout(late.closed, 3000, 'closed');
    assert.equal(errors(), 4);
  });
});

describe('FrameParser budget', () => {
  it('throws RESOURCE_ALLOCATION when a partial frame would exceed the shared budget, and gives bytes back', () => {
    let used = 0;
    const budget = {
      take: (n: number): boolean => {
        if (used + n > 1100) return false;
        used += n;
        return true;
      },
      give: (n: number): void => void (used -= n),
    };
    const a = new FrameParser(1024, budget);
    const b = new FrameParser(1024, budget);
    const sink = (): void => {};
    a.push(partialFrame(1024, 1000), sink);
    assert.ok(used > 0 && used <= 1028);
    assert.throws(
      () => b.push(partialFrame(1024, 1000), sink),
      (e: unknown) => e instanceof SpopError && e.status === Status.RESOURCE_ALLOCATION,
    );
    assert.ok(used <= 1100);
    a.release();
    b.release();
    assert.equal(used, 0);
  });
});
