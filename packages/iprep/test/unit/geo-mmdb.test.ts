import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { Reader } from 'mmdb-lib';
import { GeoTable } from '../../src/geo/geo-table.js';
import { compileMmdb, countryCodeOf, MmdbError } from '../../src/geo/mmdb.js';
import { formatAddress, parseAddress } from '../../src/net/address.js';
import { type MmdbNetwork, writeMmdb } from '../fixtures/mmdb-writer.js';

const LIMITS = { maxNetworks: 5_000_000 };

const COUNTRY_NETWORKS: MmdbNetwork[] = [
  { network: '192.0.2.0/24', data: { country: { iso_code: 'FR' } } },
  { network: '192.0.2.128/25', data: { country: { iso_code: 'DE' } } },
  { network: '198.51.100.0/24', data: { country: { iso_code: 'FR' } } },
  { network: '198.51.101.0/24', data: { country: { iso_code: 'FR' } } },
  { network: '203.0.113.0/24', data: { city: { names: { en: 'no country here' } } } },
];

function address(text: string): Uint8Array {
  return parseAddress(text) as Uint8Array;
}

/** A deterministic stream of addresses (xorshift), so a failure can be replayed. */
function* addresses(count: number, seed: number, family: 4 | 6): Generator<Uint8Array> {
  let x = seed >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (let i = 0; i < count; i++) {
    const bytes = new Uint8Array(family === 4 ? 4 : 16);
    const view = new DataView(bytes.buffer);
    for (let w = 0; w < bytes.length / 4; w++) view.setUint32(w * 4, next());
    if (family === 6) bytes[0] = 0x20 | ((bytes[0] as number) & 0x1f); // 2000::/3, where the data is
    yield bytes;
  }
}

