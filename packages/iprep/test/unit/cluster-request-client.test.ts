/**
 * The request client of src/cluster: ids, replies matched out of order, per-request timeouts, the
 * channel closing, send errors and the bound on requests waiting. Both ends are in this process
 * (channelPair), so nothing is forked.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from 'test-support/wait';
import { ClusterRequestError, type IpcChannel, RequestClient, channelPair, isTagged } from '../../src/cluster/index.js';

const TAG = 'test-ask';

type Ask = { readonly type: 'ask'; readonly n: number } | { readonly type: 'hang' };
type Answer = { readonly type: 'answer'; readonly n: number };

/** A client on the worker end of a pair, and the requests the primary end received (answer them with `reply`). */
function setup(options: { timeoutMs?: number; maxPending?: number; channel?: (end: IpcChannel<unknown>) => IpcChannel<unknown> } = {}) {
  const pair = channelPair();
  const received: { id: number; type: string; n?: number }[] = [];
  pair.primaryEnd.on('message', (message) => {
    if (isTagged(message, TAG)) received.push(message as unknown as (typeof received)[number]);
  });
  const others: unknown[] = [];
  const client = new RequestClient<Ask, Answer>({
    channel: options.channel ? options.channel(pair.workerEnd) : pair.workerEnd,
    tag: TAG,
    replyTypes: ['answer'],
    timeoutMs: options.timeoutMs ?? 1000,
    maxPending: options.maxPending,
    subject: 'test',
    peer: 'the primary',
    onMessage: (message) => others.push(message),
  });
  const reply = (id: number, body: object): void => {
    pair.primaryEnd.send({ tag: TAG, id, ...body }, () => {});
  };
  return { pair, client, received, reply, others };
}

function until(what: string, condition: () => boolean, timeoutMs = 2000): Promise<void> {
  return waitFor(what, condition, timeoutMs, 5);
}

/** Resolves with the reason a request failed (or 'resolved'). */
async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return error instanceof ClusterRequestError ? `${error.reason}: ${error.message}` : `other: ${String(error)}`;
  }
}

