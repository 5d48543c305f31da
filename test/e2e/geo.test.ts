/**
 * Reputation by country and ASN end to end: real HAProxy (2.6 and 3.2) in front of `spoa --config`
 * with a country and an ASN database written for the test. Clients connect from different loopback
 * addresses (127.0.0.x), HAProxy sends each one's `src`, and the databases map those addresses to
 * countries and ASNs: a rule by country rejects, a rule by ASN and a list of ASNs lower the score,
 * and HAProxy echoes ip_country and ip_asn in response headers.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type HttpResult, httpGet, spoaBin, waitFor, type ReputationStack, startReputationStack, stopReputationStack } from 'test-support';
import { type MmdbNetwork, writeMmdb } from '../../packages/iprep/test/fixtures/mmdb-writer.js';

const VERSIONS = ['2.6', '3.2'] as const;
const run = promisify(execFile);

const country = (code: string) => ({ country: { iso_code: code } });
const asn = (number: number, organization: string) => ({ autonomous_system_number: number, autonomous_system_organization: organization });

function countryDb(embargoed: string): Buffer {
  const networks: MmdbNetwork[] = [
    { network: '127.0.0.40/30', data: country(embargoed) },
    { network: '127.0.0.48/28', data: country('FR') },
  ];
  return writeMmdb(networks, { databaseType: 'Test-Country' });
}

const ASN_DB = writeMmdb(
  [
    { network: '127.0.0.48/30', data: asn(64496, 'Example Hosting') },
    { network: '127.0.0.52/30', data: asn(64511, 'Other Net') },
  ],
  { databaseType: 'Test-ASN' },
);

function agentConfig(dir: string, adminPort: number): string {
  return `
mode: reputation
special: { enabled: false }      # the clients are 127.0.0.x: judge them by geo only
behaviour: { enabled: false }
variables: { country: ip_country, asn: ip_asn }
geo:
  country-db: ${join(dir, 'country.mmdb')}
  asn-db: ${join(dir, 'asn.mmdb')}
  rules:
    - { name: embargo, country: [CN], score: 0, action: deny, category: geo-block }
    - { asn: [64496], penalty: 30, category: hosting }
lists:
  - { name: bad-asns, format: asn, path: ${join(dir, 'asns.txt')}, penalty: 50, category: asn-list }
admin: { enabled: true, host: 127.0.0.1, port: ${adminPort} }
`;
}

type Setup = ReputationStack;

const setUp = (version: (typeof VERSIONS)[number]): Promise<Setup> =>
  startReputationStack({
    version,
    files: { 'country.mmdb': countryDb('CN'), 'asn.mmdb': ASN_DB, 'asns.txt': '# networks we do not want\nAS64511\n' },
    config: agentConfig,
    echo: ['ip_action', 'ip_source', 'ip_country', 'ip_asn'],
  });

const tearDown = stopReputationStack;

type Seen = { rejected: true } | { rejected: false; score: number; action: string; source: string; country: string; asn: string };

function seen(r: HttpResult): Seen {
  if (r.rejected) return { rejected: true };
  const h = (name: string): string => String(r.headers[name] ?? '');
  return {
    rejected: false,
    score: Number(h('x-ip-score')),
    action: h('x-ip-action'),
    source: h('x-ip-source'),
    country: h('x-ip-country'),
    asn: h('x-ip-asn'),
  };
}

const from = (s: Setup, client: string): Promise<Seen> => httpGet(s.frontend, '/', { localAddress: client }).then(seen);

for (const version of VERSIONS) {
  describe(`HAProxy ${version}, reputation by country and ASN`, { timeout: 90_000 }, () => {
    let s: Setup | undefined;
    before(async () => {
      s = await setUp(version);
    });
    after(() => tearDown(s));

    it('a rule by country rejects, a rule by ASN and a list of ASNs lower the score, and the variables reach HAProxy', async () => {
      assert.ok(s);
      assert.deepEqual(await from(s, '127.0.0.41'), { rejected: true }, 'CN: the embargo rule (score 0) makes HAProxy reject');
      assert.deepEqual(await from(s, '127.0.0.49'), { rejected: false, score: 70, action: 'log', source: 'asn:64496', country: 'FR', asn: '64496' });
      assert.deepEqual(await from(s, '127.0.0.53'), { rejected: false, score: 50, action: 'captcha', source: 'bad-asns', country: 'FR', asn: '64511' });
      assert.deepEqual(await from(s, '127.0.0.60'), { rejected: false, score: 100, action: 'allow', source: 'default', country: 'FR', asn: '' });
      assert.deepEqual(await from(s, '127.0.0.2'), { rejected: false, score: 100, action: 'allow', source: 'default', country: '', asn: '' }, 'not located');
    });

    it('explains the location and the rule, and follows a new database file', async () => {
      assert.ok(s);
      const res = await fetch(`${s.admin}/explain?ip=127.0.0.41`);
      const verdict = (await res.json()) as { source: string; location: unknown; matches: { kind: string; detail: string }[] };
      assert.equal(verdict.source, 'embargo');
      assert.deepEqual(verdict.location, { country: 'CN' });
      assert.deepEqual(verdict.matches[0], { kind: 'geo', source: 'embargo', category: 'geo-block', score: 0, action: 'deny', detail: 'country CN' });

      // spoa explain prints the location and the rule.
      const { stdout } = await run(process.execPath, [spoaBin, 'explain', '127.0.0.49'], {
        env: { PATH: process.env['PATH'] ?? '', SPOA_ADMIN: s.admin.replace('http://', '') },
      });
      assert.match(stdout, /^ {2}located: country FR, AS64496 Example Hosting$/m);
      assert.match(stdout, /geo asn:64496 \[hosting\] -30 points: AS64496 Example Hosting/);

      // The country database replaced (written beside, renamed over): the agent follows it.
      writeFileSync(join(s.dir, 'country.next'), countryDb('NL'));
      renameSync(join(s.dir, 'country.next'), join(s.dir, 'country.mmdb'));
      const setup = s;
      let last: Seen | undefined;
      await waitFor(
        () => `127.0.0.41 as NL, got ${JSON.stringify(last)}`,
        async () => {
          last = await from(setup, '127.0.0.41');
          return !last.rejected && last.country === 'NL';
        },
        10_000,
        200,
      );
    });
  });
}
