/**
 * Hand-over: an established connection detached from one agent and adopted by
 * another, in its negotiated state, with nothing closed, so that the peer
 * sees neither a DISCONNECT nor a lost frame.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, describe, test } from 'node:test';
import {
  type AckFrame,
  Agent,
  type AgentOptions,
  type DetachedConnection,
  type Frame,
  SPOP_VERSION,
  type SpoeMessage,
  encodeFrame,
  setVar,
} from '../src/index.js';
import type { FakeHaproxy } from '../src/testkit/index.js';
import { connectTo, deferred, int, msg, notifyFrame, silent, sleep, startAgent, statusOf, until, wire, withTimeout } from './agent-helpers.js';

/** Registers an `echo` handler answering with the agent's name and the `n` the message carried. */
function echoing(name: string, delay?: () => Promise<void>): (agent: Agent) => void {
  return (agent) =>
    agent.message('echo', async (m) => {
      if (delay !== undefined) await delay();
      const n = m.args.find((a) => a.name === 'n')?.value;
      return [setVar('txn', 'by', name), setVar('txn', 'n', n?.type === 'int64' ? n.value : -1)];
    });
}

/** An agent that serves only what it adopts. */
function adopterAgent(t: TestContext, options: AgentOptions = {}): Agent {
  const agent = new Agent({ logger: silent(), ...options });
  echoing('new')(agent);
  t.after(() => agent.close({ timeout: 0 }));
  return agent;
}

function echo(n: number): SpoeMessage[] {
  return [msg('echo', { n: int(n) })];
}

function actionValue(ack: AckFrame, name: string): unknown {
  const action = ack.actions.find((a) => a.type === 'set-var' && a.name === name);
  assert.ok(action !== undefined && action.type === 'set-var', `ACK without ${name}`);
  return action.value.type === 'null' ? null : action.value.value;
}

/** The ACKs `fake` received, as "streamId/frameId by n", every one of them (none taken by waitFor). */
function acks(fake: FakeHaproxy): string[] {
  return wire(fake)
    .filter((f): f is AckFrame => f.type === 'ack')
    .map((a) => `${a.streamId}/${a.frameId} ${String(actionValue(a, 'by'))} ${String(actionValue(a, 'n'))}`);
}

/** JSON round trip: what crosses a process boundary. */
function overTheWire(detached: DetachedConnection): { state: unknown; unread: Buffer } {
  return { state: JSON.parse(JSON.stringify(detached.state)), unread: Buffer.from(detached.unread) };
}

