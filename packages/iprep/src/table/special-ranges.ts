/**
 * The built-in table of special-purpose addresses (the IANA registries of
 * RFC 6890 and their updates) and bogons: facts, not reputation data, so it
 * ships with the agent. Globally reachable specials are listed with policy
 * 'none' so that a more specific entry inside a bogon block (PCP anycast in
 * 192.0.0.0/24, Teredo in 2001::/23) is not blocked with it.
 */
import { isIPv4Mapped, parseRange, wordAt } from '../net/address.js';
import { IntervalTable } from './interval-table.js';

/**
 * `internal`: private, loopback, link-local, shared (CGN) and unique-local
 * addresses, seen from internal networks and health checks. `bogon`: never a
 * legitimate source on the Internet (spoofed or misconfigured). `none`:
 * special but globally reachable, no policy of its own.
 */
export type SpecialPolicy = 'internal' | 'bogon' | 'none';

export interface SpecialRange {
  /** A CIDR prefix (or `start-end` range). */
  readonly cidr: string;
  /** Short token for matches and metrics: `private`, `documentation`, `unallocated`. */
  readonly name: string;
  readonly policy: SpecialPolicy;
  /** Where the range is defined: `RFC 1918`. */
  readonly rfc: string;
}

export const SPECIAL_RANGES: readonly SpecialRange[] = [
  // IPv4
  { cidr: '0.0.0.0/8', name: 'this-network', policy: 'bogon', rfc: 'RFC 791' },
  { cidr: '10.0.0.0/8', name: 'private', policy: 'internal', rfc: 'RFC 1918' },
  { cidr: '100.64.0.0/10', name: 'shared-cgn', policy: 'internal', rfc: 'RFC 6598' },
  { cidr: '127.0.0.0/8', name: 'loopback', policy: 'internal', rfc: 'RFC 1122' },
  { cidr: '169.254.0.0/16', name: 'link-local', policy: 'internal', rfc: 'RFC 3927' },
  { cidr: '172.16.0.0/12', name: 'private', policy: 'internal', rfc: 'RFC 1918' },
  { cidr: '192.0.0.0/24', name: 'ietf-protocol-assignments', policy: 'bogon', rfc: 'RFC 6890' },
  { cidr: '192.0.0.9/32', name: 'pcp-anycast', policy: 'none', rfc: 'RFC 7723' },
  { cidr: '192.0.0.10/32', name: 'turn-anycast', policy: 'none', rfc: 'RFC 8155' },
  { cidr: '192.0.2.0/24', name: 'documentation', policy: 'bogon', rfc: 'RFC 5737' },
  { cidr: '192.31.196.0/24', name: 'as112', policy: 'none', rfc: 'RFC 7535' },
  { cidr: '192.52.193.0/24', name: 'amt', policy: 'none', rfc: 'RFC 7450' },
  { cidr: '192.88.99.0/24', name: '6to4-relay-anycast', policy: 'bogon', rfc: 'RFC 7526' }, // deprecated
  { cidr: '192.168.0.0/16', name: 'private', policy: 'internal', rfc: 'RFC 1918' },
  { cidr: '192.175.48.0/24', name: 'as112', policy: 'none', rfc: 'RFC 7534' },
  { cidr: '198.18.0.0/15', name: 'benchmarking', policy: 'bogon', rfc: 'RFC 2544' },
  { cidr: '198.51.100.0/24', name: 'documentation', policy: 'bogon', rfc: 'RFC 5737' },
  { cidr: '203.0.113.0/24', name: 'documentation', policy: 'bogon', rfc: 'RFC 5737' },
  { cidr: '224.0.0.0/4', name: 'multicast', policy: 'bogon', rfc: 'RFC 5771' },
  { cidr: '240.0.0.0/4', name: 'reserved', policy: 'bogon', rfc: 'RFC 1112' },
  { cidr: '255.255.255.255/32', name: 'limited-broadcast', policy: 'bogon', rfc: 'RFC 919' },

  // IPv6: IANA allocates global unicast from 2000::/3 only; the rest is unallocated
  // apart from the specials listed inside it.
  { cidr: '::/3', name: 'unallocated', policy: 'bogon', rfc: 'RFC 4291' },
  { cidr: '4000::/2', name: 'unallocated', policy: 'bogon', rfc: 'RFC 4291' },
  { cidr: '8000::/1', name: 'unallocated', policy: 'bogon', rfc: 'RFC 4291' },
  { cidr: '::/128', name: 'unspecified', policy: 'bogon', rfc: 'RFC 4291' },
  { cidr: '::1/128', name: 'loopback', policy: 'internal', rfc: 'RFC 4291' },
  // SpecialRanges.lookup checks the embedded IPv4 address first.
  { cidr: '::ffff:0:0/96', name: 'ipv4-mapped', policy: 'none', rfc: 'RFC 4291' },
  { cidr: '64:ff9b::/96', name: 'nat64', policy: 'none', rfc: 'RFC 6052' },
  { cidr: '64:ff9b:1::/48', name: 'nat64-local', policy: 'internal', rfc: 'RFC 8215' },
  { cidr: '100::/64', name: 'discard', policy: 'bogon', rfc: 'RFC 6666' },
  { cidr: '2001::/23', name: 'ietf-protocol-assignments', policy: 'bogon', rfc: 'RFC 2928' },
  { cidr: '2001::/32', name: 'teredo', policy: 'none', rfc: 'RFC 4380' },
  { cidr: '2001:1::1/128', name: 'pcp-anycast', policy: 'none', rfc: 'RFC 7723' },
  { cidr: '2001:1::2/128', name: 'turn-anycast', policy: 'none', rfc: 'RFC 8155' },
  { cidr: '2001:2::/48', name: 'benchmarking', policy: 'bogon', rfc: 'RFC 5180' },
  { cidr: '2001:3::/32', name: 'amt', policy: 'none', rfc: 'RFC 7450' },
  { cidr: '2001:4:112::/48', name: 'as112', policy: 'none', rfc: 'RFC 7535' },
  { cidr: '2001:20::/28', name: 'orchid-v2', policy: 'none', rfc: 'RFC 7343' },
  { cidr: '2001:db8::/32', name: 'documentation', policy: 'bogon', rfc: 'RFC 3849' },
  { cidr: '2002::/16', name: '6to4', policy: 'none', rfc: 'RFC 3056' },
  { cidr: '2620:4f:8000::/48', name: 'as112', policy: 'none', rfc: 'RFC 7534' },
  { cidr: '3fff::/20', name: 'documentation', policy: 'bogon', rfc: 'RFC 9637' },
  { cidr: '5f00::/16', name: 'srv6-sids', policy: 'bogon', rfc: 'RFC 9602' },
  { cidr: 'fc00::/7', name: 'unique-local', policy: 'internal', rfc: 'RFC 4193' },
  { cidr: 'fe80::/10', name: 'link-local', policy: 'internal', rfc: 'RFC 4291' },
  { cidr: 'ff00::/8', name: 'multicast', policy: 'bogon', rfc: 'RFC 4291' },
];

