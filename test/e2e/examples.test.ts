/**
 * The example agents of examples/agents end to end: each agent run as its
 * README says (`node --import tsx agent.ts`), behind real HAProxy 2.6 and 3.2
 * with its haproxy.cfg and SPOE file as shipped (only ports, and `timeout
 * processing` for a loaded machine, rewritten). What is checked is what HAProxy
 * did with the ACK: a response header set from the agent's variable, or a deny.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type HaproxyHandle,
  type HaproxyVersion,
  type ManagedProcess,
  delay,
  examplesDir,
  freePort,
  repoRoot,
  requireHaproxy,
  startHaproxy,
  startProcess,
  waitServerStatus,
} from 'test-support';

const versions: readonly HaproxyVersion[] = ['2.6', '3.2'];
const agentsDir = join(examplesDir, 'agents');

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  ms: number;
}

/** One request on a fresh connection, with any method and headers (Node sends no User-Agent of its own). */
function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path,
      method: opts.method ?? 'GET',
      agent: false,
      headers: { connection: 'close', ...opts.headers },
      timeout: 10_000,
    });
    req.on('timeout', () => req.destroy(new Error(`${opts.method ?? 'GET'} ${path}: no response within 10 s`)));
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.end();
  });
}

function replaceOnce(text: string, pattern: RegExp, replacement: string, what: string): string {
  assert.match(text, pattern, `the example no longer contains the ${what} the test rewrites`);
  return text.replace(pattern, replacement);
}

/** An example's haproxy.cfg with the test's ports. */
function exampleConfig(example: string, frontendPort: number, agentPort: number): string {
  let config = readFileSync(join(agentsDir, example, 'haproxy.cfg'), 'utf8');
  config = replaceOnce(config, /^(\s*server\s+\S+\s+127\.0\.0\.1:)12345\b/m, `$1${agentPort}`, 'agent `server ... 127.0.0.1:12345`');
  config = replaceOnce(config, /^(\s*bind\s+):8080\b/m, `$1:${frontendPort}`, '`bind :8080`');
  return config;
}

/** An example's SPOE file with `timeout processing` raised to 2 s: a loaded machine must not turn an answer into a timeout. */
function exampleSpoe(example: string, file: string): string {
  const spoe = readFileSync(join(agentsDir, example, file), 'utf8');
  return replaceOnce(spoe, /^(\s*timeout\s+processing\s+)\S+/m, '$12s', '`timeout processing`');
}

/** `node --import tsx <file> <args>` from the repository root, as the examples' READMEs run them. */
async function runTs(file: string, args: readonly string[], ready: RegExp): Promise<ManagedProcess> {
  const proc = startProcess(process.execPath, ['--import', 'tsx', join(agentsDir, file), ...args], { cwd: repoRoot, name: file });
  await proc.waitForOutput(ready, 30_000);
  return proc;
}

interface Front {
  haproxy: HaproxyHandle;
  port: number;
}

/**
 * HAProxy in front of the agent, once the agent server is UP (a passing SPOP health check), and
 * until a request carries `header`: 3.x's first NOTIFY on a fresh connection is now and then
 * never sent (docs/protocol.md §9.1), so the first answers are not what the tests count.
 */
async function startFront(
  version: HaproxyVersion,
  example: string,
  spoeFile: string,
  agentPort: number,
  server: string,
  warmUp: (port: number) => Promise<Answer>,
  header: string,
): Promise<Front> {
  const port = await freePort();
  const haproxy = await startHaproxy({ version, config: exampleConfig(example, port, agentPort), files: { [spoeFile]: exampleSpoe(example, spoeFile) } });
  try {
    await waitServerStatus(haproxy, 'spoe-agents', server, 'UP', 10_000);
    for (let i = 0; ; i++) {
      const answer = await warmUp(port);
      if (answer.headers[header]) break;
      if (i === 20) throw new Error(`no ${header} header after 20 requests; HAProxy output:\n${haproxy.output()}`);
      await delay(100);
    }
    return { haproxy, port };
  } catch (err) {
    await haproxy.stop();
    throw err;
  }
}

