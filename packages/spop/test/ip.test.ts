/**
 * Address text <-> bytes: RFC 5952 canonical text for IPv6 (§4 rules, §5
 * mixed notation for IPv4-mapped addresses), and TypeError on invalid text.
 */
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatIPv4, formatIPv6, parseIP, parseIPInto, parseIPv4, parseIPv6 } from '../src/codec/index.js';
import { fromHex, toHex } from './helpers.js';

/** [bytes as 8 groups of hex, canonical text, other accepted spellings of the same address]. */
const ipv6Cases: [groups: string, canonical: string, ...variants: string[]][] = [
  ['2001 0db8 0000 0000 0000 0000 0000 0001', '2001:db8::1', '2001:DB8::1', '2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8:0:0:0::1'],
  // RFC 5952 §4.2.3: the longest run of zeros is shortened, the first one on a tie.
  ['2001 0db8 0000 0000 0001 0000 0000 0001', '2001:db8::1:0:0:1', '2001:db8:0:0:1:0:0:1', '2001:db8::1:0000:0000:1'],
  ['2001 0000 0000 0001 0000 0000 0000 0001', '2001:0:0:1::1', '2001:0:0:1:0:0:0:1', '2001::1:0:0:0:1'],
  // §4.2.2: a single zero group is not shortened.
  ['2001 0db8 0000 0001 0001 0001 0001 0001', '2001:db8:0:1:1:1:1:1', '2001:db8::1:1:1:1:1'],
  ['0000 0000 0000 0000 0000 0000 0000 0000', '::', '0:0:0:0:0:0:0:0', '0::0'],
  ['0000 0000 0000 0000 0000 0000 0000 0001', '::1', '0:0:0:0:0:0:0:1'],
  ['0001 0000 0000 0000 0000 0000 0000 0000', '1::', '1:0:0:0:0:0:0:0'],
  ['fe80 0000 0000 0000 0000 0000 0000 0000', 'fe80::', 'FE80::', 'fe80:0:0:0:0:0:0:0'],
  ['fe80 0000 0000 0000 0202 b3ff fe1e 8329', 'fe80::202:b3ff:fe1e:8329', 'FE80::0202:B3FF:FE1E:8329'],
  // §4.3: lowercase; §4.1: no leading zeros.
  ['2001 0db8 00aa 0bbb 0ccc 0ddd 0eee 0fff', '2001:db8:aa:bbb:ccc:ddd:eee:fff', '2001:DB8:AA:BBB:CCC:DDD:EEE:FFF'],
  // No zero group at all, and zeros at both ends (the first run wins the tie).
  ['1111 2222 3333 4444 5555 6666 7777 8888', '1111:2222:3333:4444:5555:6666:7777:8888'],
  ['0000 0000 0001 0002 0003 0004 0000 0000', '::1:2:3:4:0:0', '0:0:1:2:3:4::'],
  ['0001 0000 0000 0002 0000 0000 0000 0003', '1:0:0:2::3', '1::2:0:0:0:3'],
  // §5: IPv4-mapped addresses in mixed notation.
  ['0000 0000 0000 0000 0000 ffff 0102 0304', '::ffff:1.2.3.4', '::FFFF:1.2.3.4', '::ffff:102:304', '0:0:0:0:0:ffff:1.2.3.4'],
  ['0000 0000 0000 0000 0000 ffff 0000 0000', '::ffff:0.0.0.0', '::ffff:0:0'],
  // Not IPv4-mapped (other prefixes): plain hex.
  ['0000 0000 0000 0000 0000 0000 0102 0304', '::102:304', '::1.2.3.4'],
  ['0000 0000 0000 0000 ffff 0000 0102 0304', '::ffff:0:102:304', '::ffff:0:1.2.3.4'],
  ['0000 0000 0000 0000 0001 ffff 0102 0304', '::1:ffff:102:304', '::1:ffff:1.2.3.4'],
  ['0001 0000 0000 0000 0000 ffff 0102 0304', '1::ffff:102:304', '1::ffff:1.2.3.4'],
  ['0064 ff9b 0000 0000 0000 0000 0102 0304', '64:ff9b::102:304', '64:ff9b::1.2.3.4'],
];

describe('formatIPv6 / parseIPv6 (RFC 5952)', () => {
  for (const [groups, canonical, ...variants] of ipv6Cases) {
    const bytes = fromHex(groups);
    it(`${canonical}`, () => {
      assert.equal(formatIPv6(bytes), canonical);
      for (const text of [canonical, ...variants]) assert.equal(toHex(parseIPv6(text)), toHex(bytes), text);
      assert.equal(toHex(parseIP(canonical)), toHex(bytes));
    });
  }

  it('reads sixteen bytes at an offset', () => {
    const buf = Buffer.concat([fromHex('ffff'), fromHex('2001 0db8 0000 0000 0000 0000 0000 0001'), fromHex('ffff')]);
    assert.equal(formatIPv6(buf, 2), '2001:db8::1');
  });
});

