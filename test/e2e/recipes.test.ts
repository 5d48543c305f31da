/**
 * The recipes of examples/recipes end to end: real HAProxy 2.6, 3.0 and 3.2
 * with each recipe's haproxy.cfg and SPOE file as shipped (only ports and a
 * few timeouts rewritten), in front of `spoa` run with the recipes' own
 * reputation.yaml and lists. Clients appear as different addresses by binding
 * their connections to 127.0.0.x; what is checked is what HAProxy did to each.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type HaproxyHandle,
  type HaproxyVersion,
  type HttpResult,
  delay,
  examplesDir,
  freePort,
  haproxyVersions,
  httpGet,
  repoRoot,
  requireHaproxy,
  startHaproxy,
  startProcess,
  waitServerStatus,
  spoaBin,
} from 'test-support';

const recipesDir = join(examplesDir, 'recipes');

/**
 * Client addresses (all on the loopback interface), as listed in
 * examples/recipes/lists: the verdicts checked below are reputation.yaml's.
 */
const client = {
  deny: '127.0.0.10',
  tarpit: '127.0.0.20',
  captcha: '127.0.0.30',
  /** Also captcha-listed: a cookie earned by `captcha` must not work for it. */
  otherCaptcha: '127.0.0.31',
  unlisted: '127.0.0.40',
  /** Also in no list, and used by one test each (cached-verdict.cfg). */
  expiring: '127.0.0.41',
  neverSeen: '127.0.0.50',
  /** Used by warm-up requests only. */
  warmUp: '127.0.0.1',
} as const;

