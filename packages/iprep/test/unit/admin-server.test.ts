import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { silentLogger } from 'spop';
import { AdminServer, ReputationMetrics } from '../../src/admin/index.js';
import { FakeReputationService, NOW, request } from '../admin-fixtures.js';
import { readStatusPage } from '../../src/admin/status-page.js';

/** An admin server on a free loopback port with a fresh fake service. */
async function start(token?: string): Promise<{ server: AdminServer; service: FakeReputationService; metrics: ReputationMetrics; port: number }> {
  const service = new FakeReputationService();
  const metrics = new ReputationMetrics({ defaultMetrics: false, now: () => NOW });
  const server = new AdminServer({ service, metrics, logger: silentLogger, ...(token === undefined ? {} : { token }) });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  return { server, service, metrics, port };
}

const STATUS_PAGE_ASSETS = fileURLToPath(new URL('../../src/admin/status-page/', import.meta.url));

function errorOf(json: unknown): string {
  assert.equal(typeof json, 'object');
  const error = (json as { error?: unknown }).error;
  assert.equal(typeof error, 'string', `expected {"error": "..."}, got ${JSON.stringify(json)}`);
  return error as string;
}

describe('admin server without a token', () => {
  let ctx: Awaited<ReturnType<typeof start>>;
  before(async () => {
    ctx = await start();
  });
  after(() => ctx.server.close());

  it('GET /health: ok, then degraded when the store is down or a list failed, 500 when the service throws', async () => {
    const ok = await request(ctx.port, '/health');
    assert.equal(ok.status, 200);
    assert.match(String(ok.headers['content-type']), /^application\/json/);
    assert.deepEqual(ok.json, { status: 'ok', lists: 2, store: { kind: 'memory', up: true }, uptimeSeconds: 0 });

    ctx.service.storeHealth = { kind: 'redis', up: false, detail: 'connection refused' };
    const storeDown = await request(ctx.port, '/health');
    assert.equal(storeDown.status, 200);
    assert.equal((storeDown.json as { status: string }).status, 'degraded');
    ctx.service.storeHealth = { kind: 'memory', up: true };

    const saved = ctx.service.listStatus;
    ctx.service.listStatus = [{ ...saved[0]!, lastError: 'drop.json:3: not JSON' }];
    const listFailed = await request(ctx.port, '/health');
    assert.deepEqual(listFailed.json, {
      status: 'degraded',
      lists: 1,
      store: { kind: 'memory', up: true },
      uptimeSeconds: 0,
      listErrors: [{ list: saved[0]!.name, error: 'drop.json:3: not JSON' }],
    });

    // A URL list still fetching at start: degraded while it has no copy at all, ok with its cached copy.
    ctx.service.listStatus = [saved[0]!, { ...saved[1]!, entries: 0, loadedAt: null, loading: true }];
    const loading = await request(ctx.port, '/health');
    assert.deepEqual(loading.json, {
      status: 'degraded',
      lists: 2,
      store: { kind: 'memory', up: true },
      uptimeSeconds: 0,
      listsLoading: [saved[1]!.name],
    });
    ctx.service.listStatus = [saved[0]!, { ...saved[1]!, loading: true }];
    assert.deepEqual((await request(ctx.port, '/health')).json, {
      status: 'ok',
      lists: 2,
      store: { kind: 'memory', up: true },
      uptimeSeconds: 0,
      listsLoading: [saved[1]!.name],
    });

    ctx.service.listStatus = saved;
    ctx.service.lastReloadError = 'iprep.yaml:3:5: thresholds.deny must be an integer from 0 to 100, got 300';
    const reloadFailed = await request(ctx.port, '/health');
    assert.deepEqual(reloadFailed.json, {
      status: 'degraded',
      lists: 2,
      store: { kind: 'memory', up: true },
      uptimeSeconds: 0,
      reloadError: 'iprep.yaml:3:5: thresholds.deny must be an integer from 0 to 100, got 300',
    });
    ctx.service.lastReloadError = null;

    ctx.service.listStatus = null as unknown as typeof saved; // lists() now breaks the service
    const broken = await request(ctx.port, '/health');
    assert.equal(broken.status, 500);
    errorOf(broken.json);
    ctx.service.listStatus = saved;
  });

  it('HEAD /health answers the headers only', async () => {
    const reply = await request(ctx.port, '/health', { method: 'HEAD' });
    assert.equal(reply.status, 200);
    assert.equal(reply.text, '');
    assert.ok(Number(reply.headers['content-length']) > 0);
  });

  it('GET /explain returns the verdict with every match', async () => {
    const reply = await request(ctx.port, '/explain?ip=192.0.2.7');
    assert.equal(reply.status, 200);
    const verdict = reply.json as { score: number; action: string; matches: { source: string }[] };
    assert.equal(verdict.score, 0);
    assert.equal(verdict.action, 'deny');
    assert.deepEqual(
      verdict.matches.map((m) => m.source),
      ['spamhaus-drop', 'behaviour:rate'],
    );
    const v6 = await request(ctx.port, `/explain?ip=${encodeURIComponent('2001:db8::1')}`);
    assert.equal(v6.status, 200);
    assert.equal((v6.json as { action: string }).action, 'allow');
  });

  it('GET /explain?ja4= passes the TLS fingerprint on', async () => {
    const ja4 = 't13d1516h2_8daaf6152771_e5627efa2ab1';
    const reply = await request(ctx.port, `/explain?ip=192.0.2.8&ja4=${ja4}`);
    assert.equal(reply.status, 200);
    assert.equal(ctx.service.calls.at(-1), `explain 192.0.2.8 ja4 ${ja4}`);
  });

  it('GET /explain: 400 on a bad or missing address', async () => {
    const bad = await request(ctx.port, '/explain?ip=999.1.1.1');
    assert.equal(bad.status, 400);
    assert.match(errorOf(bad.json), /not an IP address: "999\.1\.1\.1"/);
    const missing = await request(ctx.port, '/explain');
    assert.equal(missing.status, 400);
    assert.match(errorOf(missing.json), /missing query parameter "ip"/);
  });

  it('POST /decisions: 201 with the decision; duration as "10m", durationMs or null', async () => {
    const tenMinutes = await request(ctx.port, '/decisions', {
      method: 'POST',
      body: JSON.stringify({ value: '198.51.100.7', action: 'captcha', duration: '10m', reason: 'testing' }),
    });
    assert.equal(tenMinutes.status, 201);
    assert.deepEqual(tenMinutes.json, {
      key: 'ip:198.51.100.7',
      scope: 'ip',
      value: '198.51.100.7',
      action: 'captcha',
      score: 0,
      category: 'manual',
      reason: 'testing',
      origin: 'api',
      createdAt: NOW,
      expiresAt: NOW + 600_000,
    });
    const inMs = await request(ctx.port, '/decisions', { method: 'POST', body: JSON.stringify({ value: '198.51.100.0/24', durationMs: 5000 }) });
    assert.equal(inMs.status, 201);
    assert.equal((inMs.json as { expiresAt: number }).expiresAt, NOW + 5000);
    assert.equal((inMs.json as { key: string }).key, 'range:198.51.100.0/24');
    const forever = await request(ctx.port, '/decisions', { method: 'POST', body: JSON.stringify({ value: '2001:db8::7', duration: null }) });
    assert.equal(forever.status, 201);
    assert.equal((forever.json as { expiresAt: null }).expiresAt, null);

    const list = await request(ctx.port, '/decisions');
    assert.equal(list.status, 200);
    assert.deepEqual(
      (list.json as { key: string }[]).map((d) => d.key),
      ['ip:198.51.100.7', 'range:198.51.100.0/24', 'ip:2001:db8::7'],
    );
  });

  it('X-Spoa-Client: cli marks decisions the command line adds and deletes (origin cli), else api', async () => {
    const cli = { 'x-spoa-client': 'cli' };
    const added = await request(ctx.port, '/decisions', { method: 'POST', body: JSON.stringify({ value: '192.0.2.55' }), headers: cli });
    assert.equal((added.json as { origin: string }).origin, 'cli');
    const other = await request(ctx.port, '/decisions', { method: 'POST', body: JSON.stringify({ value: '192.0.2.56' }), headers: { 'x-spoa-client': 'x' } });
    assert.equal((other.json as { origin: string }).origin, 'api');
    assert.equal((await request(ctx.port, '/decisions/192.0.2.55', { method: 'DELETE', headers: cli })).status, 204);
    assert.ok(ctx.service.calls.includes('remove 192.0.2.55 (cli)'), ctx.service.calls.join());
    assert.equal((await request(ctx.port, '/decisions/192.0.2.56', { method: 'DELETE' })).status, 204);
  });

  it('POST /decisions: 400 naming the problem', async () => {
    const cases: [string, RegExp][] = [
      ['{"value": "192.0.2.1",', /body is not valid JSON/],
      ['', /empty body/],
      ['[1, 2]', /body must be a JSON object/],
      ['{"value": "192.0.2.1", "scope": "ip"}', /unknown field "scope"/],
      ['{"value": 7}', /"value" must be an address or CIDR/],
      ['{"value": "192.0.2.1", "action": "ban"}', /"action" must be one of allow, log, captcha, tarpit, deny/],
      ['{"value": "192.0.2.1", "score": 101}', /"score" must be a number from 0 to 100/],
      ['{"value": "192.0.2.1", "duration": "10 parsecs"}', /"duration": not a duration: "10 parsecs"/],
      ['{"value": "192.0.2.1", "duration": 600}', /"duration" must be a string such as "10m"/],
      ['{"value": "192.0.2.1", "duration": "1m", "durationMs": 60000}', /not both/],
      ['{"value": "192.0.2.1", "durationMs": -5}', /"durationMs" must be a positive number/],
      ['{"value": "not-an-address"}', /./], // the service's own TypeError
    ];
    for (const [body, expected] of cases) {
      const reply = await request(ctx.port, '/decisions', { method: 'POST', body });
      assert.equal(reply.status, 400, `${body} -> ${reply.text}`);
      assert.match(errorOf(reply.json), expected, body);
    }
  });

  it('POST /decisions: any JSON body gets 201 or 400, never a 500', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.json(),
          fc
            .record(
              {
                value: fc.oneof(fc.ipV4(), fc.ipV6(), fc.string(), fc.integer()),
                action: fc.oneof(fc.constantFrom('allow', 'deny', 'captcha'), fc.string()),
                score: fc.oneof(fc.integer({ min: -10, max: 110 }), fc.double()),
                duration: fc.oneof(fc.constantFrom('10m', '1h30m', '0s', 'x'), fc.constant(null)),
              },
              { requiredKeys: [] },
            )
            .map((body) => JSON.stringify(body)),
        ),
        async (body) => {
          const reply = await request(ctx.port, '/decisions', { method: 'POST', body });
          assert.ok(reply.status === 201 || reply.status === 400, `${body} -> ${reply.status} ${reply.text}`);
          if (reply.status === 400) errorOf(reply.json);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('DELETE /decisions/<key or value>: 204, then 404', async () => {
    await request(ctx.port, '/decisions', { method: 'POST', body: JSON.stringify({ value: '203.0.113.0/24' }) });
    await request(ctx.port, '/decisions', { method: 'POST', body: JSON.stringify({ value: '203.0.113.9' }) });
    const byValue = await request(ctx.port, `/decisions/${encodeURIComponent('203.0.113.0/24')}`, { method: 'DELETE' });
    assert.equal(byValue.status, 204);
    assert.equal(byValue.text, '');
    const byKey = await request(ctx.port, `/decisions/${encodeURIComponent('ip:203.0.113.9')}`, { method: 'DELETE' });
    assert.equal(byKey.status, 204);
    assert.deepEqual(ctx.service.calls.slice(-2), ['remove 203.0.113.0/24', 'remove ip:203.0.113.9']);
    const again = await request(ctx.port, `/decisions/${encodeURIComponent('ip:203.0.113.9')}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.match(errorOf(again.json), /no decision for ip:203\.0\.113\.9/);
    const badEncoding = await request(ctx.port, '/decisions/%E0%A4%A', { method: 'DELETE' });
    assert.equal(badEncoding.status, 400);
    assert.match(errorOf(badEncoding.json), /bad URL encoding/);
    const empty = await request(ctx.port, '/decisions/', { method: 'DELETE' });
    assert.equal(empty.status, 400);
  });

  it('POST /reload: 200 with the result, 500 with it when not ok, 500 with the error when it throws', async () => {
    const ok = await request(ctx.port, '/reload', { method: 'POST' });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { ok: true, lists: [], errors: [], durationMs: 42 });
    ctx.service.reloadResult = { ok: false, lists: [], errors: ['drop.json:1: not JSON'], durationMs: 3 };
    const failed = await request(ctx.port, '/reload', { method: 'POST' });
    assert.equal(failed.status, 500);
    assert.deepEqual((failed.json as { errors: string[] }).errors, ['drop.json:1: not JSON']);
    ctx.service.reloadResult = new Error('config.yaml:4: lists[0].format: unknown format "xml"');
    const threw = await request(ctx.port, '/reload', { method: 'POST' });
    assert.equal(threw.status, 500);
    assert.equal(errorOf(threw.json), 'config.yaml:4: lists[0].format: unknown format "xml"');
    ctx.service.reloadResult = { ok: true, lists: [], errors: [], durationMs: 1 };
  });

  it('GET /lists, /status.json and /metrics', async () => {
    const lists = await request(ctx.port, '/lists');
    assert.equal(lists.status, 200);
    assert.deepEqual(lists.json, ctx.service.listStatus);

    ctx.metrics.observeVerdict({ score: 0, action: 'deny', category: 'hijacked', source: 'spamhaus-drop', matches: [] }, 0.00001);
    const status = await request(ctx.port, '/status.json');
    assert.equal(status.status, 200);
    assert.equal((status.json as { messages: { total: number } }).messages.total, 1);

    const metrics = await request(ctx.port, '/metrics');
    assert.equal(metrics.status, 200);
    assert.equal(metrics.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(metrics.text, /^iprep_messages_total\{action="deny",category="hijacked",source="spamhaus-drop"\} 1$/m);
  });

  it('GET / serves the self-contained status page', async () => {
    const page = await request(ctx.port, '/');
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
    assert.match(page.text, /^<!doctype html>/i);

    // It is index.html with style.css and app.js inlined: one document, nothing else to fetch (the icon is data:).
    const read = (name: string): string => readFileSync(join(STATUS_PAGE_ASSETS, name), 'utf8');
    const styles = [...page.text.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]!);
    const scripts = [...page.text.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    assert.deepEqual(styles, [`\n${read('style.css')}`]);
    assert.deepEqual(scripts, [`\n${read('app.js')}`]);
    const outlined = page.text
      .replace(/<style>[\s\S]*?<\/style>/, '<link rel="stylesheet" href="style.css">')
      .replace(/<script>[\s\S]*?<\/script>/, '<script src="app.js"></script>');
    assert.equal(outlined, read('index.html'));
    assert.doesNotMatch(page.text, /\s(?:src|href)\s*=\s*"(?!data:)/);

    // The policy allows that style and that script only, by their hashes: no other inline code runs.
    const csp = String(page.headers['content-security-policy']);
    const hash = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    assert.ok(csp.includes(`script-src ${hash(scripts[0]!)};`), csp);
    assert.ok(csp.includes(`style-src ${hash(styles[0]!)};`), csp);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  });

  it('unknown routes get 404, wrong methods 405 with Allow', async () => {
    const missing = await request(ctx.port, '/nope');
    assert.equal(missing.status, 404);
    assert.match(errorOf(missing.json), /no such route: \/nope/);
    const wrongMethod = await request(ctx.port, '/lists', { method: 'POST', body: '{}' });
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.allow, 'GET, HEAD');
    assert.match(errorOf(wrongMethod.json), /POST not allowed on \/lists/);
    const put = await request(ctx.port, '/decisions', { method: 'PUT', body: '{}' });
    assert.equal(put.status, 405);
    assert.equal(put.headers.allow, 'GET, POST, HEAD');
    const getOne = await request(ctx.port, '/decisions/ip%3A192.0.2.1');
    assert.equal(getOne.status, 405);
    assert.equal(getOne.headers.allow, 'DELETE');
  });

  it('refuses changes sent by a page of another origin (403), accepts those of its own page', async () => {
    const body = JSON.stringify({ value: '192.0.2.99' });
    for (const origin of ['https://evil.example', 'null', `http://127.0.0.1:${ctx.port + 1}`]) {
      const post = await request(ctx.port, '/decisions', { method: 'POST', body, headers: { origin } });
      assert.equal(post.status, 403, origin);
      assert.match(errorOf(post.json), /cross-origin request refused/);
    }
    assert.equal((await request(ctx.port, '/reload', { method: 'POST', headers: { origin: 'https://evil.example' } })).status, 403);
    assert.equal((await request(ctx.port, '/decisions/192.0.2.99', { method: 'DELETE', headers: { origin: 'https://evil.example' } })).status, 403);
    assert.equal(ctx.service.decisions.has('ip:192.0.2.99'), false);
    const own = await request(ctx.port, '/decisions', { method: 'POST', body, headers: { origin: `http://127.0.0.1:${ctx.port}` } });
    assert.equal(own.status, 201);
    assert.equal((await request(ctx.port, '/decisions/192.0.2.99', { method: 'DELETE' })).status, 204);
  });

  it('bodies over 64 KiB get 413, announced or streamed', async () => {
    const big = JSON.stringify({ value: '192.0.2.1', reason: 'x'.repeat(70 * 1024) });
    const announced = await request(ctx.port, '/decisions', { method: 'POST', body: big });
    assert.equal(announced.status, 413);
    assert.match(errorOf(announced.json), /larger than 65536 bytes/);

    const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: ctx.port, path: '/decisions', method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.once('error', reject);
      for (let i = 0; i < 10; i++) req.write('x'.repeat(10 * 1024));
      req.end();
    });
    assert.equal(streamed.status, 413);
    assert.match(errorOf(JSON.parse(streamed.body)), /larger than 65536 bytes/);

    // Still serving.
    assert.equal((await request(ctx.port, '/health')).status, 200);
  });

  it('survives garbage on the socket', async () => {
    for (const garbage of ['\x00\x01\x02 nonsense\r\n\r\n', 'GET /health HTTP/9.9\r\n\r\n', 'GET %%% HTTP/1.1\r\nHost: x\r\n\r\n']) {
      await new Promise<void>((resolve) => {
        const socket = connect(ctx.port, '127.0.0.1', () => socket.end(garbage));
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.resume();
      });
    }
    assert.equal((await request(ctx.port, '/health')).status, 200);
  });
});

