/**
 * Reputation by country and ASN: rules, ASN lists, explain, and the handler's ip_country / ip_asn,
 * on tiny databases written for each case.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Message, type SetVarAction } from 'spop';
import { ReputationMetrics, mergeStatus } from '../../src/admin/index.js';
import { isStatusCounts } from '../../src/admin/status.js';
import { parseConfig } from '../../src/config/index.js';
import { DecisionIndex } from '../../src/decisions/index.js';
import { type CompiledList, ReputationEngine } from '../../src/engine/engine.js';
import { reputationHandler } from '../../src/engine/handler.js';
import { GeoCounts } from '../../src/geo/geo-counts.js';
import { GeoTable } from '../../src/geo/geo-table.js';
import { compileMmdb } from '../../src/geo/mmdb.js';
import { parseAddress, parseRange } from '../../src/net/address.js';
import { asnOfEntry, PackedListEntries, parseList } from '../../src/sources/index.js';
import { IntervalTable } from '../../src/table/index.js';
import type { GeoRuleConfig, IprepConfig, ListConfig, ListEntry, ListFormat } from '../../src/types.js';
import { writeMmdb } from '../fixtures/mmdb-writer.js';

const thresholds: IprepConfig['thresholds'] = { deny: 20, tarpit: 40, captcha: 60, log: 80 };
const NOW = Date.UTC(2026, 11, 1);
const LIMITS = { maxNetworks: 1000 };

const countries = new GeoTable(
  compileMmdb(
    writeMmdb([
      { network: '192.0.2.0/24', data: { country: { iso_code: 'FR' } } },
      { network: '198.51.100.0/24', data: { country: { iso_code: 'CN' } } },
      { network: '2001:db8::/32', data: { country: { iso_code: 'RU' } } },
    ]),
    'country',
    'country.mmdb',
    LIMITS,
  ),
);
const asns = new GeoTable(
  compileMmdb(
    writeMmdb([
      { network: '192.0.2.0/25', data: { autonomous_system_number: 64496, autonomous_system_organization: 'Example Net' } },
      { network: '198.51.100.0/24', data: { autonomous_system_number: 64496, autonomous_system_organization: 'Example Net' } },
      { network: '192.0.2.128/25', data: { autonomous_system_number: 64511, autonomous_system_organization: 'Other' } },
    ]),
    'asn',
    'asn.mmdb',
    LIMITS,
  ),
);

function rule(config: Partial<GeoRuleConfig>): GeoRuleConfig {
  const name = config.name ?? (config.countries !== undefined ? `country:${config.countries.join(',')}` : `asn:${(config.asns ?? []).join(',')}`);
  return { name, countries: [], asns: [], category: 'geo', ...config };
}

function asnList(config: Partial<ListConfig> & { name: string }, text: string, format: ListFormat = 'asn'): CompiledList {
  const { entries } = parseList(format, text, config.name);
  const full: ListConfig = { format, refreshMs: 3_600_000, category: config.name, minEntries: 0, maxShrink: 1, penalty: 50, ...config };
  const table = IntervalTable.compile(entries.map((e, value) => ({ range: e.range, value })));
  return { config: full, list: { name: full.name, entries: PackedListEntries.from(entries), table, loadedAt: NOW, origin: 'test', warnings: [] }, table };
}

function engine(options: { rules?: GeoRuleConfig[]; lists?: CompiledList[]; allow?: string[]; country?: boolean; asn?: boolean } = {}) {
  const e = new ReputationEngine({ thresholds, special: { enabled: false, internalAction: 'allow', bogonScore: 10 } }, { decisions: new DecisionIndex() });
  const ranges = (options.allow ?? []).map((t) => parseRange(t));
  e.setAllowlist({ ranges, table: IntervalTable.compile(ranges.map((range, value) => ({ range, value }))) });
  e.setLists(options.lists ?? []);
  e.geo.setTables(options.country === false ? undefined : countries, options.asn === false ? undefined : asns);
  e.geo.setRules(options.rules ?? []);
  return e;
}

const ip = (text: string): Uint8Array => parseAddress(text) as Uint8Array;

describe('ASN list formats', () => {
  it('asn: one AS number per line, AS64496 or 64496, with comments', () => {
    const { entries, warnings } = parseList('asn', '# bad networks\nAS64496\n64511 # note\nas7 ; other\nASX\n4294967296\n', 'asns.txt');
    assert.deepEqual(
      entries.map((e: ListEntry) => [asnOfEntry(e), e.note]),
      [
        [64496, undefined],
        [64511, 'note'],
        [7, 'other'],
      ],
    );
    assert.deepEqual(warnings, ['asns.txt:5: not an AS number: "ASX"', 'asns.txt:6: not an AS number: "4294967296"']);
  });

  it('asn-drop: Spamhaus ASN-DROP JSON lines, the metadata count checked', () => {
    const body = [
      '{"asn":64496,"rir":"ripencc","domain":"example.net","cc":"FR","asname":"EXAMPLE-AS"}',
      '{"asn":64511,"rir":"arin","cc":"US","asname":"OTHER"}',
      '{"type":"metadata","timestamp":1780000000,"size":2,"records":2}',
    ].join('\n');
    const { entries } = parseList('asn-drop', body, 'asndrop.json');
    assert.deepEqual(
      entries.map((e: ListEntry) => [asnOfEntry(e), e.note]),
      [
        [64496, 'EXAMPLE-AS example.net FR'],
        [64511, 'OTHER US'],
      ],
    );
    assert.throws(
      () => parseList('asn-drop', body.replace('"records":2', '"records":3'), 'asndrop.json'),
      /asndrop\.json:3: the metadata says 3 records, the file has 2/,
    );
  });
});

describe('rules by country and ASN', () => {
  it('a country rule with a score and an action decides', () => {
    const e = engine({ rules: [rule({ name: 'embargo', countries: ['CN', 'RU'], score: 10, action: 'deny', category: 'geo-block' })] });
    for (const address of ['198.51.100.7', '2001:db8::1', '::ffff:198.51.100.7']) {
      const v = e.score(ip(address), NOW);
      assert.deepEqual([v.score, v.action, v.category, v.source], [10, 'deny', 'geo-block', 'embargo'], address);
    }
    assert.equal(e.score(ip('192.0.2.1'), NOW).source, 'default', 'FR is not in the rule');
    assert.equal(e.score(ip('203.0.113.1'), NOW).source, 'default', 'an address the database does not know');
  });

  it('an ASN rule takes its penalty, combined with the others as list penalties are', () => {
    const e = engine({ rules: [rule({ asns: [64496], penalty: 30 }), rule({ countries: ['FR'], penalty: 25 })] });
    const v = e.explain('192.0.2.9', NOW);
    assert.equal(v.score, 45);
    assert.equal(v.action, 'captcha');
    assert.equal(v.source, 'asn:64496');
    assert.deepEqual(
      v.matches.map((m) => [m.kind, m.source, m.penalty, m.detail]),
      [
        ['geo', 'country:FR', 25, 'country FR'],
        ['geo', 'asn:64496', 30, 'AS64496 Example Net'],
      ],
    );
    assert.deepEqual(v.location, { country: 'FR', asn: 64496, organization: 'Example Net' });
    assert.equal(e.score(ip('192.0.2.200'), NOW).score, 75, 'AS64511: the country rule only');
  });

  it('an ASN list applies to every network of its ASNs', () => {
    const e = engine({
      lists: [asnList({ name: 'asn-drop', score: 0, action: 'deny', category: 'hijacked' }, '{"asn":64496,"asname":"EXAMPLE-AS"}\n', 'asn-drop')],
    });
    for (const address of ['192.0.2.1', '198.51.100.250']) {
      const v = e.score(ip(address), NOW);
      assert.deepEqual([v.score, v.action, v.source], [0, 'deny', 'asn-drop'], address);
    }
    assert.equal(e.score(ip('192.0.2.129'), NOW).source, 'default', 'AS64511 is not listed');
    const explained = e.explain('198.51.100.1', NOW);
    assert.deepEqual(
      explained.matches.map((m) => [m.kind, m.source, m.detail]),
      [['list', 'asn-drop', 'AS64496 EXAMPLE-AS']],
    );
    assert.equal(engine({ asn: false, lists: e.lists.slice() }).score(ip('192.0.2.1'), NOW).source, 'default', 'without an ASN database nothing is located');
  });

  it('the allowlist still wins, and explain without a database names no location', () => {
    const e = engine({ rules: [rule({ countries: ['FR'], score: 0 })], allow: ['192.0.2.0/24'] });
    assert.equal(e.score(ip('192.0.2.1'), NOW).action, 'allow');
    const plain = engine({ country: false, asn: false });
    assert.equal(plain.explain('192.0.2.1', NOW).location, undefined);
  });
});

describe('ip_country and ip_asn', () => {
  const variables: IprepConfig['variables'] = { scope: 'txn', score: 'ip_score', action: 'ip_action', category: 'ip_category', source: 'ip_source' };
  const call = (handler: ReturnType<typeof reputationHandler>, address: string) =>
    handler(new Message('check-client-ip', [{ name: '', value: { type: 'ipv4', value: address } }]), undefined as never) as SetVarAction[];
  const geoVars = (actions: SetVarAction[]) => actions.slice(4).map((a) => [a.scope, a.name, a.value.type, a.value.type === 'null' ? null : a.value.value]);

  it('are set when configured, for every located address', () => {
    const e = engine({ allow: ['192.0.2.128/25'] });
    const handler = reputationHandler({ engine: e, variables: { ...variables, country: 'ip_country', asn: 'ip_asn' }, now: () => NOW });
    assert.deepEqual(geoVars(call(handler, '192.0.2.1')), [
      ['txn', 'ip_country', 'str', 'FR'],
      ['txn', 'ip_asn', 'uint32', 64496],
    ]);
    assert.deepEqual(geoVars(call(handler, '192.0.2.130')), [
      ['txn', 'ip_country', 'str', 'FR'],
      ['txn', 'ip_asn', 'uint32', 64511],
    ]);
    assert.deepEqual(geoVars(call(handler, '198.51.100.1')), [
      ['txn', 'ip_country', 'str', 'CN'],
      ['txn', 'ip_asn', 'uint32', 64496],
    ]);
    assert.deepEqual(geoVars(call(handler, '203.0.113.1')), [], 'not located: not set');
    // The answer of a verdict and a location is built once.
    assert.equal(call(handler, '192.0.2.1'), call(handler, '192.0.2.2'));
  });

  it('are off by default', () => {
    const handler = reputationHandler({ engine: engine(), variables, now: () => NOW });
    assert.equal(call(handler, '192.0.2.1').length, 4);
  });
});

describe('the geo section', () => {
  const FILE = '/etc/spoa/iprep.yaml';
  const problems = (yaml: string): string => {
    try {
      parseConfig(yaml, FILE);
    } catch (err) {
      return (err as Error).message;
    }
    assert.fail('no error');
  };

  it('reads the databases, the rules and the variables', () => {
    const config = parseConfig(
      [
        'geo:',
        '  country-db: geo/country.mmdb',
        '  asn-db: /data/asn.mmdb',
        '  max-bytes: 64MiB',
        '  top: 5',
        '  rules:',
        '    - { name: embargo, country: [cn, RU], score: 0, action: deny, category: geo-block }',
        '    - { asn: [64496, AS64511] }',
        'variables: { country: ip_country, asn: ip_asn }',
        'lists: [{ name: asn-drop, format: asn-drop, path: asndrop.json }]',
      ].join('\n'),
      FILE,
    );
    assert.deepEqual(config.geo, {
      countryDb: '/etc/spoa/geo/country.mmdb',
      asnDb: '/data/asn.mmdb',
      maxBytes: 64 * 2 ** 20,
      maxEntries: 8_000_000,
      top: 5,
      rules: [
        { name: 'embargo', countries: ['CN', 'RU'], asns: [], score: 0, category: 'geo-block', action: 'deny' },
        { name: 'asn:64496,64511', countries: [], asns: [64496, 64511], penalty: 50, category: 'geo' },
      ],
    });
    assert.equal(config.variables.country, 'ip_country');
    assert.equal(config.variables.asn, 'ip_asn');
    assert.equal(parseConfig('mode: reputation', FILE).variables.country, undefined, 'off by default');
  });

  it('reports what is wrong, where', () => {
    assert.match(problems('geo:\n  rules:\n    - { country: [FR], asn: [1] }'), /3:7: geo\.rules\[0\] needs either country: \[\.\.\] or asn: \[\.\.\]/);
    assert.match(problems('geo:\n  rules:\n    - { country: [FR] }'), /geo\.rules\[0\] is by country: geo\.country-db is needed/);
    assert.match(
      problems('geo:\n  asn-db: a.mmdb\n  rules:\n    - { asn: [ASX] }'),
      /geo\.rules\[0\]\.asn\[0\] must be an AS number \(64496 or AS64496\), got "ASX"/,
    );
    assert.match(problems('geo:\n  country-db: c.mmdb\n  rules:\n    - { country: [FRA] }'), /geo\.rules\[0\]\.country\[0\] must be a two-letter country code/);
    assert.match(
      problems('geo:\n  country-db: c.mmdb\n  rules:\n    - { country: [FR] }\n    - { country: [DE, fr] }'),
      /geo\.rules\[1\] names FR, already in geo\.rules\[0\]/,
    );
    assert.match(problems('lists: [{ name: a, format: asn, path: a.txt }]'), /lists\[0\] \(a\) is a list of ASNs: geo\.asn-db is needed/);
    assert.match(problems('variables: { country: ip_score }'), /variables\.country and variables\.score name the same variable/);
  });
});

describe('countries and ASNs in the metrics', () => {
  it('counts located messages, keeps the totals across a database reload, and shows the top in /metrics', async () => {
    const e = engine();
    const counts = new GeoCounts();
    const handler = reputationHandler({
      engine: e,
      variables: { scope: 'txn', score: 's', action: 'a', category: 'c', source: 'src' },
      geoCounts: counts,
      now: () => NOW,
    });
    const send = (address: string, times: number) => {
      for (let i = 0; i < times; i++) handler(new Message('check-client-ip', [{ name: '', value: { type: 'ipv4', value: address } }]), undefined as never);
    };
    send('192.0.2.1', 3); // FR, AS64496
    send('198.51.100.1', 2); // CN, AS64496
    send('192.0.2.200', 1); // FR, AS64511
    send('203.0.113.1', 5); // not located
    // The same databases loaded again (new tables, new labels): counts carry over by name.
    e.geo.setTables(new GeoTable(compileMmdb(writeMmdb([{ network: '192.0.2.0/24', data: { country: { iso_code: 'FR' } } }]), 'country', 'c', LIMITS)), asns);
    send('192.0.2.1', 1);
    assert.deepEqual(counts.top('country', 20), [
      { value: 'FR', count: 5 },
      { value: 'CN', count: 2 },
    ]);
    assert.deepEqual(counts.top('asn', 1), [{ value: 'AS64496', count: 6, name: 'Example Net' }]);

    const metrics = new ReputationMetrics({ defaultMetrics: false });
    metrics.setGeoProvider(() => ({
      top: 20,
      countries: counts.top('country', 20),
      asns: counts.top('asn', 20),
      databases: [{ kind: 'country', path: 'c.mmdb', networks: 1, labels: 1, databaseType: 'Test', builtAt: null, loadedAt: NOW, lastError: 'broken' }],
    }));
    const text = await metrics.registry.metrics();
    assert.match(text, /^iprep_geo_messages\{kind="country",value="FR"\} 5$/m);
    assert.match(text, /^iprep_geo_messages\{kind="asn",value="AS64511"\} 1$/m);
    assert.match(text, /^iprep_geo_database_networks\{kind="country"\} 1$/m);
    assert.match(text, /^iprep_geo_database_error\{kind="country"\} 1$/m);
    const status = metrics.status();
    assert.deepEqual(status.geo?.countries[0], { value: 'FR', count: 5 });
  });
});

describe('countries and ASNs across workers', () => {
  it('are summed by name, the first worker’s databases shown; a part with a bad geo field is refused', () => {
    const part = (countries: [string, number][], asns: [string, number][]) => {
      const metrics = new ReputationMetrics({ defaultMetrics: false, now: () => NOW });
      metrics.setGeoProvider(() => ({
        top: 2,
        countries: countries.map(([value, count]) => ({ value, count })),
        asns: asns.map(([value, count]) => ({ value, count, name: `${value} Org` })),
        databases: [{ kind: 'country', path: 'c.mmdb', networks: 9, labels: 3, databaseType: null, builtAt: null, loadedAt: NOW, lastError: null }],
      }));
      return metrics.statusCounts();
    };
    const a = part(
      [
        ['FR', 5],
        ['DE', 1],
      ],
      [['AS1', 2]],
    );
    const b = part(
      [
        ['DE', 7],
        ['CN', 2],
      ],
      [['AS2', 9]],
    );
    const merged = mergeStatus([a, b]);
    assert.deepEqual(merged.geo?.countries, [
      { value: 'DE', count: 8 },
      { value: 'FR', count: 5 },
    ]);
    assert.deepEqual(merged.geo?.asns, [
      { value: 'AS2', count: 9, name: 'AS2 Org' },
      { value: 'AS1', count: 2, name: 'AS1 Org' },
    ]);
    assert.equal(merged.geo?.databases[0]?.networks, 9);
    assert.equal(isStatusCounts(JSON.parse(JSON.stringify(a))), true);
    assert.equal(isStatusCounts({ ...a, geo: { ...a.geo, countries: Array.from({ length: 1001 }, () => ({ value: 'FR', count: 1 })) } }), false);
    const none = new ReputationMetrics({ defaultMetrics: false });
    none.setGeoProvider(() => undefined);
    assert.equal(none.status().geo, null, 'no databases: no geo figures');
  });
});
