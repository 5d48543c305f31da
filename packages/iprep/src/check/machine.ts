/**
 * How fast this machine answers SPOP: `spoa check` serves the seed's handler on a loopback port and
 * times NOTIFY round trips to it, one at a time, so that a `timeout processing` too tight for the
 * machine (a slow or busy host, a throttled container) is found before HAProxy finds it at run time.
 */
import { Agent, silentLogger } from 'spop';
import { FakeHaproxy } from 'spop/testkit';
import { CHECK_CLIENT_IP, randomScoreHandler } from '../random-score.js';

export interface RoundTrip {
  /** NOTIFY frames timed. */
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export const DEFAULT_ROUND_TRIPS = 1000;
/** The measure gives up after this long (a machine this slow is reported as such). */
export const MEASURE_TIMEOUT_MS = 10_000;

/** Times `count` NOTIFY/ACK round trips over loopback TCP to an agent in this process, after a short warm-up. */
export async function measureRoundTrip(count = DEFAULT_ROUND_TRIPS): Promise<RoundTrip> {
  const agent = new Agent({ logger: silentLogger }).message(CHECK_CLIENT_IP, randomScoreHandler());
  const address = await agent.listen({ port: 0, host: '127.0.0.1' });
  if (typeof address === 'string') throw new Error('unexpected Unix socket address');
  const client = await FakeHaproxy.connect({ port: address.port });
  const deadline = performance.now() + MEASURE_TIMEOUT_MS;
  const times: number[] = [];
  try {
    await client.hello();
    const messages = [{ name: CHECK_CLIENT_IP, args: [{ name: 'src', value: { type: 'ipv4', value: '192.0.2.1' } as const }] }];
    const warmUp = Math.min(200, count);
    for (let i = 1; i <= warmUp + count && performance.now() < deadline; i++) {
      const started = performance.now();
      await client.notify(i, 1, messages);
      if (i > warmUp) times.push(performance.now() - started);
    }
  } finally {
    client.close();
    await agent.close({ timeout: 100 });
  }
  if (times.length === 0) throw new Error(`no round trip completed within ${MEASURE_TIMEOUT_MS}ms`);
  times.sort((a, b) => a - b);
  const at = (q: number): number => times[Math.min(times.length - 1, Math.floor(q * times.length))] as number;
  return { count: times.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: times[times.length - 1] as number };
}
