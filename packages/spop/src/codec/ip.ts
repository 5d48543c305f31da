/**
 * IP address text <-> network-order bytes. Node has no inet_ntop for a Buffer,
 * and HAProxy sends addresses as raw bytes (docs/protocol.md §4.4, §10.7).
 */
import { isIPv4, isIPv6 } from 'node:net';

/** Dotted quad of four bytes at `offset`. */
export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/**
 * RFC 5952 text of sixteen bytes at `offset`: lowercase hex, no leading zeros,
 * the longest run (first one on a tie) of two or more zero groups as "::",
 * and IPv4-mapped addresses (::ffff:0:0/96) in mixed notation.
 */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  const groups = new Array<number>(8);
  for (let i = 0; i < 8; i++) {
    groups[i] = ((bytes[offset + 2 * i] as number) << 8) | (bytes[offset + 2 * i + 1] as number);
  }
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4(bytes, offset + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 1; // a single zero group is never shortened (RFC 5952 §4.2.2)
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number): string => g.toString(16);
  if (bestStart < 0) return groups.map(hex).join(':');
  const head = groups.slice(0, bestStart).map(hex).join(':');
  const tail = groups
    .slice(bestStart + bestLen)
    .map(hex)
    .join(':');
  return `${head}::${tail}`;
}

/** Four bytes of a dotted-quad IPv4 address; throws TypeError when it is not one. */
export function parseIPv4(text: string): Buffer {
  if (!isIPv4(text)) throw new TypeError(`not an IPv4 address: ${JSON.stringify(text)}`);
  const out = Buffer.allocUnsafe(4);
  const parts = text.split('.');
  for (let i = 0; i < 4; i++) out[i] = Number(parts[i]);
  return out;
}

/** Sixteen bytes of an IPv6 address (any valid text form, with an optional embedded IPv4 tail). */
export function parseIPv6(text: string): Buffer {
  if (!isIPv6(text) || text.includes('%')) throw new TypeError(`not an IPv6 address: ${JSON.stringify(text)}`);
  const out = Buffer.alloc(16);
  const toGroups = (part: string): number[] => {
    if (part === '') return [];
    const groups: number[] = [];
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        const v4 = parseIPv4(piece);
        groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        groups.push(parseInt(piece, 16));
      }
    }
    return groups;
  };
  const gap = text.indexOf('::');
  const head = toGroups(gap < 0 ? text : text.slice(0, gap));
  const tail = gap < 0 ? [] : toGroups(text.slice(gap + 2));
  const groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i]!, 2 * i);
  return out;
}

/** Parses either family: 4 bytes for IPv4, 16 for IPv6. */
export function parseIP(text: string): Buffer {
  return isIPv4(text) ? parseIPv4(text) : parseIPv6(text);
}

const DOT = 0x2e;
const COLON = 0x3a;

/** Value of an ASCII hex digit, -1 for any other byte. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/**
 * Parses a dotted quad in `bytes[start, end)` into `into[at..at+4)`: four decimal numbers 0..255
 * without leading zeros (what `net.isIPv4` accepts). Returns false when it is not one.
 */
function dottedQuadInto(bytes: Uint8Array, start: number, end: number, into: Uint8Array, at: number): boolean {
  let part = 0;
  let i = start;
  while (part < 4) {
    const first = i;
    let value = 0;
    while (i < end && i - first < 3) {
      const d = (bytes[i] as number) - 0x30;
      if (d < 0 || d > 9) break;
      value = value * 10 + d;
      i++;
    }
    const digits = i - first;
    if (digits === 0 || value > 255 || (digits > 1 && bytes[first] === 0x30)) return false;
    into[at + part] = value;
    part++;
    if (part < 4) {
      if (i >= end || bytes[i] !== DOT) return false;
      i++;
    }
  }
  return i === end;
}

/**
 * Parses the text of an IPv4 or IPv6 address held as ASCII bytes in `bytes[start, end)` (a header
 * value from HAProxy, say) into `into` (16 bytes or more), without making a string: returns 4 or 16,
 * or 0 when the text is not exactly one address. It accepts what `net.isIP` accepts, except IPv6 zone
 * ids (`%eth0`), which are no client's address; no surrounding spaces.
 */
export function parseIPInto(bytes: Uint8Array, start: number, end: number, into: Uint8Array): 0 | 4 | 16 {
  if (into.length < 16) throw new RangeError(`parseIPInto needs 16 bytes of room, got ${into.length}`);
  const length = end - start;
  if (length < 2 || length > 45) return 0;
  let colon = false;
  for (let i = start; i < end; i++) {
    if (bytes[i] === COLON) {
      colon = true;
      break;
    }
  }
  if (!colon) return dottedQuadInto(bytes, start, end, into, 0) ? 4 : 0;

  // IPv6: up to 8 groups of 1-4 hex digits, at most one "::" standing for one group or more, and
  // optionally a dotted quad as the last two groups. Groups after "::" are written where they
  // are read, then moved to the end.
  let groups = 0;
  let gap = -1;
  let i = start;
  if (bytes[i] === COLON) {
    if (bytes[i + 1] !== COLON) return 0;
    gap = 0;
    i += 2;
    if (i === end) {
      into.fill(0, 0, 16);
      return 16;
    }
  }
  for (;;) {
    if (groups === 8) return 0;
    const first = i;
    let value = 0;
    while (i < end && i - first < 4) {
      const h = hexValue(bytes[i] as number);
      if (h < 0) break;
      value = (value << 4) | h;
      i++;
    }
    if (i < end && bytes[i] === DOT) {
      // A dotted quad ends the address and counts as two groups.
      if (groups > 6 || !dottedQuadInto(bytes, first, end, into, groups * 2)) return 0;
      groups += 2;
      break;
    }
    if (i === first) return 0;
    into[groups * 2] = value >> 8;
    into[groups * 2 + 1] = value & 0xff;
    groups++;
    if (i === end) break;
    if (bytes[i] !== COLON) return 0;
    i++;
    if (bytes[i] === COLON) {
      if (gap >= 0) return 0;
      gap = groups;
      i++;
      if (i === end) break;
    } else if (i === end) {
      return 0; // a lone trailing colon
    }
  }
  if (gap < 0) return groups === 8 ? 16 : 0;
  if (groups > 7) return 0;
  // Move the groups after the gap to the end, zeros in between.
  const after = (groups - gap) * 2;
  into.copyWithin(16 - after, gap * 2, groups * 2);
  into.fill(0, gap * 2, 16 - after);
  return 16;
}
