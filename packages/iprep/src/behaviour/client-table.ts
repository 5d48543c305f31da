/**
 * Per-client state, found by numbers rather than strings, with a hard bound
 * on how many clients are kept. A client is an IPv4 address or an IPv6 prefix
 * of at most 64 bits, held as two int32 words (`hi`, `lo`; IPv4 uses `hi`).
 *
 * Shaped for a botnet's churn (every message from a new source, the table
 * full, each new client evicting the oldest) without garbage: every client is
 * a slot number 0..maxClients-1 into typed arrays allocated once, found
 * through an open-addressing hash index (linear probing, load <= 1/2,
 * backward-shift deletion: no tombstones). Adding, touching and evicting a
 * client write numbers into those arrays; no object is made, so the collector
 * has nothing to trace or move however many clients there are. Least to most
 * recently seen is a doubly linked list of slot numbers; the oldest is
 * evicted, and its slot reused, when full.
 *
 * Laid out for the cache, since with random sources every access misses it:
 * a client's counters are 8 consecutive doubles (one cache line, `state`),
 * its key 4 consecutive ints, and the index keeps each entry's hash beside
 * its slot, so a probe and a backward shift read the index alone and only a
 * matching hash reads the key.
 *
 * The hash is seeded at random per table: which sources collide cannot be
 * chosen from outside to make long probe sequences.
 */
import { randomBytes } from 'node:crypto';

/** No slot: the end of the recency list, or a client not found. */
export const NO_CLIENT = -1;

/** Fields of a client's counters: `state[c * STATE_STRIDE + FIELD]`. */
export const STATE_STRIDE = 8;
/** Sliding window: the current fixed bucket's index, its count, and the count of the one before it. */
export const BUCKET = 0;
export const CURRENT = 1;
export const PREVIOUS = 2;
/** Weight counted since the last `takeDeltas`. */
export const PENDING = 3;
/** Rate penalty as given, and when (decay runs from then). */
export const PENALTY = 4;
export const PENALTY_AT = 5;
/** End of the current ban (ms since epoch), 0 when never banned, and the bans so far. */
export const BANNED_UNTIL = 6;
export const OFFENCES = 7;

/** Key of a client: `keys[c * 4 + ...]`. */
const HI = 0;
const LO = 1;
const FAMILY = 2;
const HASH = 3;

export class ClientTable {
  readonly maxClients: number;
  /**
   * The counters of every client, STATE_STRIDE doubles each (see BUCKET...OFFENCES). A public array
   * rather than accessors, so the tracker's hot path reads and writes it directly. A slot added is zeros.
   */
  readonly state: Float64Array;
  readonly #keys: Int32Array;
  /** older, newer: two ints per slot. */
  readonly #links: Int32Array;
  /** Hash index, two ints per entry: slot + 1 (0: empty) and the key's hash. Capacity a power of two >= 2 x maxClients. */
  readonly #index: Int32Array;
  readonly #mask: number;
  readonly #seed: number;
  /** Key texts built for clients that needed one (deltas, bans, top clients), by slot; dropped with the client. */
  readonly #keyTexts = new Map<number, string>();
  #oldest = NO_CLIENT;
  #newest = NO_CLIENT;
  #size = 0;

  constructor(maxClients: number) {
    if (!Number.isInteger(maxClients) || maxClients < 1) throw new RangeError(`maxClients must be an integer >= 1, got ${maxClients}`);
    this.maxClients = maxClients;
    // Allocated once at the bound: memory pages are only committed as slots get used (the
    // allocator hands out zeroed pages lazily), and nothing is ever copied to grow.
    this.state = new Float64Array(maxClients * STATE_STRIDE);
    this.#keys = new Int32Array(maxClients * 4);
    this.#links = new Int32Array(maxClients * 2);
    let capacity = 2;
    while (capacity < 2 * maxClients) capacity *= 2;
    this.#index = new Int32Array(capacity * 2);
    this.#mask = capacity - 1;
    this.#seed = randomBytes(4).readInt32LE(0);
  }

  get size(): number {
    return this.#size;
  }

  /** Slot of the client, or NO_CLIENT. */
  find(family: 4 | 6, hi: number, lo: number): number {
    const index = this.#index;
    const keys = this.#keys;
    const mask = this.#mask;
    const hash = this.#hashOf(family, hi, lo);
    for (let at = hash & mask; ; at = (at + 1) & mask) {
      const entry = index[at * 2] as number;
      if (entry === 0) return NO_CLIENT;
      if (index[at * 2 + 1] !== hash) continue;
      const k = (entry - 1) * 4;
      if (keys[k + HI] === hi && keys[k + LO] === lo && keys[k + FAMILY] === family) return entry - 1;
    }
  }