describe('admin server with a token', () => {
  const token = 's3cret-token';
  let ctx: Awaited<ReturnType<typeof start>>;
  before(async () => {
    ctx = await start(token);
  });
  after(() => ctx.server.close());

  it('serves GET /health and the page shell without the token', async () => {
    assert.equal((await request(ctx.port, '/health')).status, 200);
    assert.equal((await request(ctx.port, '/')).status, 200);
  });

  it('answers 401 with WWW-Authenticate on every other route without the right token', async () => {
    const routes: [string, string][] = [
      ['GET', '/explain?ip=192.0.2.1'],
      ['GET', '/decisions'],
      ['POST', '/decisions'],
      ['DELETE', '/decisions/ip%3A192.0.2.1'],
      ['POST', '/reload'],
      ['GET', '/lists'],
      ['GET', '/metrics'],
      ['GET', '/status.json'],
      ['GET', '/nope'], // unknown routes too: nothing is revealed without the token
      ['POST', '/'],
      ['DELETE', '/health'],
    ];
    for (const [method, path] of routes) {
      const attempts: Record<string, string>[] = [
        {},
        { authorization: 'Bearer wrong' },
        { authorization: `Basic ${token}` },
        { authorization: `Bearer ${token}x` },
      ];
      for (const headers of attempts) {
        const reply = await request(ctx.port, path, { method, headers, ...(method === 'POST' ? { body: '{}' } : {}) });
        assert.equal(reply.status, 401, `${method} ${path} ${JSON.stringify(headers)}`);
        assert.equal(reply.headers['www-authenticate'], 'Bearer realm="iprep"');
        assert.match(errorOf(reply.json), /bearer token/);
      }
    }
    assert.deepEqual(ctx.service.calls, [], 'nothing reached the service');
  });

  it('serves every route with the token', async () => {
    assert.equal((await request(ctx.port, '/lists', { token })).status, 200);
    assert.equal((await request(ctx.port, '/status.json', { token })).status, 200);
    assert.equal((await request(ctx.port, '/metrics', { token })).status, 200);
    assert.equal((await request(ctx.port, '/explain?ip=192.0.2.1', { token })).status, 200);
    const added = await request(ctx.port, '/decisions', { method: 'POST', token, body: '{"value": "192.0.2.1"}' });
    assert.equal(added.status, 201);
    assert.equal((await request(ctx.port, '/decisions/192.0.2.1', { method: 'DELETE', token })).status, 204);
    assert.equal((await request(ctx.port, '/nope', { token })).status, 404);
    assert.equal((await request(ctx.port, '/health', { method: 'DELETE', token })).status, 405);
  });
});

