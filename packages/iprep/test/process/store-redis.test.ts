/**
 * The Redis stores against a real redis-server, then against a 3-master Redis Cluster: the shared
 * contract, then what only sharing brings (several agents, disconnections, trimmed logs, Redis going
 * away). Fails if redis-server is missing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import type { Logger } from 'spop';
import { encodeDecision } from '../../src/store/codec.js';
import { createStores } from '../../src/store/index.js';
import { MemoryCounterStore } from '../../src/store/memory.js';
import { RedisCounterStore, RedisDecisionStore, type RedisStoreOptions } from '../../src/store/redis.js';
import type { DecisionChange } from '../../src/types.js';
import { CuttableProxy, RedisClusterServers, RedisServer, redisBinary, redisCli, requireRedisBinaries } from 'test-support/redis';
import { watchEventLoop } from 'test-support/event-loop';
import { waitFor } from 'test-support/wait';
import { describeCounterStoreContract, describeDecisionStoreContract, decision, FakeClock, keysOf, record, T0 } from '../store-contract.js';

// Its own test, so a machine without Redis counts a failure with the fix in its message, not only cancellations.
it('redis-server and redis-cli are installed', () => {
  requireRedisBinaries();
});

let prefixes = 0;
/** Each test gets its own keys. */
const freshPrefix = (): string => `t${process.pid}x${prefixes++}`;

function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (message: string, fields?: object) =>
    lines.push(`${level} ${message}${fields === undefined ? '' : ` ${JSON.stringify(fields)}`}`);
  return { logger: { debug() {}, info: push('info'), warn: push('warn'), error: push('error') }, lines };
}

interface Target {
  /** What a store is given to reach Redis. */
  readonly connection: { readonly url: string } | { readonly nodes: readonly string[] };
  /** redis-cli, following Cluster redirects. */
  cli(args: readonly string[]): string;
}

