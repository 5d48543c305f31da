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
