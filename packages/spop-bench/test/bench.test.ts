/**
 * The load generator behind spop-bench: closed and open loops against an
 * in-process agent, ACK validation, and the command's option parsing. These
 * check what it counts, never how fast anything is (that is for the benchmarks).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setVar, T } from 'spop';
import { type ProcessStats, type TreeStats, parseBenchArgs, runLoad, startFloorAgent, treeCpuDelta, treeSystemDelta } from '../src/index.js';
import { UsageError } from '../src/cli.js';
import { startAgent } from './agent.js';

describe('runLoad: closed loop', () => {
  it('keeps connections x depth frames in flight and validates every ACK', async (t) => {
    const h = await startAgent(t, (a) => a.message('check-client-ip', () => setVar('sess', 'ip_score', T.uint32(50))));
    const result = await runLoad({ target: h.target, connections: 3, depth: 4, durationMs: 300, warmupMs: 100, family: 'mixed' });
    assert.equal(result.rate, undefined);
    assert.equal(result.errors, 0, result.errorSamples.join('\n'));
    assert.equal(result.unsent, 0);
    assert.ok(result.acks > 100, `only ${result.acks} ACKs`);
    assert.equal(result.totalAcks, result.totalSent, 'every frame sent was answered');
    assert.equal(result.latency.count, result.acks);
    assert.ok(result.latency.p50Us > 0 && result.latency.p50Us <= result.latency.p99Us);
  });

  it('counts an ACK whose score is out of range as invalid', async (t) => {
    const h = await startAgent(t, (a) => a.message('check-client-ip', () => setVar('sess', 'ip_score', T.uint32(101))));
    const result = await runLoad({ target: h.target, durationMs: 100, warmupMs: 0 });
    assert.ok(result.invalidAcks > 0);
    assert.equal(result.acks, 0);
    assert.match(result.errorSamples[0] ?? '', /bad ACK payload/);
  });

  it('counts an ACK that sets another variable as invalid', async (t) => {
    const floor = await startFloorAgent({ variable: 'other' });
    t.after(() => floor.close());
    const port = typeof floor.address === 'string' ? 0 : floor.address.port;
    const result = await runLoad({ target: { port }, durationMs: 100, warmupMs: 0 });
    assert.ok(result.invalidAcks > 0);
    assert.equal(result.acks, 0);
  });
});

describe('runLoad: source clients', () => {
  /** An agent that counts the NOTIFY frames of each source address. */
  async function countingAgent(t: Parameters<typeof startAgent>[0]): Promise<{ target: { host: string; port: number }; seen: Map<string, number> }> {
    const seen = new Map<string, number>();
    const h = await startAgent(t, (a) =>
      a.message('check-client-ip', (message) => {
        const source = String(message.value(0));
        seen.set(source, (seen.get(source) ?? 0) + 1);
        return setVar('sess', 'ip_score', T.uint32(1));
      }),
    );
    return { target: h.target, seen };
  }

  it('draws every address at random by default: almost no address comes twice', async (t) => {
    const { target, seen } = await countingAgent(t);
    const result = await runLoad({ target, connections: 2, depth: 8, durationMs: 300, warmupMs: 0 });
    assert.equal(result.errors, 0, result.errorSamples.join('\n'));
    assert.ok(seen.size > 0.99 * result.totalSent, `${seen.size} distinct of ${result.totalSent}`);
  });

  it('draws from a fixed set of clients, uniformly without an exponent', async (t) => {
    const { target, seen } = await countingAgent(t);
    const result = await runLoad({ target, connections: 2, depth: 8, durationMs: 300, warmupMs: 0, clients: 10, family: 'mixed' });
    assert.equal(result.errors, 0, result.errorSamples.join('\n'));
    assert.ok(result.totalSent > 500, `only ${result.totalSent} frames`);
    assert.equal(seen.size, 10, [...seen.keys()].join(' '));
    const counts = [...seen.values()].sort((a, b) => b - a);
    assert.ok((counts[0] as number) < 2.5 * (counts[9] as number), `uneven uniform draw: ${counts.join(' ')}`);
  });

  it('follows a Zipf law over the clients: the most popular one takes its share', async (t) => {
    const { target, seen } = await countingAgent(t);
    const result = await runLoad({ target, connections: 2, depth: 8, durationMs: 400, warmupMs: 0, clients: 1000, zipf: 1 });
    assert.equal(result.errors, 0, result.errorSamples.join('\n'));
    const total = result.totalSent;
    const counts = [...seen.values()].sort((a, b) => b - a);
    // Zipf(1) over 1,000 clients: the first has 1/H(1000) = 13.4% of the frames, the second half of that.
    const top = (counts[0] as number) / total;
    assert.ok(top > 0.1 && top < 0.17, `top client share ${top}`);
    assert.ok(seen.size <= 1000);
    const second = (counts[1] as number) / total;
    assert.ok(second > 0.045 && second < 0.09, `second client share ${second}`);
  });

  it('rejects a client count or an exponent out of range', async () => {
    await assert.rejects(runLoad({ target: { port: 1 }, clients: 0 }), /clients must be/);
    await assert.rejects(runLoad({ target: { port: 1 }, zipf: 1 }), /zipf needs clients/);
    await assert.rejects(runLoad({ target: { port: 1 }, clients: 10, zipf: -1 }), /zipf must be/);
  });
});