describe('detach and adopt', () => {
  test('frames before, during and after a hand-over are each ACKed once, in order, by the agent that read them; no DISCONNECT', async (t) => {
    const gate = deferred();
    // The old agent's handler waits: the frames it read are in flight while the hand-over starts.
    const h = await startAgent(
      t,
      {},
      echoing('old', () => gate.promise),
    );
    const old = h.agent;
    const adopter = adopterAgent(t);
    const fake = await h.ready({ capabilities: 'pipelining' });
    // Pipelined frames in flight at the old agent.
    for (let i = 1; i <= 5; i++) fake.send(notifyFrame(i, 1, echo(i)));
    await until(() => old.stats.inFlight === 5, 'five NOTIFY in flight at the old agent');
    let detached: DetachedConnection | undefined;
    const handing = old.handOver((d) => {
      detached = d;
    });
    await sleep(10);
    // Sent while the old agent detaches: it must not read them; a frame split across the hand-over.
    const split = encodeFrame(notifyFrame(7, 1, echo(7)));
    fake.send(Buffer.concat([encodeFrame(notifyFrame(6, 1, echo(6))), split.subarray(0, 9)]));
    await sleep(20);
    gate.resolve();
    await withTimeout(handing, 2000, 'the hand-over ends once the frames in flight are answered');
    assert.ok(detached !== undefined, 'the connection was detached');
    assert.equal(old.stats.connections, 0);
    const { state, unread } = overTheWire(detached);
    fake.send(split.subarray(9));
    const adopted = adopter.adopt(detached.socket, state, unread);
    assert.ok(adopted !== undefined, 'adopted');
    for (let i = 8; i <= 12; i++) fake.send(notifyFrame(i, 1, echo(i)));
    await until(() => acks(fake).length === 12, 'twelve ACKs').catch((err: unknown) => {
      throw new Error(`${String(err)}: ${JSON.stringify(acks(fake))} ${JSON.stringify(wire(fake).map((f) => f.type))}`);
    });
    assert.deepEqual(acks(fake), [
      '1/1 old 1',
      '2/1 old 2',
      '3/1 old 3',
      '4/1 old 4',
      '5/1 old 5',
      '6/1 new 6',
      '7/1 new 7',
      '8/1 new 8',
      '9/1 new 9',
      '10/1 new 10',
      '11/1 new 11',
      '12/1 new 12',
    ]);
    assert.equal(
      wire(fake).some((f) => f.type === 'agent-disconnect'),
      false,
      'no DISCONNECT',
    );
    assert.equal(fake.ended, false, 'the connection is still open');
    assert.deepEqual(adopted.info.capabilities, ['pipelining']);
    assert.equal(adopter.stats.connectionsAdopted, 1);
    assert.equal(old.stats.connectionsDetached, 1);
  });

  test('a burst written as the hand-over starts loses no byte: every frame is ACKed exactly once', async (t) => {
    const h = await startAgent(t, {}, echoing('old'));
    const old = h.agent;
    const adopter = adopterAgent(t);
    const fake = await h.ready({ capabilities: 'pipelining' });
    const total = 3000;
    // Small writes from another turn of the loop while the old agent reads, detaches and hands over.
    let sent = 0;
    const writer = setInterval(() => {
      for (let i = 0; i < 50 && sent < total; i++) {
        sent++;
        fake.send(notifyFrame(sent, sent, echo(sent)));
      }
      if (sent === total) clearInterval(writer);
    }, 1);
    t.after(() => clearInterval(writer));
    await until(() => acks(fake).length > 200, 'the old agent answers');
    await old.handOver((d) => {
      const { state, unread } = overTheWire(d);
      assert.ok(adopter.adopt(d.socket, state, unread));
    });
    await until(() => acks(fake).length === total, `${total} ACKs`, 10_000);
    const seen = new Set<string>();
    for (const a of wire(fake).filter((f): f is AckFrame => f.type === 'ack')) {
      const n = Number(actionValue(a, 'n'));
      assert.equal(Number(a.streamId), n, 'stream id of the NOTIFY answered');
      assert.equal(Number(a.frameId), n, 'frame id of the NOTIFY answered');
      assert.ok(!seen.has(String(n)), `NOTIFY ${n} ACKed once`);
      seen.add(String(n));
    }
    assert.equal(seen.size, total);
    assert.ok(adopter.stats.acks > 0, 'the adopter answered some');
    assert.equal(
      wire(fake).some((f) => f.type === 'agent-disconnect'),
      false,
    );
  });

  test('a connection still in HELLO is not handed over: it gets DISCONNECT 0 as close() gives', async (t) => {
    const h = await startAgent(t);
    const fake = await h.connect();
    await until(() => h.agent.connections.size === 1, 'accepted');
    let handed = 0;
    await h.agent.handOver(() => {
      handed++;
    });
    assert.equal(handed, 0);
    const disconnect = await fake.waitFor((f) => f.type === 'agent-disconnect');
    assert.equal(statusOf(disconnect), 0);
  });

  test('in-flight NOTIFY that outlast the timeout: the connection is closed as close() does, not handed over', async (t) => {
    const gate = deferred();
    t.after(() => gate.resolve());
    const h = await startAgent(
      t,
      {},
      echoing('old', () => gate.promise),
    );
    const old = h.agent;
    const fake = await h.ready({ capabilities: 'pipelining' });
    fake.send(notifyFrame(1, 1, echo(1)));
    await until(() => old.stats.inFlight === 1, 'in flight');
    let handed = 0;
    await withTimeout(
      old.handOver(
        () => {
          handed++;
        },
        { timeout: 50 },
      ),
      2000,
      'hand-over bounded by its timeout',
    );
    assert.equal(handed, 0);
    assert.equal(statusOf(await fake.waitFor((f) => f.type === 'agent-disconnect')), 0);
  });

  test('a bad state or oversized unread bytes: the socket gets a DISCONNECT and is closed; adopt never throws', async (t) => {
    const good = { version: SPOP_VERSION, maxFrameSize: 16380, capabilities: ['pipelining'] };
    const bad: unknown[] = [
      null,
      'ready',
      {},
      { ...good, version: '1.0' },
      { ...good, maxFrameSize: 100 },
      { ...good, maxFrameSize: 1 << 30 },
      { ...good, maxFrameSize: 1.5 },
      { ...good, capabilities: ['pipelining', 'teleport'] },
      { ...good, capabilities: 'pipelining' },
      { ...good, capabilities: new Array(100).fill('pipelining') },
      { ...good, engineId: 'x'.repeat(10_000) },
      { ...good, engineId: 42 },
    ];
    const adopter = adopterAgent(t);
    for (const state of [...bad, good]) {
      const h = await startAgent(t, {}, echoing('old'));
      const donor = h.agent;
      const fake = await h.ready({ capabilities: 'pipelining' });
      let detached: DetachedConnection | undefined;
      await donor.handOver((d) => {
        detached = d;
      });
      assert.ok(detached);
      const unread = state === good ? Buffer.alloc(2 << 20) : Buffer.alloc(0);
      const refusedBefore = adopter.stats.adoptionsRefused;
      assert.equal(adopter.adopt(detached.socket, state, unread), undefined, `refused: ${JSON.stringify(state)?.slice(0, 80)}`);
      assert.equal(adopter.stats.adoptionsRefused, refusedBefore + 1);
      const disconnect = await fake.waitFor((f) => f.type === 'agent-disconnect');
      assert.notEqual(statusOf(disconnect), 0);
      await withTimeout(fake.closed, 3000, 'closed after the refusal');
    }
  });

  test('an adopter whose allowConnection refuses the peer (a restart that changed it) refuses the connection', async (t) => {
    const h = await startAgent(t, {}, echoing('old'));
    const adopter = adopterAgent(t, { allowConnection: () => false });
    const fake = await h.ready({ capabilities: 'pipelining' });
    let detached: DetachedConnection | undefined;
    await h.agent.handOver((d) => {
      detached = d;
    });
    assert.ok(detached);
    assert.equal(adopter.adopt(detached.socket, overTheWire(detached).state, detached.unread), undefined);
    assert.equal(adopter.stats.adoptionsRefused, 1);
    assert.notEqual(statusOf(await fake.waitFor((f) => f.type === 'agent-disconnect')), 0);
  });

  test('a Unix-socket connection is handed over as a TCP one is', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'spop-handover-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const old = new Agent({ logger: silent() });
    echoing('old')(old);
    t.after(() => old.close({ timeout: 0 }));
    const path = join(dir, 'agent.sock');
    await old.listen({ path });
    const adopter = adopterAgent(t);
    const fake = await connectTo(t, { path });
    await fake.hello({ capabilities: 'pipelining' });
    assert.equal((await fake.notify(1, 1, echo(1))).type, 'ack');
    await old.handOver((d) => {
      const { state, unread } = overTheWire(d);
      assert.ok(adopter.adopt(d.socket, state, unread));
    });
    fake.send(notifyFrame(2, 1, echo(2)));
    await until(() => acks(fake).length === 2, 'two ACKs');
    assert.deepEqual(acks(fake), ['1/1 old 1', '2/1 new 2']);
  });

  test('unread bytes that do not parse: a protocol error on the adopted connection, as from the socket', async (t) => {
    const h = await startAgent(t, {}, echoing('old'));
    const donor = h.agent;
    const adopter = adopterAgent(t);
    const fake = await h.ready();
    let detached: DetachedConnection | undefined;
    await donor.handOver((d) => {
      detached = d;
    });
    assert.ok(detached);
    const garbage = Buffer.from([0, 0, 0, 1, 0]); // LENGTH 1: below the smallest frame
    assert.ok(adopter.adopt(detached.socket, overTheWire(detached).state, garbage));
    const disconnect = await fake.waitFor((f: Frame) => f.type === 'agent-disconnect');
    assert.equal(statusOf(disconnect), 4);
    assert.equal(adopter.stats.protocolErrors, 1);
  });

  test('the state says what was negotiated, and crosses as JSON', async (t) => {
    const h = await startAgent(t, { maxFrameSize: 8192, async: true }, echoing('old'));
    const donor = h.agent;
    await h.ready({ capabilities: 'pipelining,async', maxFrameSize: 16384, engineId: 'engine-1' });
    let detached: DetachedConnection | undefined;
    await donor.handOver((d) => {
      detached = d;
    });
    assert.ok(detached);
    assert.deepEqual(overTheWire(detached).state, { version: SPOP_VERSION, maxFrameSize: 8192, capabilities: ['pipelining', 'async'], engineId: 'engine-1' });
    assert.equal(detached.unread.length, 0);
    detached.socket.destroy();
  });
});
