/**
 * What goes wrong: failing and slow handlers, broken framing, fragmentation,
 * oversize ACKs, status codes (docs/protocol.md §2, §8, §10).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type AckFrame,
  type NotifyContext,
  FrameFlags,
  FrameType,
  Status,
  T,
  encodeFrame,
  haproxyHelloKv,
  isSendableStatus,
  setVar,
  statusMessage,
  unsetVar,
} from '../src/index.js';
import {
  type Deferred,
  capturingLogger,
  deferred,
  expectDisconnect,
  messagesPayload,
  msg,
  notifyFrame,
  rawFrame,
  sleep,
  startAgent,
  str,
  tick,
  until,
  wire,
  withTimeout,
} from './agent-helpers.js';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

describe('handler errors', () => {
  test('a throwing sync handler and a rejecting async one: ACK keeps the other actions', async (t) => {
    const log = capturingLogger();
    const h = await startAgent(t, { logger: log }, (a) =>
      a
        .message('throws', () => {
          throw new Error('sync boom');
        })
        .message('rejects', async () => {
          await tick();
          throw new Error('async boom');
        })
        .message('ok', () => setVar('txn', 'ok', 1))
        .message('ok-async', async () => setVar('txn', 'ok2', 2)),
    );
    const fake = await h.ready();
    const ack = await fake.notify(1, 1, [msg('throws'), msg('ok'), msg('rejects'), msg('ok-async')]);
    assert.deepEqual(
      ack.actions.map((x) => x.name),
      ['ok', 'ok2'],
    );
    assert.equal(h.agent.stats.handlerErrors, 2);
    const errors = log.atLeast('error');
    assert.equal(errors.length, 2);
    assert.deepEqual(errors.map((l) => l.fields?.message).sort(), ['rejects', 'throws']);
    // still usable
    const next = await fake.notify(2, 1, [msg('ok')]);
    assert.deepEqual(
      next.actions.map((x) => x.name),
      ['ok'],
    );
    assert.equal(h.agent.stats.protocolErrors, 0);
  });

  test('a failing handler on one connection does not disturb another', async (t) => {
    const h = await startAgent(t, {}, (a) =>
      a
        .message('boom', () => {
          throw new TypeError('x');
        })
        .message('ok', () => setVar('txn', 'ok', 1)),
    );
    const one = await h.ready();
    const two = await h.ready();
    const [a1, a2] = await Promise.all([one.notify(1, 1, [msg('boom')]), two.notify(1, 1, [msg('ok')])]);
    assert.deepEqual(a1.actions, []);
    assert.deepEqual(
      a2.actions.map((x) => x.name),
      ['ok'],
    );
    assert.deepEqual((await one.notify(2, 1, [msg('ok')])).actions.length, 1);
    assert.deepEqual((await two.notify(2, 1, [msg('ok')])).actions.length, 1);
    assert.equal(one.ended || two.ended, false);
  });

  test('handler timeout: ACK after ~50 ms without its actions, signal aborted, late result ignored', async (t) => {
    const late = deferred();
    let ctx: NotifyContext | undefined;
    let abortedAfter: boolean | undefined;
    let reason: unknown;
    const h = await startAgent(t, { handlerTimeout: 50 }, (a) =>
      a
        .message('slow', async (_m, c) => {
          ctx = c;
          await late.promise;
          abortedAfter = c.signal.aborted;
          reason = c.signal.reason;
          return setVar('txn', 'slow', 1);
        })
        .message('quick', () => setVar('txn', 'quick', 1)),
    );
    const fake = await h.ready();
    const t0 = performance.now();
    const ack = await fake.notify(5, 1, [msg('slow'), msg('quick')]);
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 45 && elapsed < 1000, `ACK after ${elapsed} ms`);
    assert.deepEqual(
      ack.actions.map((x) => x.name),
      ['quick'],
      "the timed-out handler's actions are left out",
    );
    assert.equal(h.agent.stats.handlerTimeouts, 1);
    assert.equal(ctx?.signal.aborted, true);
    late.resolve();
    await until(() => abortedAfter !== undefined, 'handler finished late');
    assert.equal(abortedAfter, true);
    assert.ok(reason instanceof Error && /timeout/.test(reason.message), `reason ${String(reason)}`);
    // the late result produces no second ACK, and the connection keeps working
    const next = await fake.notify(6, 1, [msg('quick')]);
    assert.equal(next.actions.length, 1);
    assert.equal(wire(fake).filter((f) => f.type === 'ack' && f.streamId === 5).length, 1);
    assert.equal(h.agent.stats.acks, 2);
    assert.equal(h.agent.stats.handlerErrors, 0);
    assert.equal(h.agent.stats.inFlight, 0);
  });

  test('a late rejection after the timeout is not counted as a handler error', async (t) => {
    const late = deferred();
    const h = await startAgent(t, { handlerTimeout: 30 }, (a) =>
      a.message('slow', async () => {
        await late.promise;
        throw new Error('too late');
      }),
    );
    const fake = await h.ready();
    const ack = await fake.notify(1, 1, [msg('slow')]);
    assert.deepEqual(ack.actions, []);
    late.resolve();
    await sleep(10);
    assert.equal(h.agent.stats.handlerErrors, 0);
    assert.equal(h.agent.stats.handlerTimeouts, 1);
  });

  test('the signal fires when the connection is lost', async (t) => {
    const started = deferred();
    const aborted: Deferred<unknown> = deferred();
    const h = await startAgent(t, { handlerTimeout: 5000 }, (a) =>
      a.message('wait', (_m, ctx) => {
        started.resolve();
        return new Promise((_, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted.resolve(ctx.signal.reason);
            reject(ctx.signal.reason);
          });
        });
      }),
    );
    const fake = await h.ready();
    fake.send(notifyFrame(1, 1, [msg('wait')]));
    await withTimeout(started.promise, 1000, 'handler started');
    fake.close();
    const reason = await withTimeout(aborted.promise, 1000, 'signal aborted after the connection was lost');
    assert.ok(reason instanceof Error);
    await until(() => h.agent.stats.inFlight === 0 && h.agent.stats.connections === 0, 'call and connection gone');
    assert.equal(h.agent.stats.acks, 0);
  });
});

describe('framing', () => {
  test('a NOTIFY written byte by byte still gets its ACK', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('m', (m) => setVar('txn', 'echo', m.value('v') as string)));
    const fake = await h.ready();
    const bytes = encodeFrame(notifyFrame(300, 2, [msg('m', { v: str('x'.repeat(20)) })]));
    for (const b of bytes) {
      fake.send(Uint8Array.of(b));
      await new Promise((r) => setImmediate(r));
    }
    const ack = await fake.waitForAck(300, 2);
    assert.equal(ack.actions.length, 1);
  });

  test('a HELLO written byte by byte, then two NOTIFY in one write', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('m', () => setVar('txn', 'x', 1)));
    const fake = await h.connect();
    const hello = encodeFrame({
      type: 'haproxy-hello',
      flags: FrameFlags.FIN,
      streamId: 0,
      frameId: 0,
      kv: haproxyHelloKv(),
    });
    for (const b of hello) {
      fake.send(Uint8Array.of(b));
      await new Promise((r) => setImmediate(r));
    }
    await fake.waitFor((f) => f.type === 'agent-hello');
    fake.send(Buffer.concat([encodeFrame(notifyFrame(1, 1, [msg('m')])), encodeFrame(notifyFrame(2, 1, [msg('m')]))]));
    await fake.waitForAck(1, 1);
    await fake.waitForAck(2, 1);
  });

  test('a frame split across writes at the length prefix and mid-payload', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('m', () => setVar('txn', 'x', 1)));
    const fake = await h.ready();
    const two = Buffer.concat([encodeFrame(notifyFrame(1, 1, [msg('m')])), encodeFrame(notifyFrame(2, 1, [msg('m')]))]);
    const cut1 = 2; // inside the first length prefix
    const cut2 = 20; // inside the second frame's prefix or body
    fake.send(two.subarray(0, cut1));
    await sleep(5);
    fake.send(two.subarray(cut1, cut2));
    await sleep(5);
    fake.send(two.subarray(cut2));
    await fake.waitForAck(1, 1);
    await fake.waitForAck(2, 1);
  });

  test('LENGTH above the negotiated max-frame-size -> 3, before the body is sent', async (t) => {
    const h = await startAgent(t);
    const fake = await h.ready({ maxFrameSize: 16380 });
    fake.send(u32(16381)); // only the prefix: the agent must not wait for 16381 bytes
    await expectDisconnect(fake, Status.FRAME_TOO_BIG);
    assert.equal(h.agent.stats.protocolErrors, 1);
  });

  test('LENGTH above our own max-frame-size before HELLO -> 3', async (t) => {
    const h = await startAgent(t, { maxFrameSize: 1000 });
    const fake = await h.connect();
    fake.send(Buffer.concat([u32(1001), Buffer.from([1, 0, 0, 0, 1, 0, 0])]));
    await expectDisconnect(fake, Status.FRAME_TOO_BIG);
  });

  test('a huge LENGTH (4 GiB - 1) -> 3', async (t) => {
    const h = await startAgent(t);
    const fake = await h.ready();
    fake.send(u32(0xffff_ffff));
    await expectDisconnect(fake, Status.FRAME_TOO_BIG);
  });

  test('the rest of a rejected frame arriving later is not a second protocol error', async (t) => {
    const log = capturingLogger();
    const h = await startAgent(t, { logger: log });
    const fake = await h.ready({ maxFrameSize: 16380 });
    fake.send(u32(20000));
    // the body keeps coming in several chunks while the agent is closing
    for (let i = 0; i < 5; i++) {
      fake.send(Buffer.alloc(1000, 0x41));
      await tick();
    }
    await expectDisconnect(fake, Status.FRAME_TOO_BIG);
    assert.equal(h.agent.stats.protocolErrors, 1);
    assert.equal(
      log.atLeast('warn').length,
      1,
      log
        .atLeast('warn')
        .map((l) => l.message)
        .join('; '),
    );
  });

  for (const length of [0, 1, 6]) {
    test(`LENGTH ${length} (< 7) -> 4, rejected on the prefix alone`, async (t) => {
      const h = await startAgent(t);
      const fake = await h.ready();
      fake.send(u32(length)); // the agent must not wait for the body
      await expectDisconnect(fake, Status.INVALID_FRAME);
    });
  }

  test('LENGTH 6 with its 6 bytes -> 4', async (t) => {
    const h = await startAgent(t);
    const fake = await h.ready();
    fake.send(Buffer.concat([u32(6), Buffer.from([3, 0, 0, 0, 1, 1])]));
    await expectDisconnect(fake, Status.INVALID_FRAME);
  });

  test('unknown data type 0x0c in a NOTIFY payload -> 4', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('m', () => assert.fail('must not run')));
    const fake = await h.ready();
    // message "m", 1 argument named "", type byte 0x0c
    fake.send(rawFrame(FrameType.NOTIFY, FrameFlags.FIN, 1, 1, Buffer.from([1, 0x6d, 1, 0, 0x0c])));
    await expectDisconnect(fake, Status.INVALID_FRAME);
  });

  test('a truncated NOTIFY payload (string longer than the frame) -> 4', async (t) => {
    const h = await startAgent(t);
    const fake = await h.ready();
    fake.send(rawFrame(FrameType.NOTIFY, FrameFlags.FIN, 1, 1, Buffer.from([5, 0x6d])));
    await expectDisconnect(fake, Status.INVALID_FRAME);
  });

  test('a bad frame on one connection leaves another connection alone', async (t) => {
    const gate = deferred();
    const h = await startAgent(t, {}, (a) =>
      a
        .message('slow', async () => {
          await gate.promise;
          return setVar('txn', 'slow', 1);
        })
        .message('m', () => setVar('txn', 'm', 1)),
    );
    const good = await h.ready();
    const bad = await h.ready();
    good.send(notifyFrame(1, 1, [msg('slow')]));
    await until(() => h.agent.stats.inFlight === 1, 'slow handler running');
    bad.send(rawFrame(FrameType.NOTIFY, FrameFlags.FIN, 1, 1, Buffer.from([1, 0x6d, 1, 0, 0x0f])));
    await expectDisconnect(bad, Status.INVALID_FRAME);
    gate.resolve();
    assert.equal((await good.waitForAck(1, 1)).actions.length, 1);
    assert.equal((await good.notify(2, 1, [msg('m')])).actions.length, 1);
    assert.equal(good.ended, false);
  });

  test('unknown frame type 200 after HELLO is skipped', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('m', () => setVar('txn', 'm', 1)));
    const fake = await h.ready();
    fake.send(rawFrame(200, FrameFlags.FIN, 1, 1, Buffer.from('whatever, even \x0c garbage')));
    fake.send(rawFrame(200, 0, 0, 0));
    const ack = await fake.notify(1, 1, [msg('m')]);
    assert.equal(ack.actions.length, 1);
    assert.equal(h.agent.stats.protocolErrors, 0);
    assert.deepEqual(
      wire(fake).map((f) => f.type),
      ['agent-hello', 'ack'],
    );
  });

  test('unknown frame type before HELLO -> 4', async (t) => {
    const h = await startAgent(t);
    const fake = await h.connect();
    fake.send(rawFrame(200, FrameFlags.FIN, 0, 0));
    await expectDisconnect(fake, Status.INVALID_FRAME);
  });

  test('an agent frame type sent by HAProxy (ACK) after HELLO is skipped like any unknown type', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('m', () => setVar('txn', 'm', 1)));
    const fake = await h.ready();
    fake.send({ type: 'ack', flags: FrameFlags.FIN, streamId: 1, frameId: 1, actions: [] });
    assert.equal((await fake.notify(1, 1, [msg('m')])).actions.length, 1);
  });
});

describe('ACK size', () => {
  // ACK LENGTH = 7 (type, flags, 1-byte ids) + 3 (action, nb-args, scope) + 2 ("v") + 1 (type) + 2 (varint n) + n
  const ackLength = (n: number): number => 15 + n;

  test('an ACK over the negotiated max-frame-size goes out empty, counted', async (t) => {
    const h = await startAgent(t, {}, (a) =>
      a.message('big', () => setVar('txn', 'v', 'x'.repeat(300))).message('edge', (m) => setVar('txn', 'v', 'y'.repeat(m.value(0) as number))),
    );
    const fake = await h.ready({ maxFrameSize: 256 });
    const ack = await fake.notify(1, 1, [msg('big')]);
    assert.deepEqual(ack.actions, []);
    assert.equal(h.agent.stats.oversizedAcks, 1);
    // exactly at the limit: sent whole; one byte over: empty
    assert.equal(ackLength(241), 256);
    const fits = await fake.notify(2, 1, [msg('edge', { '': { type: 'int64', value: 241 } })]);
    assert.equal(fits.actions.length, 1);
    const over = await fake.notify(3, 1, [msg('edge', { '': { type: 'int64', value: 242 } })]);
    assert.deepEqual(over.actions, []);
    assert.equal(h.agent.stats.oversizedAcks, 2);
    // nothing bigger than 256 ever reached the wire
    for (const f of wire(fake)) assert.ok(encodeFrame(f).length - 4 <= 256, `${f.type} of ${encodeFrame(f).length - 4} bytes`);
    assert.equal(fake.ended, false);
    assert.equal((await fake.notify(4, 1, [msg('edge', { '': { type: 'int64', value: 1 } })])).actions.length, 1);
  });

  test('the limit is the negotiated one, not ours', async (t) => {
    const h = await startAgent(t, { maxFrameSize: 300 }, (a) => a.message('big', () => setVar('txn', 'v', 'x'.repeat(290))));
    const fake = await h.ready({ maxFrameSize: 16380 });
    assert.deepEqual((await fake.notify(1, 1, [msg('big')])).actions, []);
    assert.equal(h.agent.stats.oversizedAcks, 1);
  });

  test('an oversize ACK among others in a batch does not corrupt its neighbours', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('m', (m) => setVar('txn', 'v', 'z'.repeat(m.value(0) as number))));
    const fake = await h.ready({ maxFrameSize: 256 });
    const sizes = [10, 500, 20, 1000, 30];
    fake.send(Buffer.concat(sizes.map((n, i) => encodeFrame(notifyFrame(i + 1, 1, [msg('m', { '': { type: 'int64', value: n } })])))));
    const acks = await Promise.all(sizes.map((_, i) => fake.waitForAck(i + 1, 1)));
    assert.deepEqual(
      acks.map((a) => {
        const v = a.actions[0]?.type === 'set-var' ? a.actions[0].value : undefined;
        return v?.type === 'str' ? v.value.length : 0;
      }),
      [10, 0, 20, 0, 30],
    );
  });
});

describe('variable names', () => {
  test('setVar / unsetVar reject names HAProxy would drop', () => {
    for (const bad of ['', 'a-b', 'a b', 'é', 'x;y', 'txn.a/b']) {
      assert.throws(() => setVar('txn', bad, 1), TypeError, JSON.stringify(bad));
      assert.throws(() => unsetVar('txn', bad), TypeError, JSON.stringify(bad));
    }
    for (const good of ['a', 'ip_score', 'a.b.c', 'A9_']) {
      assert.equal(setVar('txn', good, 1).name, good);
      assert.equal(unsetVar('sess', good).name, good);
    }
  });

  test('setVar rejects values SPOP cannot carry', () => {
    assert.throws(() => setVar('txn', 'f', 1.5), TypeError);
    assert.throws(() => setVar('txn', 'n', Number.NaN), TypeError);
    assert.throws(() => setVar('txn', 'u', 2 ** 53), TypeError);
    assert.deepEqual(setVar('txn', 'ok', T.str('x')).value, { type: 'str', value: 'x' });
  });
});

describe('fragmentation (HAProxy 2.6 with the option on)', () => {
  const payload = messagesPayload([msg('m', { a: str('a'.repeat(100)), b: str('b'.repeat(100)) }), msg('n')]);
  const parts = [payload.subarray(0, 50), payload.subarray(50, 120), payload.subarray(120)] as const;

  test('first NOTIFY without FIN, UNSET continuations, last with FIN -> one ACK', async (t) => {
    let seen: string | undefined;
    const h = await startAgent(t, { fragmentation: true }, (a) =>
      a
        .message('m', (m) => {
          seen = `${m.value('a')}|${m.value('b')}`;
          return setVar('txn', 'm', 1);
        })
        .message('n', () => setVar('txn', 'n', 1)),
    );
    const fake = await h.ready();
    fake.send(rawFrame(FrameType.NOTIFY, 0, 77, 3, parts[0]));
    await sleep(5);
    fake.send(rawFrame(FrameType.UNSET, 0, 77, 3, parts[1]));
    await sleep(5);
    assert.equal(h.agent.stats.notifies, 0, 'nothing dispatched before the last fragment');
    fake.send(rawFrame(FrameType.UNSET, FrameFlags.FIN, 77, 3, parts[2]));
    const ack = await fake.waitForAck(77, 3);
    assert.deepEqual(
      ack.actions.map((x) => x.name),
      ['m', 'n'],
    );
    assert.equal(seen, `${'a'.repeat(100)}|${'b'.repeat(100)}`);
    assert.equal(wire(fake).filter((f) => f.type === 'ack').length, 1);
    assert.equal(h.agent.stats.notifies, 1);
    // and an ordinary NOTIFY afterwards
    assert.deepEqual(
      (await fake.notify(78, 1, [msg('n')])).actions.map((x) => x.name),
      ['n'],
    );
  });

  test('fragments in one write, including an empty continuation', async (t) => {
    const h = await startAgent(t, { fragmentation: true }, (a) => a.message('m', () => setVar('txn', 'm', 1)));
    const fake = await h.ready();
    fake.send(
      Buffer.concat([
        encodeFrame(rawFrame(FrameType.NOTIFY, 0, 1, 1, parts[0])),
        encodeFrame(rawFrame(FrameType.UNSET, 0, 1, 1, Buffer.alloc(0))),
        encodeFrame(rawFrame(FrameType.UNSET, 0, 1, 1, parts[1])),
        encodeFrame(rawFrame(FrameType.UNSET, FrameFlags.FIN, 1, 1, parts[2])),
      ]),
    );
    assert.deepEqual(
      (await fake.waitForAck(1, 1)).actions.map((x) => x.name),
      ['m'],
    );
  });

  test('a continuation with other ids -> 11', async (t) => {
    const h = await startAgent(t, { fragmentation: true });
    const fake = await h.ready();
    fake.send(rawFrame(FrameType.NOTIFY, 0, 1, 1, parts[0]));
    fake.send(rawFrame(FrameType.UNSET, FrameFlags.FIN, 2, 1, parts[1]));
    await expectDisconnect(fake, Status.INTERLACED_FRAMES);
  });

  test('a second fragmented NOTIFY before the first ended -> 11', async (t) => {
    const h = await startAgent(t, { fragmentation: true });
    const fake = await h.ready();
    fake.send(rawFrame(FrameType.NOTIFY, 0, 1, 1, parts[0]));
    fake.send(rawFrame(FrameType.NOTIFY, 0, 2, 1, parts[0]));
    await expectDisconnect(fake, Status.INTERLACED_FRAMES);
  });

  test('a continuation with nothing to continue -> 4', async (t) => {
    const h = await startAgent(t, { fragmentation: true });
    const fake = await h.ready();
    fake.send(rawFrame(FrameType.UNSET, FrameFlags.FIN, 1, 1, parts[2]));
    await expectDisconnect(fake, Status.INVALID_FRAME);
  });

  test('ABORT on a continuation: discarded, no ACK, connection still works', async (t) => {
    const h = await startAgent(t, { fragmentation: true }, (a) => a.message('m', () => setVar('txn', 'm', 1)).message('n', () => {}));
    const fake = await h.ready();
    fake.send(rawFrame(FrameType.NOTIFY, 0, 5, 1, parts[0]));
    fake.send(rawFrame(FrameType.UNSET, FrameFlags.FIN | FrameFlags.ABORT, 5, 1));
    const ack = await fake.notify(6, 1, [msg('m')]);
    assert.equal(ack.actions.length, 1);
    await sleep(20);
    assert.deepEqual(
      wire(fake)
        .filter((f): f is AckFrame => f.type === 'ack')
        .map((f) => f.streamId),
      [6],
      'no ACK for the aborted NOTIFY',
    );
    assert.equal(h.agent.stats.notifies, 1);
    // a new fragmented NOTIFY may start afterwards
    fake.send(rawFrame(FrameType.NOTIFY, 0, 7, 1, parts[0]));
    fake.send(rawFrame(FrameType.UNSET, FrameFlags.FIN, 7, 1, Buffer.concat([parts[1], parts[2]])));
    assert.deepEqual(
      (await fake.waitForAck(7, 1)).actions.map((x) => x.name),
      ['m'],
    );
  });

  test('reassembled size above maxReassembledSize -> 3', async (t) => {
    const h = await startAgent(t, { fragmentation: true, maxReassembledSize: 100 });
    const fake = await h.ready();
    fake.send(rawFrame(FrameType.NOTIFY, 0, 1, 1, parts[0]));
    fake.send(rawFrame(FrameType.UNSET, 0, 1, 1, parts[1]));
    await expectDisconnect(fake, Status.FRAME_TOO_BIG);
  });

  test('without the option, a NOTIFY without FIN -> 10', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('m', () => assert.fail('must not run')));
    const fake = await h.ready();
    fake.send(notifyFrame(1, 1, [msg('m')], 0));
    await expectDisconnect(fake, Status.FRAGMENTATION_NOT_SUPPORTED);
  });

  test('without the option, a type-0 frame -> 4', async (t) => {
    const h = await startAgent(t);
    const fake = await h.ready();
    fake.send(rawFrame(FrameType.UNSET, FrameFlags.FIN, 1, 1, parts[0]));
    await expectDisconnect(fake, Status.INVALID_FRAME);
  });
});

describe('status codes', () => {
  test('isSendableStatus: 0..13 and 99 only', () => {
    for (let code = -5; code <= 300; code++) {
      assert.equal(isSendableStatus(code), (code >= 0 && code <= 13) || code === 99, String(code));
    }
    for (const odd of [1.5, Number.NaN, Infinity]) assert.equal(isSendableStatus(odd), false);
    for (const code of Object.values(Status)) {
      assert.ok(isSendableStatus(code));
      assert.notEqual(statusMessage(code), '');
    }
    assert.equal(statusMessage(50), statusMessage(Status.UNKNOWN));
  });

  test("an internal error (not the peer's fault) -> 99 and an error log", async (t) => {
    const log = capturingLogger();
    const h = await startAgent(t, {
      logger: log,
      onFrame: (direction, frame) => {
        if (direction === 'in' && frame.type === 'notify') throw new RangeError('bug in a debug hook');
      },
    });
    const fake = await h.ready();
    fake.send(notifyFrame(1, 1, [msg('m')]));
    await expectDisconnect(fake, Status.UNKNOWN);
    assert.equal(log.atLeast('error').length, 1);
    assert.equal(h.agent.stats.protocolErrors, 0);
  });

  test('HAPROXY-DISCONNECT with any status -> AGENT-DISCONNECT 0 and close, counted', async (t) => {
    for (const status of [0, 2, 50, 99, 1000]) {
      const h = await startAgent(t);
      const fake = await h.ready();
      fake.disconnect(status, 'bye');
      await expectDisconnect(fake, Status.NORMAL);
      assert.equal(h.agent.stats.haproxyDisconnects, 1);
      assert.equal(h.agent.stats.protocolErrors, 0);
    }
  });

  test('HAPROXY-DISCONNECT during the HELLO phase -> AGENT-DISCONNECT 0', async (t) => {
    const h = await startAgent(t);
    const fake = await h.connect();
    fake.disconnect(0, 'normal');
    await expectDisconnect(fake, Status.NORMAL);
    assert.equal(h.agent.stats.haproxyDisconnects, 1);
  });

  test("the DISCONNECT message is HAProxy's text for the code", async (t) => {
    const h = await startAgent(t);
    const fake = await h.ready();
    fake.disconnect();
    const d = await expectDisconnect(fake, Status.NORMAL);
    const message = d.kv.find(([k]) => k === 'message')?.[1];
    assert.equal(message?.type, 'str');
    assert.equal(message.value, 'normal');
  });
});
