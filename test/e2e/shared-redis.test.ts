/**
 * Several HAProxy instances, each with its own agent, one reputation through
 * Redis: a decision taken on one agent applies behind every HAProxy within
 * about a second, and a client's messages are counted across all the agents,
 * so spreading its requests over them does not keep it under the ban
 * threshold; Redis killed under traffic costs no request its score and no
 * decision. Real HAProxy 2.6, 3.0 and 3.2, real redis-server.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type HaproxyHandle,
  type HaproxyVersion,
  type ManagedProcess,
  RedisServer,
  examplesDir,
  freePort,
  httpGet,
  seedConfig,
  seedSpoeConfig,
  startHaproxy,
  startProcess,
  waitServerStatus,
  spoaBin,
} from 'test-support';

/** Ban above 30 messages a minute: 20 requests through each of two agents only add up to it together. */
const BAN_THRESHOLD = 30;
const PER_AGENT = 20;

/**
 * examples/shared-redis/iprep.yaml, the documented set-up, with the test's Redis, a lower ban threshold,
 * and the special ranges off (the test's clients are loopback addresses, which they would allow).
 * Ports come from the command line.
 */
function agentConfig(redisUrl: string): string {
  let config = readFileSync(join(examplesDir, 'shared-redis', 'iprep.yaml'), 'utf8');
  const rewrite = (pattern: RegExp, replacement: string, what: string): void => {
    if (!pattern.test(config)) throw new Error(`examples/shared-redis/iprep.yaml no longer contains the ${what} the test rewrites`);
    config = config.replace(pattern, replacement);
  };
  rewrite(/^(\s*url:\s*)redis:\/\/\S+/m, `$1${redisUrl}`, 'store `url: redis://...`');
  rewrite(/^(\s*ban-threshold:\s*)\d+/m, `$1${BAN_THRESHOLD}`, '`ban-threshold`');
  rewrite(/^(special:\s*\n\s*enabled:\s*)true/m, '$1false', '`special: enabled: true`');
  return config;
}

interface Node {
  agent: ManagedProcess;
  haproxy: HaproxyHandle;
  frontend: number;
  admin: string;
}

async function startNode(dir: string, name: string, version: HaproxyVersion, redisUrl: string): Promise<Node> {
  const [agentPort, adminPort, frontend] = await Promise.all([freePort(), freePort(), freePort()]);
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, agentConfig(redisUrl));
  const args = ['-c', file, '-p', String(agentPort), '-n', '1', '--host', '127.0.0.1', '--admin-port', String(adminPort)];
  const agent = startProcess(process.execPath, [spoaBin, ...args], {
    name: `spoa ${name}`,
  });
  await agent.waitForOutput(/agent listening/);
  const haproxy = await startHaproxy({
    version,
    config: seedConfig({ frontendPort: frontend, agentPort, extra: { frontend: ['http-after-response set-header x-ip-source %[var(sess.iprep.ip_source)]'] } }),
    files: { 'spoe-iprep.conf': seedSpoeConfig({ processingTimeout: '500ms' }) },
  });
  await waitServerStatus(haproxy, 'iprep-backend', 'iprep-srv', 'UP');
  return { agent, haproxy, frontend, admin: `http://127.0.0.1:${adminPort}` };
}

const rejected = async (node: Node, client: string): Promise<boolean> => (await httpGet(node.frontend, '/', { localAddress: client })).rejected;

