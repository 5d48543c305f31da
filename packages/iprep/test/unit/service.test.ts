/**
 * The service around the engine: loading, reloading (the last good state stays
 * when the new one is broken), decisions through the store, behaviour bans
 * written as decisions, and a URL list that cannot be had at start.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { consoleLogger } from 'spop';
import { loadConfigFile } from '../../src/config/index.js';
import { IprepService } from '../../src/service.js';

const silent = consoleLogger('silent');

async function withService(
  yaml: (dir: string) => string,
  files: Record<string, string>,
  run: (service: IprepService, dir: string, write: (name: string, text: string) => void) => Promise<void>,
  logger = silent,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'iprep-service-'));
  const write = (name: string, text: string): void => writeFileSync(join(dir, name), text);
  for (const [name, text] of Object.entries(files)) write(name, text);
  write('iprep.yaml', yaml(dir));
  const configPath = join(dir, 'iprep.yaml');
  const service = new IprepService(await loadConfigFile(configPath), { configPath, logger });
  try {
    await service.start();
    await run(service, dir, write);
  } finally {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const base = `
special: { enabled: false }
admin: { enabled: false }
behaviour: { window: 1m, rate-threshold: 1000, ban-threshold: 5, ban-time: 10m }
lists:
  - { name: deny, path: deny.netset, score: 0, category: attacker, action: deny }
`;

const verdictOf = (service: IprepService, ip: string) => {
  const v = service.explain(ip);
  return [v.score, v.action, v.source];
};

describe('IprepService', () => {
  it('does not round-trip behaviour counts through a memory store that only this process uses', async () => {
    // The store would hand back this process's own counts: formatting and parsing every busy client's key
    // each second for nothing, on the thread that answers HAProxy.
    await withService(
      () => base,
      { 'deny.netset': '198.51.100.1\n' },
      async (service) => {
        const tracker = service.behaviour;
        assert.ok(tracker);
        const client = Uint8Array.of(192, 0, 2, 7);
        for (let i = 0; i < 3; i++) tracker.hit(client);
        await sleep(1300); // past a sync interval
        assert.deepEqual([...tracker.takeDeltas()], [['192.0.2.7', 3]], 'the counts were not taken by a sync');
      },
    );
  });

  it('reloads a changed list, and keeps the last good state when the new one is broken', async () => {
    await withService(
      () => base,
      { 'deny.netset': '198.51.100.1\n' },
      async (service, _dir, write) => {
        assert.deepEqual(verdictOf(service, '198.51.100.1'), [0, 'deny', 'deny']);
        assert.deepEqual(verdictOf(service, '198.51.100.2'), [100, 'allow', 'default']);

        write('deny.netset', '198.51.100.2\n');
        const ok = await service.reload();
        assert.equal(ok.ok, true, ok.errors.join());
        assert.equal(service.reloadError(), null);
        assert.deepEqual(verdictOf(service, '198.51.100.1'), [100, 'allow', 'default']);
        assert.deepEqual(verdictOf(service, '198.51.100.2'), [0, 'deny', 'deny']);

        write('iprep.yaml', `${base}\nthresholds: { deny: 300 }\n`);
        const broken = await service.reload();
        assert.equal(broken.ok, false);
        assert.match(broken.errors[0] ?? '', /iprep\.yaml:\d+:\d+: .*100/);
        assert.deepEqual(verdictOf(service, '198.51.100.2'), [0, 'deny', 'deny'], 'the previous state stays');
        assert.match(service.reloadError() ?? '', /iprep\.yaml:\d+:\d+: .*100/, 'the failure stays visible');

        write('iprep.yaml', `${base}  - { name: more, path: missing.netset, penalty: 10 }\n`);
        const missing = await service.reload();
        assert.equal(missing.ok, false);
        assert.match(missing.errors[0] ?? '', /missing\.netset/);
        assert.deepEqual(verdictOf(service, '198.51.100.2'), [0, 'deny', 'deny']);
        assert.deepEqual(
          service.lists().map((l) => l.name),
          ['deny'],
        );
        assert.match(service.reloadError() ?? '', /missing\.netset/);

        write('iprep.yaml', base);
        assert.equal((await service.reload()).ok, true);
        assert.equal(service.reloadError(), null, 'a reload that succeeds clears it');
      },
    );
  });

  it('reloads through loadConfig when given (the file with the command line on top, checked merged)', async () => {
    await withService(
      () => base,
      { 'deny.netset': '198.51.100.1\n' },
      async (first, dir) => {
        const configPath = join(dir, 'iprep.yaml');
        let loads = 0;
        const loadConfig = async () => {
          loads++;
          const config = await loadConfigFile(configPath);
          return { ...config, thresholds: { ...config.thresholds, deny: 30 } };
        };
        const service = new IprepService(first.config, { configPath, loadConfig, logger: silent });
        await service.start();
        try {
          assert.equal((await service.reload()).ok, true);
          assert.equal(loads, 1);
          assert.equal(service.config.thresholds.deny, 30);
        } finally {
          await service.close();
        }
      },
    );
  });

  it('says which changed settings wait for a restart', async () => {
    const warnings: string[] = [];
    const logger = { ...silent, warn: (message: string, fields?: Record<string, unknown>) => warnings.push(`${message} ${JSON.stringify(fields)}`) };
    const dir = mkdtempSync(join(tmpdir(), 'iprep-service-'));
    const configPath = join(dir, 'iprep.yaml');
    writeFileSync(join(dir, 'deny.netset'), '198.51.100.1\n');
    writeFileSync(configPath, base);
    const service = new IprepService(await loadConfigFile(configPath), { configPath, logger });
    try {
      await service.start();
      writeFileSync(configPath, base.replace('ban-threshold: 5', 'ban-threshold: 7') + 'thresholds: { deny: 30 }\n');
      assert.equal((await service.reload()).ok, true);
      assert.deepEqual(warnings, ['changed settings apply at the next restart {"sections":"behaviour"}']);
      assert.equal(service.explain('192.0.2.1').action, 'allow');
      assert.equal(service.config.thresholds.deny, 30, 'thresholds did reload');
    } finally {
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('allowlist files keep the table they were loaded with (no entry objects on the main thread), and reload', async () => {
    const yaml = () => `${base}allowlist:\n  - 192.0.2.10\n  - file: allow.txt\n`;
    const allow = Array.from({ length: 20_000 }, (_, i) => `10.9.${i >> 8}.${i & 255}`).join('\n') + '\n198.51.100.1\n';
    await withService(yaml, { 'deny.netset': '198.51.100.1\n', 'allow.txt': allow }, async (service, _dir, write) => {
      assert.deepEqual(verdictOf(service, '198.51.100.1'), [100, 'allow', 'allowlist'], 'the file beats the deny list');
      assert.deepEqual(verdictOf(service, '192.0.2.10'), [100, 'allow', 'allowlist']);
      assert.equal(service.explain('10.9.3.7').matches[0]?.detail, '10.9.3.7');
      assert.equal(service.engine.allowlist.files?.[0]?.entries.length, 20_001);
      write('allow.txt', '203.0.113.0/24\n');
      assert.equal((await service.reload()).ok, true);
      assert.deepEqual(verdictOf(service, '198.51.100.1'), [0, 'deny', 'deny']);
      assert.equal(service.explain('203.0.113.9').matches[0]?.detail, '203.0.113.0/24');
    });
  });

  it('adds, applies, lists and removes decisions', async () => {
    await withService(
      () => base,
      { 'deny.netset': '198.51.100.1\n' },
      async (service) => {
        const d = await service.addDecision({ value: '2001:0db8::0007', action: 'captcha', reason: 'test' });
        assert.equal(d.key, 'ip:2001:db8::7');
        assert.deepEqual(verdictOf(service, '2001:db8::7'), [40, 'captcha', 'manual']);
        await service.addDecision({ value: '203.0.113.0/24', action: 'tarpit', durationMs: null });
        assert.deepEqual(verdictOf(service, '203.0.113.9'), [20, 'tarpit', 'manual']);
        assert.deepEqual(
          service
            .listDecisions()
            .map((x) => x.key)
            .sort(),
          ['ip:2001:db8::7', 'range:203.0.113.0/24'],
        );
        assert.equal(await service.removeDecision('2001:db8:0::7'), true);
        assert.equal(await service.removeDecision('range:203.0.113.0/24'), true);
        assert.equal(await service.removeDecision('192.0.2.1'), false);
        assert.deepEqual(verdictOf(service, '2001:db8::7'), [100, 'allow', 'default']);
        assert.equal(service.listDecisions().length, 0);
        await assert.rejects(service.addDecision({ value: 'nope' }), TypeError);
      },
    );
  });

  it('refuses decisions wider than decisions.min-prefix-v4/-v6 unless forced, and keeps the verdict of everyone else', async () => {
    const yaml = () => `${base}decisions: { min-prefix-v4: 16, min-prefix-v6: 48 }\n`;
    await withService(yaml, { 'deny.netset': '198.51.100.1\n' }, async (service) => {
      for (const value of ['0.0.0.0/0', '10.0.0.0/8', '::/0', '2001:db8::/32']) {
        await assert.rejects(service.addDecision({ value }), /is shorter than the minimum/, value);
      }
      await assert.rejects(service.addDecision({ value: '203.0.113.77/24' }), /did you mean 203\.0\.113\.0\/24\?/);
      assert.equal(service.listDecisions().length, 0);
      assert.deepEqual(verdictOf(service, '192.0.2.1'), [100, 'allow', 'default']);
      await service.addDecision({ value: '10.0.0.0/8', action: 'log', force: true });
      assert.deepEqual(verdictOf(service, '10.1.2.3'), [80, 'log', 'manual']);
    });
  });

  it('keeps decisions across a restart (memory store, decisions file)', async () => {
    await withService(
      () => base,
      { 'deny.netset': '198.51.100.1\n' },
      async (service, dir) => {
        await service.addDecision({ value: '203.0.113.77', action: 'tarpit', reason: 'kept' });
        await service.close();
        const again = new IprepService(await loadConfigFile(join(dir, 'iprep.yaml')), { logger: silent });
        await again.start();
        try {
          assert.deepEqual(verdictOf(again, '203.0.113.77'), [20, 'tarpit', 'manual']);
        } finally {
          await again.close();
        }
      },
    );
  });

  it('writes a behaviour ban as a decision', async () => {
    await withService(
      () => base,
      { 'deny.netset': '198.51.100.1\n' },
      async (service) => {
        const client = Uint8Array.of(198, 51, 100, 77);
        for (let i = 0; i < 6; i++) service.behaviour?.hit(client, 1, Date.now());
        assert.equal(service.engine.score(client, Date.now()).action, 'deny');
        for (let i = 0; i < 50 && service.listDecisions().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
        const [ban] = service.listDecisions();
        assert.equal(ban?.key, 'ip:198.51.100.77');
        assert.equal(ban?.origin, 'behaviour');
      },
    );
  });

  it('starts without a URL list it cannot fetch, and says so', async () => {
    const yaml = (dir: string) => `${base}  - { name: remote, url: http://127.0.0.1:9/list, format: netset, penalty: 20 }\ncache-dir: ${join(dir, 'cache')}\n`;
    await withService(yaml, { 'deny.netset': '198.51.100.1\n' }, async (service) => {
      for (let i = 0; i < 200 && service.lists().find((l) => l.name === 'remote')?.loading === true; i++) await sleep(10);
      const remote = service.lists().find((l) => l.name === 'remote');
      assert.ok(remote);
      assert.equal(remote.entries, 0);
      assert.equal(remote.loading, false);
      assert.match(remote.lastError ?? '', /.+/);
      assert.deepEqual(verdictOf(service, '198.51.100.1'), [0, 'deny', 'deny'], 'the other lists work');
    });
  });

  it('starts at once with a URL list that hangs, answers from the rest, and swaps the list in when it comes', async () => {
    let answer: ((body: string) => void) | undefined;
    const server = createServer((_req, res) => {
      answer = (body) => res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slow.netset`;
    const yaml = (dir: string) => `${base}  - { name: slow, url: ${url}, score: 0, action: deny }\ncache-dir: ${join(dir, 'cache')}\n`;
    try {
      const started = Date.now();
      await withService(yaml, { 'deny.netset': '198.51.100.1\n' }, async (service) => {
        assert.ok(Date.now() - started < 2_000, 'start() did not wait for the URL');
        assert.deepEqual(verdictOf(service, '198.51.100.1'), [0, 'deny', 'deny'], 'the file list answers at once');
        assert.deepEqual(verdictOf(service, '203.0.113.7'), [100, 'allow', 'default']);
        const slow = service.lists().find((l) => l.name === 'slow');
        assert.deepEqual([slow?.loading, slow?.entries, slow?.loadedAt], [true, 0, null]);

        for (let i = 0; i < 200 && answer === undefined; i++) await sleep(10);
        answer?.('203.0.113.7\n');
        for (let i = 0; i < 200 && verdictOf(service, '203.0.113.7')[0] !== 0; i++) await sleep(10);
        assert.deepEqual(verdictOf(service, '203.0.113.7'), [0, 'deny', 'slow'], 'swapped in once fetched');
        assert.equal(service.lists().find((l) => l.name === 'slow')?.loading, false);
      });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('warns when list entries fall inside internal ranges, which special decides first (once per copy, when special is on)', async () => {
    const lines: string[] = [];
    const logger = consoleLogger('warn', (line) => lines.push(line));
    const shadowed = () => lines.filter((line) => line.includes('inside internal ranges'));
    await withService(
      () => base.replace('special: { enabled: false }', 'special: { enabled: true }'),
      { 'deny.netset': '10.1.2.3\n198.51.100.1\n192.168.0.0/24\n' },
      async (service, _dir, write) => {
        assert.equal(shadowed().length, 1, lines.join('\n'));
        assert.match(shadowed()[0] ?? '', /list deny: 2 entries fall inside internal ranges/);
        assert.match(shadowed()[0] ?? '', /10\.1\.2\.3 \(private, RFC 1918\)/);
        assert.match(shadowed()[0] ?? '', /special\.enabled: false/, 'says how to make them apply');
        assert.deepEqual(verdictOf(service, '10.1.2.3'), [100, 'allow', 'rfc6890:private'], 'as the warning says: the list does not apply');

        assert.equal((await service.reload()).ok, true);
        assert.equal(shadowed().length, 1, 'the same copy is not warned about again');

        write('iprep.yaml', base);
        write('deny.netset', '10.1.2.4\n198.51.100.1\n192.168.0.0/24\n');
        const result = await service.reload();
        assert.equal(result.ok, true, result.errors.join());
        assert.equal(shadowed().length, 1, 'special off: the entries apply, nothing to say');
        assert.deepEqual(verdictOf(service, '10.1.2.4'), [0, 'deny', 'deny']);
      },
      logger,
    );
  });

  it('waits for a URL list with waitForLists (wait-for-lists: true)', async () => {
    const server = createServer((_req, res) => void setTimeout(() => res.writeHead(200).end('203.0.113.8\n'), 300));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slow.netset`;
    const yaml = (dir: string) => `${base}  - { name: slow, url: ${url}, score: 0 }\ncache-dir: ${join(dir, 'cache')}\nwait-for-lists: true\n`;
    try {
      await withService(yaml, { 'deny.netset': '198.51.100.1\n' }, async (service) => {
        assert.deepEqual(verdictOf(service, '203.0.113.8'), [0, 'deny', 'slow'], 'loaded before start() returned');
        assert.equal(service.lists().find((l) => l.name === 'slow')?.loading, false);
      });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('fails to start when a list file is missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iprep-service-'));
    try {
      writeFileSync(join(dir, 'deny.netset'), '198.51.100.1\n');
      writeFileSync(join(dir, 'iprep.yaml'), base);
      const config = await loadConfigFile(join(dir, 'iprep.yaml'));
      unlinkSync(join(dir, 'deny.netset'));
      const service = new IprepService(config, { logger: silent });
      await assert.rejects(service.start(), /deny\.netset/);
      await service.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
