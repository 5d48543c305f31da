/**
 * Who may talk to the SPOP port. SPOP has no authentication: whoever reaches
 * the port can ask for verdicts and, through the behaviour counters, get
 * addresses banned. So the port listens on loopback by default, and
 * `listen.allow-from` lists the peers (HAProxy's addresses) it serves when it
 * listens elsewhere.
 */
import type { PeerAddress } from 'spop';
import { type IpRange, compareAddress, parseAddress, parseRange, unmapIPv4 } from './address.js';

export { isLoopbackHost } from './address.js';

/**
 * The agent's `allowConnection` for a list of addresses, CIDR prefixes and
 * ranges (validated by the caller: parseRange throws on a bad one). An IPv4
 * client of a dual-stack listener (`::ffff:a.b.c.d`) matches IPv4 entries.
 */
export function allowFromFilter(entries: readonly string[]): (peer: PeerAddress) => boolean {
  const ranges = entries.map(parseRange);
  return (peer) => {
    const bytes = peerBytes(peer.address);
    return bytes !== undefined && ranges.some((range) => contains(range, bytes));
  };
}

function peerBytes(address: string): Uint8Array | undefined {
  const bytes = parseAddress(address);
  return bytes === undefined ? undefined : unmapIPv4(bytes);
}

function contains(range: IpRange, bytes: Uint8Array): boolean {
  return range.start.length === bytes.length && compareAddress(range.start, bytes) <= 0 && compareAddress(bytes, range.end) <= 0;
}