describe('runLoad: longest gap between answers', () => {
  it('reports the longest time the agent left without an answer during the window', async (t) => {
    let calls = 0;
    const h = await startAgent(t, (a) =>
      a.message('check-client-ip', () => {
        // One stall of 120 ms in the middle of the window, like a long GC pause.
        if (++calls === 300) {
          const until = performance.now() + 120;
          while (performance.now() < until) {}
        }
        return setVar('sess', 'ip_score', T.uint32(1));
      }),
    );
    const result = await runLoad({ target: h.target, connections: 2, depth: 4, durationMs: 600, warmupMs: 0 });
    assert.equal(result.errors, 0, result.errorSamples.join('\n'));
    assert.ok(calls > 400, `only ${calls} frames: the stall was not inside the window`);
    assert.ok(result.maxAckGapMs >= 115 && result.maxAckGapMs < 400, `longest gap ${result.maxAckGapMs} ms`);
  });

  it('stays small when nothing stalls', async (t) => {
    const h = await startAgent(t, (a) => a.message('check-client-ip', () => setVar('sess', 'ip_score', T.uint32(1))));
    const result = await runLoad({ target: h.target, connections: 2, depth: 4, durationMs: 300, warmupMs: 100 });
    assert.ok(result.maxAckGapMs > 0 && result.maxAckGapMs < 100, `longest gap ${result.maxAckGapMs} ms`);
  });
});

