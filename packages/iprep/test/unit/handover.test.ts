/**
 * A retiring worker's side of a hand-over, without a cluster: what it sends, and the fallback when
 * the send fails (the connection is closed as on SIGTERM: answered, then AGENT-DISCONNECT 0).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Agent, type Logger } from 'spop';
import { FakeHaproxy } from 'spop/testkit';
import { HANDOVER_TAG, type HandoverMessage, handOverConnections, isHandoverMessage } from '../../src/cluster/handover.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

async function servedConnection(t: { after(fn: () => unknown): void }): Promise<{ agent: Agent; fake: FakeHaproxy }> {
  const agent = new Agent({ logger: quiet });
  agent.message('m', () => undefined);
  t.after(() => agent.close({ timeout: 0 }));
  const address = await agent.listen({ port: 0, host: '127.0.0.1' });
  assert.ok(typeof address === 'object');
  const fake = await FakeHaproxy.connect({ port: address.port });
  t.after(() => fake.close());
  assert.equal((await fake.hello({ capabilities: 'pipelining' })).type, 'agent-hello');
  return { agent, fake };
}

describe('handOverConnections', () => {
  it('sends each connection with its state and unread bytes as base64, and closes its own copy', async (t) => {
    const { agent, fake } = await servedConnection(t);
    const sent: HandoverMessage[] = [];
    const summary = await handOverConnections(agent, {
      timeoutMs: 1000,
      logger: quiet,
      send: async (message, handle) => {
        sent.push(message);
        assert.equal(typeof handle.close, 'function');
        return null;
      },
    });
    assert.deepEqual(summary, { sent: 1, closed: 0 });
    assert.equal(sent.length, 1);
    assert.ok(isHandoverMessage(sent[0], 'connection'));
    assert.deepEqual(sent[0]?.state, { version: '2.0', maxFrameSize: 16380, capabilities: ['pipelining'], engineId: 'c0f397ef-7909-40f6-a287-2e2f29cd5288' });
    assert.equal(sent[0]?.unread, '');
    // This process's copy closed: with no other holder, the peer sees the connection end, and no DISCONNECT.
    await fake.closed;
    assert.equal(
      fake.received.some((f) => f.type === 'agent-disconnect'),
      false,
    );
  });

  it('a failed send: the connection is closed as on SIGTERM, DISCONNECT 0', async (t) => {
    const { agent, fake } = await servedConnection(t);
    const summary = await handOverConnections(agent, { timeoutMs: 1000, logger: quiet, send: async () => new Error('channel closed') });
    assert.deepEqual(summary, { sent: 0, closed: 1 });
    const bye = await fake.waitFor((f) => f.type === 'agent-disconnect');
    assert.ok(bye.type === 'agent-disconnect' && bye.kv.some(([k, v]) => k === 'status-code' && 'value' in v && Number(v.value) === 0));
  });
});

describe('isHandoverMessage', () => {
  it('takes only its tag and type, an object state and bounded base64 text', () => {
    const good = { tag: HANDOVER_TAG, type: 'adopt', state: {}, unread: 'AAEC' };
    assert.equal(isHandoverMessage(good, 'adopt'), true);
    assert.equal(isHandoverMessage(good, 'connection'), false);
    for (const bad of [
      null,
      'adopt',
      { ...good, tag: 'other' },
      { ...good, state: null },
      { ...good, state: 'x' },
      { ...good, unread: 1 },
      { ...good, unread: 'A'.repeat(1_400_000) },
    ]) {
      assert.equal(isHandoverMessage(bad, 'adopt'), false, JSON.stringify(bad).slice(0, 60));
    }
  });
});