/** The agent the recipes talk to, and how many NOTIFY it received per client address. */
interface AgentUnderTest {
  readonly port: number;
  /** A point in the agent's log, to count from. */
  mark(): number;
  /** NOTIFY received for this client address since the mark. */
  notifies(address: string, since: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * `spoa --config reputation.yaml -d` (one process: every NOTIFY is in its debug
 * log), run on a copy of examples/recipes' reputation.yaml and lists/ so that
 * nothing the agent writes lands in the repository.
 */
async function startAgent(): Promise<AgentUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'iprep-recipes-'));
  cpSync(join(recipesDir, 'reputation.yaml'), join(dir, 'reputation.yaml'));
  cpSync(join(recipesDir, 'lists'), join(dir, 'lists'), { recursive: true });
  const port = await freePort();
  // No admin API: the recipes do not use it, and its port (9090) may be taken.
  const args = [spoaBin, '--config', join(dir, 'reputation.yaml'), '-d', '-p', String(port), '-n', '1', '--host', '127.0.0.1', '--admin-port', '0'];
  const agent = startProcess(process.execPath, args, { name: 'spoa' });
  await agent.waitForOutput(/agent listening/);
  return {
    port,
    mark: () => agent.outputLength(),
    async notifies(address, since) {
      await delay(200); // the log comes through a pipe, after HAProxy's response
      const notify = new RegExp(`<- NOTIFY .*check-client-ip\\((?:\\w+=)?ipv[46]:${address.replace(/\./g, '\\.')}\\)`, 'g');
      return agent.outputSince(since).match(notify)?.length ?? 0;
    },
    async stop() {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------
// The recipes, with the test's ports and shorter timeouts

interface RecipeRewrite {
  frontendPort: number;
  agentPort: number;
  /** Replaces `timeout tarpit`. */
  tarpit?: string;
  /** Replaces the stick table's `expire`. */
  expire?: string;
  /** Adds a `bind [::1]:<port>` line, for IPv6 clients. */
  ipv6Port?: number;
}

function readRecipe(name: string): string {
  return readFileSync(join(recipesDir, name), 'utf8');
}

function replaceOnce(text: string, pattern: RegExp, replacement: string, what: string): string {
  assert.match(text, pattern, `the recipe no longer contains the ${what} the tests rewrite`);
  return text.replace(pattern, replacement);
}

/** A recipe's haproxy.cfg with the agent's and the frontend's ports (and optionally timeouts) rewritten. */
function recipeConfig(name: string, opts: RecipeRewrite): string {
  let config = readRecipe(name);
  config = replaceOnce(config, /^(\s*server\s+\S+\s+127\.0\.0\.1:)12345\b/m, `$1${opts.agentPort}`, 'agent `server ... 127.0.0.1:12345`');
  config = replaceOnce(config, /^(\s*bind\s+):8080\b/m, `$1:${opts.frontendPort}`, '`bind :8080`');
  if (opts.ipv6Port) config = config.replace(/^(\s*)(bind\s.*)$/m, `$1$2\n$1bind [::1]:${opts.ipv6Port}`);
  if (opts.tarpit) config = replaceOnce(config, /^(\s*timeout\s+tarpit\s+)\S+/m, `$1${opts.tarpit}`, '`timeout tarpit`');
  if (opts.expire) config = replaceOnce(config, /^(\s*stick-table\s.*\bexpire\s+)\S+/m, `$1${opts.expire}`, 'stick table `expire`');
  return config;
}

/** A recipe's SPOE file with `timeout processing` raised for a loaded test machine. */
function recipeSpoe(name: string): string {
  return replaceOnce(readRecipe(name), /^(\s*timeout\s+processing\s+)\S+/m, '$1500ms', '`timeout processing`');
}

interface Setup {
  haproxy: HaproxyHandle;
  agent: AgentUnderTest;
  port: number;
  /** NOTIFY the agent received for this address since the warm-up. */
  notifies(address: string): Promise<number>;
}

/** Starts HAProxy with a recipe in front of the version's agent, and warms the agent connection up. */
async function setUp(
  version: HaproxyVersion,
  agent: AgentUnderTest,
  recipe: { config: string; spoe: string; rewrite?: Omit<RecipeRewrite, 'frontendPort' | 'agentPort'> },
): Promise<Setup> {
  const port = await freePort();
  const haproxy = await startHaproxy({
    version,
    config: recipeConfig(recipe.config, { frontendPort: port, agentPort: agent.port, ...recipe.rewrite }),
    files: { [recipe.spoe]: recipeSpoe(recipe.spoe) },
    port,
  });
  try {
    assert.doesNotMatch(haproxy.checkOutput, /WARNING|ALERT/, `haproxy -c on ${recipe.config}`);
    await waitServerStatus(haproxy, 'iprep-backend', 'iprep-srv', 'UP', 10_000);
    await warmUp(port, agent);
  } catch (err) {
    await haproxy.stop();
    throw err;
  }
  const since = agent.mark();
  return { haproxy, agent, port, notifies: (address) => agent.notifies(address, since) };
}

/**
 * Requests from the warm-up address until one comes back with the agent's
 * verdict: HAProxy 3.2 was seen losing the first NOTIFY of a fresh agent
 * connection, which must not be mistaken for a recipe that does not work.
 */
async function warmUp(port: number, agent: AgentUnderTest): Promise<void> {
  const since = agent.mark();
  for (let i = 0; i < 10; i++) {
    const r = await get(port, client.warmUp, '/warm-up');
    if (!r.rejected && r.status === 200 && /ip.score: 100\n/.test(r.body)) return;
  }
  throw new Error(`no request got the agent's verdict after 10 tries (${await agent.notifies(client.warmUp, since)} NOTIFY received)`);
}

// ---------------------------------------------------------------------------
// HTTP

function get(port: number, from: string, path = '/', headers: Record<string, string> = {}): Promise<HttpResult> {
  return httpGet(port, path, { localAddress: from, headers });
}

/** A response, failing the test with what came instead if the connection was cut. */
function response(r: HttpResult): Extract<HttpResult, { rejected: false }> {
  if (r.rejected) assert.fail(`expected an HTTP response, the connection was cut: ${r.error}`);
  return r;
}

/** One POST without a body, from a given source address. */
function post(port: number, from: string, path: string): Promise<Extract<HttpResult, { rejected: false }>> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', localAddress: from, agent: false, timeout: 5_000 });
    req.on('timeout', () => req.destroy(new Error(`POST ${path}: no response within 5000 ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ rejected: false, status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.end();
  });
}

/** Milliseconds a request took, and its result. */
async function timed<R>(request: () => Promise<R>): Promise<{ ms: number; result: R }> {
  const t0 = performance.now();
  const result = await request();
  return { ms: performance.now() - t0, result };
}

// ---------------------------------------------------------------------------
// The files as shipped

const recipeFiles = ['deny.cfg', 'tarpit.cfg', 'captcha.cfg', 'cached-verdict.cfg'] as const;

/** `haproxy -c` on a recipe as shipped, run from examples/recipes as the README says. */
function checkShipped(version: HaproxyVersion, file: string, env: NodeJS.ProcessEnv): { status: number | null; output: string } {
  const run = spawnSync(requireHaproxy(version), ['-c', '-f', file], { cwd: recipesDir, env, encoding: 'utf8', timeout: 10_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

function shippedRecipes(version: HaproxyVersion): void {
  describe('recipes as shipped, haproxy -c', () => {
    const withKey = { ...process.env, IPREP_CAPTCHA_KEY: randomBytes(32).toString('base64') };
    for (const file of recipeFiles) {
      it(`accepts ${file} without a warning`, () => {
        const { status, output } = checkShipped(version, file, withKey);
        assert.equal(status, 0, output);
        assert.doesNotMatch(output, /WARNING|ALERT/);
      });
    }

    it('refuses captcha.cfg without IPREP_CAPTCHA_KEY, saying how to set it', () => {
      const { IPREP_CAPTCHA_KEY: _unset, ...withoutKey } = process.env;
      const { status, output } = checkShipped(version, 'captcha.cfg', withoutKey);
      assert.notEqual(status, 0);
      assert.match(output, /IPREP_CAPTCHA_KEY is not set: export IPREP_CAPTCHA_KEY=\$\(openssl rand -base64 32\)/);
    });
  });
}

// ---------------------------------------------------------------------------
// Recipe 1: deny

function denyRecipe(version: HaproxyVersion, agent: () => AgentUnderTest): void {
  describe('recipe deny.cfg', { timeout: 30_000 }, () => {
    let s: Setup | undefined;
    before(async () => {
      s = await setUp(version, agent(), { config: 'deny.cfg', spoe: 'spoe-iprep.conf' });
    });
    after(() => s?.haproxy.stop());

    it('answers 403 to a deny-listed client', async () => {
      const r = response(await get(s!.port, client.deny));
      assert.equal(r.status, 403);
      assert.equal(await s!.notifies(client.deny), 1, 'the agent was asked once');
    });

    it('passes the others on with the verdict in x-ip-* headers, whatever the client sent', async () => {
      const spoofed = { 'x-ip-score': '100', 'x-ip-action': 'allow' };
      const tarpit = response(await get(s!.port, client.tarpit, '/', spoofed));
      assert.equal(tarpit.status, 200, 'tarpit is not enforced by this recipe');
      assert.equal(tarpit.body, 'hello\nx-ip-score: 30\nx-ip-action: tarpit\nx-ip-category: scanner\nx-ip-source: local-tarpit\n');
      const unlisted = response(await get(s!.port, client.unlisted, '/', { 'x-ip-score': '0' }));
      assert.equal(unlisted.status, 200);
      assert.match(unlisted.body, /^hello\nx-ip-score: 100\nx-ip-action: allow\n/);
    });
  });
}

// ---------------------------------------------------------------------------
// Recipe 2: tarpit

function tarpitRecipe(version: HaproxyVersion, agent: () => AgentUnderTest): void {
  describe('recipe tarpit.cfg', { timeout: 30_000 }, () => {
    const tarpitMs = 1000;
    let s: Setup | undefined;
    before(async () => {
      s = await setUp(version, agent(), { config: 'tarpit.cfg', spoe: 'spoe-iprep.conf', rewrite: { tarpit: `${tarpitMs}ms` } });
    });
    after(() => s?.haproxy.stop());

    it('holds a tarpit-listed client for `timeout tarpit`, then answers 429', async () => {
      const { ms, result } = await timed(() => get(s!.port, client.tarpit));
      assert.equal(response(result).status, 429);
      // HAProxy's timers have a millisecond resolution: allow a little less.
      assert.ok(ms >= tarpitMs - 20, `answered after ${ms.toFixed(0)} ms, before the tarpit time`);
      assert.ok(ms < tarpitMs + 2000, `answered after ${ms.toFixed(0)} ms`);
    });

    it('answers 403 to a deny-listed client and 200 to an unlisted one, without holding them', async () => {
      const deny = await timed(() => get(s!.port, client.deny));
      assert.equal(response(deny.result).status, 403);
      const unlisted = await timed(() => get(s!.port, client.unlisted));
      assert.equal(response(unlisted.result).status, 200);
      assert.equal(response(unlisted.result).body, 'hello\nip_score: 100\nip_action: allow\n');
      for (const { ms } of [deny, unlisted]) assert.ok(ms < tarpitMs, `answered after ${ms.toFixed(0)} ms`);
    });
  });
}

// ---------------------------------------------------------------------------
// Recipe 3: captcha

function captchaRecipe(version: HaproxyVersion, agent: () => AgentUnderTest): void {
  describe('recipe captcha.cfg', { timeout: 30_000 }, () => {
    // HAProxy reads its key from the environment it inherits from this process.
    const key = randomBytes(32).toString('base64');
    const tokenFor = (address: string): string => createHmac('sha256', Buffer.from(key, 'base64')).update(address).digest('hex');
    const page = '/shop/cart?item=42&qty=1';
    const keyBefore = process.env.IPREP_CAPTCHA_KEY;
    let s: Setup | undefined;
    before(async () => {
      process.env.IPREP_CAPTCHA_KEY = key;
      s = await setUp(version, agent(), { config: 'captcha.cfg', spoe: 'spoe-iprep.conf' });
    });
    after(async () => {
      if (keyBefore === undefined) delete process.env.IPREP_CAPTCHA_KEY;
      else process.env.IPREP_CAPTCHA_KEY = keyBefore;
      await s?.haproxy.stop();
    });

    it('redirects a captcha-listed client to the challenge, with where it was going', async () => {
      const r = response(await get(s!.port, client.captcha, page));
      assert.equal(r.status, 302);
      assert.equal(r.headers.location, `/iprep/challenge?return=${encodeURIComponent(page)}`);
    });

    it('serves the challenge page itself without redirecting', async () => {
      const r = response(await get(s!.port, client.captcha, `/iprep/challenge?return=${encodeURIComponent(page)}`));
      assert.equal(r.status, 200);
      assert.match(r.body, /<form method=post>/);
    });

    it('sets the cookie on a passed challenge and lets the client through with it', async () => {
      const passed = await post(s!.port, client.captcha, `/iprep/challenge?return=${encodeURIComponent(page)}`);
      assert.equal(passed.status, 302);
      assert.equal(passed.headers.location, page, 'back where the client was going');
      const setCookie = passed.headers['set-cookie']?.[0] ?? '';
      const cookie = setCookie.split(';')[0] ?? '';
      // The documented formula, which a real captcha service must follow.
      assert.equal(cookie, `iprep_captcha=${tokenFor(client.captcha)}`);
      assert.match(setCookie, /; Path=\/; Max-Age=3600; HttpOnly; SameSite=Lax$/);

      const r = response(await get(s!.port, client.captcha, page, { cookie }));
      assert.equal(r.status, 200);
      assert.equal(r.body, 'hello\nip_score: 50\nip_action: captcha\n');
    });

    it('redirects again with a forged cookie or one earned by another address', async () => {
      const forged = [`iprep_captcha=${'0'.repeat(64)}`, 'iprep_captcha=passed', 'iprep_captcha='];
      for (const cookie of forged) {
        assert.equal(response(await get(s!.port, client.captcha, page, { cookie })).status, 302, cookie);
      }
      const borrowed = `iprep_captcha=${tokenFor(client.captcha)}`;
      assert.equal(response(await get(s!.port, client.otherCaptcha, page, { cookie: borrowed })).status, 302);
    });

    it('returns to "/" rather than to another site after the challenge', async () => {
      for (const target of ['//evil.example/', '/\\evil.example/', 'https://evil.example/', '/a\r\nx-injected: 1']) {
        const r = await post(s!.port, client.captcha, `/iprep/challenge?return=${encodeURIComponent(target)}`);
        assert.equal(r.status, 302, target);
        assert.equal(r.headers.location, '/', target);
      }
    });

    it('answers 403 to a deny-listed client and 200 to an unlisted one', async () => {
      assert.equal(response(await get(s!.port, client.deny, page)).status, 403);
      const r = response(await get(s!.port, client.unlisted, page));
      assert.equal(r.status, 200);
      assert.equal(r.body, 'hello\nip_score: 100\nip_action: allow\n');
    });
  });
}

// ---------------------------------------------------------------------------
// Recipe 4: the verdict cached in a stick table

function cachedVerdictRecipe(version: HaproxyVersion, agent: () => AgentUnderTest): void {
  describe('recipe cached-verdict.cfg', { timeout: 30_000 }, () => {
    const tarpitMs = 500;
    const expireMs = 3000;
    let ipv6Port: number;
    let s: Setup | undefined;
    before(async () => {
      ipv6Port = await freePort();
      s = await setUp(version, agent(), {
        config: 'cached-verdict.cfg',
        spoe: 'spoe-iprep-group.conf',
        rewrite: { tarpit: `${tarpitMs}ms`, expire: `${expireMs}ms`, ipv6Port },
      });
    });
    after(() => s?.haproxy.stop());

    it('asks the agent once per client and judges the next requests from the table', async () => {
      const { port } = s!;
      for (let i = 0; i < 3; i++) {
        assert.equal(response(await get(port, client.deny)).status, 403, `deny-listed, request ${i}`);
        const unlisted = response(await get(port, client.unlisted));
        assert.equal(unlisted.status, 200, `unlisted, request ${i}`);
        assert.equal(unlisted.body, 'hello\nip_score: 100\n');
      }
      assert.equal(await s!.notifies(client.deny), 1, 'NOTIFY for the deny-listed client');
      assert.equal(await s!.notifies(client.unlisted), 1, 'NOTIFY for the unlisted client');
    });

    it('caches the verdict of IPv6 clients too', async () => {
      for (let i = 0; i < 2; i++) {
        const r = response(await httpGet(ipv6Port, '/', { host: '::1', family: 6 }));
        assert.equal(r.body, 'hello\nip_score: 100\n', `request ${i}`);
      }
      assert.equal(await s!.notifies('::1'), 1);
    });

    it('tarpits from the cached verdict too', async () => {
      for (let i = 0; i < 2; i++) {
        const { ms, result } = await timed(() => get(s!.port, client.tarpit));
        assert.equal(response(result).status, 429, `request ${i}`);
        assert.ok(ms >= tarpitMs - 20, `request ${i} answered after ${ms.toFixed(0)} ms, before the tarpit time`);
      }
      assert.equal(await s!.notifies(client.tarpit), 1);
    });

    it('asks again once the verdict has expired, however often the client came meanwhile', async () => {
      const { port } = s!;
      const t0 = performance.now();
      // Until well past the expiry (HAProxy purges expired entries from a timer
      // task), well before a second one.
      while (performance.now() - t0 < expireMs + 1000) {
        assert.equal(response(await get(port, client.expiring)).status, 200);
        await delay(250);
      }
      assert.equal(await s!.notifies(client.expiring), 2, 'one NOTIFY per expiry period');
    });

    it('keeps enforcing the cached verdicts while the agent is down', async () => {
      const { port, agent, notifies } = s!;
      // Verdicts fresh in the table (the previous test outlived the first ones).
      assert.equal(response(await get(port, client.deny)).status, 403);
      assert.equal(response(await get(port, client.unlisted)).status, 200);
      const asked = (await notifies(client.deny)) + (await notifies(client.unlisted));
      await agent.stop();
      assert.equal(response(await get(port, client.deny)).status, 403);
      assert.equal(response(await get(port, client.unlisted)).body, 'hello\nip_score: 100\n');
      assert.equal((await notifies(client.deny)) + (await notifies(client.unlisted)), asked, 'the stopped agent was not asked');
      // A client never seen gets no verdict: the recipe fails open.
      assert.equal(response(await get(port, client.neverSeen)).body, 'hello\nip_score: \n');
    });
  });
}

// ---------------------------------------------------------------------------
// The README's reputation example, as written there

describe("the README's reputation example", { timeout: 60_000 }, () => {
  it('runs as written: the recipes configuration serves verdicts, explained on the admin API it enables', async () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const command = /^spoa --config examples\/recipes\/reputation\.yaml -p 12345 /m;
    const explain = /^curl -s 'http:\/\/127\.0\.0\.1:9090\/explain\?ip=127\.0\.0\.10' /m;
    assert.match(readme, command, 'the README no longer shows the command this test runs');
    assert.match(readme, explain, 'the README no longer shows the explain request this test makes');
    // The same command and configuration on free ports, for a machine where 12345 or 9090 are taken.
    // The admin port is rewritten in the file, not given as --admin-port: that flag would also
    // enable the admin API, which the configuration as shipped must do by itself.
    const dir = mkdtempSync(join(tmpdir(), 'iprep-readme-'));
    cpSync(recipesDir, dir, { recursive: true });
    const [port, adminPort] = [await freePort(), await freePort()];
    const config = readFileSync(join(dir, 'reputation.yaml'), 'utf8');
    writeFileSync(
      join(dir, 'reputation.yaml'),
      replaceOnce(config, /^(admin: \{ enabled: true, host: 127\.0\.0\.1, port: )9090( \})$/m, `$1${adminPort}$2`, 'admin API on 127.0.0.1:9090'),
    );
    const args = [spoaBin, '--config', join(dir, 'reputation.yaml'), '-p', String(port)];
    const agent = startProcess(process.execPath, args, { name: 'spoa' });
    try {
      await agent.waitForOutput(/agent listening/);
      const answer = await httpGet(adminPort, '/explain?ip=127.0.0.10', { timeoutMs: 10_000 });
      assert.equal(answer.rejected, false);
      if (answer.rejected) return;
      assert.equal(answer.status, 200, answer.body);
      const verdict = JSON.parse(answer.body) as { action: string; source: string; score: number };
      assert.deepEqual([verdict.action, verdict.source, verdict.score], ['deny', 'local-deny', 0]);
      const page = await httpGet(adminPort, '/', { timeoutMs: 10_000 });
      assert.equal(page.rejected ? page.error : page.status, 200, 'the status page');
    } finally {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------

for (const version of haproxyVersions) {
  describe(`HAProxy ${version}`, { timeout: 120_000 }, () => {
    // One agent for all the recipes (it keeps no state between clients with
    // behaviour scoring off); each recipe gets a fresh HAProxy.
    let agent: AgentUnderTest | undefined;
    before(async () => {
      requireHaproxy(version); // a missing HAProxy fails the suite, it is never skipped
      agent = await startAgent();
    });
    after(() => agent?.stop());
    const theAgent = (): AgentUnderTest => agent ?? assert.fail('the agent did not start');

    shippedRecipes(version);
    denyRecipe(version, theAgent);
    tarpitRecipe(version, theAgent);
    captchaRecipe(version, theAgent);
    cachedVerdictRecipe(version, theAgent); // last: it stops the agent
  });
}
