/**
 * HELLO negotiation: the pure functions of connection/hello.ts, then the
 * handshake over a socket (docs/protocol.md §6, §7.4, §8).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type KvEntry,
  FrameFlags,
  FrameType,
  SPOP_VERSION,
  SpopError,
  Status,
  Writer,
  encodeFrame,
  haproxyHelloKv,
  negotiate,
  readHaproxyHello,
  resolveAgentOptions,
  versionNumber,
} from '../src/index.js';
import type { FakeHaproxy } from '../src/testkit/index.js';
import { expectDisconnect, kvObject, msg, rawFrame, startAgent, statusOf, str, until, wire, withTimeout } from './agent-helpers.js';

const defaults = resolveAgentOptions({ logger: { debug() {}, info() {}, warn() {}, error() {} } });
const opts = (o: Parameters<typeof resolveAgentOptions>[0]) => resolveAgentOptions({ logger: defaults.logger, ...o });

function throwsStatus(fn: () => unknown, status: number): void {
  assert.throws(fn, (e: unknown) => e instanceof SpopError && e.status === status, `expected SpopError ${status}`);
}

describe('versionNumber', () => {
  test('parses MAJOR.MINOR as 1000 * MAJOR + MINOR, spaces around allowed', () => {
    assert.equal(versionNumber('2.0'), 2000);
    assert.equal(versionNumber('2.00'), 2000);
    assert.equal(versionNumber(' 2.0 '), 2000);
    assert.equal(versionNumber('\t2.0'), 2000);
    assert.equal(versionNumber('1.0'), 1000);
    assert.equal(versionNumber('2.1'), 2001);
    assert.equal(versionNumber('10.0'), 10_000);
    assert.equal(versionNumber('2.999'), 2999);
  });

  test('anything else is NaN', () => {
    for (const bad of ['', 'abc', '2', '2.', '.0', '2.0.0', '0.5', '2.1000', '-2.0', '2,0', '2 .0', 'v2.0']) {
      assert.ok(Number.isNaN(versionNumber(bad)), `${JSON.stringify(bad)} -> ${versionNumber(bad)}`);
    }
  });
});

describe('readHaproxyHello', () => {
  test('reads the keys HAProxy sends, ignores unknown ones', () => {
    const hello = readHaproxyHello([
      ...haproxyHelloKv({ maxFrameSize: 1000, capabilities: ' pipelining , async,' }),
      ['some-future-key', { type: 'int64', value: 7 }],
    ]);
    assert.deepEqual(hello, {
      supportedVersions: ['2.0'],
      maxFrameSize: 1000,
      capabilities: ['pipelining', 'async'],
      engineId: 'c0f397ef-7909-40f6-a287-2e2f29cd5288',
      healthcheck: false,
    });
  });

  test('health check HELLO: healthcheck true, no engine-id, no capabilities', () => {
    const hello = readHaproxyHello(haproxyHelloKv({ healthcheck: true }));
    assert.equal(hello.healthcheck, true);
    assert.equal(hello.engineId, undefined);
    assert.deepEqual(hello.capabilities, []);
  });

  test('supported-versions is a comma list', () => {
    assert.deepEqual(readHaproxyHello(haproxyHelloKv({ supportedVersions: '1.0, 2.0' })).supportedVersions, ['1.0', '2.0']);
  });

  test('any integer type is accepted for max-frame-size', () => {
    for (const type of ['int32', 'uint32', 'int64', 'uint64'] as const) {
      const kv: KvEntry[] = [
        ['supported-versions', str('2.0')],
        ['max-frame-size', { type, value: 4096 }],
      ];
      assert.equal(readHaproxyHello(kv).maxFrameSize, 4096);
    }
  });

  test('missing supported-versions -> 5, missing max-frame-size -> 6', () => {
    throwsStatus(() => readHaproxyHello([['max-frame-size', { type: 'uint32', value: 16380 }]]), Status.NO_VERSION);
    throwsStatus(() => readHaproxyHello([['supported-versions', str('2.0')]]), Status.NO_MAX_FRAME_SIZE);
  });

  test('wrongly typed values -> 4', () => {
    throwsStatus(() => readHaproxyHello([['supported-versions', { type: 'int64', value: 2 }]]), Status.INVALID_FRAME);
    throwsStatus(
      () =>
        readHaproxyHello([
          ['supported-versions', str('2.0')],
          ['max-frame-size', str('16380')],
        ]),
      Status.INVALID_FRAME,
    );
  });
});

describe('negotiate', () => {
  const hello = (o: Parameters<typeof haproxyHelloKv>[0] = {}) => readHaproxyHello(haproxyHelloKv(o));

  test("max-frame-size is the smaller of ours and HAProxy's, both ways", () => {
    assert.equal(negotiate(hello({ maxFrameSize: 16380 }), opts({ maxFrameSize: 65532 })).maxFrameSize, 16380);
    assert.equal(negotiate(hello({ maxFrameSize: 16380 }), opts({ maxFrameSize: 1024 })).maxFrameSize, 1024);
    assert.equal(negotiate(hello({ maxFrameSize: 256 }), opts({})).maxFrameSize, 256);
  });

  test('a max-frame-size below 256 -> 9', () => {
    throwsStatus(() => negotiate(hello({ maxFrameSize: 255 }), defaults), Status.BAD_MAX_FRAME_SIZE);
    throwsStatus(() => negotiate(hello({ maxFrameSize: 100 }), defaults), Status.BAD_MAX_FRAME_SIZE);
  });

  test('versions: any 2.x offer is accepted, others -> 8', () => {
    for (const v of ['2.0', '2.00', ' 2.0 ', '1.0,2.0', '2.0,3.0', '2.5']) {
      assert.doesNotThrow(() => negotiate(hello({ supportedVersions: v }), defaults), v);
    }
    for (const v of ['1.0', '3.0', 'abc', '', '0.0', '1.9,3.0']) {
      throwsStatus(() => negotiate(hello({ supportedVersions: v }), defaults), Status.UNSUPPORTED_VERSION);
    }
  });

  test('pipelining only when offered and enabled', () => {
    assert.deepEqual(negotiate(hello({ capabilities: 'pipelining' }), defaults).capabilities, ['pipelining']);
    assert.deepEqual(negotiate(hello({ capabilities: '' }), defaults).capabilities, []);
    assert.deepEqual(negotiate(hello({ capabilities: 'pipelining' }), opts({ pipelining: false })).capabilities, []);
    assert.equal(negotiate(hello({ capabilities: 'pipelining' }), opts({ pipelining: false })).pipelining, false);
  });

  test('async only when opted in and offered', () => {
    assert.deepEqual(negotiate(hello({ capabilities: 'pipelining,async' }), defaults).capabilities, ['pipelining']);
    assert.deepEqual(negotiate(hello({ capabilities: 'pipelining,async' }), opts({ async: true })).capabilities, ['pipelining', 'async']);
    const n = negotiate(hello({ capabilities: 'pipelining' }), opts({ async: true }));
    assert.equal(n.async, false);
    assert.deepEqual(n.capabilities, ['pipelining']);
  });

  test('fragmentation whenever opted in (HAProxy never offers it)', () => {
    const n = negotiate(hello({ capabilities: 'pipelining' }), opts({ fragmentation: true }));
    assert.equal(n.fragmentation, true);
    assert.deepEqual(n.capabilities, ['pipelining', 'fragmentation']);
    assert.equal(negotiate(hello(), defaults).fragmentation, false);
  });
});

describe('HELLO over a socket', () => {
  test('AGENT-HELLO: version 2.0, FIN, ids 0, the three keys', async (t) => {
    const h = await startAgent(t);
    const fake = await h.connect();
    const answer = await fake.hello();
    assert.equal(answer.type, 'agent-hello');
    assert.equal(answer.flags, FrameFlags.FIN);
    assert.equal(answer.streamId, 0);
    assert.equal(answer.frameId, 0);
    assert.ok(answer.type === 'agent-hello');
    assert.deepEqual(
      answer.kv.map(([k]) => k),
      ['version', 'max-frame-size', 'capabilities'],
    );
    assert.equal(answer.kv[0]?.[1].type, 'str');
    assert.deepEqual(kvObject(answer), { version: SPOP_VERSION, 'max-frame-size': 16380, capabilities: 'pipelining' });
    assert.equal(SPOP_VERSION, '2.0');
    assert.equal(h.agent.stats.connectionsTotal, 1);
    assert.equal(h.agent.stats.connections, 1);
  });

  test("max-frame-size = min(ours, HAProxy's), whichever is smaller", async (t) => {
    const small = await startAgent(t, { maxFrameSize: 1000 });
    const a = await (await small.connect()).hello({ maxFrameSize: 16380 });
    assert.equal(kvObject(a)['max-frame-size'], 1000);
    const big = await startAgent(t, { maxFrameSize: 65532 });
    const b = await (await big.connect()).hello({ maxFrameSize: 300 });
    assert.equal(kvObject(b)['max-frame-size'], 300);
  });

  test('capabilities key always present, even when empty', async (t) => {
    const h = await startAgent(t);
    const answer = await (await h.connect()).hello({ capabilities: '' });
    assert.equal(kvObject(answer).capabilities, '');
  });

  test('pipelining announced only if offered and enabled', async (t) => {
    const on = await startAgent(t);
    assert.equal(kvObject(await (await on.connect()).hello({ capabilities: 'pipelining' })).capabilities, 'pipelining');
    assert.equal(kvObject(await (await on.connect()).hello({ capabilities: 'async' })).capabilities, '');
    const off = await startAgent(t, { pipelining: false });
    assert.equal(kvObject(await (await off.connect()).hello({ capabilities: 'pipelining,async' })).capabilities, '');
  });

  test('async only when opted in and offered; fragmentation when opted in', async (t) => {
    const plain = await startAgent(t);
    assert.equal(kvObject(await (await plain.connect()).hello({ capabilities: 'pipelining,async' })).capabilities, 'pipelining');
    const asy = await startAgent(t, { async: true });
    assert.equal(kvObject(await (await asy.connect()).hello({ capabilities: 'pipelining,async' })).capabilities, 'pipelining,async');
    assert.equal(kvObject(await (await asy.connect()).hello({ capabilities: 'pipelining' })).capabilities, 'pipelining');
    const frag = await startAgent(t, { fragmentation: true });
    assert.equal(kvObject(await (await frag.connect()).hello({ capabilities: 'pipelining' })).capabilities, 'pipelining,fragmentation');
  });

  for (const v of ['2.0', '2.00', ' 2.0 ', '1.0,2.0']) {
    test(`supported-versions ${JSON.stringify(v)} is accepted and a NOTIFY then works`, async (t) => {
      const h = await startAgent(t);
      const fake = await h.connect();
      const answer = await fake.hello({ supportedVersions: v });
      assert.equal(answer.type, 'agent-hello');
      assert.equal(kvObject(answer).version, '2.0');
      const ack = await fake.notify(1, 1, [msg('m')]);
      assert.deepEqual(ack.actions, []);
    });
  }

  for (const v of ['1.0', '3.0', 'abc']) {
    test(`supported-versions ${JSON.stringify(v)} -> AGENT-DISCONNECT 8, then close`, async (t) => {
      const h = await startAgent(t);
      const fake = await h.connect();
      const answer = await fake.hello({ supportedVersions: v });
      assert.equal(answer.type, 'agent-disconnect');
      await disconnectedWith(fake, Status.UNSUPPORTED_VERSION);
      assert.equal(h.agent.stats.protocolErrors, 1);
    });
  }

  test('missing supported-versions -> 5', async (t) => {
    const h = await startAgent(t);
    const fake = await h.connect();
    fake.send({ type: 'haproxy-hello', flags: FrameFlags.FIN, streamId: 0, frameId: 0, kv: [['max-frame-size', { type: 'uint32', value: 16380 }]] });
    await expectDisconnect(fake, Status.NO_VERSION);
  });

  test('missing max-frame-size -> 6', async (t) => {
    const h = await startAgent(t);
    const fake = await h.connect();
    fake.send({ type: 'haproxy-hello', flags: FrameFlags.FIN, streamId: 0, frameId: 0, kv: [['supported-versions', str('2.0')]] });
    await expectDisconnect(fake, Status.NO_MAX_FRAME_SIZE);
  });

  test('max-frame-size 100 -> 9', async (t) => {
    const h = await startAgent(t);
    const fake = await h.connect();
    fake.send({ type: 'haproxy-hello', flags: FrameFlags.FIN, streamId: 0, frameId: 0, kv: haproxyHelloKv({ maxFrameSize: 100 }) });
    await expectDisconnect(fake, Status.BAD_MAX_FRAME_SIZE);
  });

  test('a NOTIFY as first frame -> 4', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('m', () => assert.fail('handler must not run before HELLO')));
    const fake = await h.connect();
    fake.send({ type: 'notify', flags: FrameFlags.FIN, streamId: 1, frameId: 1, messages: [msg('m')] });
    await expectDisconnect(fake, Status.INVALID_FRAME);
    assert.equal(h.agent.stats.notifies, 0);
  });

  test('HELLO without FIN -> 10', async (t) => {
    const h = await startAgent(t);
    const fake = await h.connect();
    const payload = new Writer().kvList(haproxyHelloKv()).take();
    fake.send(rawFrame(FrameType.HAPROXY_HELLO, 0, 0, 0, payload));
    await expectDisconnect(fake, Status.FRAGMENTATION_NOT_SUPPORTED);
  });

  test('HELLO with non-zero ids -> 4', async (t) => {
    const h = await startAgent(t);
    const fake = await h.connect();
    fake.send({ type: 'haproxy-hello', flags: FrameFlags.FIN, streamId: 1, frameId: 0, kv: haproxyHelloKv() });
    await expectDisconnect(fake, Status.INVALID_FRAME);
  });

  test('a second HELLO after the handshake -> 4', async (t) => {
    const h = await startAgent(t);
    const fake = await h.ready();
    fake.send({ type: 'haproxy-hello', flags: FrameFlags.FIN, streamId: 0, frameId: 0, kv: haproxyHelloKv() });
    await expectDisconnect(fake, Status.INVALID_FRAME);
  });

  test('HELLO and a NOTIFY in one write: AGENT-HELLO then the ACK', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('m', () => []));
    const fake = await h.connect();
    fake.send(
      Buffer.concat([
        encodeFrame({ type: 'haproxy-hello', flags: FrameFlags.FIN, streamId: 0, frameId: 0, kv: haproxyHelloKv() }),
        encodeFrame({ type: 'notify', flags: FrameFlags.FIN, streamId: 1, frameId: 1, messages: [msg('m')] }),
      ]),
    );
    await fake.waitForAck(1, 1);
    assert.deepEqual(
      wire(fake).map((f) => f.type),
      ['agent-hello', 'ack'],
    );
  });

  test('bytes after a health check HELLO are ignored', async (t) => {
    const h = await startAgent(t, {}, (a) => a.message('m', () => assert.fail('must not run')));
    const fake = await h.connect();
    fake.send(
      Buffer.concat([
        encodeFrame({ type: 'haproxy-hello', flags: FrameFlags.FIN, streamId: 0, frameId: 0, kv: haproxyHelloKv({ healthcheck: true }) }),
        encodeFrame({ type: 'notify', flags: FrameFlags.FIN, streamId: 1, frameId: 1, messages: [msg('m')] }),
      ]),
    );
    await withTimeout(fake.closed, 2000, 'closed');
    assert.deepEqual(
      wire(fake).map((f) => f.type),
      ['agent-hello'],
    );
    assert.equal(h.agent.stats.notifies, 0);
  });

  test('health check: AGENT-HELLO with a capabilities key, then the agent closes', async (t) => {
    const h = await startAgent(t);
    const fake = await h.connect();
    const answer = await fake.hello({ healthcheck: true });
    assert.equal(answer.type, 'agent-hello');
    const kv = kvObject(answer);
    assert.equal(kv.version, '2.0');
    assert.equal(kv['max-frame-size'], 16380);
    assert.ok('capabilities' in kv, 'capabilities key present');
    assert.equal(kv.capabilities, '');
    await withTimeout(fake.closed, 1000, 'agent closes after answering a health check');
    assert.deepEqual(
      wire(fake).map((f) => f.type),
      ['agent-hello'],
      'only the AGENT-HELLO, no DISCONNECT',
    );
    assert.equal(h.agent.stats.healthChecks, 1);
    assert.equal(h.agent.stats.protocolErrors, 0);
    await until(() => h.agent.stats.connections === 0, 'connection forgotten');
  });

  test('health checks are counted one by one', async (t) => {
    const h = await startAgent(t);
    for (let i = 0; i < 3; i++) {
      const fake = await h.connect();
      await fake.hello({ healthcheck: true });
      await withTimeout(fake.closed, 1000, 'closed');
    }
    assert.equal(h.agent.stats.healthChecks, 3);
  });
});

/** For a DISCONNECT already taken by fake.hello(): the agent closes, and it was the only frame sent. */
async function disconnectedWith(fake: FakeHaproxy, status: number): Promise<void> {
  await withTimeout(fake.closed, 2000, 'agent closes after its DISCONNECT');
  const log = wire(fake);
  assert.equal(log.length, 1);
  const [d] = log;
  assert.ok(d);
  assert.equal(statusOf(d), status);
}
