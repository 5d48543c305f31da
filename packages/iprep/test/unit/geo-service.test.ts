/**
 * The geo databases in a running service: loaded at start, followed on disk, the last good copy kept
 * (and /health degraded) when a new file is broken, and a real database compiled without pausing
 * the event loop.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { consoleLogger } from 'spop';
import { watchEventLoop } from 'test-support/event-loop';
import { waitFor } from 'test-support/wait';
import { readExample } from 'test-support/haproxy';
import { workerHealth } from '../../src/admin/workers.js';
import { checkHaproxySetup } from '../../src/check/haproxy-checks.js';
import { runCheck } from '../../src/check/run.js';
import { loadConfigFile } from '../../src/config/index.js';
import { IprepService } from '../../src/service.js';
import { writeMmdb } from '../fixtures/mmdb-writer.js';

const silent = consoleLogger('silent');

const countryDb = (code: string) => writeMmdb([{ network: '192.0.2.0/24', data: { country: { iso_code: code } } }]);
const asnDb = writeMmdb([{ network: '192.0.2.0/24', data: { autonomous_system_number: 64496, autonomous_system_organization: 'Example Net' } }]);

async function withService(yaml: string, files: Record<string, Buffer | string>, run: (service: IprepService, dir: string) => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), 'iprep-geo-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  writeFileSync(join(dir, 'iprep.yaml'), yaml);
  const configPath = join(dir, 'iprep.yaml');
  const service = new IprepService(await loadConfigFile(configPath), { configPath, logger: silent });
  try {
    await service.start();
    await run(service, dir);
  } finally {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const YAML = `
special: { enabled: false }
admin: { enabled: false }
geo:
  country-db: country.mmdb
  asn-db: asn.mmdb
  rules:
    - { name: embargo, country: [CN], score: 0, action: deny }
lists:
  - { name: bad-asns, format: asn, path: asns.txt, penalty: 30 }
`;

describe('geo databases in the service', () => {
  it('decide at start, follow the file, and keep the last good copy when a new one is broken', async () => {
    await withService(YAML, { 'country.mmdb': countryDb('CN'), 'asn.mmdb': asnDb, 'asns.txt': 'AS64496\n' }, async (service, dir) => {
      const first = service.explain('192.0.2.1');
      assert.deepEqual([first.score, first.action, first.source], [0, 'deny', 'embargo']);
      assert.deepEqual(first.location, { country: 'CN', asn: 64496, organization: 'Example Net' });
      assert.deepEqual(
        first.matches.map((m) => m.source),
        ['embargo', 'bad-asns'],
      );
      assert.equal(workerHealth(service, 1).status, 'ok');

      // A new file, written beside and renamed over (as downloaders do): followed.
      writeFileSync(join(dir, 'next.mmdb'), countryDb('FR'));
      renameSync(join(dir, 'next.mmdb'), join(dir, 'country.mmdb'));
      await waitFor('the new country database', () => service.explain('192.0.2.1').location?.country === 'FR', 5000);
      assert.equal(service.explain('192.0.2.1').score, 70, 'no country rule now: the ASN list only');

      // A truncated file: refused, naming the file; the last good copy stays, /health is degraded.
      writeFileSync(join(dir, 'country.mmdb'), countryDb('CN').subarray(0, 30));
      const reload = await service.reload();
      assert.equal(reload.ok, false);
      assert.match(reload.errors.join(), /geo country-db: .*country\.mmdb: (not a MaxMind DB file|truncated or corrupt)/);
      assert.equal(service.explain('192.0.2.1').location?.country, 'FR');
      const health = workerHealth(service, 1);
      assert.equal(health.status, 'degraded');
      assert.match(health.listErrors.find((e) => e.list === 'geo:country-db')?.error ?? '', /country\.mmdb/);
      const status = service.geoDatabases().find((db) => db.kind === 'country');
      assert.equal(status?.networks, 1);
      assert.match(status?.lastError ?? '', /country\.mmdb/);
    });
  });

  it('a reload adds, changes and removes databases and rules', async () => {
    const plain = 'special: { enabled: false }\nadmin: { enabled: false }\n';
    await withService(plain, { 'country.mmdb': countryDb('CN'), 'asn.mmdb': asnDb, 'asns.txt': '' }, async (service, dir) => {
      assert.equal(service.explain('192.0.2.1').location, undefined);
      writeFileSync(join(dir, 'iprep.yaml'), YAML);
      assert.deepEqual((await service.reload()).errors, []);
      assert.equal(service.explain('192.0.2.1').source, 'embargo');
      writeFileSync(join(dir, 'iprep.yaml'), YAML.replace('country: [CN], score: 0', 'country: [CN], score: 30'));
      assert.deepEqual((await service.reload()).errors, []);
      assert.equal(service.explain('192.0.2.1').score, 30, 'the new rule, the same databases');
      writeFileSync(join(dir, 'iprep.yaml'), plain);
      assert.deepEqual((await service.reload()).errors, []);
      assert.equal(service.explain('192.0.2.1').location, undefined);
      assert.deepEqual(service.geoDatabases(), []);
    });
  });

  it('refuses to start with a database that cannot be used, naming it', async () => {
    await assert.rejects(
      withService(YAML, { 'country.mmdb': 'not a database', 'asn.mmdb': asnDb, 'asns.txt': '' }, async () => {}),
      /geo country-db: .*country\.mmdb: not a MaxMind DB file/,
    );
  });

  it('compiles a real 7.8 MB database in a worker thread: the event loop keeps ticking', async () => {
    const require = createRequire(import.meta.url);
    const real = require.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb');
    const dir = mkdtempSync(join(tmpdir(), 'iprep-geo-real-'));
    try {
      copyFileSync(real, join(dir, 'country.mmdb'));
      writeFileSync(join(dir, 'iprep.yaml'), 'special: { enabled: false }\nadmin: { enabled: false }\ngeo: { country-db: country.mmdb }\n');
      const configPath = join(dir, 'iprep.yaml');
      const service = new IprepService(await loadConfigFile(configPath), { configPath, logger: silent });
      const loop = watchEventLoop();
      const started = performance.now();
      try {
        await service.start();
        const gap = loop.longest();
        const status = service.geoDatabases()[0];
        console.log(
          `# real country database: ${status?.networks} networks in ${(performance.now() - started).toFixed(0)} ms, longest event-loop gap ${gap.toFixed(1)} ms`,
        );
        assert.ok((status?.networks ?? 0) > 100_000);
        assert.equal(service.explain('8.8.8.8').location?.country, 'US');
        // Compiling takes most of a second on one core; the main thread only receives the arrays.
        assert.ok(gap < 100, `the event loop stalled ${gap.toFixed(1)} ms`);
      } finally {
        loop.stop();
        await service.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('spoa check with geo databases', () => {
  it('compiles each database as the agent would, and knows ip_country / ip_asn in HAProxy rules', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iprep-geo-check-'));
    try {
      writeFileSync(join(dir, 'country.mmdb'), countryDb('FR'));
      writeFileSync(join(dir, 'asn.mmdb'), asnDb.subarray(0, 40));
      const yaml = 'admin: { enabled: false }\nvariables: { country: ip_country, asn: ip_asn }\ngeo: { country-db: country.mmdb, asn-db: asn.mmdb }\n';
      writeFileSync(join(dir, 'iprep.yaml'), yaml);
      let out = '';
      const io = { out: { write: (text: string) => void (out += text) }, err: { write: (text: string) => void (out += text) } };
      assert.equal(await runCheck(['--config', join(dir, 'iprep.yaml')], io, {}), 1);
      assert.match(out, /^note: .*country\.mmdb: geo country-db: 1 networks, 1 countries \(Test-DB\)$/m);
      assert.match(out, /^error: .*asn\.mmdb: geo asn-db: .*asn\.mmdb: (not a MaxMind DB file|truncated or corrupt)/m);

      const config = await loadConfigFile(join(dir, 'iprep.yaml'));
      const haproxy = `${readExample('haproxy.cfg')}\n    http-request set-header x-country %[var(sess.iprep.ip_country)]\n`;
      const findings = checkHaproxySetup({
        config,
        haproxyFile: 'haproxy.cfg',
        cwd: dir,
        version: undefined,
        readText: (path) => (path === 'haproxy.cfg' ? haproxy : path.endsWith('spoe-iprep.conf') ? readExample('spoe-iprep.conf') : undefined),
      });
      assert.deepEqual(
        findings.filter((f) => /ip_country/.test(f.message)),
        [],
      );
      const off = checkHaproxySetup({
        config: { ...config, variables: { ...config.variables, country: undefined } },
        haproxyFile: 'haproxy.cfg',
        cwd: dir,
        version: undefined,
        readText: (path) => (path === 'haproxy.cfg' ? haproxy : path.endsWith('spoe-iprep.conf') ? readExample('spoe-iprep.conf') : undefined),
      });
      assert.match(off.map((f) => f.message).join('\n'), /sess\.iprep\.ip_country is not a variable the agent sets/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