  /** True when slot `c` holds this client now. */
  holds(c: number, family: 4 | 6, hi: number, lo: number): boolean {
    if (!(c >= 0 && c < this.#size)) return false;
    const keys = this.#keys;
    const k = c * 4;
    return keys[k + HI] === hi && keys[k + LO] === lo && keys[k + FAMILY] === family;
  }

  familyOf(c: number): 4 | 6 {
    return this.#keys[c * 4 + FAMILY] as 4 | 6;
  }

  hiOf(c: number): number {
    return this.#keys[c * 4 + HI] as number;
  }

  loOf(c: number): number {
    return this.#keys[c * 4 + LO] as number;
  }

  /** Adds a client (absent: check with `find`) as the most recently seen, forgetting the least recently seen one when full. */
  add(family: 4 | 6, hi: number, lo: number): number {
    let c: number;
    if (this.#size < this.maxClients) {
      c = this.#size++;
    } else {
      c = this.#oldest;
      this.#unindex(c);
      this.#unlink(c);
      if (this.#keyTexts.size > 0) this.#keyTexts.delete(c);
      this.state.fill(0, c * STATE_STRIDE, (c + 1) * STATE_STRIDE);
    }
    const hash = this.#hashOf(family, hi, lo);
    const keys = this.#keys;
    const k = c * 4;
    keys[k + HI] = hi;
    keys[k + LO] = lo;
    keys[k + FAMILY] = family;
    keys[k + HASH] = hash;
    const index = this.#index;
    const mask = this.#mask;
    let at = hash & mask;
    while (index[at * 2] !== 0) at = (at + 1) & mask;
    index[at * 2] = c + 1;
    index[at * 2 + 1] = hash;
    this.#append(c);
    return c;
  }

  /** Marks a client as the most recently seen. */
  touch(c: number): void {
    if (c === this.#newest) return;
    this.#unlink(c);
    this.#append(c);
  }

  /** Calls `visit` for every client, least recently seen first. */
  forEach(visit: (c: number) => void): void {
    for (let c = this.#oldest; c !== NO_CLIENT; c = this.#links[c * 2 + 1] as number) visit(c);
  }

  /** The client's key text, built by `make` the first time and kept while the client is. */
  keyText(c: number, make: (c: number) => string): string {
    let text = this.#keyTexts.get(c);
    if (text === undefined) {
      text = make(c);
      this.#keyTexts.set(c, text);
    }
    return text;
  }

  clear(): void {
    this.#index.fill(0);
    this.state.fill(0, 0, this.#size * STATE_STRIDE);
    this.#keyTexts.clear();
    this.#oldest = NO_CLIENT;
    this.#newest = NO_CLIENT;
    this.#size = 0;
  }

  /** Seeded murmur3-style mixing of the key; family in, so that 1.2.3.4 and 102:304::/64 differ. */
  #hashOf(family: number, hi: number, lo: number): number {
    let h = hi ^ this.#seed;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h ^= lo + family;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  /** Takes the client out of the hash index, shifting back the entries after it that probed past it. */
  #unindex(c: number): void {
    const index = this.#index;
    const mask = this.#mask;
    let hole = (this.#keys[c * 4 + HASH] as number) & mask;
    while (index[hole * 2] !== c + 1) hole = (hole + 1) & mask;
    index[hole * 2] = 0;
    for (let at = (hole + 1) & mask; ; at = (at + 1) & mask) {
      const entry = index[at * 2] as number;
      if (entry === 0) return;
      const hash = index[at * 2 + 1] as number;
      const home = hash & mask;
      // The entry may move into the hole unless its home lies cyclically in (hole, at].
      const stays = hole <= at ? home > hole && home <= at : home > hole || home <= at;
      if (stays) continue;
      index[hole * 2] = entry;
      index[hole * 2 + 1] = hash;
      index[at * 2] = 0;
      hole = at;
    }
  }

  #append(c: number): void {
    const links = this.#links;
    links[c * 2] = this.#newest;
    links[c * 2 + 1] = NO_CLIENT;
    if (this.#newest !== NO_CLIENT) links[this.#newest * 2 + 1] = c;
    else this.#oldest = c;
    this.#newest = c;
  }

  #unlink(c: number): void {
    const links = this.#links;
    const older = links[c * 2] as number;
    const newer = links[c * 2 + 1] as number;
    if (older !== NO_CLIENT) links[older * 2 + 1] = newer;
    else this.#oldest = newer;
    if (newer !== NO_CLIENT) links[newer * 2] = older;
    else this.#newest = older;
  }
}