describe('formatIPv4 / parseIPv4', () => {
  const cases: [string, string][] = [
    ['7f000001', '127.0.0.1'],
    ['c0a8010a', '192.168.1.10'],
    ['00000000', '0.0.0.0'],
    ['ffffffff', '255.255.255.255'],
  ];
  for (const [hex, text] of cases) {
    it(text, () => {
      assert.equal(formatIPv4(fromHex(hex)), text);
      assert.equal(toHex(parseIPv4(text)), hex);
      assert.equal(toHex(parseIP(text)), hex);
    });
  }

  it('reads four bytes at an offset', () => {
    assert.equal(formatIPv4(fromHex('01 02 0a 00 00 01 03'), 2), '10.0.0.1');
  });
});

describe('invalid text is a TypeError', () => {
  const badV4 = ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.-1', '01.2.3.4', ' 1.2.3.4', '1.2.3.4 ', 'a.b.c.d', '::1', '1.2.3.4/8'];
  const badV6 = [
    '',
    ':',
    ':::',
    '1::2::3',
    '12345::',
    'g::',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:1.2.3.4',
    '::ffff:1.2.3',
    '::ffff:256.1.1.1',
    '::ffff:01.2.3.4',
    'fe80::1%eth0',
    '[::1]',
    ' ::1',
    '1.2.3.4',
  ];
  for (const text of badV4) {
    it(`parseIPv4(${JSON.stringify(text)})`, () => assert.throws(() => parseIPv4(text), TypeError));
  }
  for (const text of badV6) {
    it(`parseIPv6(${JSON.stringify(text)})`, () => assert.throws(() => parseIPv6(text), TypeError));
  }
  it('parseIP rejects what is neither', () => {
    for (const text of ['', 'localhost', '1.2.3', '::g']) assert.throws(() => parseIP(text), TypeError, text);
  });
});

describe('parseIPInto (address text as bytes, no string made)', () => {
  /** What node:net accepts (zone ids aside), as parseIP's bytes; undefined otherwise. */
  const reference = (text: string): Buffer | undefined => (isIP(text) !== 0 && !text.includes('%') ? parseIP(text) : undefined);
  const check = (text: string): void => {
    const bytes = Buffer.from(`<${text}>`, 'latin1'); // parsed between the brackets: offsets are honoured
    const into = new Uint8Array(16).fill(0xee);
    const n = parseIPInto(bytes, 1, bytes.length - 1, into);
    const expected = reference(text);
    if (expected === undefined) assert.equal(n, 0, JSON.stringify(text));
    else assert.deepEqual([n, toHex(into.subarray(0, n))], [expected.length, toHex(expected)], JSON.stringify(text));
  };

  it('agrees with node:net on chosen spellings, valid and not', () => {
    for (const [, canonical, ...variants] of ipv6Cases) for (const text of [canonical, ...variants]) check(text);
    const others = [
      '0.0.0.0',
      '255.255.255.255',
      '256.1.1.1',
      '01.2.3.4',
      '1.2.3',
      '1.2.3.4.5',
      '1..2.3',
      '1.2.3.4 ',
      ' 1.2.3.4',
      '',
      '::',
      ':',
      ':::',
      '1::2::3',
      '::1',
      '1::',
      ':1::',
      '1:',
      '1:2:3:4:5:6:7:8',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7::',
      '::2:3:4:5:6:7:8',
      '1:2:3:4::5:6:7:8',
      '1:2:3:4:5:6:7',
      '12345::',
      'g::1',
      'fe80::1%eth0',
      '::ffff:1.2.3.4',
      '::ffff:01.2.3.4',
      '1:2:3:4:5:6:1.2.3.4',
      '1:2:3:4:5:6:7:1.2.3.4',
      '::1.2.3.4',
      '1::1.2.3.4',
      '1.2.3.4::',
      '::1.2.3',
      'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255',
      '1.2.3.4:5',
      '[::1]',
      '::FFFF:A:B',
    ];
    for (const text of others) check(text);
  });

  it('agrees with node:net on generated addresses and near misses', () => {
    const near = fc.array(fc.constantFrom(...'0123456789abcdefABCDEF:.%g '.split('')), { maxLength: 46 }).map((chars) => chars.join(''));
    const mutated = fc
      .tuple(fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended()), fc.nat(46), fc.constantFrom('', ':', '.', '0', 'f', '::', '1.2'))
      .map(([text, at, insert]) => text.slice(0, at % (text.length + 1)) + insert + text.slice(at % (text.length + 1)));
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), near, mutated), (text) => check(text)),
      { numRuns: 5000 },
    );
  });

  it('needs room for sixteen bytes', () => {
    assert.throws(() => parseIPInto(Buffer.from('1.2.3.4'), 0, 7, new Uint8Array(4)), RangeError);
  });
});