describe('examples/agents/header-classifier', { timeout: 180_000 }, () => {
  let agent: ManagedProcess;
  let agentPort: number;

  before(async () => {
    for (const v of versions) requireHaproxy(v);
    agentPort = await freePort();
    agent = await runTs('header-classifier/agent.ts', ['--port', String(agentPort)], /agent listening/);
  });
  after(async () => {
    await agent?.stop();
  });

  for (const version of versions) {
    describe(`HAProxy ${version}`, () => {
      let front: Front;
      before(async () => {
        front = await startFront(version, 'header-classifier', 'spoe-classifier.conf', agentPort, 'classifier', (port) => request(port, '/'), 'x-class');
      });
      after(async () => {
        await front?.haproxy.stop();
      });

      const browser = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';

      it('a browser is browser, a crawler and a request without User-Agent are bot', async () => {
        assert.equal((await request(front.port, '/', { headers: { 'user-agent': browser } })).headers['x-class'], 'browser');
        assert.equal(
          (await request(front.port, '/', { headers: { 'user-agent': 'Googlebot/2.1 (+http://www.google.com/bot.html)' } })).headers['x-class'],
          'bot',
        );
        assert.equal((await request(front.port, '/', { headers: { 'user-agent': 'curl/8.5.0' } })).headers['x-class'], 'bot');
        assert.equal((await request(front.port, '/')).headers['x-class'], 'bot');
      });

      it('a path under /api/, JSON wanted, or a method browsers do not send is api', async () => {
        assert.equal((await request(front.port, '/api/items', { headers: { 'user-agent': browser } })).headers['x-class'], 'api');
        assert.equal((await request(front.port, '/items', { headers: { 'user-agent': browser, accept: 'application/json' } })).headers['x-class'], 'api');
        assert.equal((await request(front.port, '/items/1', { method: 'DELETE', headers: { 'user-agent': browser } })).headers['x-class'], 'api');
      });

      it('HAProxy denies /admin to bots only', async () => {
        const bot = await request(front.port, '/admin/', { headers: { 'user-agent': 'python-requests/2.31' } });
        assert.equal(bot.status, 403);
        assert.equal(bot.headers['x-class'], 'bot');
        const person = await request(front.port, '/admin/', { headers: { 'user-agent': browser } });
        assert.equal(person.status, 200);
        assert.equal(person.headers['x-class'], 'browser');
      });
    });
  }
});

describe('examples/agents/token-lookup', { timeout: 180_000 }, () => {
  let service: ManagedProcess;
  let agent: ManagedProcess;
  let agentPort: number;
  const slowMs = 4000;

  before(async () => {
    for (const v of versions) requireHaproxy(v);
    const servicePort = await freePort();
    service = await runTs('token-lookup/user-service.ts', ['--port', String(servicePort), '--slow-ms', String(slowMs)], /user service listening/);
    agentPort = await freePort();
    agent = await runTs('token-lookup/agent.ts', ['--port', String(agentPort), '--service', `http://127.0.0.1:${servicePort}`], /agent listening/);
  });
  after(async () => {
    await agent?.stop();
    await service?.stop();
  });

  for (const version of versions) {
    describe(`HAProxy ${version}`, () => {
      let front: Front;
      before(async () => {
        front = await startFront(version, 'token-lookup', 'spoe-token.conf', agentPort, 'token-lookup', (port) => request(port, '/'), 'x-auth');
      });
      after(async () => {
        await front?.haproxy.stop();
      });

      it('a known token: the user, from the service, in x-user', async () => {
        const answer = await request(front.port, '/', { headers: { authorization: 'Bearer t-alice' } });
        assert.equal(answer.status, 200);
        assert.equal(answer.headers['x-auth'], 'valid');
        assert.equal(answer.headers['x-user'], 'alice');
      });

      it('an unknown or malformed token is denied with 401; no token is anonymous', async () => {
        assert.equal((await request(front.port, '/', { headers: { authorization: 'Bearer t-nobody' } })).status, 401);
        assert.equal((await request(front.port, '/', { headers: { authorization: 'Bearer ../../etc' } })).status, 401);
        const anonymous = await request(front.port, '/');
        assert.equal(anonymous.status, 200);
        assert.equal(anonymous.headers['x-auth'], 'anonymous');
        assert.equal(anonymous.headers['x-user'], undefined);
      });

      it('a slow service: the agent gives up at its lookup timeout and answers unavailable, long before the service', async () => {
        const mark = agent.outputLength();
        const answer = await request(front.port, '/', { headers: { authorization: 'Bearer t-slow' } });
        assert.equal(answer.status, 200);
        assert.equal(answer.headers['x-auth'], 'unavailable', 'the agent answered (HAProxy timing out would leave no x-auth)');
        assert.equal(answer.headers['x-user'], undefined);
        assert.ok(answer.ms < slowMs / 2, `answered after ${Math.round(answer.ms)} ms; the service takes ${slowMs} ms`);
        await delay(100);
        assert.match(agent.outputSince(mark), /token lookup failed: answering unavailable.*(timeout|aborted)/i);
      });
    });
  }
});