/** In SpecialRanges' per-first-byte array: no range touches that /8, or the table must be asked. */
const NO_RANGE = -1;
const ASK_TABLE = -2;

/** The most specific special range of an address, from a compiled table. */
export class SpecialRanges {
  readonly #ranges: readonly SpecialRange[];
  readonly #table: IntervalTable;
  /**
   * Per first byte of an IPv4 address: the range whose answer is the same for all of that /8 (most
   * /8s touch no range; 10/8, 127/8 and 224/3 are covered whole), else ASK_TABLE. The hot path then
   * asks the table for 8 of the 256 /8s only.
   */
  readonly #v4ByFirstByte = new Int32Array(256);

  /** Throws a TypeError naming the range when a `cidr` does not parse. */
  constructor(ranges: readonly SpecialRange[] = SPECIAL_RANGES) {
    this.#ranges = ranges;
    this.#table = IntervalTable.compile(
      ranges.map((special, index) => {
        try {
          return { range: parseRange(special.cidr), value: index };
        } catch (error) {
          throw new TypeError(`special range ${index} (${special.name}): ${(error as Error).message}`);
        }
      }),
    );
    this.#v4ByFirstByte.fill(NO_RANGE);
    const v4 = ranges.map((special) => parseRange(special.cidr)).filter((range) => range.family === 4);
    for (let first = 0; first < 256; first++) {
      const low = first * 2 ** 24;
      const high = low + 0xffffff;
      const touching = v4.filter((range) => wordAt(range.start, 0) >>> 0 <= high && wordAt(range.end, 0) >>> 0 >= low);
      if (touching.length === 0) continue;
      // Constant over the /8 when every range touching it covers it whole: the most specific of them, as the table says.
      const whole = touching.every((range) => wordAt(range.start, 0) >>> 0 <= low && wordAt(range.end, 0) >>> 0 >= high);
      this.#v4ByFirstByte[first] = whole ? this.#table.lookupWords(true, low, 0, 0, 0) : ASK_TABLE;
    }
  }

  /**
   * The most specific special range containing the address (4 or 16 bytes),
   * or undefined. An IPv4-mapped address (::ffff:a.b.c.d) is looked up as its
   * IPv4 address first, and is `ipv4-mapped` only when that is not special.
   */
  /** `lookup` of an address read as unsigned words (see IntervalTable.lookupWords), not IPv4-mapped. */
  lookupWords(v4: boolean, a0: number, a1: number, a2: number, a3: number): SpecialRange | undefined {
    const index = this.indexWords(v4, a0, a1, a2, a3);
    return index < 0 ? undefined : this.#ranges[index];
  }

  /** As lookupWords, the range's number (`at`), -1 when none: callers can keep what they derive from a range in an array. */
  indexWords(v4: boolean, a0: number, a1: number, a2: number, a3: number): number {
    if (v4) {
      const known = this.#v4ByFirstByte[a0 >>> 24] as number;
      if (known !== ASK_TABLE) return known; // NO_RANGE is -1
    }
    return this.#table.lookupWords(v4, a0, a1, a2, a3);
  }

  /** The range numbered `index` by indexWords. */
  at(index: number): SpecialRange {
    const range = this.#ranges[index];
    if (range === undefined) throw new RangeError(`no special range ${index}`);
    return range;
  }

  /** Number of ranges (indexWords answers below it). */
  get size(): number {
    return this.#ranges.length;
  }

  lookup(address: Uint8Array): SpecialRange | undefined {
    if (isIPv4Mapped(address)) {
      const v4 = this.#table.lookup(address, 12);
      if (v4 >= 0) return this.#ranges[v4];
    }
    const index = this.#table.lookup(address);
    return index < 0 ? undefined : this.#ranges[index];
  }
}