describe('RequestClient', () => {
  it('matches replies to their requests by id, in whatever order they come', async () => {
    const { client, received, reply } = setup();
    const results = [1, 2, 3].map((n) => client.request({ type: 'ask', n }, (answer) => answer.n * 10));
    await until('three requests', () => received.length === 3);
    const ids = received.map((r) => r.id);
    assert.equal(new Set(ids).size, 3, 'each request has its own id');
    reply(ids[2]!, { type: 'answer', n: 3 });
    reply(ids[0]!, { type: 'answer', n: 1 });
    reply(ids[1]!, { type: 'answer', n: 2 });
    assert.deepEqual(await Promise.all(results), [10, 20, 30]);
    assert.equal(client.pendingCount, 0);
    client.close();
  });

  it('ignores unknown ids, other tags and malformed replies; passes its other messages on', async () => {
    const { pair, client, received, reply, others } = setup();
    const result = client.request({ type: 'ask', n: 1 }, (answer) => answer.n);
    await until('the request', () => received.length === 1);
    const id = received[0]!.id;
    reply(id + 1000, { type: 'answer', n: 99 }); // nobody asked
    reply(Number.NaN, { type: 'answer', n: 98 });
    pair.primaryEnd.send({ tag: 'another-tag', id, type: 'answer', n: 97 }, () => {});
    pair.primaryEnd.send({ hello: 'untagged' }, () => {});
    reply(id, { type: 'news', n: 96 }); // tagged, not a reply type: for onMessage
    await sleep(20);
    assert.equal(client.pendingCount, 1, 'still waiting');
    assert.deepEqual(others, [{ tag: TAG, id, type: 'news', n: 96 }]);
    reply(id, { type: 'answer', n: 1 });
    reply(id, { type: 'answer', n: 2 }); // a second answer to the same id changes nothing
    assert.equal(await result, 1);
    await sleep(10);
    client.close();
  });

  it('runs accept as the reply arrives, before the next message is handled', async () => {
    const { client, received, reply, others } = setup();
    let seenByAccept: unknown[] | undefined;
    const result = client.request({ type: 'ask', n: 1 }, () => {
      seenByAccept = [...others];
    });
    await until('the request', () => received.length === 1);
    reply(received[0]!.id, { type: 'answer', n: 1 });
    reply(received[0]!.id, { type: 'news' });
    await result;
    assert.deepEqual(seenByAccept, []);
    client.close();
  });

  it('rejects with what accept throws', async () => {
    const { client, received, reply } = setup();
    const result = client.request({ type: 'ask', n: 1 }, () => {
      throw new Error('not what I wanted');
    });
    await until('the request', () => received.length === 1);
    reply(received[0]!.id, { type: 'answer', n: 1 });
    await assert.rejects(result, /^Error: not what I wanted$/);
    assert.equal(client.lastError, undefined, 'an answer came: the primary is reachable');
    client.close();
  });

  it('times each request out on its own; a late reply is ignored; lastError says why until an answer comes', async () => {
    const { client, received, reply } = setup({ timeoutMs: 80 });
    const started = Date.now();
    const slow = client.request({ type: 'hang' }, () => 'late');
    const quick = client.request({ type: 'ask', n: 1 }, (a) => a.n, { timeoutMs: 30 });
    assert.match(await outcome(quick), /^timeout: test: no answer from the primary to ask within 30 ms$/);
    assert.match(await outcome(slow), /^timeout: test: no answer from the primary to hang within 80 ms$/);
    const waited = Date.now() - started;
    assert.ok(waited >= 70 && waited < 500, `waited ${waited} ms`);
    assert.equal(client.lastError, 'test: no answer from the primary to hang within 80 ms');
    reply(received[0]!.id, { type: 'answer', n: 0 }); // too late
    await sleep(10);
    assert.equal(client.pendingCount, 0);
    const next = client.request({ type: 'ask', n: 2 }, (a) => a.n);
    await until('the third request', () => received.length === 3);
    reply(received[2]!.id, { type: 'answer', n: 2 });
    assert.equal(await next, 2);
    assert.equal(client.lastError, undefined);
    client.close();
  });

  it('rejects everything waiting at once when the channel closes', async () => {
    const { pair, client, received } = setup({ timeoutMs: 5000 });
    const results = [client.request({ type: 'hang' }, () => 0), client.request({ type: 'ask', n: 1 }, () => 1)];
    await until('two requests', () => received.length === 2);
    const started = Date.now();
    pair.disconnect();
    assert.deepEqual(await Promise.all(results.map(outcome)), [
      'disconnected: test: the channel to the primary closed',
      'disconnected: test: the channel to the primary closed',
    ]);
    assert.ok(Date.now() - started < 1000, 'no wait for the timeout');
    assert.equal(client.lastError, 'test: the channel to the primary closed');
    // Later requests fail at once: the send is refused.
    assert.match(await outcome(client.request({ type: 'ask', n: 2 }, () => 2)), /^send-failed: test: cannot send ask to the primary: Channel closed$/);
    client.close();
  });

  it('close() rejects everything waiting and stops listening', async () => {
    const { client, received, reply, others } = setup({ timeoutMs: 5000 });
    const result = client.request({ type: 'hang' }, () => 0);
    await until('the request', () => received.length === 1);
    client.close();
    assert.equal(await outcome(result), 'closed: test: closed before the primary answered');
    reply(received[0]!.id, { type: 'news' });
    await sleep(10);
    assert.deepEqual(others, [], 'no longer listening');
  });

  it('a failed send rejects its request at once; a channel that says it closed fails every request waiting', async () => {
    let failWith: Error | undefined;
    const { client, received } = setup({
      timeoutMs: 5000,
      channel: (end) => ({
        ...end,
        send: (message, callback) => {
          if (failWith === undefined) return end.send(message, callback);
          const error = failWith;
          setImmediate(() => callback(error));
          return false;
        },
      }),
    });
    const waiting = client.request({ type: 'hang' }, () => 0);
    await until('the first request', () => received.length === 1);
    failWith = new Error('write EPIPE');
    assert.equal(await outcome(client.request({ type: 'ask', n: 1 }, () => 1)), 'send-failed: test: cannot send ask to the primary: write EPIPE');
    assert.equal(client.pendingCount, 1, 'one message lost: the request already sent still waits');
    assert.equal(client.lastError, 'test: cannot send ask to the primary: write EPIPE');

    failWith = Object.assign(new Error('Channel closed'), { code: 'ERR_IPC_CHANNEL_CLOSED' });
    assert.equal(await outcome(client.request({ type: 'ask', n: 2 }, () => 2)), 'send-failed: test: cannot send ask to the primary: Channel closed');
    assert.equal(await outcome(waiting), 'disconnected: test: the channel to the primary closed');
    client.close();
  });

  it('a message the channel cannot serialize rejects its request instead of throwing', async () => {
    const { client } = setup();
    const circular: { type: 'ask'; n: number; self?: unknown } = { type: 'ask', n: 1 };
    circular.self = circular;
    assert.match(await outcome(client.request(circular, () => 1)), /^send-failed: test: cannot send ask to the primary: .*circular/i);
    assert.equal(client.pendingCount, 0);
    client.close();
  });

  it('bounds the requests waiting: one more is refused at once, and there is room again once answers come', async () => {
    const { client, received, reply } = setup({ maxPending: 3, timeoutMs: 5000 });
    const waiting = [1, 2, 3].map((n) => client.request({ type: 'ask', n }, (a) => a.n));
    const started = Date.now();
    assert.equal(await outcome(client.request({ type: 'ask', n: 4 }, (a) => a.n)), 'overloaded: test: 3 requests already wait for the primary: ask refused');
    assert.ok(Date.now() - started < 100, 'refused at once');
    assert.equal(client.pendingCount, 3);
    await until('three requests sent', () => received.length === 3);
    assert.ok(
      received.every((r) => r.n !== 4),
      'the refused one was not sent',
    );
    reply(received[0]!.id, { type: 'answer', n: 1 });
    assert.equal(await waiting[0], 1);
    const again = client.request({ type: 'ask', n: 5 }, (a) => a.n);
    await until('the fourth request sent', () => received.length === 4);
    for (const r of received.slice(1)) reply(r.id, { type: 'answer', n: r.n ?? 0 });
    assert.deepEqual(await Promise.all([waiting[1], waiting[2], again]), [2, 3, 5]);
    client.close();
  });

  it('ids are unique in the process, so clients with the same tag can share a channel', async () => {
    const pair = channelPair();
    const seen: number[] = [];
    pair.primaryEnd.on('message', (message) => {
      if (!isTagged(message, TAG)) return;
      seen.push(message.id as number);
      pair.primaryEnd.send({ tag: TAG, id: message.id, type: 'answer', n: message.n }, () => {});
    });
    const make = () => new RequestClient<Ask, Answer>({ channel: pair.workerEnd, tag: TAG, replyTypes: ['answer'], timeoutMs: 1000, subject: 'test' });
    const [a, b] = [make(), make()];
    assert.deepEqual(
      await Promise.all([
        a.request({ type: 'ask', n: 1 }, (r) => r.n),
        b.request({ type: 'ask', n: 2 }, (r) => r.n),
        a.request({ type: 'ask', n: 3 }, (r) => r.n),
      ]),
      [1, 2, 3],
    );
    assert.equal(new Set(seen).size, 3);
    a.close();
    b.close();
  });
});
