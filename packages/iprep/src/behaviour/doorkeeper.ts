/**
 * TinyLFU's doorkeeper in front of the client table: a Bloom filter remembering which clients sent
 * one message lately, so that a client enters the table at its second message, not its first. A
 * botnet or a spoofed flood, every message from a new source, then costs one filter probe per
 * message instead of a table insertion, and no longer pushes out the clients the table tracks.
 *
 * Blocked: the 4 bits of a key lie in one 64-byte block (one cache line per probe), the block
 * chosen by the key's hash, the bits by that hash mixed again. Sized at about 8 bits a client
 * of the table (a power of two, 16 KiB to 2 MiB: 128 KiB for 100,000 clients, in the L2 cache),
 * it holds at most `capacity` keys (one per 8 bits): at that point a key not added looks added
 * about 2.5% of the time (0.3% half full; a test bounds it); it is cleared before it would take one more, so a
 * flood cannot fill it until every client looks seen. Clearing is a fill of its array: tens of
 * microseconds at the largest.
 *
 * The hash is seeded at random per filter: which keys share bits cannot be chosen from outside.
 */
import { randomBytes } from 'node:crypto';

const MIN_BYTES = 16 * 1024;
const MAX_BYTES = 2 * 1024 * 1024;
/** Filter bits per client of the table, and per key it holds at most. */
const BITS_PER_KEY = 8;
/** 32-bit words per 64-byte block. */
const BLOCK_WORDS = 16;

/** Size of the filter in front of a table of `maxClients`, and how many keys it holds before it is cleared. */
export function doorkeeperSize(maxClients: number): { bytes: number; capacity: number } {
  let bytes = MIN_BYTES;
  while (bytes < MAX_BYTES && bytes * 8 < maxClients * BITS_PER_KEY) bytes *= 2;
  return { bytes, capacity: (bytes * 8) / BITS_PER_KEY };
}

export class Doorkeeper {
  /** Keys held at most: the next one clears the filter first. */
  readonly capacity: number;
  readonly #words: Int32Array;
  /** Blocks - 1 (a power of two - 1): the low bits of the hash pick the block. */
  readonly #blockMask: number;
  readonly #seed: number;
  #size = 0;

  constructor(maxClients: number) {
    const { bytes, capacity } = doorkeeperSize(maxClients);
    this.capacity = capacity;
    this.#words = new Int32Array(bytes / 4);
    this.#blockMask = bytes / 4 / BLOCK_WORDS - 1;
    this.#seed = randomBytes(4).readInt32LE(0);
  }

  /** Keys added since the filter was last cleared. */
  get size(): number {
    return this.#size;
  }

  /** True when the key looks added since the last clear (always when it was; sometimes when not). */
  has(family: 4 | 6, hi: number, lo: number): boolean {
    const h = this.#hash(family, hi, lo);
    const g = spread(h);
    const words = this.#words;
    const base = (h & this.#blockMask) * BLOCK_WORDS;
    return (
      ((words[base + (h >>> 28)] as number) & (1 << ((h >>> 23) & 31))) !== 0 &&
      ((words[base + ((g >>> 5) & 15)] as number) & (1 << (g & 31))) !== 0 &&
      ((words[base + ((g >>> 14) & 15)] as number) & (1 << ((g >>> 9) & 31))) !== 0 &&
      ((words[base + ((g >>> 23) & 15)] as number) & (1 << ((g >>> 18) & 31))) !== 0
    );
  }

  /** `has`, and when false adds the key (clearing the filter first when it holds `capacity` keys). One hash for both. */
  admit(family: 4 | 6, hi: number, lo: number): boolean {
    const h = this.#hash(family, hi, lo);
    const g = spread(h);
    const words = this.#words;
    const base = (h & this.#blockMask) * BLOCK_WORDS;
    const w0 = base + (h >>> 28);
    const b0 = 1 << ((h >>> 23) & 31);
    const w1 = base + ((g >>> 5) & 15);
    const b1 = 1 << (g & 31);
    const w2 = base + ((g >>> 14) & 15);
    const b2 = 1 << ((g >>> 9) & 31);
    const w3 = base + ((g >>> 23) & 15);
    const b3 = 1 << ((g >>> 18) & 31);
    if (((words[w0] as number) & b0) !== 0 && ((words[w1] as number) & b1) !== 0 && ((words[w2] as number) & b2) !== 0 && ((words[w3] as number) & b3) !== 0) {
      return true;
    }
    if (this.#size === this.capacity) this.clear();
    words[w0] = (words[w0] as number) | b0;
    words[w1] = (words[w1] as number) | b1;
    words[w2] = (words[w2] as number) | b2;
    words[w3] = (words[w3] as number) | b3;
    this.#size++;
    return false;
  }

  /** Forgets every key. */
  clear(): void {
    if (this.#size === 0) return;
    this.#words.fill(0);
    this.#size = 0;
  }

  /** Seeded mix of the key (murmur3's finaliser at the end); family in, so that 1.2.3.4 and 102:304::/64 differ. */
  #hash(family: number, hi: number, lo: number): number {
    let h = Math.imul(hi ^ this.#seed, 0xcc9e2d51);
    h ^= h >>> 15;
    h = Math.imul(h ^ lo, 0x1b873593) ^ family;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return h ^ (h >>> 16);
  }
}

/** The hash mixed again, for the bit positions in the block (the hash's low bits chose the block). */
function spread(h: number): number {
  let g = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  g ^= g >>> 12;
  g = Math.imul(g, 0x297a2d39);
  return g ^ (g >>> 15);
}