describe('admin server lifecycle', () => {
  it('close() ends idle keep-alive connections', async () => {
    const ctx = await start();
    const agent = new Agent({ keepAlive: true });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: ctx.port, path: '/health', agent }, (res) => {
          res.resume();
          res.once('end', () => resolve(res.statusCode ?? 0));
        });
        req.once('error', reject);
        req.end();
      });
      assert.equal(status, 200);
      const idle = Object.values(agent.freeSockets).flat();
      assert.equal(idle.length, 1, 'the connection stays open for reuse');
      const socket = idle[0]!;
      socket.ref(); // the agent unrefs idle sockets; keep the test alive until this one closes
      const closed = once(socket, 'close');
      const started = Date.now();
      await ctx.server.close();
      await closed;
      assert.ok(Date.now() - started < 1000, 'close() does not wait for the keep-alive timeout');
    } finally {
      agent.destroy();
    }
  });

  it('refuses an empty token or one with spaces', () => {
    for (const token of ['', 'two words', ' ']) {
      assert.throws(
        () => new AdminServer({ service: new FakeReputationService(), metrics: new ReputationMetrics({ defaultMetrics: false }), token }),
        /admin token must be non-empty and without spaces/,
      );
    }
  });

  it('listen() rejects when the port is taken', async () => {
    const first = await start();
    const second = new AdminServer({ service: new FakeReputationService(), metrics: new ReputationMetrics({ defaultMetrics: false }), logger: silentLogger });
    try {
      await assert.rejects(second.listen({ host: '127.0.0.1', port: first.port }), /EADDRINUSE/);
    } finally {
      await first.server.close();
      await second.close();
    }
  });
});

