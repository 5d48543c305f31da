/** HAProxy's pipelined traffic played by FakeHaproxy connections, for the restart tests. */
import assert from 'node:assert/strict';
import { FrameFlags, type SpoeMessage } from 'spop';
import { FakeHaproxy } from 'spop/testkit';

/** A `check-client-ip` message, its address made of `n`. */
export function scoreMessage(n: number): SpoeMessage {
  return { name: 'check-client-ip', args: [{ name: 'ip', value: { type: 'ipv4', value: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` } }] };
}

/**
 * HAProxy under load on `connections` connections: each keeps `window` NOTIFY in flight (pipelining),
 * a new one as each ACK comes. Stopped, it says what was sent, ACKed (and how often), and anything else.
 */
export async function pipelinedLoad(port: number, connections: number, window: number) {
  const clients = await Promise.all(Array.from({ length: connections }, () => FakeHaproxy.connect({ port })));
  for (const c of clients) assert.equal((await c.hello({ capabilities: 'pipelining' })).type, 'agent-hello');
  let sending = true;
  let sent = 0;
  const acked = new Map<string, number>();
  /** The longest a NOTIFY waited for its ACK, in ms. */
  let slowest = 0;
  const loops = clients.map(async (client, index) => {
    let next = 1;
    let inFlight = 0;
    const sentAt = new Map<number, number>();
    const send = (): void => {
      const streamId = index * 1_000_000 + next++;
      sent++;
      inFlight++;
      sentAt.set(streamId, performance.now());
      client.send({ type: 'notify', flags: FrameFlags.FIN, streamId, frameId: 1, messages: [scoreMessage(streamId)] });
    };
    for (let i = 0; i < window; i++) send();
    while (inFlight > 0) {
      const ack = await client.waitFor((f) => f.type !== 'agent-hello', 10_000);
      if (ack.type !== 'ack') throw new Error(`connection ${index} got ${ack.type}`);
      const key = `${String(ack.streamId)}/${String(ack.frameId)}`;
      acked.set(key, (acked.get(key) ?? 0) + 1);
      slowest = Math.max(slowest, performance.now() - (sentAt.get(Number(ack.streamId)) ?? Number.POSITIVE_INFINITY));
      sentAt.delete(Number(ack.streamId));
      inFlight--;
      if (sending) send();
    }
  });
  return {
    clients,
    sent: () => sent,
    async stop() {
      sending = false;
      const results = await Promise.allSettled(loops);
      for (const c of clients) c.close();
      return {
        sent,
        acked,
        slowest,
        errors: results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : [])),
        ended: clients.filter((c) => c.ended).length,
      };
    },
  };
}
