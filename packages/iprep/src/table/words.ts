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