/** Sends `head` (request line and headers) on a raw connection; resolves with the status code. */
async function rawStatus(port: number, host: string, head: string): Promise<number> {
  const socket = connect({ host, port });
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.write(`${head}\r\nconnection: close\r\n\r\n`);
  await once(socket, 'close');
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
}

describe('admin server: the Host header (DNS rebinding)', () => {
  it('refuses a Host that is not its address, localhost or a configured name, before auth, on every route', async () => {
    const service = new FakeReputationService();
    const metrics = new ReputationMetrics({ defaultMetrics: false, now: () => NOW });
    const server = new AdminServer({ service, metrics, logger: silentLogger, allowedHosts: ['admin.internal'] });
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
    try {
      for (const host of ['evil.example', `evil.example:${port}`, 'localhost.evil.example', '127.0.0.1.evil.example', '[::1', 'localhost:x', '192.0.2.1']) {
        for (const [method, path] of [
          ['GET', '/'],
          ['GET', '/health'],
          ['GET', '/decisions'],
          ['POST', '/decisions'],
          ['GET', '/status.json'],
          ['GET', '/nowhere'],
        ]) {
          const body = method === 'POST' ? '{"value":"198.51.100.9"}' : undefined;
          const reply = await request(port, path!, { method: method!, headers: { host }, ...(body === undefined ? {} : { body }) });
          assert.equal(reply.status, 421, `${method} ${path} Host: ${host}`);
          assert.match(errorOf(reply.json), /is not a name of this admin API.*admin\.allowed-hosts/);
        }
      }
      assert.equal(service.decisions.size, 0, 'no decision was added');
      for (const host of [
        'localhost',
        `localhost:${port}`,
        'LocalHost.',
        `127.0.0.1:${port}`,
        '127.0.0.1',
        `[::1]:${port}`,
        'admin.internal',
        `ADMIN.internal:8080`,
      ]) {
        assert.equal((await request(port, '/decisions', { headers: { host } })).status, 200, `Host: ${host}`);
      }
      // HTTP/1.0 without Host: not a browser, so not a rebinding.
      assert.equal(await rawStatus(port, '127.0.0.1', 'GET /health HTTP/1.0'), 200);
    } finally {
      await server.close();
    }
  });

  it('applies with a token too, and on IPv6 wants the address in brackets', async () => {
    const service = new FakeReputationService();
    const metrics = new ReputationMetrics({ defaultMetrics: false, now: () => NOW });
    const server = new AdminServer({ service, metrics, logger: silentLogger, token: 's3cret' });
    const { port } = await server.listen({ host: '::1', port: 0 });
    try {
      assert.equal(await rawStatus(port, '::1', `GET /decisions HTTP/1.1\r\nhost: evil.example\r\nauthorization: Bearer s3cret`), 421);
      assert.equal(await rawStatus(port, '::1', `GET /health HTTP/1.1\r\nhost: evil.example`), 421);
      assert.equal(await rawStatus(port, '::1', `GET /decisions HTTP/1.1\r\nhost: [::1]:${port}\r\nauthorization: Bearer s3cret`), 200);
      assert.equal(await rawStatus(port, '::1', `GET /health HTTP/1.1\r\nhost: ::1`), 421, 'an IPv6 literal needs brackets');
      assert.equal(await rawStatus(port, '::1', `GET /health HTTP/1.1\r\nhost: [2001:db8::1]`), 421);
    } finally {
      await server.close();
    }
  });
});

