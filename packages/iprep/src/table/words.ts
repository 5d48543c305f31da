/** Addresses as big-endian Uint32 words: one per IPv4 address, four per IPv6 address. */
import { wordAt } from '../net/address.js';

/** The big-endian Uint32 at `at` in an address's bytes. */
export function readWord(bytes: Uint8Array, at: number): number {
  return wordAt(bytes, at) >>> 0;
}

/** Compares two `words`-word addresses as unsigned numbers. */
export function compareWords(a: Uint32Array, aAt: number, b: Uint32Array, bAt: number, words: number): number {
  for (let k = 0; k < words; k++) {
    const x = a[aAt + k] as number;
    const y = b[bAt + k] as number;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * Writes the address after `from` (a `words`-word address) into `into` (both may be one array);
 * false, `into` then undefined, when `from` is the family's last address.
 */
export function nextWords(from: Uint32Array, into: Uint32Array, words: number): boolean {
  let carry = 1;
  for (let k = words - 1; k >= 0; k--) {
    const s = (from[k] as number) + carry;
    carry = s > 0xffffffff ? 1 : 0;
    into[k] = s >>> 0;
  }
  return carry === 0;
}
