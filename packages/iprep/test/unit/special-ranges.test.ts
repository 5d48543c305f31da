import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseAddress, parseRange } from '../../src/net/address.js';
import { PackedListEntries, entriesInsideInternal } from '../../src/sources/index.js';
import { SPECIAL_RANGES, type SpecialPolicy, SpecialRanges } from '../../src/table/index.js';

const specials = new SpecialRanges();
const bytes = (text: string): Uint8Array => {
  const b = parseAddress(text);
  assert.ok(b, text);
  return b;
};

describe('SpecialRanges', () => {
  // [address, name, policy], or [address] when the address is not special.
  const cases: [string, string?, SpecialPolicy?][] = [
    ['0.0.0.0', 'this-network', 'bogon'],
    ['0.255.255.255', 'this-network', 'bogon'],
    ['1.0.0.0'],
    ['8.8.8.8'],
    ['10.1.2.3', 'private', 'internal'],
    ['100.63.255.255'],
    ['100.64.0.1', 'shared-cgn', 'internal'],
    ['100.127.255.255', 'shared-cgn', 'internal'],
    ['100.128.0.0'],
    ['127.0.0.1', 'loopback', 'internal'],
    ['169.254.169.254', 'link-local', 'internal'],
    ['172.15.255.255'],
    ['172.16.0.1', 'private', 'internal'],
    ['172.31.255.255', 'private', 'internal'],
    ['172.32.0.0'],
    ['192.0.0.1', 'ietf-protocol-assignments', 'bogon'],
    ['192.0.0.9', 'pcp-anycast', 'none'],
    ['192.0.0.10', 'turn-anycast', 'none'],
    ['192.0.2.1', 'documentation', 'bogon'],
    ['192.31.196.1', 'as112', 'none'],
    ['192.52.193.1', 'amt', 'none'],
    ['192.88.99.1', '6to4-relay-anycast', 'bogon'],
    ['192.168.1.1', 'private', 'internal'],
    ['192.175.48.6', 'as112', 'none'],
    ['198.18.0.1', 'benchmarking', 'bogon'],
    ['198.19.255.255', 'benchmarking', 'bogon'],
    ['198.20.0.0'],
    ['198.51.100.7', 'documentation', 'bogon'],
    ['203.0.113.200', 'documentation', 'bogon'],
    ['223.255.255.255'],
    ['224.0.0.1', 'multicast', 'bogon'],
    ['239.255.255.255', 'multicast', 'bogon'],
    ['240.0.0.1', 'reserved', 'bogon'],
    ['255.255.255.254', 'reserved', 'bogon'],
    ['255.255.255.255', 'limited-broadcast', 'bogon'],

    ['::', 'unspecified', 'bogon'],
    ['::1', 'loopback', 'internal'],
    ['::2', 'unallocated', 'bogon'],
    ['::ffff:10.1.2.3', 'private', 'internal'], // the IPv4 address decides
    ['::ffff:192.0.2.1', 'documentation', 'bogon'],
    ['::ffff:8.8.8.8', 'ipv4-mapped', 'none'],
    ['64:ff9b::1.2.3.4', 'nat64', 'none'],
    ['64:ff9b:1::1', 'nat64-local', 'internal'],
    ['100::1', 'discard', 'bogon'],
    ['100:0:0:1::', 'unallocated', 'bogon'],
    ['1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'unallocated', 'bogon'],
    ['2000::'],
    ['2001::1', 'teredo', 'none'],
    ['2001:1::1', 'pcp-anycast', 'none'],
    ['2001:1::2', 'turn-anycast', 'none'],
    ['2001:1::4', 'ietf-protocol-assignments', 'bogon'],
    ['2001:2::1', 'benchmarking', 'bogon'],
    ['2001:3::1', 'amt', 'none'],
    ['2001:4:112::1', 'as112', 'none'],
    ['2001:20::1', 'orchid-v2', 'none'],
    ['2001:1ff::1', 'ietf-protocol-assignments', 'bogon'],
    ['2001:200::1'],
    ['2001:db8::1', 'documentation', 'bogon'],
    ['2001:db9::1'],
    ['2002:c000:201::1', '6to4', 'none'],
    ['2620:4f:8000::1', 'as112', 'none'],
    ['2a00::1'],
    ['2a00:1450:4001::1'],
    ['3ffe:ffff::1'],
    ['3fff::1', 'documentation', 'bogon'],
    ['3fff:fff::1', 'documentation', 'bogon'],
    ['3fff:1000::1'],
    ['4000::1', 'unallocated', 'bogon'],
    ['5f00::1', 'srv6-sids', 'bogon'],
    ['fc00::1', 'unique-local', 'internal'],
    ['fd12:3456::1', 'unique-local', 'internal'],
    ['fe80::1', 'link-local', 'internal'],
    ['febf::1', 'link-local', 'internal'],
    ['fec0::1', 'unallocated', 'bogon'],
    ['ff02::1', 'multicast', 'bogon'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'multicast', 'bogon'],
  ];
  for (const [address, name, policy] of cases) {
    it(`${address} is ${name === undefined ? 'not special' : `${name} (${policy})`}`, () => {
      const found = specials.lookup(bytes(address));
      assert.equal(found?.name, name);
      assert.equal(found?.policy, policy);
    });
  }

  it('has valid, unique ranges with an RFC each', () => {
    const seen = new Set<string>();
    for (const special of SPECIAL_RANGES) {
      assert.doesNotThrow(() => parseRange(special.cidr), special.cidr);
      assert.match(special.rfc, /^RFC \d+$/, special.cidr);
      assert.match(special.name, /^[a-z0-9-]+$/, special.cidr);
      assert.ok(!seen.has(special.cidr), `${special.cidr} listed twice`);
      seen.add(special.cidr);
    }
  });

  it('treats all of IPv6 outside 2000::/3 as special', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (address) => {
        const found = specials.lookup(address);
        if (((address[0] as number) & 0xe0) !== 0x20) assert.notEqual(found, undefined);
      }),
    );
  });

  it('answers IPv4 words (the hot path) as it answers addresses, at each /8 boundary and anywhere', () => {
    const own = new SpecialRanges([
      { cidr: '10.0.0.0/8', name: 'whole', policy: 'internal', rfc: 'RFC 1' },
      { cidr: '10.1.2.3/32', name: 'inside', policy: 'bogon', rfc: 'RFC 2' },
      { cidr: '20.0.0.0/7', name: 'two', policy: 'bogon', rfc: 'RFC 3' },
      { cidr: '30.128.0.0-32.127.255.255', name: 'across', policy: 'bogon', rfc: 'RFC 4' },
      { cidr: '40.0.0.0/8', name: 'outer', policy: 'bogon', rfc: 'RFC 5' },
      { cidr: '40.0.0.0/8', name: 'same', policy: 'none', rfc: 'RFC 6' },
    ]);
    const agree = (table: SpecialRanges, word: number) => {
      const address = Uint8Array.of(word >>> 24, (word >>> 16) & 255, (word >>> 8) & 255, word & 255);
      assert.equal(table.lookupWords(true, word >>> 0, 0, 0, 0), table.lookup(address), address.join('.'));
    };
    for (const table of [specials, own]) {
      for (let first = 0; first < 256; first++) {
        for (const low of [0, 1, 0x7fffff, 0x800000, 0xfffffe, 0xffffff]) agree(table, ((first << 24) | low) >>> 0);
      }
      for (const word of [0x0a010203, 0x0a010202, 0x0a010204, 0x1e7fffff, 0x1e800000, 0x207fffff, 0x20800000]) agree(table, word);
      fc.assert(fc.property(fc.nat({ max: 0xffffffff }), (word) => agree(table, word)));
    }
  });

  it('takes its own list, and names a bad one', () => {
    const own = new SpecialRanges([{ cidr: '192.0.2.0/24', name: 'lab', policy: 'internal', rfc: 'RFC 5737' }]);
    assert.equal(own.lookup(bytes('192.0.2.9'))?.name, 'lab');
    assert.equal(own.lookup(bytes('10.0.0.1')), undefined);
    assert.throws(
      () => new SpecialRanges([{ cidr: '192.0.2.0/33', name: 'typo', policy: 'bogon', rfc: 'RFC 0' }]),
      /special range 0 \(typo\): bad prefix length \/33/,
    );
  });
});

describe('list entries inside internal ranges (which `special` decides before any list)', () => {
  const packed = (...texts: string[]) => PackedListEntries.from(texts.map((text) => ({ range: parseRange(text) }))).data;

  it('counts the entries wholly inside one internal range, with a few examples naming the range', () => {
    const found = entriesInsideInternal(packed('10.1.2.3', '198.51.100.0/24', '192.168.0.0/16', '8.8.8.8', 'fd00::1', '::ffff:172.16.0.9', '127.0.0.0/8'));
    assert.equal(found.count, 5);
    assert.deepEqual(found.examples, ['10.1.2.3 (private, RFC 1918)', '192.168.0.0/16 (private, RFC 1918)', '127.0.0.0/8 (loopback, RFC 1122)']);
  });

  it('does not count an entry that only overlaps an internal range, nor bogons', () => {
    const found = entriesInsideInternal(packed('0.0.0.0/0', '10.0.0.0/7', '192.0.2.1', '::/0', '2001:db8::1'));
    assert.deepEqual(found, { count: 0, examples: [] });
  });
});