describe('compileMmdb', () => {
  for (const recordSize of [24, 28, 32] as const) {
    for (const ipVersion of [4, 6] as const) {
      it(`country database, IPv${ipVersion}, ${recordSize}-bit records: the table answers as the reader does`, () => {
        const networks = ipVersion === 6 ? [...COUNTRY_NETWORKS, { network: '2001:db8::/32', data: { country_code: 'NL' } }] : COUNTRY_NETWORKS;
        const db = writeMmdb(networks, { recordSize, ipVersion, databaseType: 'Test-Country' });
        const table = new GeoTable(compileMmdb(db, 'country', 'test.mmdb', LIMITS));
        const reader = new Reader(db);
        const probes = ['192.0.2.0', '192.0.2.127', '192.0.2.128', '192.0.2.255', '192.0.1.255', '198.51.100.7', '198.51.101.255', '203.0.113.5', '10.0.0.1'];
        if (ipVersion === 6) probes.push('2001:db8::1', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', '2001:db9::');
        for (const text of probes) {
          const label = table.lookup(address(text));
          const expected = countryCodeOf(reader.get(text)) ?? '';
          assert.equal(label < 0 ? '' : table.text(label), expected, text);
        }
        assert.equal(table.text(table.lookup(address('192.0.2.200'))), 'DE');
        assert.equal(table.lookup(address('203.0.113.5')), -1, 'a record without a country is no country');
        assert.equal(table.databaseType, 'Test-Country');
        // Neighbouring networks of one country are one interval.
        assert.equal(table.table.intervals, ipVersion === 6 ? 4 : 3);
      });
    }
  }

  it('ASN database: AS numbers and organisation names, IPinfo-style "AS64500" too', () => {
    const db = writeMmdb([
      { network: '192.0.2.0/24', data: { autonomous_system_number: 64496, autonomous_system_organization: 'Example Net' } },
      { network: '2001:db8::/32', data: { asn: 'AS64500', as_name: 'Docs v6' } },
    ]);
    const table = new GeoTable(compileMmdb(db, 'asn', 'asn.mmdb', LIMITS));
    const v4 = table.lookup(address('192.0.2.9'));
    assert.equal(table.asn(v4), 64496);
    assert.equal(table.text(v4), 'AS64496');
    assert.equal(table.name(v4), 'Example Net');
    const v6 = table.lookup(address('2001:db8:1::1'));
    assert.equal(table.asn(v6), 64500);
    assert.equal(table.name(v6), 'Docs v6');
    assert.equal(table.labelOfAsn(64500), v6);
    assert.equal(table.labelOfAsn(1), -1);
  });

  it('a truncated or corrupt file is an error naming the file', () => {
    const db = writeMmdb(COUNTRY_NETWORKS);
    assert.throws(
      () => compileMmdb(db.subarray(0, db.length - 40), 'country', '/data/country.mmdb', LIMITS),
      (err: Error) => {
        assert.ok(err instanceof MmdbError);
        assert.match(err.message, /^\/data\/country\.mmdb: not a MaxMind DB file/);
        return true;
      },
    );
    assert.throws(() => compileMmdb(Buffer.from('hello, world'), 'country', 'x.mmdb', LIMITS), /x\.mmdb: not a MaxMind DB file/);
    // The tree cut short: the metadata is there, the nodes are not.
    const meta = db.lastIndexOf(Buffer.from('MaxMind.com')) - 3;
    const cut = Buffer.concat([db.subarray(0, 20), db.subarray(meta)]);
    assert.throws(() => compileMmdb(cut, 'country', 'cut.mmdb', LIMITS), /cut\.mmdb: truncated or corrupt/);
    // The root's right record pointing back to the root (28-bit records): a loop, not a hang.
    const loop = Buffer.from(db);
    loop[3] = (loop[3] as number) & 0xf0;
    loop.writeUIntBE(0, 4, 3);
    assert.throws(() => compileMmdb(loop, 'country', 'loop.mmdb', LIMITS), /loop\.mmdb: corrupt search tree/);
  });

  it('a data record that points to itself is an error, not a hang', () => {
    const db = writeMmdb([{ network: '192.0.2.0/24', data: { country: { iso_code: 'FR' } } }]);
    // The data section follows 16 zero bytes; its first record (a map) becomes a pointer to offset 0: itself.
    const data = db.indexOf(Buffer.concat([Buffer.alloc(16), Buffer.from([0xe1])])) + 16;
    const looped = Buffer.from(db);
    looped[data] = 0x20;
    looped[data + 1] = 0;
    assert.throws(() => compileMmdb(looped, 'country', 'self.mmdb', LIMITS), /^MmdbError: self\.mmdb: corrupt data record for 192\.0\.2\.0\/24/);
  });

  it('a database of the other kind is an error that says so', () => {
    const db = writeMmdb(COUNTRY_NETWORKS);
    assert.throws(() => compileMmdb(db, 'asn', 'country.mmdb', LIMITS), /country\.mmdb: no AS number in its \d+ records: is it a asn database\?/);
  });

  it('stops past max-entries networks', () => {
    const db = writeMmdb(COUNTRY_NETWORKS.slice(0, 2).concat({ network: '198.51.100.0/24', data: { country: { iso_code: 'IT' } } }));
    assert.throws(() => compileMmdb(db, 'country', 'big.mmdb', { maxNetworks: 2 }), /big\.mmdb: more than 2 networks \(max-entries\)/);
  });
});

describe('compileMmdb with a real database (@ip-location-db/geo-whois-asn-country-mmdb)', () => {
  const require = createRequire(import.meta.url);
  const file = require.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb');

  it('answers as the reader does for 20,000 addresses of each family', () => {
    const db = readFileSync(file);
    const started = performance.now();
    const data = compileMmdb(db, 'country', file, LIMITS);
    const table = new GeoTable(data);
    const ms = performance.now() - started;
    assert.ok(table.table.intervals > 100_000, `${table.table.intervals} intervals`);
    // Built with the records, where the database is compiled (a worker thread in the agent): the main thread only wraps it.
    assert.equal(data.table.v4.index?.length, 65537, 'a /16 index for IPv4');
    assert.ok(data.table.v6.index !== null, 'an index for IPv6');
    assert.ok(table.labelCount > 200 && table.labelCount < 300, `${table.labelCount} countries`);
    const reader = new Reader(db);
    let known = 0;
    for (const family of [4, 6] as const) {
      for (const bytes of addresses(20_000, family === 4 ? 1234 : 5678, family)) {
        const text = formatAddress(bytes);
        const expected = countryCodeOf(reader.get(text)) ?? '';
        const label = table.lookup(bytes);
        assert.equal(label < 0 ? '' : table.text(label), expected, text);
        if (label >= 0) known++;
      }
    }
    assert.ok(known > 10_000, `${known} addresses located`);
    console.log(`# ${file}: ${table.table.intervals} intervals, ${table.labelCount} countries, compiled in ${ms.toFixed(0)} ms`);
  });
});

/** A range as the CIDR prefixes that cover exactly it (the mmdb search tree holds prefixes). */
function rangeToCidrs(start: bigint, end: bigint, bits: number, format: (value: bigint) => string): string[] {
  const out: string[] = [];
  let at = start;
  while (at <= end) {
    let size = 0;
    while (size < bits && (at & ((1n << BigInt(size + 1)) - 1n)) === 0n && at + (1n << BigInt(size + 1)) - 1n <= end) size++;
    out.push(`${format(at)}/${bits - size}`);
    at += 1n << BigInt(size);
  }
  return out;
}

function toBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function fromBigInt(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

describe('compileMmdb with real ASN data (@ip-location-db/asn: RouteViews and DB-IP, CC BY 4.0)', () => {
  const require = createRequire(import.meta.url);
  const csv = (family: 4 | 6) => readFileSync(require.resolve(`@ip-location-db/asn/asn-ipv${family}.csv`), 'utf8');

  it('a database written from a sample of its ranges answers every range with its AS number and organisation', () => {
    // Every 40th IPv4 range and every 20th IPv6 one, across the whole address space.
    const ranges: { start: Uint8Array; end: Uint8Array; asn: number; name: string }[] = [];
    for (const family of [4, 6] as const) {
      const lines = csv(family).split('\n');
      for (let i = 0; i < lines.length; i += family === 4 ? 40 : 20) {
        const m = /^([^,]+),([^,]+),(\d+),"?(.*?)"?$/.exec(lines[i] as string);
        if (m === null) continue;
        ranges.push({ start: address(m[1] as string), end: address(m[2] as string), asn: Number(m[3]), name: (m[4] as string).replaceAll('""', '"') });
      }
    }
    const networks: MmdbNetwork[] = ranges.flatMap(({ start, end, asn, name }) =>
      rangeToCidrs(toBigInt(start), toBigInt(end), start.length * 8, (value) => formatAddress(fromBigInt(value, start.length))).map((network) => ({
        network,
        data: { autonomous_system_number: asn, autonomous_system_organization: name },
      })),
    );
    const db = writeMmdb(networks, { databaseType: 'ip-location-db-asn-sample' });
    const table = new GeoTable(compileMmdb(db, 'asn', 'asn-sample.mmdb', LIMITS));
    const reader = new Reader<Record<string, unknown>>(db);
    for (const { start, end, asn, name } of ranges) {
      const middle = fromBigInt((toBigInt(start) + toBigInt(end)) / 2n, start.length);
      for (const probe of [start, middle, end]) {
        const label = table.lookup(probe);
        assert.equal(table.asn(label), asn, formatAddress(probe));
        assert.equal(table.name(label), name.slice(0, 120));
        assert.equal(reader.get(formatAddress(probe))?.['autonomous_system_number'], asn);
      }
    }
    console.log(`# ${ranges.length} real ranges as ${networks.length} networks: ${table.table.intervals} intervals, ${table.labelCount} ASNs`);
  });
});