/** Everything that holds for a single server and a Cluster alike. */
function sharedRedisSuites(name: string, target: () => Target): void {
  describeDecisionStoreContract(name, ({ now, pruneIntervalMs }) => ({
    store: new RedisDecisionStore({ ...target().connection, prefix: freshPrefix(), now, pruneIntervalMs, blockMs: 200 }),
    // The store's own writes come back through the log within a few ms; this lets any duplicate show.
    settle: () => sleep(100),
  }));

  describeCounterStoreContract(name, ({ now }) => new RedisCounterStore({ ...target().connection, prefix: freshPrefix(), now }));

  describe(`RedisDecisionStore between agents: ${name}`, () => {
    const open: { close(): Promise<void> }[] = [];
    after(async () => {
      await Promise.all(open.map((s) => s.close()));
    });
    const agent = async (options: Partial<RedisStoreOptions> & { prefix: string }): Promise<RedisDecisionStore> => {
      const store = new RedisDecisionStore({ ...target().connection, blockMs: 200, ...options });
      open.push(store);
      await store.start();
      return store;
    };

    it("two agents see each other's decisions within a second, each change emitted once", async () => {
      const prefix = freshPrefix();
      const a = await agent({ prefix, agentId: 'a' });
      const b = await agent({ prefix, agentId: 'b' });
      const seenByB = record(b);
      const x = decision('192.0.2.10');
      const started = Date.now();
      await a.put(x);
      // Typically a few ms (XREAD BLOCK returns as soon as the entry is added); slack for a loaded machine.
      await waitFor('b to see the put', () => b.snapshot().length === 1, 2000);
      assert.ok(Date.now() - started < 2000);
      await b.delete(x.key);
      await waitFor('a to see the delete', () => a.snapshot().length === 0, 2000);
      await sleep(100);
      assert.deepEqual(seenByB, [
        { op: 'put', decision: x },
        { op: 'delete', key: x.key },
      ]);
      const { syncAgeMs, changeLagMs, ...health } = a.health();
      assert.deepEqual(health, { kind: 'redis', up: true });
      // The log is read every blockMs (200 ms here); b's delete reached a within the wait above.
      assert.ok(syncAgeMs !== undefined && syncAgeMs < 1500, `sync age ${syncAgeMs}`);
      assert.ok(changeLagMs !== undefined && changeLagMs >= 0 && changeLagMs < 2000, `change lag ${changeLagMs}`);
    });

    it('a late agent starts from the snapshot; malformed data in redis is skipped with a warning', async () => {
      const prefix = freshPrefix();
      const a = await agent({ prefix });
      await a.put(decision('192.0.2.11'));
      target().cli(['HSET', `{${prefix}}:dec`, 'ip:192.0.2.12', '{not json']);
      const { logger, lines } = captureLogger();
      const late = await agent({ prefix, logger });
      assert.deepEqual(keysOf(late), ['ip:192.0.2.11']);
      assert.ok(
        lines.some((l) => l.includes('skipped an invalid decision')),
        lines.join('\n'),
      );
      target().cli(['XADD', `{${prefix}}:decstream`, '*', 'op', 'bogus']);
      await a.put(decision('192.0.2.13'));
      await waitFor('the late agent to get the put after the bad entry', () => late.snapshot().length === 2);
      assert.ok(
        lines.some((l) => l.includes('malformed change log entry')),
        lines.join('\n'),
      );
    });

    it('decisions in redis that disagree with their key, are too broad, too big or absurd are skipped with a warning', async () => {
      const prefix = freshPrefix();
      const a = await agent({ prefix });
      const json = (value: string, overrides: Record<string, unknown> = {}): string => JSON.stringify({ ...decision(value), ...overrides });
      const bad: [field: string, text: string, why: RegExp][] = [
        // The field names one address, the stored decision covers the whole Internet.
        ['ip:192.0.2.50', json('192.0.2.50', { scope: 'range', value: '0.0.0.0/0' }), /disagree/],
        ['ip:192.0.2.51', json('192.0.2.51', { value: '192.0.2.52' }), /disagree/],
        ['ip:192.0.2.53', json('192.0.2.53', { value: '192.0.2.053' }), /value/],
        ['range:0.0.0.0/0', json('0.0.0.0/0', { key: 'range:0.0.0.0/0', scope: 'range' }), /broad/],
        ['range:2000::/3', json('2000::/3', { key: 'range:2000::/3', scope: 'range' }), /broad/],
        ['ip:192.0.2.54', json('192.0.2.54', { expiresAt: 1e300 }), /expiresAt/],
        ['ip:192.0.2.55', json('192.0.2.55', { expiresAt: T0 - 1 }), /expiresAt/],
        ['ip:192.0.2.56', json('192.0.2.56', { createdAt: -1 }), /createdAt/],
        ['ip:192.0.2.57', json('192.0.2.57', { score: 1000 }), /score/],
        ['ip:192.0.2.58', json('192.0.2.58', { category: 'x\r\nSet-Cookie: a=b' }), /category/],
        ['ip:192.0.2.59', json('192.0.2.59', { reason: 'x'.repeat(100_000) }), /longer than/],
      ];
      for (const [field, text] of bad) target().cli(['HSET', `{${prefix}}:dec`, field, text]);
      await a.put(decision('192.0.2.60'));
      const { logger, lines } = captureLogger();
      const late = await agent({ prefix, logger });
      assert.deepEqual(keysOf(late), ['ip:192.0.2.60'], 'only the sound decision is loaded');
      for (const [field, , why] of bad) {
        assert.ok(
          lines.some((l) => l.includes('skipped an invalid decision') && l.includes(field) && why.test(l)),
          `${field} ${why}:\n${lines.join('\n')}`,
        );
      }
      // The same through the change log.
      lines.length = 0;
      for (const [field, text] of bad.slice(0, 4)) target().cli(['XADD', `{${prefix}}:decstream`, '*', 'op', 'put', 'key', field, 'd', text, 'agent', 'x']);
      await a.put(decision('192.0.2.61'));
      await waitFor('the late agent to get the sound put after the bad entries', () => late.snapshot().length === 2);
      assert.deepEqual(keysOf(late), ['ip:192.0.2.60', 'ip:192.0.2.61']);
      assert.equal(lines.filter((l) => l.includes('skipped an invalid decision')).length, 4, lines.join('\n'));
      // This agent does not write what it would not read.
      await assert.rejects(a.put(decision('0.0.0.0/0', { key: 'range:0.0.0.0/0', scope: 'range' })), /broad/);
    });

    it('an agent whose connections are killed resumes from its log position', async () => {
      const prefix = freshPrefix();
      const a = await agent({ prefix, agentId: `killed${prefix}` });
      const b = await agent({ prefix });
      const seenByA = record(a);
      await b.put(decision('192.0.2.14'));
      await waitFor('a to see the first put', () => a.snapshot().length === 1);
      const killed = killClients(target(), `iprep:killed${prefix}:`);
      assert.ok(killed >= 2, `killed ${killed} connections`);
      await b.put(decision('192.0.2.15'));
      await b.delete('ip:192.0.2.14');
      await waitFor('a to catch up', () => keysOf(a).join() === 'ip:192.0.2.15', 5000);
      assert.deepEqual(describeChanges(seenByA), ['put ip:192.0.2.14', 'put ip:192.0.2.15', 'delete ip:192.0.2.14']);
    });

    it("concurrent writes from two agents converge, and each agent's changes replay to its view", async () => {
      const op = fc.record({ agent: fc.constantFrom(0, 1), host: fc.integer({ min: 1, max: 6 }), action: fc.constantFrom('deny', 'captcha', 'delete') });
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
          const prefix = freshPrefix();
          const agents = [await agent({ prefix, agentId: 'x' }), await agent({ prefix, agentId: 'y' })];
          const replayed = agents.map((store) => {
            const view = new Map<string, string>();
            store.onChange((c) => (c.op === 'put' ? view.set(c.decision.key, c.decision.action) : view.delete(c.key)));
            return view;
          });
          // All writes in flight at once, as a busy agent would issue them.
          await Promise.all(
            ops.map(({ agent: i, host, action }) => {
              const store = agents[i]!;
              return action === 'delete' ? store.delete(`ip:192.0.2.${host}`) : store.put(decision(`192.0.2.${host}`, { action }));
            }),
          );
          const inRedis = (): string => {
            const lines = target()
              .cli(['HGETALL', `{${prefix}}:dec`])
              .split('\n')
              .filter((line) => line !== '');
            const pairs: string[] = [];
            for (let i = 0; i + 1 < lines.length; i += 2) pairs.push(`${lines[i]}=${(JSON.parse(lines[i + 1]!) as { action: string }).action}`);
            return pairs.sort().join();
          };
          const viewOf = (store: RedisDecisionStore): string =>
            store
              .snapshot()
              .map((d) => `${d.key}=${d.action}`)
              .sort()
              .join();
          // Usually a few ms; under load, command timeouts send writes through the replay queue.
          await waitFor(
            () =>
              `both views to match redis: ${inRedis()} | ${agents.map((a) => `${viewOf(a)} ${JSON.stringify(a.health())} pending ${a.pendingWrites}`).join(' | ')}`,
            () => viewOf(agents[0]!) === inRedis() && viewOf(agents[1]!) === inRedis(),
            10_000,
          );
          for (const [i, store] of agents.entries()) {
            const expected = new Map(store.snapshot().map((d) => [d.key, d.action]));
            assert.deepEqual(replayed[i], expected, `agent ${i}: its onChange events rebuild its snapshot`);
          }
          await Promise.all(agents.map((a) => a.close()));
        }),
        { numRuns: 8 },
      );
    });

    it('expired decisions are deleted from redis by one janitor, and every agent hears of it', async () => {
      const prefix = freshPrefix();
      const clock = new FakeClock();
      const a = await agent({ prefix, agentId: 'a', now: clock.now, pruneIntervalMs: 20 });
      const b = await agent({ prefix, agentId: 'b', now: clock.now, pruneIntervalMs: 20 });
      await a.put(decision('192.0.2.30', { expiresAt: T0 + 500 }));
      await a.put(decision('192.0.2.31'));
      await waitFor('b to see both', () => b.snapshot().length === 2);
      const seenByB = record(b);
      clock.advance(500);
      await waitFor(
        'the hash to lose the expired field',
        () =>
          target()
            .cli(['HLEN', `{${prefix}}:dec`])
            .trim() === '1',
      );
      assert.match(target().cli(['GET', `{${prefix}}:janitor`]), /^[ab]$/m, 'one agent holds the janitor lock');
      const lastEntry = target().cli(['XREVRANGE', `{${prefix}}:decstream`, '+', '-', 'COUNT', '1']);
      assert.match(lastEntry, /^del$/m, 'the log carries the delete');
      await sleep(100);
      assert.deepEqual(seenByB, [{ op: 'delete', key: 'ip:192.0.2.30' }], 'one delete, not one per source');
      assert.deepEqual(keysOf(a), ['ip:192.0.2.31']);
    });
  });

  describe(`RedisCounterStore across agents: ${name}`, () => {
    it('counts from two agents add up (agent clock and redis clock)', async () => {
      const prefix = freshPrefix();
      const clock = () => T0 + 90_000_000;
      const a = new RedisCounterStore({ ...target().connection, prefix, now: clock });
      const b = new RedisCounterStore({ ...target().connection, prefix, now: clock });
      const c = new RedisCounterStore({ ...target().connection, prefix });
      const d = new RedisCounterStore({ ...target().connection, prefix });
      try {
        await Promise.all([a.start(), b.start(), c.start(), d.start()]);
        const keys = ['ip:192.0.2.60', 'ip:192.0.2.61', 'ip:2001:db8::', 'ip:198.51.100.0']; // several slots on a Cluster
        const first = await a.flush(new Map(keys.map((k) => [k, 3])), 60_000, clock());
        assert.deepEqual([...first.values()], [3, 3, 3, 3]);
        const second = await b.flush(new Map(keys.map((k) => [k, 4])), 60_000, clock());
        assert.deepEqual([...second.values()], [7, 7, 7, 7]);
        // Redis' clock: the agents' own `now` does not matter. A bucket edge between the two calls can
        // round the first agent's 3 down to 2, hence the range.
        await c.flush(new Map([['ip:192.0.2.62', 3]]), 3_600_000, 0);
        const sum = (await d.flush(new Map([['ip:192.0.2.62', 4]]), 3_600_000, 12345)).get('ip:192.0.2.62');
        assert.ok(sum === 7 || sum === 6, `got ${sum}`);
        assert.deepEqual(d.health(), { kind: 'redis', up: true });
      } finally {
        await Promise.all([a, b, c, d].map((s) => s.close()));
      }
    });

    it('a flush of 25,000 clients (more than a connection leaves unanswered) gets every count from redis', async () => {
      const prefix = freshPrefix();
      const clock = () => T0 + 90_000_000;
      // What is asserted is the count of commands in flight, not their speed: a loaded machine gets time.
      const commandTimeoutMs = 5_000;
      const a = new RedisCounterStore({ ...target().connection, prefix, now: clock, commandTimeoutMs });
      const b = new RedisCounterStore({ ...target().connection, prefix, now: clock, commandTimeoutMs });
      try {
        await Promise.all([a.start(), b.start()]);
        const keys = Array.from({ length: 25_000 }, (_, i) => `ip:10.1.${i >> 8}.${i & 255}`);
        await a.flush(new Map(keys.map((k) => [k, 1])), 60_000, clock());
        const totals = await b.flush(new Map(keys.map((k) => [k, 2])), 60_000, clock());
        const local = keys.filter((k) => totals.get(k) !== 3);
        assert.equal(local.length, 0, `${local.length} clients kept their local count`);
        assert.equal(b.health().up, true);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('garbage in one counter bucket does not put the counter store down; the bucket is overwritten', async () => {
      const prefix = freshPrefix();
      const now = T0 + 90_000_000;
      const windowMs = 60_000;
      const bucket = Math.floor(now / windowMs);
      const { logger, lines } = captureLogger();
      const store = new RedisCounterStore({ ...target().connection, prefix, now: () => now, logger });
      const base = (client: string): string => `${prefix}:c:{${client}}`;
      target().cli(['SET', `${base('ip:192.0.2.81')}:${bucket}`, 'garbage']);
      target().cli(['HSET', `${base('ip:192.0.2.82')}:${bucket}`, 'field', 'value']);
      target().cli(['SET', `${base('ip:192.0.2.83')}:${bucket - 1}`, 'not a number']);
      target().cli(['SET', `${base('ip:192.0.2.84')}:${bucket - 1}`, 'inf']);
      target().cli(['HSET', `${base('ip:192.0.2.85')}:${bucket - 1}`, 'field', 'value']);
      try {
        await store.start();
        const keys = ['ip:192.0.2.80', 'ip:192.0.2.81', 'ip:192.0.2.82', 'ip:192.0.2.83', 'ip:192.0.2.84', 'ip:192.0.2.85'];
        const first = await store.flush(new Map(keys.map((k, i) => [k, i + 1])), windowMs, now);
        assert.deepEqual([...first.values()], [1, 2, 3, 4, 5, 6], 'garbage counts as nothing');
        assert.deepEqual(store.health(), { kind: 'redis', up: true }, lines.join('\n'));
        const second = await store.flush(new Map(keys.map((k) => [k, 10])), windowMs, now);
        assert.deepEqual([...second.values()], [11, 12, 13, 14, 15, 16], 'the repaired buckets count from there');
        assert.equal(
          target()
            .cli(['GET', `${base('ip:192.0.2.81')}:${bucket}`])
            .trim(),
          '12',
        );
      } finally {
        await store.close();
      }
    });

    it('computes the same sliding window as the memory store (Lua against TypeScript)', async () => {
      const step = fc.record({ advance: fc.integer({ min: 0, max: 1500 }), key: fc.constantFrom('a', 'b'), delta: fc.integer({ min: 0, max: 40 }) });
      let now = T0;
      const redisStore = new RedisCounterStore({ ...target().connection, prefix: freshPrefix(), now: () => now });
      await redisStore.start();
      try {
        await fc.assert(
          fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 15 }), async (steps) => {
            const memory = new MemoryCounterStore();
            const run = `${prefixes++}:`; // fresh keys per run
            now += 10_000_000;
            for (const { advance, key, delta } of steps) {
              now += advance;
              const deltas = new Map([[run + key, delta]]);
              assert.deepEqual(await redisStore.flush(deltas, 1000, now), await memory.flush(deltas, 1000, now));
            }
          }),
          { numRuns: 40 },
        );
      } finally {
        await redisStore.close();
      }
    });
  });

  describe(`createStores: ${name}`, () => {
    it('builds redis stores from the configuration and reports their health', async () => {
      const stores = createStores({ type: 'redis', ...target().connection, prefix: freshPrefix() }, { agentId: 'cfg' });
      try {
        await stores.decisions.start();
        await stores.counters.start();
        await stores.decisions.put(decision('192.0.2.70'));
        assert.equal(stores.decisions.snapshot().length, 1);
        await stores.counters.flush(new Map([['x', 1]]), 1000, Date.now());
        const { syncAgeMs, changeLagMs: _lag, ...health } = stores.health();
        assert.deepEqual(health, { kind: 'redis', up: true, pendingWrites: 0, droppedWrites: 0 });
        assert.ok(syncAgeMs !== undefined && syncAgeMs < 2000, `the decisions' sync age comes through: ${syncAgeMs}`);
      } finally {
        await stores.close();
      }
    });
  });
}

