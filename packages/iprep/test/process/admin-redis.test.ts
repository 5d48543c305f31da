/**
 * The admin API of a real service on a real redis-server that freezes (SIGSTOP, connections left
 * open): POST /decisions must answer at once and apply locally, /health must say degraded, and
 * everything must reach Redis after SIGCONT. Default timeouts (command-timeout 1s, max-sync-age 5s).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from 'spop';
import { AdminServer, ReputationMetrics } from '../../src/admin/index.js';
import { parseConfig } from '../../src/config/index.js';
import { IprepService } from '../../src/service.js';
import { request } from '../admin-fixtures.js';
import { RedisServer, redisCli } from 'test-support/redis';
import { waitFor } from 'test-support/wait';

describe('admin API on a frozen redis', () => {
  it('POST /decisions answers within the command timeout (pending, in force here); /health degrades; SIGCONT replays', async () => {
    const redis = await RedisServer.start();
    const prefix = `admin${process.pid}`;
    const yaml = `
mode: reputation
special: { enabled: false }
behaviour: { enabled: false }
admin: { enabled: true, port: 0 }
store: { type: redis, url: "${redis.url}", prefix: ${prefix} }
`;
    const service = new IprepService(parseConfig(yaml, '/tmp/iprep-admin-redis.yaml'), { logger: silentLogger });
    const server = new AdminServer({ service, metrics: new ReputationMetrics({ defaultMetrics: false }), logger: silentLogger });
    try {
      await service.start();
      const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
      const before = await request(port, '/health');
      assert.equal((before.json as { status: string }).status, 'ok', before.text);
      const stored = await request(port, '/decisions', { method: 'POST', body: JSON.stringify({ value: '192.0.2.7' }) });
      assert.equal(stored.status, 201);
      assert.equal((stored.json as { stored?: string }).stored, undefined, 'confirmed by redis: no "stored" field');

      redis.pause();
      const frozenAt = Date.now();
      const posted = await request(port, '/decisions', { method: 'POST', body: JSON.stringify({ value: '192.0.2.8', action: 'captcha' }) });
      const postMs = Date.now() - frozenAt;
      assert.equal(posted.status, 201, posted.text);
      assert.equal((posted.json as { stored?: string }).stored, 'pending');
      assert.ok(postMs < 1700, `POST /decisions answered in ${postMs} ms`);
      assert.equal(service.explain('192.0.2.8').action, 'captcha', 'in force on this agent at once');

      let health: { status?: string; store?: { up: boolean; pendingWrites?: number } } = {};
      await waitFor(
        () => `/health to degrade: ${JSON.stringify(health)}`,
        async () => {
          health = (await request(port, '/health')).json as typeof health;
          return health.status === 'degraded';
        },
        6500,
      );
      const degradedMs = Date.now() - frozenAt;
      assert.ok(degradedMs < 6500, `degraded after ${degradedMs} ms`);
      assert.equal(health.store?.up, false);
      assert.equal(health.store?.pendingWrites, 1);

      redis.resume();
      await waitFor(
        () => `/health ok again: ${JSON.stringify(health)}`,
        async () => {
          health = (await request(port, '/health')).json as typeof health;
          return health.status === 'ok' && health.store?.pendingWrites === 0;
        },
        8000,
      );
      assert.match(redisCli(redis.port, ['HGET', `{${prefix}}:dec`, 'ip:192.0.2.8']), /captcha/);
    } finally {
      redis.resume();
      await server.close();
      await service.close();
      await redis.destroy();
    }
  });
});
