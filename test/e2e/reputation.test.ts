/**
 * Reputation mode end to end: real HAProxy 2.6, 3.0 and 3.2 in front of
 * `spoa --config`, with the seed's SPOE configuration (`args src` on
 * `on-client-session`). Clients connect from different loopback addresses
 * (127.0.0.x), so HAProxy sends each one's address as `src`; what is checked is
 * what HAProxy did with the verdict: rejected connections and the variables it
 * echoes in response headers.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type HttpResult, haproxyVersions, httpGet, type ReputationStack, startReputationStack, stopReputationStack } from 'test-support';

const DENY_LIST = '# hand-made list\n127.0.0.10\n127.0.0.30\n';
const SOFT_LIST = '127.0.0.16/30\n';
const SCORED_CSV = 'address,score,note\n127.0.0.21,45,partner-feed\n';

function agentConfig(dir: string, adminPort: number, extraLists: readonly string[] = []): string {
  return `
mode: reputation
special: { enabled: false }      # the clients are 127.0.0.x: judge them by the lists only
behaviour: { enabled: false }
allowlist:
  - 127.0.0.30
lists:
  - { name: local-deny, format: netset, path: ${join(dir, 'deny.netset')}, score: 0, category: attacker, action: deny }
  - { name: local-soft, format: netset, path: ${join(dir, 'soft.netset')}, penalty: 30, category: scanner }
  - { name: partner, format: csv, path: ${join(dir, 'scored.csv')}, category: partner }
${extraLists.map((l) => `  - ${l}\n`).join('')}admin: { enabled: true, host: 127.0.0.1, port: ${adminPort} }
`;
}

type Setup = ReputationStack;

const setUp = (version: (typeof haproxyVersions)[number]): Promise<Setup> =>
  startReputationStack({
    version,
    files: { 'deny.netset': DENY_LIST, 'soft.netset': SOFT_LIST, 'scored.csv': SCORED_CSV },
    config: agentConfig,
    echo: ['ip_action', 'ip_category', 'ip_source'],
  });

const tearDown = stopReputationStack;

type Seen = { rejected: true } | { rejected: false; score: number; action: string; category: string; source: string };

function seen(r: HttpResult): Seen {
  if (r.rejected) return { rejected: true };
  const h = (name: string): string => String(r.headers[name] ?? '');
  return { rejected: false, score: Number(h('x-ip-score')), action: h('x-ip-action'), category: h('x-ip-category'), source: h('x-ip-source') };
}

const from = (s: Setup, client: string): Promise<Seen> => httpGet(s.frontend, '/', { localAddress: client }).then(seen);

async function admin(s: Setup, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${s.admin}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

for (const version of haproxyVersions) {
  describe(`HAProxy ${version}, reputation mode`, { timeout: 90_000 }, () => {
    let s: Setup | undefined;
    before(async () => {
      s = await setUp(version);
    });
    after(() => tearDown(s));

    it('gives each listed address its configured verdict', async () => {
      assert.ok(s);
      assert.deepEqual(await from(s, '127.0.0.2'), { rejected: false, score: 100, action: 'allow', category: 'none', source: 'default' });
      assert.deepEqual(await from(s, '127.0.0.10'), { rejected: true }, 'a hard-listed address (score 0) is rejected by the seed rule');
      assert.deepEqual(await from(s, '127.0.0.17'), { rejected: false, score: 70, action: 'log', category: 'scanner', source: 'local-soft' });
      assert.deepEqual(await from(s, '127.0.0.21'), { rejected: false, score: 45, action: 'captcha', category: 'partner', source: 'partner' });
      assert.deepEqual(
        await from(s, '127.0.0.30'),
        { rejected: false, score: 100, action: 'allow', category: 'allowlisted', source: 'allowlist' },
        'the allowlist wins over the deny list',
      );
    });

    it('explains an address through the admin API', async () => {
      assert.ok(s);
      const { status, json } = await admin(s, 'GET', '/explain?ip=127.0.0.30');
      assert.equal(status, 200);
      const verdict = json as { score: number; matches: Array<{ source: string }> };
      assert.equal(verdict.score, 100);
      assert.deepEqual(
        verdict.matches.map((m) => m.source),
        ['allowlist', 'local-deny'],
      );
    });

    it('applies a decision added through the API to the next request, and its removal', async () => {
      assert.ok(s);
      assert.equal((await from(s, '127.0.0.40')).rejected, false);
      const added = await admin(s, 'POST', '/decisions', { value: '127.0.0.40', action: 'deny', reason: 'e2e', durationMs: 60_000 });
      assert.equal(added.status, 201, JSON.stringify(added.json));
      assert.deepEqual(await from(s, '127.0.0.40'), { rejected: true });
      const removed = await admin(s, 'DELETE', `/decisions/${encodeURIComponent('127.0.0.40')}`);
      assert.equal(removed.status, 204);
      assert.equal((await from(s, '127.0.0.40')).rejected, false);
    });

    it('reloads on SIGHUP and when its configuration file changes', async () => {
      assert.ok(s);
      const setup = s;
      const reloads = (): number => (setup.agent.output().match(/ msg=reloaded /g) ?? []).length;
      const before = reloads();
      process.kill(setup.agent.pid, 'SIGHUP');
      await setup.agent.waitForOutput(/reloading why=SIGHUP/);
      const deadline = Date.now() + 5000;
      while (reloads() === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(reloads(), before + 1, 'one reload for the signal');
      assert.equal(setup.agent.alive(), true);
      // The configuration changes: a new list applies without any request to reload.
      writeFileSync(join(setup.dir, 'extra.netset'), '127.0.0.70\n');
      const extra = `{ name: extra, format: netset, path: ${join(setup.dir, 'extra.netset')}, score: 5, category: extra }`;
      writeFileSync(join(setup.dir, 'iprep.yaml'), agentConfig(setup.dir, Number(new URL(setup.admin).port), [extra]));
      const until = Date.now() + 5000;
      let verdict = await from(setup, '127.0.0.70');
      while (!verdict.rejected && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
        verdict = await from(setup, '127.0.0.70');
      }
      assert.deepEqual(verdict, { rejected: true }, 'the list added to the configuration file applies');
    });

    it('reloads under load without losing a request', async () => {
      assert.ok(s);
      const setup = s;
      const results: Seen[] = [];
      let running = true;
      const loop = async (client: string): Promise<void> => {
        while (running) results.push(await from(setup, client));
      };
      const loops = ['127.0.0.2', '127.0.0.17', '127.0.0.21', '127.0.0.50'].map(loop);
      // A list file edit (watched) and three explicit reloads while the clients run.
      writeFileSync(join(setup.dir, 'deny.netset'), `${DENY_LIST}127.0.0.50\n`);
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 150));
        const reload = await admin(setup, 'POST', '/reload');
        assert.equal(reload.status, 200, JSON.stringify(reload.json));
      }
      await new Promise((r) => setTimeout(r, 300));
      running = false;
      await Promise.all(loops);
      const unscored = results.filter((r) => !r.rejected && !(r.score >= 0 && r.score <= 100 && r.action !== ''));
      assert.equal(unscored.length, 0, `requests without a verdict: ${JSON.stringify(unscored.slice(0, 3))}`);
      assert.ok(results.length > 20, `only ${results.length} requests ran`);
      // The edited list applies after the reloads.
      assert.deepEqual(await from(setup, '127.0.0.50'), { rejected: true });
    });
  });
}