describe('runLoad: open loop (rate)', () => {
  it('offers the rate, spread over the connections, and no more', async (t) => {
    let answered = 0;
    const h = await startAgent(t, (a) =>
      a.message('check-client-ip', () => {
        answered++;
        return setVar('sess', 'ip_score', T.uint32(1));
      }),
    );
    // Closed, this agent answers tens of thousands a second: an open loop holds it at the rate.
    const result = await runLoad({ target: h.target, connections: 4, depth: 2, rate: 1000, durationMs: 1000, warmupMs: 200 });
    assert.equal(result.rate, 1000);
    assert.equal(result.errors, 0, result.errorSamples.join('\n'));
    assert.equal(result.unsent, 0);
    assert.ok(result.throughput > 900 && result.throughput < 1100, `throughput ${result.throughput}`);
    assert.ok(result.totalSent > 1000 && result.totalSent < 1350, `sent ${result.totalSent} in 1.2 s`);
    assert.equal(answered, result.totalSent);
  });

  it('counts the time a due frame waits for a busy slot in its latency', async (t) => {
    // One slot, 20 ms per answer, 200 frames due a second: frames queue behind each other.
    const h = await startAgent(t, (a) =>
      a.message('check-client-ip', async () => {
        await sleep(20);
        return setVar('sess', 'ip_score', T.uint32(1));
      }),
    );
    const result = await runLoad({ target: h.target, connections: 1, depth: 1, rate: 200, durationMs: 500, warmupMs: 0 });
    assert.equal(result.errors, 0, result.errorSamples.join('\n'));
    assert.ok(result.throughput < 60, `throughput ${result.throughput}: the agent cannot answer more than 50/s`);
    // A closed loop would report about 20 ms for every frame; the queue makes the later ones far older.
    assert.ok(result.latency.maxUs > 150_000, `max latency ${result.latency.maxUs} µs`);
  });

  it('drops frames beyond the backlog limit and counts them', async (t) => {
    const h = await startAgent(t, (a) => a.message('check-client-ip', () => new Promise(() => {})));
    const result = await runLoad({
      target: h.target,
      connections: 1,
      depth: 1,
      rate: 50_000,
      durationMs: 200,
      warmupMs: 0,
      drainTimeoutMs: 50,
    });
    assert.equal(result.acks, 0);
    assert.equal(result.unanswered, 1, 'the one frame sent was never answered');
    assert.ok(result.unsent > 1000, `unsent ${result.unsent}: 10,000 fell due, 4,096 may wait`);
  });

  it('rejects a rate that is not a positive number', async () => {
    await assert.rejects(runLoad({ target: { port: 1 }, rate: 0 }), /rate must be/);
    await assert.rejects(runLoad({ target: { port: 1 }, rate: Number.NaN }), /rate must be/);
  });
});

describe('spop-bench options', () => {
  it('reads --rate as frames per second, absent by default', () => {
    const parsed = parseBenchArgs(['--floor', '-c', '256', '--rate', '20000']);
    assert.ok(parsed !== 'help');
    assert.equal(parsed.rate, 20000);
    assert.equal(parsed.connections, 256);
    const closed = parseBenchArgs(['--floor']);
    assert.ok(closed !== 'help');
    assert.equal(closed.rate, undefined);
  });

  it('reads --clients and --zipf, absent by default', () => {
    const parsed = parseBenchArgs(['--floor', '--clients', '100000', '--zipf', '1.1']);
    assert.ok(parsed !== 'help');
    assert.equal(parsed.clients, 100000);
    assert.equal(parsed.zipf, 1.1);
    const random = parseBenchArgs(['--floor']);
    assert.ok(random !== 'help');
    assert.equal(random.clients, undefined);
    assert.equal(random.zipf, undefined);
    assert.throws(() => parseBenchArgs(['--floor', '--zipf', '1']), /--zipf needs --clients/);
    assert.throws(() => parseBenchArgs(['--floor', '--clients', '0']), /--clients must be an integer from 1/);
  });

  it('names the option and the range of a bad value', () => {
    assert.throws(
      () => parseBenchArgs(['--floor', '--rate', '0']),
      (err: unknown) => err instanceof UsageError && /--rate must be a number from 1/.test(err.message),
    );
    assert.throws(() => parseBenchArgs(['--floor', '--rate', 'fast']), UsageError);
    assert.throws(() => parseBenchArgs(['-c', '4']), /nothing to measure/);
  });
});

describe('CPU time of a process tree', () => {
  const stats = (pid: number, userMs: number, systemMs: number): ProcessStats => ({
    pid,
    ppid: 1,
    userMs,
    systemMs,
    cpuMs: userMs + systemMs,
    rssBytes: 0,
    peakRssBytes: 0,
    startTicks: 0,
  });
  const tree = (...processes: ProcessStats[]): TreeStats => ({ processes, cpuMs: 0, rssBytes: 0 });

  it('splits the kernel share from the total, per pid, a process born in between counting from zero', () => {
    const before = tree(stats(10, 100, 40), stats(11, 5, 5));
    const after = tree(stats(10, 130, 50), stats(11, 6, 9), stats(12, 2, 3));
    assert.equal(treeCpuDelta(before, after), 30 + 10 + 1 + 4 + 2 + 3);
    assert.equal(treeSystemDelta(before, after), 10 + 4 + 3);
  });
});