/** Writes `count` decisions (10.x.y.z) straight into the hash of `prefix`, as redis-cli --pipe does. */
function fillDecisions(port: number, prefix: string, count: number): void {
  const hash = `{${prefix}}:dec`;
  const bulk = (text: string): string => `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
  const commands: string[] = [];
  for (let i = 0; i < count; i++) {
    const d = decision(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    commands.push(`*4\r\n${bulk('HSET')}${bulk(hash)}${bulk(d.key)}${bulk(encodeDecision(d))}`);
  }
  const result = spawnSync(redisBinary('redis-cli') ?? 'redis-cli', ['-h', '127.0.0.1', '-p', String(port), '--pipe'], {
    input: commands.join(''),
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.status !== 0) throw new Error(`redis-cli --pipe failed: ${result.stderr || result.stdout}`);
}

function describeChanges(changes: readonly DecisionChange[]): string[] {
  return changes.map((c) => (c.op === 'put' ? `put ${c.decision.key}` : `delete ${c.key}`));
}

/** Kills, on every server of the target, the connections whose name starts with `namePrefix`. */
function killClients(target: Target, namePrefix: string): number {
  let killed = 0;
  for (const port of targetPorts(target)) {
    for (const line of redisCli(port, ['CLIENT', 'LIST']).split('\n')) {
      const id = /^id=(\d+) /.exec(line)?.[1];
      if (id && line.includes(` name=${namePrefix}`)) {
        redisCli(port, ['CLIENT', 'KILL', 'ID', id]);
        killed++;
      }
    }
  }
  return killed;
}

function targetPorts(target: Target): number[] {
  const urls = 'url' in target.connection ? [target.connection.url] : target.connection.nodes;
  return urls.map((url) => Number(new URL(url).port));
}

describe('single redis server', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis?.destroy();
  });
  const target = (): Target => ({ connection: { url: redis.url }, cli: (args) => redisCli(redis.port, args) });

  sharedRedisSuites('redis', target);

  it('a closing janitor gives its lock up and another agent takes the job over', async () => {
    const prefix = freshPrefix();
    const clock = new FakeClock();
    const first = new RedisDecisionStore({ url: redis.url, prefix, agentId: 'first', now: clock.now, pruneIntervalMs: 20 });
    await first.start();
    await waitFor('first to take the janitor lock', () => redisCli(redis.port, ['GET', `{${prefix}}:janitor`]).trim() === 'first');
    const second = new RedisDecisionStore({ url: redis.url, prefix, agentId: 'second', now: clock.now, pruneIntervalMs: 20 });
    try {
      await second.start();
      await first.close();
      await waitFor('second to take the lock over', () => redisCli(redis.port, ['GET', `{${prefix}}:janitor`]).trim() === 'second');
      await second.put(decision('192.0.2.95', { expiresAt: T0 + 10 }));
      clock.advance(10);
      await waitFor('the expired decision to leave redis', () => redisCli(redis.port, ['HLEN', `{${prefix}}:dec`]).trim() === '0');
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it('loading 100,000 decisions never stalls the event loop for long (the snapshot is read and applied in pages)', async () => {
    const prefix = freshPrefix();
    const count = 100_000;
    fillDecisions(redis.port, prefix, count);
    const loop = watchEventLoop();
    const store = new RedisDecisionStore({ url: redis.url, prefix, startTimeoutMs: 30_000 });
    try {
      await store.start();
      await sleep(20); // the ticker measures a stall once it runs again
      assert.equal(store.snapshot().length, count);
      // Before paging: about a second in one piece. A loaded machine adds its own hiccups, hence the slack.
      assert.ok(loop.longest() < 200, `longest event-loop stall ${Math.round(loop.longest())} ms`);
    } finally {
      loop.stop();
      await store.close();
      redisCli(redis.port, ['DEL', `{${prefix}}:dec`, `{${prefix}}:decstream`]);
    }
  });

  it('holds at most maxDecisions: a bigger hash loads that many, with a warning, and the log adds no new keys past it', async () => {
    const prefix = freshPrefix();
    fillDecisions(redis.port, prefix, 30);
    const { logger, lines } = captureLogger();
    const capped = new RedisDecisionStore({ url: redis.url, prefix, blockMs: 200, maxDecisions: 20, logger });
    const writer = new RedisDecisionStore({ url: redis.url, prefix, blockMs: 200 });
    try {
      await Promise.all([capped.start(), writer.start()]);
      assert.equal(capped.snapshot().length, 20);
      assert.ok(
        lines.some((l) => l.includes('more decisions than max')),
        lines.join('\n'),
      );
      const kept = capped.snapshot()[0]!;
      await writer.put(decision('198.51.100.200'));
      await writer.put({ ...kept, action: 'captcha' });
      await waitFor('the change to a held decision', () => capped.snapshot().find((d) => d.key === kept.key)?.action === 'captcha');
      assert.equal(capped.snapshot().length, 20);
      assert.ok(!keysOf(capped).includes('ip:198.51.100.200'), 'no new key past the limit');
      await writer.delete(kept.key);
      await writer.put(decision('198.51.100.201'));
      await waitFor('room made by a delete to be used', () => keysOf(capped).includes('ip:198.51.100.201'));
    } finally {
      await Promise.all([capped.close(), writer.close()]);
    }
  });

  it('refuses writes before start and after close', async () => {
    const store = new RedisDecisionStore({ url: redis.url, prefix: freshPrefix() });
    await assert.rejects(store.put(decision('192.0.2.90')), /not started/);
    await store.start();
    await store.put(decision('192.0.2.90'));
    await store.close();
    await assert.rejects(store.delete('ip:192.0.2.90'), /closed/);
    assert.equal(store.snapshot().length, 1, 'the last view stays readable');
  });

  it('a refused connection (wrong password) shows in health, and credentials in the URL work', async () => {
    const locked = await RedisServer.start(['--requirepass', 'sekret']);
    const { logger, lines } = captureLogger();
    const refused = new RedisDecisionStore({ url: locked.url, prefix: freshPrefix(), startTimeoutMs: 300, logger });
    const admitted = new RedisDecisionStore({ url: `redis://:sekret@127.0.0.1:${locked.port}`, prefix: freshPrefix() });
    try {
      await refused.start();
      // Never in sync: no sync age.
      assert.deepEqual(refused.health(), { kind: 'redis', up: false, detail: 'NOAUTH Authentication required.' });
      assert.ok(
        lines.some((l) => l.startsWith('warn decisions: starting without redis')),
        lines.join('\n'),
      );
      await admitted.start();
      const { syncAgeMs, changeLagMs: _lag, ...health } = admitted.health();
      assert.deepEqual(health, { kind: 'redis', up: true });
      assert.ok(syncAgeMs !== undefined && syncAgeMs < 2000, `sync age ${syncAgeMs}`);
    } finally {
      await Promise.all([refused.close(), admitted.close()]);
      await locked.destroy();
    }
  });

  it('rejects a prefix that would break the hash tags, and bad numbers', () => {
    assert.throws(() => createStores({ type: 'redis', prefix: 'a{b}' }), /prefix must be non-empty without braces/);
    assert.throws(() => new RedisCounterStore({ url: redis.url, prefix: '' }), /prefix must be non-empty/);
    assert.throws(() => new RedisDecisionStore({ commandTimeoutMs: 0 }), /commandTimeoutMs must be a positive integer, got 0/);
    assert.throws(() => new RedisDecisionStore({ nodes: [] }), /nodes must name at least one cluster node/);
  });

  describe('cut-off agents (through a proxy)', () => {
    const open: { close(): Promise<void> }[] = [];
    after(async () => {
      await Promise.all(open.map((s) => s.close()));
    });
    const agent = async (options: Partial<RedisStoreOptions> & { prefix: string }): Promise<RedisDecisionStore> => {
      const store = new RedisDecisionStore({ url: redis.url, blockMs: 200, ...options });
      open.push(store);
      await store.start();
      return store;
    };

    it('an agent cut off from redis resumes from its log position without losing changes', async () => {
      const prefix = freshPrefix();
      const proxy = await CuttableProxy.start(redis.port);
      open.push(proxy);
      const a = await agent({ prefix, url: proxy.url, agentId: 'a' });
      const b = await agent({ prefix, agentId: 'b' });
      await b.put(decision('192.0.2.20'));
      await waitFor('a to see the first put', () => a.snapshot().length === 1);
      const seenByA = record(a);
      proxy.cut();
      await waitFor('a to notice', () => !a.health().up);
      assert.match(a.health().detail ?? '', /./);
      // Cut off, a's view ages: nothing confirms it any more.
      const ageAtCut = a.health().syncAgeMs ?? NaN;
      await sleep(600);
      assert.ok((a.health().syncAgeMs ?? NaN) >= ageAtCut + 500, `sync age ${ageAtCut} then ${a.health().syncAgeMs}`);
      await b.delete('ip:192.0.2.20');
      await b.put(decision('192.0.2.21'));
      await b.put(decision('192.0.2.22', { action: 'captcha' }));
      assert.deepEqual(keysOf(a), ['ip:192.0.2.20'], 'a keeps its last known view while cut off');
      proxy.restore();
      await waitFor('a to catch up', () => a.snapshot().length === 2, 5000);
      assert.deepEqual(keysOf(a), ['ip:192.0.2.21', 'ip:192.0.2.22']);
      assert.deepEqual(
        describeChanges(seenByA),
        ['delete ip:192.0.2.20', 'put ip:192.0.2.21', 'put ip:192.0.2.22'],
        'every change made meanwhile, in order, once',
      );
      await waitFor('a healthy again', () => a.health().up);
      await waitFor('a in sync again', () => (a.health().syncAgeMs ?? Infinity) < 1000);
    });

    it('an agent whose log position was trimmed away resynchronises from a snapshot, emitting only the differences', async () => {
      const prefix = freshPrefix();
      const proxy = await CuttableProxy.start(redis.port);
      open.push(proxy);
      const { logger, lines } = captureLogger();
      const a = await agent({ prefix, url: proxy.url, logger, maxStreamLength: 10 });
      const b = await agent({ prefix, maxStreamLength: 10 });
      for (const n of [1, 2, 3]) await b.put(decision(`198.51.100.${n}`));
      await waitFor('a to see the first puts', () => a.snapshot().length === 3);
      const seenByA = record(a);
      proxy.cut();
      await b.delete('ip:198.51.100.1');
      // Enough churn to trim whole stream nodes (100 entries each) past a's position.
      for (let n = 0; n < 150; n++) await b.put(decision(`203.0.113.${n}`));
      for (let n = 1; n < 150; n++) await b.delete(`ip:203.0.113.${n}`);
      assert.ok(Number(redisCli(redis.port, ['XLEN', `{${prefix}}:decstream`])) < 300, 'the log was trimmed');
      proxy.restore();
      await waitFor('a to resynchronise', () => keysOf(a).join() === 'ip:198.51.100.2,ip:198.51.100.3,ip:203.0.113.0', 5000);
      assert.ok(
        lines.some((l) => l.includes('position lost')),
        lines.join('\n'),
      );
      assert.deepEqual(describeChanges(seenByA), ['delete ip:198.51.100.1', 'put ip:203.0.113.0']);
    });
  });

  describe('redis going away', () => {
    it('agents keep serving, queue their writes, replay them when redis returns, and never crash', async () => {
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      const server = await RedisServer.start();
      const prefix = freshPrefix();
      const options = { url: server.url, prefix, blockMs: 200 };
      const a = new RedisDecisionStore({ ...options, agentId: 'a' });
      const b = new RedisDecisionStore({ ...options, agentId: 'b' });
      const counters = new RedisCounterStore({ ...options, now: () => T0 });
      try {
        await Promise.all([a.start(), b.start(), counters.start()]);
        await a.put(decision('192.0.2.40'));
        await waitFor('b to see the first decision', () => b.snapshot().length === 1);

        await server.stop();
        await waitFor('a to report redis down', () => !a.health().up);
        assert.equal(a.health().up, false);
        const queued = decision('192.0.2.41', { action: 'tarpit' });
        await a.put(queued); // does not throw: applied locally, queued
        assert.equal(await a.delete('ip:192.0.2.40'), true);
        assert.deepEqual(keysOf(a), ['ip:192.0.2.41']);
        assert.equal(a.pendingWrites, 2);
        assert.deepEqual(keysOf(b), ['ip:192.0.2.40'], 'b keeps its last known view');
        const local = await counters.flush(new Map([['k', 5]]), 60_000, T0);
        assert.deepEqual(local, new Map([['k', 5]]), 'counters fall back to local counts');
        assert.equal(counters.health().up, false);

        await server.restart(); // same port, empty (no persistence)
        await waitFor('a to replay its queue', () => a.pendingWrites === 0, 8000);
        await waitFor('b to get the replayed decision', () => keysOf(b).join() === 'ip:192.0.2.41', 8000);
        assert.deepEqual(b.snapshot()[0], queued);
        assert.match(redisCli(server.port, ['HGET', `{${prefix}}:dec`, 'ip:192.0.2.41']), /tarpit/);
        await waitFor('a healthy', () => a.health().up);
        // Reconnected, the counters say so before anything is flushed (few clients are worth a flush).
        await waitFor('counters up without a flush', () => counters.health().up, 8000);
        await waitFor(
          'counters to reconnect',
          async () => (await counters.flush(new Map([['k', 1]]), 60_000, T0)).get('k') === 1 && counters.health().up,
          8000,
        );
        assert.deepEqual(unhandled, []);
      } finally {
        process.off('unhandledRejection', onUnhandled);
        await Promise.all([a.close(), b.close(), counters.close()]);
        await server.destroy();
      }
    });

    it('a frozen redis (SIGSTOP, connections open): writes answer within the command timeout, health degrades, all replays after SIGCONT', async () => {
      const server = await RedisServer.start();
      const prefix = freshPrefix();
      const commandTimeoutMs = 300;
      const maxSyncAgeMs = 1000;
      const options = { url: server.url, prefix, blockMs: 200, commandTimeoutMs, maxSyncAgeMs };
      const a = new RedisDecisionStore({ ...options, agentId: 'a' });
      const counters = new RedisCounterStore({ ...options, now: () => T0 });
      try {
        await Promise.all([a.start(), counters.start()]);
        assert.equal(await a.put(decision('192.0.2.100')), undefined, 'stored in redis: nothing pending');
        assert.equal(a.health().up, true);

        server.pause();
        const frozenAt = Date.now();
        const queued = decision('192.0.2.101', { action: 'captcha' });
        const outcome = await Promise.race([a.put(queued), sleep(5000).then(() => 'no answer within 5 s')]);
        const putMs = Date.now() - frozenAt;
        assert.equal(outcome, 'pending', 'the put answers, saying the write waits for redis');
        assert.ok(putMs < commandTimeoutMs + 400, `put answered in ${putMs} ms`);
        assert.deepEqual(keysOf(a), ['ip:192.0.2.100', 'ip:192.0.2.101'], 'applied locally at once');
        assert.equal(a.pendingWrites, 1);
        const deleted = await Promise.race([a.delete('ip:192.0.2.100'), sleep(5000).then(() => 'no answer within 5 s')]);
        assert.equal(deleted, true);
        const flushed = await Promise.race([counters.flush(new Map([['k', 2]]), 60_000, T0), sleep(5000).then(() => 'no answer within 5 s')]);
        assert.deepEqual(flushed, new Map([['k', 2]]), 'counters answer with local counts');

        await waitFor(
          () => `health to degrade: ${JSON.stringify(a.health())}`,
          () => !a.health().up,
          maxSyncAgeMs + 1500,
        );
        const degradedMs = Date.now() - frozenAt;
        assert.ok(degradedMs <= maxSyncAgeMs + 1500, `degraded after ${degradedMs} ms`);
        assert.equal(counters.health().up, false);

        server.resume();
        await waitFor(
          () => `the replay: ${JSON.stringify(a.health())} pending ${a.pendingWrites}`,
          () => a.pendingWrites === 0 && a.health().up,
          8000,
        );
        assert.match(redisCli(server.port, ['HGET', `{${prefix}}:dec`, 'ip:192.0.2.101']), /captcha/);
        assert.equal(redisCli(server.port, ['HEXISTS', `{${prefix}}:dec`, 'ip:192.0.2.100']).trim(), '0');
        assert.deepEqual(keysOf(a), ['ip:192.0.2.101']);
        await waitFor('counters up again', async () => (await counters.flush(new Map([['k', 1]]), 60_000, T0)) && counters.health().up, 8000);
      } finally {
        server.resume();
        await Promise.all([a.close(), counters.close()]);
        await server.destroy();
      }
    });

    it('an agent started while redis is absent starts anyway and syncs once it appears', async () => {
      const server = await RedisServer.start();
      await server.stop();
      const prefix = freshPrefix();
      const store = new RedisDecisionStore({ url: server.url, prefix, startTimeoutMs: 300, maxReplayQueue: 2 });
      try {
        const started = Date.now();
        await store.start();
        assert.ok(Date.now() - started < 2000, 'start does not wait for redis');
        assert.equal(store.health().up, false);
        for (const n of [1, 2, 3]) await store.put(decision(`192.0.2.5${n}`));
        assert.equal(store.snapshot().length, 3, 'the local view has every write');
        assert.equal(store.pendingWrites, 2);
        assert.equal(store.droppedWrites, 1, 'the oldest queued write was dropped and counted');
        await server.restart();
        await waitFor('the queue to drain', () => store.pendingWrites === 0 && store.health().up, 8000);
        assert.equal(redisCli(server.port, ['HLEN', `{${prefix}}:dec`]).trim(), '2');
        await server.stop();
        await waitFor('the store to notice', () => !store.health().up);
        const closing = Date.now();
        await store.close();
        assert.ok(Date.now() - closing < 500, 'close does not wait out a reconnect backoff');
      } finally {
        await store.close();
        await server.destroy();
      }
    });
  });
});

