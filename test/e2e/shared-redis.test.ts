/**
 * Several HAProxy instances, each with its own agent, one reputation through
 * Redis: a decision taken on one agent applies behind every HAProxy within
 * about a second, and a client's messages are counted across all the agents,
 * so spreading its requests over them does not keep it under the ban
 * threshold. Real HAProxy 2.6 and 3.2, real redis-server.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RedisServer } from '../../packages/iprep/test/redis-server.js';
import {
  type HaproxyHandle,
  type HaproxyVersion,
  type ManagedProcess,
  freePort,
  httpGet,
  seedConfig,
  seedSpoeConfig,
  startHaproxy,
  startProcess,
  waitServerStatus,
  spoaBin,
} from './harness.js';


/** Ban above 30 messages a minute: 20 requests through each of two agents only add up to it together. */
const BAN_THRESHOLD = 30;
const PER_AGENT = 20;

function agentConfig(redisUrl: string, adminPort: number): string {
  return `
mode: reputation
special: { enabled: false }
behaviour: { window: 60s, rate-threshold: 1000, ban-threshold: ${BAN_THRESHOLD}, ban-time: 10m }
store: { type: redis, url: ${redisUrl}, prefix: e2e }
admin: { port: ${adminPort} }
`;
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
  writeFileSync(file, agentConfig(redisUrl, adminPort));
  const agent = startProcess(process.execPath, [spoaBin, '-c', file, '-p', String(agentPort), '-n', '1', '--host', '127.0.0.1'], {
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

async function within(ms: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - start;
}

for (const [a, b] of [['2.6', '3.2'], ['3.2', '3.0']] as const) {
  describe(`HAProxy ${a} and ${b}, one agent each, sharing Redis`, { timeout: 90_000 }, () => {
    let redis: RedisServer | undefined;
    let dir = '';
    const nodes: Node[] = [];
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'iprep-shared-'));
      redis = await RedisServer.start();
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
      assert.ok(explained.matches.some((m) => m.source.startsWith('behaviour')), JSON.stringify(explained));
    });
  });
}