describe('status page assets', () => {
  let folder: string;
  before(() => {
    folder = mkdtempSync(join(tmpdir(), 'iprep-status-page-'));
  });
  after(() => rmSync(folder, { recursive: true, force: true }));

  /** A copy of the assets, changed by `change`, read as the server would. */
  function readChanged(name: string, change: (dir: string) => void): () => unknown {
    const dir = join(folder, name);
    cpSync(STATUS_PAGE_ASSETS, dir, { recursive: true });
    change(dir);
    return () => readStatusPage(dir);
  }

  it('refuse to start on an asset missing, one that would end its element early, or anything left to fetch', () => {
    assert.throws(
      readChanged('missing', (dir) => unlinkSync(join(dir, 'app.js'))),
      /status page: .*app\.js.*ENOENT/,
    );
    assert.throws(
      readChanged('early-end', (dir) => writeFileSync(join(dir, 'style.css'), 'body { color: red; }\n</style><script>alert(1)</script>\n')),
      /status page: style\.css holds "<\/style": it would end its element early/,
    );
    assert.throws(
      readChanged('remote', (dir) =>
        writeFileSync(
          join(dir, 'index.html'),
          readFileSync(join(dir, 'index.html'), 'utf8').replace('</body>', '<script src="https://example.test/x.js"></script></body>'),
        ),
      ),
      /status page: index\.html refers to <script src="https:\/\/example\.test\/x\.js">: the page must stand alone/,
    );
    assert.throws(
      readChanged('twice', (dir) =>
        writeFileSync(join(dir, 'index.html'), readFileSync(join(dir, 'index.html'), 'utf8').replace('</body>', '<script src="app.js"></script></body>')),
      ),
      /status page: index\.html must include app\.js once, not 2 times/,
    );
  });

  it('are in the package npm publishes', () => {
    const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
    const pack = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', '--workspace', 'packages/iprep'], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(pack.status, 0, pack.stderr);
    const [packed] = JSON.parse(pack.stdout) as [{ files: { path: string }[] }];
    const paths = packed.files.map((file) => file.path);
    for (const asset of ['index.html', 'style.css', 'app.js']) assert.ok(paths.includes(`src/admin/status-page/${asset}`), `${asset} is not packed`);
  });
});
