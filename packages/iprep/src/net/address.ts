/**
 * Addresses and ranges as the reputation engine stores them: network-order
 * bytes (4 for IPv4, 16 for IPv6), never strings or bigints on the hot path.
 * Text is parsed here, off the hot path (lists, config, the admin API).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { formatIPv4, formatIPv6, parseIP } from 'spop';

export type IpFamily = 4 | 6;

/** An inclusive address range; start and end have the same family and start <= end. */
export interface IpRange {
  readonly family: IpFamily;
  readonly start: Uint8Array;
  readonly end: Uint8Array;
}

/** Bytes of an address (4 or 16), or undefined when the text is not one. */
export function parseAddress(text: string): Uint8Array | undefined {
  const t = text.trim();
  // Checked first so that a bad address costs no thrown error: lists may hold a million of them.
  if (!isIPv4(t) && !(isIPv6(t) && !t.includes('%'))) return undefined;
  try {
    return parseIP(t);
  } catch {
    return undefined;
  }
}

/** RFC 5952 text of 4 or 16 address bytes. */
export function formatAddress(bytes: Uint8Array): string {
  return bytes.length === 4 ? formatIPv4(bytes) : formatIPv6(bytes);
}

/** The big-endian 32-bit word at `offset`, as an int32 (a small integer to V8; `>>> 0` makes it unsigned). */
export function wordAt(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] as number) << 24) | ((bytes[offset + 1] as number) << 16) | ((bytes[offset + 2] as number) << 8) | (bytes[offset + 3] as number);
}

/** Compares two addresses of the same family as unsigned big-endian numbers. */
export function compareAddress(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

/** The range of a prefix: the address with its host bits cleared, and set. */
export function prefixRange(address: Uint8Array, prefixLength: number): IpRange {
  const start = Uint8Array.from(address);
  const end = Uint8Array.from(address);
  for (let bit = prefixLength; bit < address.length * 8; bit++) {
    const i = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    start[i] = (start[i] as number) & ~mask;
    end[i] = (end[i] as number) | mask;
  }
  return { family: address.length === 4 ? 4 : 6, start, end };
}

/**
 * Parses one address, CIDR prefix (`192.0.2.0/24`, host bits ignored) or
 * `start-end` range (inclusive, as FireHOL netsets and CSV lists write them).
 * Throws a TypeError naming the problem.
 */
export function parseRange(text: string): IpRange {
  const range = readRange(text);
  if (typeof range === 'string') throw new TypeError(range);
  return range;
}

/** parseRange without throwing: the range, or the problem as text (list parsers skip bad lines by the million). */
export function readRange(text: string): IpRange | string {
  const t = text.trim();
  const dash = t.indexOf('-');
  if (dash > 0) {
    const start = parseAddress(t.slice(0, dash));
    const end = parseAddress(t.slice(dash + 1));
    if (start === undefined || end === undefined) return `not an address range: ${JSON.stringify(t)}`;
    if (start.length !== end.length) return `range mixes IPv4 and IPv6: ${JSON.stringify(t)}`;
    if (compareAddress(start, end) > 0) return `range ends before it starts: ${JSON.stringify(t)}`;
    return { family: start.length === 4 ? 4 : 6, start, end };
  }
  const slash = t.indexOf('/');
  const address = parseAddress(slash < 0 ? t : t.slice(0, slash));
  if (address === undefined) return `not an address or prefix: ${JSON.stringify(t)}`;
  const bits = address.length * 8;
  let prefixLength = bits;
  if (slash >= 0) {
    const p = t.slice(slash + 1);
    prefixLength = Number(p);
    if (!/^\d{1,3}$/.test(p) || prefixLength > bits) return `bad prefix length /${p} in ${JSON.stringify(t)}`;
  }
  return prefixRange(address, prefixLength);
}

/** Text of a range: `a`, `a/len` when it is a prefix, else `a-b`. */
export function formatRange(range: IpRange): string {
  const len = prefixLengthOf(range);
  const start = formatAddress(range.start);
  if (len === range.start.length * 8) return start;
  return len >= 0 ? `${start}/${len}` : `${start}-${formatAddress(range.end)}`;
}

/** The prefix length when the range is exactly one prefix, else -1. */
export function prefixLengthOf(range: IpRange): number {
  const { start, end } = range;
  let bit = 0;
  const bits = start.length * 8;
  while (bit < bits && bitAt(start, bit) === bitAt(end, bit)) bit++;
  for (let b = bit; b < bits; b++) if (bitAt(start, b) !== 0 || bitAt(end, b) !== 1) return -1;
  return bit;
}

function bitAt(bytes: Uint8Array, bit: number): number {
  return ((bytes[bit >> 3] as number) >> (7 - (bit & 7))) & 1;
}

/** True for an IPv4-mapped IPv6 address (::ffff:a.b.c.d), which HAProxy may send for IPv4 clients. */
export function isIPv4Mapped(bytes: Uint8Array): boolean {
  if (bytes.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/** The IPv4 address inside an IPv4-mapped one (a view, not a copy); any other address as it is. */
export function unmapIPv4(bytes: Uint8Array): Uint8Array {
  return isIPv4Mapped(bytes) ? bytes.subarray(12) : bytes;
}

/** True for addresses only this machine reaches: 127.0.0.0/8 and ::1, IPv4-mapped ones included. */
export function isLoopbackAddress(bytes: Uint8Array): boolean {
  const address = unmapIPv4(bytes);
  return address.length === 4 ? address[0] === 127 : address.every((b, i) => b === (i === 15 ? 1 : 0));
}

/** `isLoopbackAddress` for text, `localhost` included; a host name or bad text is not loopback. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const bytes = parseAddress(host);
  return bytes !== undefined && isLoopbackAddress(bytes);
}
