/**
 * The `onError` hook: handler failures, handler timeouts, actions that do not
 * encode and connections closed on a protocol error reach the user's own
 * telemetry as typed events, and a hook that throws or rejects never hurts the
 * agent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AgentErrorEvent, FrameFlags, Status, setVar } from '../src/index.js';
import { capturingLogger, expectDisconnect, int, msg, sleep, startAgent, until } from './agent-helpers.js';

function collect(): { events: AgentErrorEvent[]; onError: (e: AgentErrorEvent) => void } {
  const events: AgentErrorEvent[] = [];
  return { events, onError: (e) => events.push(e) };
}

describe('onError hook', () => {
  it('reports a handler that throws, with its message, ids, connection and duration; the ACK still goes', async (t) => {
    const { events, onError } = collect();
    const h = await startAgent(t, { onError }, (a) => {
      a.message('boom', () => {
        throw new Error('handler bug');
      });
      a.message('fine', () => setVar('txn', 'ok', 1));
    });
    const fake = await h.ready({ engineId: 'engine-1' });
    const ack = await fake.notify(7, 1, [msg('boom'), msg('fine')]);
    assert.equal(ack.actions.length, 1, 'the other handler still acts');
    assert.equal(events.length, 1);
    const e = events[0]!;
    assert.equal(e.kind, 'handler-error');
    if (e.kind !== 'handler-error') return;
    assert.deepEqual(e.messages, ['boom']);
    assert.ok(e.error instanceof Error);
    assert.equal(e.error.message, 'handler bug');
    assert.equal(e.streamId, 7);
    assert.equal(e.frameId, 1);
    assert.equal(e.connection.engineId, 'engine-1');
    assert.equal(typeof e.connection.id, 'number');
    assert.equal(e.connection.remoteAddress, '127.0.0.1');
    assert.ok(e.durationMs >= 0 && e.durationMs < 1000, `durationMs ${e.durationMs}`);
  });

  it('reports a handler that rejects with a non-Error as an Error, after its duration', async (t) => {
    const { events, onError } = collect();
    const h = await startAgent(t, { onError }, (a) => {
      a.message('later', async () => {
        await sleep(30);
        throw 'plain string';
      });
    });
    const fake = await h.ready();
    await fake.notify(1, 1, [msg('later')]);
    assert.equal(events.length, 1);
    const e = events[0]!;
    assert.equal(e.kind, 'handler-error');
    assert.ok(e.error instanceof Error);
    assert.equal(e.error.message, 'plain string');
    assert.ok(e.durationMs >= 25, `durationMs ${e.durationMs}`);
  });

  it('reports a handler timeout with the messages still waiting, not those that answered', async (t) => {
    const { events, onError } = collect();
    const h = await startAgent(t, { onError, handlerTimeout: 60 }, (a) => {
      a.message('slow', () => new Promise(() => {}));
      a.message('quick', async () => setVar('txn', 'q', 1));
    });
    const fake = await h.ready();
    const ack = await fake.notify(3, 9, [msg('slow'), msg('quick')]);
    assert.equal(ack.actions.length, 1, 'the answered handler keeps its action');
    assert.equal(events.length, 1);
    const e = events[0]!;
    assert.equal(e.kind, 'handler-timeout');
    if (e.kind !== 'handler-timeout') return;
    assert.deepEqual(e.messages, ['slow']);
    assert.match(e.error.message, /handler timeout \(60 ms\)/);
    assert.equal(e.streamId, 3);
    assert.equal(e.frameId, 9);
    assert.ok(e.durationMs >= 55, `durationMs ${e.durationMs}`);
  });

  it('reports an action that does not encode, naming the message whose handler returned it', async (t) => {
    const { events, onError } = collect();
    const h = await startAgent(t, { onError }, (a) => {
      a.message('bad', () => ({ type: 'set-var', scope: 'txn', name: 'n', value: { type: 'int32', value: 2 ** 40 } }));
    });
    const fake = await h.ready();
    const ack = await fake.notify(1, 1, [msg('bad', { x: int(1) })]);
    assert.equal(ack.actions.length, 0);
    assert.equal(events.length, 1);
    const e = events[0]!;
    assert.equal(e.kind, 'invalid-action');
    assert.deepEqual(e.kind === 'invalid-action' ? e.messages : [], ['bad']);
    assert.match(e.error.message, /int32 out of range/);
  });

  it('reports a connection closed on a protocol error, with the status sent', async (t) => {
    const { events, onError } = collect();
    const h = await startAgent(t, { onError });
    const fake = await h.connect();
    fake.send({ type: 'notify', flags: FrameFlags.FIN, streamId: 1, frameId: 1, messages: [msg('m')] });
    await expectDisconnect(fake, Status.INVALID_FRAME);
    await until(() => events.length === 1, 'protocol-error event');
    const e = events[0]!;
    assert.equal(e.kind, 'protocol-error');
    if (e.kind !== 'protocol-error') return;
    assert.equal(e.status, Status.INVALID_FRAME);
    assert.match(e.error.message, /expected HAPROXY-HELLO/);
    assert.equal(e.connection.remoteAddress, '127.0.0.1');
    assert.ok(e.durationMs >= 0);
  });

  it('a hook that throws is logged and changes nothing: ACKs go on', async (t) => {
    const logger = capturingLogger();
    let calls = 0;
    const h = await startAgent(
      t,
      {
        logger,
        onError: () => {
          calls++;
          throw new Error('telemetry down');
        },
      },
      (a) => {
        a.message('boom', () => {
          throw new Error('handler bug');
        });
        a.message('fine', () => setVar('txn', 'ok', 1));
      },
    );
    const fake = await h.ready();
    await fake.notify(1, 1, [msg('boom')]);
    const ack = await fake.notify(2, 1, [msg('fine')]);
    assert.equal(ack.actions.length, 1);
    assert.equal(calls, 1);
    assert.ok(
      logger.lines.some((l) => l.message === 'onError hook failed' && l.fields?.['error'] === 'telemetry down'),
      JSON.stringify(logger.lines),
    );
    assert.equal(h.agent.connections.size, 1, 'the connection is still open');
  });

  it('a hook that rejects is logged, never an unhandled rejection', async (t) => {
    const logger = capturingLogger();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    t.after(() => process.off('unhandledRejection', onUnhandled));
    const h = await startAgent(
      t,
      {
        logger,
        onError: async () => {
          throw new Error('async telemetry down');
        },
      },
      (a) => {
        a.message('boom', () => {
          throw new Error('handler bug');
        });
      },
    );
    const fake = await h.ready();
    await fake.notify(1, 1, [msg('boom')]);
    await until(() => logger.lines.some((l) => l.message === 'onError hook failed'), 'hook failure logged');
    await sleep(20);
    assert.deepEqual(unhandled, []);
  });
});
