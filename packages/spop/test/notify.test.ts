/**
 * NOTIFY -> ACK: id rules, message order, handler results, every typed value
 * through setVar, scopes; then pipelining, back-pressure and ACK batching
 * (docs/protocol.md §5, §7, §10.3).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { type Socket, createServer } from 'node:net';
import { describe, test } from 'node:test';
import {
  type AckFrame,
  type Action,
  type FrameId,
  type NotifyContext,
  type VarScope,
  Agent,
  FrameFlags,
  Message,
  T,
  decodeFrame,
  encodeFrame,
  haproxyHelloKv,
  preEncode,
  setVar,
  unsetVar,
} from '../src/index.js';
import {
  type Deferred,
  connectTo,
  deferred,
  int,
  msg,
  notifyFrame,
  plain,
  silent,
  sleep,
  startAgent,
  str,
  tick,
  until,
  wire,
  withTimeout,
} from './agent-helpers.js';

const ackIds = (f: AckFrame): string => `${f.streamId}/${f.frameId}`;

describe('ids', () => {
  const cases: Array<[string, FrameId, FrameId]> = [
    ['stream-id 0 (HAProxy 2.6 first request)', 0, 1],
    ['frame-id 2 (a response event)', 7, 2],
    ['stream-id 2^32 + 5', 2 ** 32 + 5, 1],
    ['stream-id 2^53 - 1', Number.MAX_SAFE_INTEGER, 3],
    ['bigint ids above 2^53', 2n ** 60n + 12345n, 2n ** 63n + 1n],
    ['the largest ids', 2n ** 64n - 1n, 2n ** 64n - 1n],
    ['3.x odd stream ids, frame-id 1', 1, 1],
  ];
  for (const [name, sid, fid] of cases) {
    test(`ACK copies the ids: ${name}`, async (t) => {
      let seen: [FrameId, FrameId] | undefined;
      const h = await startAgent(t, {}, (a) =>
        a.message('m', (_m, ctx) => {
          seen = [ctx.streamId, ctx.frameId];
          return setVar('txn', 'x', 1);
        }),
      );
      const fake = await h.ready();
      const ack = await fake.notify(sid, fid, [msg('m')]);
      assert.equal(ack.streamId, sid);
      assert.equal(ack.frameId, fid);
      assert.equal(ack.flags, FrameFlags.FIN);
      assert.equal(ack.actions.length, 1);
      assert.deepEqual(seen, [sid, fid], 'the handler sees the same ids');
    });
  }

  test('the same stream with frame-ids 1 then 2 gets two distinct ACKs', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('m', (m) => setVar('txn', 'ev', m.value('ev') as string)));
    const fake = await h.ready();
    const a1 = await fake.notify(9, 1, [msg('m', { ev: str('req') })]);
    const a2 = await fake.notify(9, 2, [msg('m', { ev: str('res') })]);
    assert.equal(plain((a1.actions[0] as Action & { type: 'set-var' }).value).value, 'req');
    assert.equal(plain((a2.actions[0] as Action & { type: 'set-var' }).value).value, 'res');
    assert.equal(h.agent.stats.notifies, 2);
    assert.equal(h.agent.stats.acks, 2);
  });
});

describe('messages and handler results', () => {
  test('several messages in one NOTIFY -> actions in message order, whatever finishes first', async (t) => {
    const h = await startAgent(t, {}, (a) =>
      a
        .message('slow', async () => {
          await new Promise((r) => setTimeout(r, 20));
          return setVar('txn', 'a', 1);
        })
        .message('sync', () => [setVar('txn', 'b1', 2), setVar('txn', 'b2', 3)])
        .message('fast', async () => setVar('txn', 'c', 4)),
    );
    const fake = await h.ready();
    const ack = await fake.notify(1, 1, [msg('slow'), msg('sync'), msg('fast'), msg('slow')]);
    assert.deepEqual(
      ack.actions.map((x) => x.name),
      ['a', 'b1', 'b2', 'c', 'a'],
    );
  });

  test('the handler gets the message name and its arguments', async (t) => {
    let got: Message | undefined;
    const h = await startAgent(t, {}, (a) =>
      a.message('check', (m) => {
        got = m;
      }),
    );
    const fake = await h.ready();
    await fake.notify(1, 1, [
      {
        name: 'check',
        args: [
          { name: '', value: { type: 'ipv4', value: '192.0.2.7' } },
          { name: 'path', value: str('/x') },
        ],
      },
    ]);
    assert.ok(got instanceof Message);
    assert.equal(got.name, 'check');
    assert.equal(got.value(0), '192.0.2.7');
    assert.equal(got.value('path'), '/x');
    assert.equal(got.value('nope'), undefined);
  });

  test('unknown message -> empty ACK, counted', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('known', () => setVar('txn', 'k', true)));
    const fake = await h.ready();
    const empty = await fake.notify(1, 1, [msg('unknown')]);
    assert.deepEqual(empty.actions, []);
    assert.equal(h.agent.stats.unknownMessages, 1);
    const mixed = await fake.notify(2, 1, [msg('other'), msg('known'), msg('third')]);
    assert.deepEqual(
      mixed.actions.map((x) => x.name),
      ['k'],
    );
    assert.equal(h.agent.stats.unknownMessages, 3);
  });

  test("a pre-encoded list of actions goes into the ACK whole, in order, after the other messages' actions", async (t) => {
    const verdict = preEncode([setVar('sess', 'ip_score', T.uint32(70)), setVar('sess', 'action', 'deny'), unsetVar('sess', 'category')]);
    const h = await startAgent(t, {}, (a) => a.message('first', () => setVar('txn', 'before', 1)).message('check', () => verdict));
    const fake = await h.ready();
    const ack = await fake.notify(1, 1, [msg('first'), msg('check')]);
    assert.deepEqual(
      ack.actions.map((x) => `${x.type} ${x.scope}.${x.name}${x.type === 'set-var' ? `=${String(x.value.type === 'null' ? null : x.value.value)}` : ''}`),
      ['set-var txn.before=1', 'set-var sess.ip_score=70', 'set-var sess.action=deny', 'unset-var sess.category'],
    );
  });

  test("a handler may keep its context past a sync return: each keeps its own NOTIFY's ids, connection and signal", async (t) => {
    const kept: NotifyContext[] = [];
    const h = await startAgent(t, {}, (a) =>
      a.message('m', (_m, ctx) => {
        kept.push(ctx);
        return setVar('txn', 'n', kept.length);
      }),
    );
    const fake = await h.ready();
    await fake.notify(5, 1, [msg('m')]);
    await fake.notify(6, 2, [msg('m')]);
    await fake.notify(7, 3, [msg('m'), msg('m')]);
    await fake.notify(8, 4, [msg('m')]);
    assert.deepEqual(
      kept.map((c) => `${c.streamId}/${c.frameId}`),
      ['5/1', '6/2', '7/3', '7/3', '8/4'],
    );
    assert.equal(new Set(kept).size, 4, 'one context per NOTIFY, shared by its messages');
    assert.ok(kept.every((c) => c.connection === kept[0]?.connection && !c.signal.aborted));
  });

  test('handlers are found by name whatever the order of messages; one registered later answers from then on', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('a', () => setVar('txn', 'a', 1)).message('b', () => setVar('txn', 'b', 2)));
    const fake = await h.ready();
    const names: string[] = [];
    for (const [i, batch] of [['a'], ['b'], ['b'], ['a'], ['a', 'b', 'a'], ['late'], ['b']].entries()) {
      const ack = await fake.notify(
        i + 1,
        1,
        batch.map((n) => msg(n)),
      );
      names.push(ack.actions.map((x) => x.name).join(','));
    }
    assert.deepEqual(names, ['a', 'b', 'b', 'a', 'a,b,a', '', 'b']);
    h.agent.message('late', () => setVar('txn', 'late', 3));
    const late = await fake.notify(20, 1, [msg('late')]);
    assert.deepEqual(
      late.actions.map((x) => x.name),
      ['late'],
    );
    assert.equal(h.agent.stats.unknownMessages, 1);
  });

  test('a thenable that calls back at once (not a real Promise): one ACK per NOTIFY, with every message answered, no timeout', async (t) => {
    // Outside the handler type (a Promise), but a JavaScript caller may return any thenable.
    const atOnce = (action: Action): Promise<Action> =>
      ({
        // biome-ignore lint/suspicious/noThenProperty: a thenable is what is tested
        then: <R>(resolve?: ((value: Action) => R | PromiseLike<R>) | null) => {
          void resolve?.(action);
          return undefined as unknown as PromiseLike<R>;
        },
      }) as unknown as Promise<Action>;
    const h = await startAgent(t, { handlerTimeout: 40 }, (a) =>
      a.message('now', () => atOnce(setVar('txn', 'now', 1))).message('sync', () => setVar('txn', 'sync', 2)),
    );
    const fake = await h.ready();
    const one = await fake.notify(1, 1, [msg('now')]);
    const two = await fake.notify(2, 1, [msg('now'), msg('sync'), msg('now')]);
    assert.deepEqual(
      one.actions.map((x) => x.name),
      ['now'],
    );
    assert.deepEqual(
      two.actions.map((x) => x.name),
      ['now', 'sync', 'now'],
    );
    await sleep(100); // past the handler timeout
    assert.equal(wire(fake).filter((f) => f.type === 'ack').length, 2, 'one ACK each');
    assert.equal(h.agent.stats.handlerTimeouts, 0);
    assert.equal(h.agent.stats.acks, 2);
    assert.equal(h.agent.stats.inFlight, 0);
  });

  test('a NOTIFY with no message at all -> empty ACK', async (t) => {
    const h = await startAgent(t);
    const fake = await h.ready();
    const ack = await fake.notify(1, 1, []);
    assert.deepEqual(ack.actions, []);
  });

  test('sync and async handlers; one action, a list, or nothing', async (t) => {
    const h = await startAgent(t, {}, (a) =>
      a
        .message('one', () => setVar('txn', 'one', 1))
        .message('list', () => [setVar('txn', 'l1', 1), unsetVar('txn', 'l2')])
        .message('emptylist', () => [])
        .message('nothing', () => {})
        .message('null', () => null)
        .message('async-one', async () => setVar('txn', 'aone', 1))
        .message('async-list', async () => [setVar('txn', 'al1', 1), setVar('txn', 'al2', 2)])
        .message('async-nothing', async () => undefined)
        // biome-ignore lint/suspicious/noThenProperty: a thenable that is not a Promise is the case under test
        .message('thenable', () => ({ then: (ok: (v: Action) => void) => ok(setVar('txn', 'th', 1)) }) as never),
    );
    const fake = await h.ready();
    const names = async (sid: number, m: string): Promise<string[]> => (await fake.notify(sid, 1, [msg(m)])).actions.map((x) => `${x.type}:${x.name}`);
    assert.deepEqual(await names(1, 'one'), ['set-var:one']);
    assert.deepEqual(await names(2, 'list'), ['set-var:l1', 'unset-var:l2']);
    assert.deepEqual(await names(3, 'emptylist'), []);
    assert.deepEqual(await names(4, 'nothing'), []);
    assert.deepEqual(await names(5, 'null'), []);
    assert.deepEqual(await names(6, 'async-one'), ['set-var:aone']);
    assert.deepEqual(await names(7, 'async-list'), ['set-var:al1', 'set-var:al2']);
    assert.deepEqual(await names(8, 'async-nothing'), []);
    assert.deepEqual(await names(9, 'thenable'), ['set-var:th']);
    assert.equal(h.agent.stats.handlerErrors, 0);
  });

  test('the context carries the connection info', async (t) => {
    let ctx: NotifyContext | undefined;
    const h = await startAgent(t, {}, (a) =>
      a.message('m', (_m, c) => {
        ctx = c;
      }),
    );
    const fake = await h.ready({ engineId: 'e-1', maxFrameSize: 4000, capabilities: 'pipelining' });
    await fake.notify(1, 1, [msg('m')]);
    assert.ok(ctx);
    assert.equal(ctx.connection.engineId, 'e-1');
    assert.equal(ctx.connection.maxFrameSize, 4000);
    assert.deepEqual(ctx.connection.capabilities, ['pipelining']);
    assert.equal(ctx.connection.remoteAddress, '127.0.0.1');
    assert.equal(ctx.connection.remotePort, fake.socket.localPort);
    assert.equal(ctx.signal.aborted, false);
  });
});

describe('values and scopes', () => {
  const typed: Array<[string, Parameters<typeof setVar>[2], { type: string; value?: unknown }]> = [
    ['null', T.null(), { type: 'null' }],
    ['bool_t', T.bool(true), { type: 'bool', value: true }],
    ['bool_f', T.bool(false), { type: 'bool', value: false }],
    ['i32_neg', T.int32(-2147483648), { type: 'int32', value: -2147483648n }],
    ['i32_pos', T.int32(2147483647), { type: 'int32', value: 2147483647n }],
    ['u32', T.uint32(4294967295), { type: 'uint32', value: 4294967295n }],
    ['i64_num', T.int64(-1), { type: 'int64', value: -1n }],
    ['i64_min', T.int64(-(2n ** 63n)), { type: 'int64', value: -(2n ** 63n) }],
    ['i64_max', T.int64(2n ** 63n - 1n), { type: 'int64', value: 2n ** 63n - 1n }],
    ['u64_max', T.uint64(2n ** 64n - 1n), { type: 'uint64', value: 2n ** 64n - 1n }],
    ['u64_small', T.uint64(240), { type: 'uint64', value: 240n }],
    ['v4', T.ipv4('203.0.113.9'), { type: 'ipv4', value: '203.0.113.9' }],
    ['v6', T.ipv6('2001:db8::5'), { type: 'ipv6', value: '2001:db8::5' }],
    ['v6_mapped', T.ipv6('::ffff:192.0.2.1'), { type: 'ipv6', value: '::ffff:192.0.2.1' }],
    ['s', T.str('héllo ✓'), { type: 'str', value: 'héllo ✓' }],
    ['s_empty', T.str(''), { type: 'str', value: '' }],
    ['b', T.bin(Uint8Array.from([0, 1, 0xfe, 0xff])), { type: 'bin', value: '0001feff' }],
    // plain JS values: the automatic choice of wire type
    ['js_int', 42, { type: 'int64', value: 42n }],
    ['js_neg', -5, { type: 'int64', value: -5n }],
    ['js_big', 2n ** 63n, { type: 'uint64', value: 2n ** 63n }],
    ['js_bigneg', -(2n ** 40n), { type: 'int64', value: -(2n ** 40n) }],
    ['js_str', 'abc', { type: 'str', value: 'abc' }],
    ['js_true', true, { type: 'bool', value: true }],
    ['js_bytes', Buffer.from('ff00', 'hex'), { type: 'bin', value: 'ff00' }],
    ['js_null', null, { type: 'null' }],
  ];

  test('every typed value kind round-trips through setVar and the ACK', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('all', () => typed.map(([name, v]) => setVar('txn', name, v))));
    const fake = await h.ready();
    const ack = await fake.notify(1, 1, [msg('all')]);
    assert.equal(ack.actions.length, typed.length);
    ack.actions.forEach((action, i) => {
      const [name, , expected] = typed[i] as (typeof typed)[number];
      assert.equal(action.type, 'set-var');
      assert.ok(action.type === 'set-var');
      assert.equal(action.name, name);
      assert.deepEqual(plain(action.value), expected, name);
    });
  });

  test('unsetVar and all five scopes', async (t) => {
    const scopes: VarScope[] = ['proc', 'sess', 'txn', 'req', 'res'];
    const h = await startAgent(t, {}, (a) => a.message('m', () => scopes.flatMap((s) => [setVar(s, `${s}.v`, s), unsetVar(s, `${s}_u`)])));
    const fake = await h.ready();
    const ack = await fake.notify(1, 1, [msg('m')]);
    assert.deepEqual(
      ack.actions.map((x) => (x.type === 'set-var' ? [x.type, x.scope, x.name, plain(x.value)] : [x.type, x.scope, x.name])),
      scopes.flatMap((s) => [
        ['set-var', s, `${s}.v`, { type: 'str', value: s }],
        ['unset-var', s, `${s}_u`],
      ]),
    );
  });

  test('an action that cannot be encoded is dropped, the others stay', async (t) => {
    const h = await startAgent(t, {}, (a) =>
      a
        .message('bad', () => setVar('txn', 'bad', T.int32(2 ** 40)))
        .message('badip', () => setVar('txn', 'badip', T.ipv4('not an ip')))
        .message('good', () => setVar('txn', 'good', 1)),
    );
    const fake = await h.ready();
    const ack = await fake.notify(1, 1, [msg('bad'), msg('good'), msg('badip')]);
    assert.deepEqual(
      ack.actions.map((x) => x.name),
      ['good'],
    );
    assert.equal(h.agent.stats.handlerErrors, 2);
  });
});

describe('pipelining', () => {
  test('20 NOTIFY in one write, answered in completion order (reverse), each id once', async (t) => {
    const N = 20;
    const waiting = new Map<number, Deferred<void>>();
    const h = await startAgent(t, {}, (a) =>
      a.message('m', async (m) => {
        const i = m.value('i') as number;
        const d = deferred();
        waiting.set(i, d);
        await d.promise;
        return setVar('txn', 'i', i);
      }),
    );
    const fake = await h.ready();
    const bytes = Buffer.concat(Array.from({ length: N }, (_, i) => encodeFrame(notifyFrame(100 + i, 1, [msg('m', { i: int(i) })]))));
    fake.send(bytes);
    await until(() => waiting.size === N, `all ${N} handlers started`);
    assert.equal(h.agent.stats.inFlight, N);
    for (let i = N - 1; i >= 0; i--) {
      waiting.get(i)?.resolve();
      // let this ACK out before the next handler finishes
      await until(() => wire(fake).filter((f) => f.type === 'ack').length === N - i, `ACK of handler ${i}`);
    }
    const acks = wire(fake).filter((f): f is AckFrame => f.type === 'ack');
    assert.deepEqual(
      acks.map((a) => a.streamId),
      Array.from({ length: N }, (_, k) => 100 + N - 1 - k),
    );
    assert.equal(new Set(acks.map(ackIds)).size, N, 'every id answered once');
    for (const a of acks) assert.deepEqual(plain((a.actions[0] as Action & { type: 'set-var' }).value).value, BigInt(Number(a.streamId) - 100));
    assert.equal(h.agent.stats.inFlight, 0);
  });

  test('back-pressure: maxInFlight 3 -> never more than 3 handlers at once, all 10 answered', async (t) => {
    const N = 10;
    let running = 0;
    let maxRunning = 0;
    let started = 0;
    const gates: Deferred<void>[] = [];
    const h = await startAgent(t, { maxInFlight: 3, handlerTimeout: 5000 }, (a) =>
      a.message('m', async () => {
        running++;
        started++;
        maxRunning = Math.max(maxRunning, running);
        const d = deferred();
        gates.push(d);
        await d.promise;
        running--;
        return setVar('txn', 'done', true);
      }),
    );
    const fake = await h.ready();
    fake.send(Buffer.concat(Array.from({ length: N }, (_, i) => encodeFrame(notifyFrame(i + 1, 1, [msg('m')])))));
    await until(() => started === 3, '3 handlers started');
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(started, 3, 'the agent stops reading at maxInFlight');
    assert.equal(h.agent.stats.inFlight, 3);
    let released = 0;
    while (released < N) {
      await until(() => gates.length > released, `handler ${released + 1} started`);
      assert.ok(running <= 3, `running ${running}`);
      gates[released]?.resolve();
      released++;
      await tick();
    }
    const acks = await Promise.all(Array.from({ length: N }, (_, i) => fake.waitForAck(i + 1, 1)));
    assert.equal(acks.length, N);
    assert.equal(maxRunning, 3);
    assert.equal(started, N);
    assert.equal(wire(fake).filter((f) => f.type === 'ack').length, N);
  });

  test('back-pressure with sync handlers: maxInFlight 1, 50 NOTIFY in one write, all answered in order', async (t) => {
    const h = await startAgent(t, { maxInFlight: 1 }, (a) => a.message('m', (m) => setVar('txn', 'i', m.value(0) as number)));
    const fake = await h.ready();
    fake.send(Buffer.concat(Array.from({ length: 50 }, (_, i) => encodeFrame(notifyFrame(i, 1, [msg('m', { '': int(i) })])))));
    await fake.waitForAck(49, 1);
    assert.deepEqual(
      wire(fake)
        .filter((f): f is AckFrame => f.type === 'ack')
        .map((f) => f.streamId),
      Array.from({ length: 50 }, (_, i) => i),
    );
  });

  test('write back-pressure: HAProxy not reading -> the agent stops reading, then catches up', async (t) => {
    const N = 150;
    const big = 'x'.repeat(60_000);
    const h = await startAgent(t, {}, (a) => a.message('m', () => setVar('txn', 'big', big)));
    const fake = await h.ready({ maxFrameSize: 65532 });
    fake.socket.pause(); // HAProxy stops reading ACKs
    // NOTIFY keep coming, in many chunks (within one chunk every frame is handled, and answered in one write)
    for (let i = 0; i < N; i += 10) {
      fake.send(Buffer.concat(Array.from({ length: 10 }, (_, k) => encodeFrame(notifyFrame(i + k + 1, 1, [msg('m')])))));
      await new Promise((r) => setTimeout(r, 1));
    }
    await until(() => h.agent.stats.notifies > 0, 'first NOTIFY handled');
    let last = -1;
    await until(() => {
      const settled = h.agent.stats.notifies === last;
      last = h.agent.stats.notifies;
      return settled;
    }, 'agent stops');
    await new Promise((r) => setTimeout(r, 50));
    const handled = h.agent.stats.notifies;
    assert.ok(handled < N, `the agent kept reading: ${handled} of ${N} NOTIFY handled while no ACK was read`);
    fake.socket.resume();
    await withTimeout(Promise.all(Array.from({ length: N }, (_, i) => fake.waitForAck(i + 1, 1, 5000))), 10_000, 'all ACKs');
    assert.equal(h.agent.stats.acks, N);
    assert.equal(h.agent.stats.oversizedAcks, 0);
  });

  test('async: an ACK whose connection died goes out on another connection of the same engine', async (t) => {
    const gate = deferred();
    const h = await startAgent(t, { async: true, handlerTimeout: 5000 }, (a) =>
      a.message('slow', async () => {
        await gate.promise;
        return setVar('txn', 'slow', 1);
      }),
    );
    const hello = { capabilities: 'pipelining,async', engineId: 'engine-A' };
    const first = await h.ready(hello);
    const sibling = await h.ready(hello);
    const stranger = await h.ready({ capabilities: 'pipelining,async', engineId: 'engine-B' });
    first.send(notifyFrame(42, 3, [msg('slow')]));
    await until(() => h.agent.stats.inFlight === 1, 'handler running');
    first.close();
    await until(() => h.agent.stats.connections === 2, 'first connection gone');
    gate.resolve();
    const ack = await sibling.waitForAck(42, 3);
    assert.deepEqual(
      ack.actions.map((x) => x.name),
      ['slow'],
    );
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      wire(stranger).map((f) => f.type),
      ['agent-hello'],
      'not on another engine',
    );
    assert.equal(h.agent.stats.inFlight, 0);
  });

  test('ACKs of NOTIFY that arrive in one chunk go out in one write', async (t) => {
    // Our own server, so that the server-side socket can be observed; the agent serves it via handle().
    const agent = new Agent({ logger: silent() });
    agent.message('m', (m) => setVar('txn', 'i', m.value(0) as number));
    let writes = 0;
    let chunks = 0;
    let serverSocket: Socket | undefined;
    const server = createServer({ noDelay: true }, (socket) => {
      serverSocket = socket;
      const write = socket.write.bind(socket) as (b: Uint8Array) => boolean;
      socket.write = ((b: Uint8Array) => {
        writes++;
        return write(b);
      }) as typeof socket.write;
      socket.on('data', () => chunks++);
      agent.handle(socket);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(async () => {
      await agent.close({ timeout: 0 });
      await new Promise((r) => server.close(r));
    });
    const { port } = server.address() as { port: number };
    const fake = await connectTo(t, { port });
    await fake.hello();
    assert.equal(writes, 1, 'AGENT-HELLO in one write');
    const N = 100;
    writes = 0;
    chunks = 0;
    fake.send(Buffer.concat(Array.from({ length: N }, (_, i) => encodeFrame(notifyFrame(i + 1, 1, [msg('m', { '': int(i) })])))));
    await withTimeout(Promise.all(Array.from({ length: N }, (_, i) => fake.waitForAck(i + 1, 1))), 2000, 'all ACKs');
    assert.ok(serverSocket);
    assert.ok(chunks >= 1);
    assert.ok(writes <= chunks, `${writes} writes for ${chunks} chunks of NOTIFY`);
    assert.equal(agent.stats.acks, N);
  });

  test('ACK bytes the socket wrote out at once are written over for the next ACKs; bytes it still holds never are', () => {
    /** A socket that keeps what it is given, and says it still holds it while `holding`. */
    class KeepingSocket extends EventEmitter {
      holding = false;
      readonly writes: Array<{ bytes: Buffer; hex: string }> = [];
      readonly remoteAddress = undefined;
      get writableLength(): number {
        return this.holding ? 1 : 0;
      }
      setNoDelay(): this {
        return this;
      }
      write(bytes: Buffer): boolean {
        this.writes.push({ bytes, hex: bytes.toString('hex') });
        return true;
      }
      pause(): this {
        return this;
      }
      resume(): this {
        return this;
      }
      end(): this {
        return this;
      }
      destroy(): this {
        this.emit('close');
        return this;
      }
    }
    const agent = new Agent({ logger: silent() });
    agent.message('m', (m) => setVar('txn', 'i', m.value(0) as number));
    const socket = new KeepingSocket();
    agent.handle(socket as unknown as Socket);
    socket.emit('data', encodeFrame({ type: 'haproxy-hello', flags: FrameFlags.FIN, streamId: 0, frameId: 0, kv: haproxyHelloKv({}) }));
    const notify = (i: number): void => {
      socket.emit('data', encodeFrame(notifyFrame(i, 1, [msg('m', { '': int(i) })])));
    };
    const ackOf = (w: { hex: string }): string => {
      const f = decodeFrame(Buffer.from(w.hex, 'hex').subarray(4));
      assert.equal(f.type, 'ack');
      const a = (f as AckFrame).actions[0] as Action & { type: 'set-var' };
      return `${f.streamId}: ${String(plain(a.value).value)}`;
    };

    for (let i = 1; i <= 5; i++) notify(i);
    const sent = socket.writes.slice(1);
    assert.deepEqual(sent.map(ackOf), ['1: 1', '2: 2', '3: 3', '4: 4', '5: 5'], 'each ACK as written');
    for (const w of sent.slice(1)) {
      assert.equal(w.bytes.buffer, (sent[0] as { bytes: Buffer }).bytes.buffer, 'the same buffer');
      assert.equal(w.bytes.byteOffset, (sent[0] as { bytes: Buffer }).bytes.byteOffset, 'at the same place');
    }

    socket.holding = true;
    const from = socket.writes.length;
    for (let i = 6; i <= 200; i++) notify(i);
    const held = socket.writes.slice(from);
    assert.equal(held.length, 195);
    for (const w of held) assert.equal(w.bytes.toString('hex'), w.hex, 'bytes the socket holds are never written over');
    assert.deepEqual(
      held.map(ackOf),
      Array.from({ length: 195 }, (_, k) => `${k + 6}: ${k + 6}`),
    );
    socket.destroy();
  });

  test('ACKs given to onFrame keep their values while later ACKs are written', async (t) => {
    const out: AckFrame[] = [];
    const h = await startAgent(
      t,
      {
        onFrame: (direction, frame) => {
          if (direction === 'out' && frame.type === 'ack') out.push(frame);
        },
      },
      (a) => a.message('m', (m) => setVar('txn', 's', `value-${String(m.value(0))}`)),
    );
    const fake = await h.ready();
    for (let i = 1; i <= 30; i++) await fake.notify(i, 1, [msg('m', { '': int(i) })]);
    assert.deepEqual(
      out.map((f) => String(plain((f.actions[0] as Action & { type: 'set-var' }).value).value)),
      Array.from({ length: 30 }, (_, k) => `value-${k + 1}`),
    );
  });
});