async function addDecision(node: Node, value: string): Promise<void> {
  const res = await fetch(`${node.admin}/decisions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ value, action: 'deny', reason: 'shared e2e' }),
  });
  assert.equal(res.status, 201, await res.text());
}

async function decisionValues(node: Node): Promise<string[]> {
  const list = (await (await fetch(`${node.admin}/decisions`)).json()) as Array<{ value: string }>;
  return list.map((d) => d.value).sort();
}

interface Health {
  status: string;
  store: { up: boolean; pendingWrites?: number; syncAgeMs?: number };
}

async function health(node: Node): Promise<Health> {
  return (await (await fetch(`${node.admin}/health`)).json()) as Health;
}

/**
 * Requests through every node in turn, each from a fresh loopback address (so that no client nears the
 * ban threshold), until stopped; records the ones that were not answered with a score.
 */
function traffic(nodes: readonly Node[]): { stop(): Promise<{ requests: number; unscored: string[] }> } {
  let running = true;
  let requests = 0;
  const unscored: string[] = [];
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const node = nodes[i % nodes.length]!;
      const client = `127.0.${10 + Math.floor(i / 250)}.${(i % 250) + 1}`;
      const r = await httpGet(node.frontend, '/', { localAddress: client });
      requests++;
      if (r.rejected) unscored.push(`${client}: rejected (${r.error})`);
      else if (!/^\d+$/.test(String(r.headers['x-ip-score'] ?? ''))) unscored.push(`${client}: HTTP ${r.status} without x-ip-score`);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { requests, unscored };
    },
  };
}

async function within(ms: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - start;
}

for (const [a, b] of [
  ['2.6', '3.2'],
  ['3.2', '3.0'],
] as const) {
  describe(`HAProxy ${a} and ${b}, one agent each, sharing Redis`, { timeout: 90_000 }, () => {
    let redis: RedisServer | undefined;
    let dir = '';
    const nodes: Node[] = [];
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'iprep-shared-'));
      // With an append-only file, as Redis holding shared bans should run: a killed server restarts with them.
      redis = await RedisServer.start(['--appendonly', 'yes', '--appendfsync', 'always']);
      nodes.push(await startNode(dir, 'a', a, redis.url), await startNode(dir, 'b', b, redis.url));
    });
    after(async () => {
      for (const node of nodes) {
        await node.haproxy.stop();
        await node.agent.stop();
      }
      await redis?.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    it('a decision added on one agent applies behind the other HAProxy within a second', async () => {
      const [first, second] = nodes as [Node, Node];
      assert.equal(await rejected(second, '127.0.0.61'), false);
      const res = await fetch(`${first.admin}/decisions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ value: '127.0.0.61', action: 'deny', reason: 'shared e2e' }),
      });
      assert.equal(res.status, 201);
      const ms = await within(1500, 'the decision reaching the other agent', () => rejected(second, '127.0.0.61'));
      assert.ok(ms < 1500, `applied after ${ms.toFixed(0)} ms`);
      assert.equal(await rejected(first, '127.0.0.61'), true);
    });

    it('counts one client across both agents and bans it everywhere', async () => {
      const [first, second] = nodes as [Node, Node];
      const client = '127.0.0.62';
      for (let i = 0; i < PER_AGENT; i++) {
        assert.equal(await rejected(first, client), false, `request ${i} through ${a}`);
        assert.equal(await rejected(second, client), false, `request ${i} through ${b}`);
      }
      // Neither agent saw more than PER_AGENT < BAN_THRESHOLD messages: only the shared count crosses it.
      await within(3000, 'the ban from the shared count', async () => (await rejected(first, client)) && (await rejected(second, client)));
      const explained = (await (await fetch(`${second.admin}/explain?ip=${client}`)).json()) as { matches: Array<{ source: string }> };
      assert.ok(
        explained.matches.some((m) => m.source.startsWith('behaviour')),
        JSON.stringify(explained),
      );
    });

    it('Redis killed under traffic: every request is scored, and the agents converge on every decision', async () => {
      const [first, second] = nodes as [Node, Node];
      await addDecision(first, '127.0.0.71');
      await within(1500, 'the decision made before the outage reaching the other agent', () => rejected(second, '127.0.0.71'));
      const load = traffic(nodes);
      await new Promise((r) => setTimeout(r, 300));

      await redis!.stop(); // SIGKILL
      await within(3000, 'both agents noticing the outage', async () => !(await health(first)).store.up && !(await health(second)).store.up);
      // Decisions made while Redis is away apply at once where they were made, and wait in the replay queue.
      await addDecision(first, '127.0.0.72');
      await addDecision(second, '127.0.0.73');
      assert.equal(await rejected(first, '127.0.0.72'), true);
      assert.equal(await rejected(second, '127.0.0.73'), true);
      assert.equal((await health(first)).status, 'degraded');
      assert.equal((await health(second)).store.pendingWrites, 1);
      await new Promise((r) => setTimeout(r, 1000));
      const stale = (await health(first)).store.syncAgeMs ?? 0;
      assert.ok(stale >= 1000, `a's decisions unconfirmed for ${stale} ms: the sync age shows the outage`);

      await redis!.restart();
      const all = ['127.0.0.71', '127.0.0.72', '127.0.0.73'];
      await within(8000, 'both agents holding every decision again', async () => {
        const [x, y] = await Promise.all([decisionValues(first), decisionValues(second)]);
        return all.every((v) => x.includes(v) && y.includes(v));
      });
      const { requests, unscored } = await load.stop();
      assert.deepEqual(unscored, [], `${unscored.length} of ${requests} requests without a score`);
      assert.ok(requests >= 20, `only ${requests} requests during the test`);
      for (const node of nodes) {
        for (const ip of all) assert.equal(await rejected(node, ip), true, `${ip} behind ${node === first ? a : b}`);
        const h = await health(node);
        assert.equal(h.store.up, true, JSON.stringify(h));
        assert.equal(h.store.pendingWrites, 0, 'the replay queue drained');
        assert.ok((h.store.syncAgeMs ?? Infinity) < 2000, `in sync again: ${h.store.syncAgeMs} ms`);
      }
      assert.deepEqual(await decisionValues(first), await decisionValues(second));
    });
  });
}