describe('redis cluster (3 masters)', () => {
  let cluster: RedisClusterServers;
  before(async () => {
    cluster = await RedisClusterServers.start();
  });
  after(async () => {
    await cluster?.destroy();
  });
  const target = (): Target => ({ connection: { nodes: cluster.nodes }, cli: (args) => redisCli(cluster.servers[0]!.port, ['-c', ...args]) });

  sharedRedisSuites('redis cluster', target);

  it('the master of the decision slot going away: writes queue, then replay once it is back', async () => {
    const prefix = freshPrefix();
    const owner = slotOwner(cluster, `{${prefix}}:dec`);
    const a = new RedisDecisionStore({ nodes: cluster.nodes, prefix, agentId: 'a', blockMs: 200 });
    const b = new RedisDecisionStore({ nodes: cluster.nodes, prefix, agentId: 'b', blockMs: 200 });
    try {
      await Promise.all([a.start(), b.start()]);
      await a.put(decision('192.0.2.80'));
      await waitFor('b to see the first decision', () => b.snapshot().length === 1);
      await owner.stop();
      const queued = decision('192.0.2.81');
      await a.put(queued);
      assert.equal(a.pendingWrites, 1);
      await waitFor('a to report redis down', () => !a.health().up);
      await owner.restart(); // its slots come back from nodes.conf, its data does not
      await waitFor('b to get the replayed decision', () => keysOf(b).join() === 'ip:192.0.2.81', 10_000);
      assert.equal(a.pendingWrites, 0);
      await waitFor('a healthy', () => a.health().up);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

/** The server of the cluster that serves `key`'s slot. */
function slotOwner(cluster: RedisClusterServers, key: string): RedisServer {
  const first = cluster.servers[0]!;
  const slot = Number(redisCli(first.port, ['CLUSTER', 'KEYSLOT', key]));
  for (const line of redisCli(first.port, ['CLUSTER', 'NODES']).trim().split('\n')) {
    const [, address = '', , , , , , , ...ranges] = line.split(' ');
    const port = Number(address.split('@')[0]!.split(':')[1]);
    const serves = ranges.some((range) => {
      const [low = NaN, high = low] = range.split('-').map(Number);
      return slot >= low && slot <= high;
    });
    if (serves) return cluster.servers.find((s) => s.port === port)!;
  }
  throw new Error(`no node serves slot ${slot}`);
}
