/**
 * Per-client state, found by numbers rather than strings, with a hard bound
 * on how many clients are kept. A client is an IPv4 address or an IPv6 prefix
 * of at most 64 bits, held as two int32 words (`hi`, `lo`; IPv4 uses `hi`).
 *
 * Shaped for a botnet's churn (every message from a new source, the table
 * full, each new client evicting the oldest) without garbage: every client is
 * a slot number 0..maxClients-1 into typed arrays allocated once (one array
 * per field), found through an open-addressing hash index (linear probing,
 * load <= 1/2, backward-shift deletion: no tombstones). Adding, touching and
 * evicting a client write numbers into those arrays; no object is made, so
 * the collector has nothing to trace or move however many clients there are.
 * Least to most recently seen is a doubly linked list of slot numbers
 * (`older`/`newer`); the oldest is evicted, and its slot reused, when full.
 *
 * The hash is seeded at random per table: which sources collide cannot be
 * chosen from outside to make long probe sequences.
 */
import { randomBytes } from 'node:crypto';

/** No slot: the end of the recency list, or a client not found. */
export const NO_CLIENT = -1;

export class ClientTable {
  readonly maxClients: number;
  /**
   * The fields of the client in slot `c` are `table.<field>[c]`. Public arrays rather than accessors,
   * so the tracker's hot path reads and writes them directly. A slot added is all zeros.
   */
  readonly family: Uint8Array;
  readonly hi: Int32Array;
  readonly lo: Int32Array;
  /** Sliding window: counts of the current fixed bucket (index `bucket`) and the one before it. */
  readonly bucket: Float64Array;
  readonly current: Float64Array;
  readonly previous: Float64Array;
  /** Weight counted since the last `takeDeltas`. */
  readonly pending: Float64Array;
  /** Rate penalty as given, and when (decay runs from then). */
  readonly penalty: Float64Array;
  readonly penaltyAt: Float64Array;
  /** End of the current ban (ms since epoch), 0 when never banned. */
  readonly bannedUntil: Float64Array;
  readonly offences: Uint32Array;

  readonly #hash: Int32Array;
  readonly #older: Int32Array;
  readonly #newer: Int32Array;
  /** Hash index: slot + 1 of the client stored there, 0 when empty. Capacity a power of two >= 2 x maxClients. */
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
    this.family = new Uint8Array(maxClients);
    this.hi = new Int32Array(maxClients);
    this.lo = new Int32Array(maxClients);
    this.bucket = new Float64Array(maxClients);
    this.current = new Float64Array(maxClients);
    this.previous = new Float64Array(maxClients);
    this.pending = new Float64Array(maxClients);
    this.penalty = new Float64Array(maxClients);
    this.penaltyAt = new Float64Array(maxClients);
    this.bannedUntil = new Float64Array(maxClients);
    this.offences = new Uint32Array(maxClients);
    this.#hash = new Int32Array(maxClients);
    this.#older = new Int32Array(maxClients);
    this.#newer = new Int32Array(maxClients);
    let capacity = 2;
    while (capacity < 2 * maxClients) capacity *= 2;
    this.#index = new Int32Array(capacity);
    this.#mask = capacity - 1;
    this.#seed = randomBytes(4).readInt32LE(0);
  }

  get size(): number {
    return this.#size;
  }

  /** Slot of the client, or NO_CLIENT. */
  find(family: 4 | 6, hi: number, lo: number): number {
    const index = this.#index;
    const mask = this.#mask;
    for (let at = this.#hashOf(family, hi, lo) & mask; ; at = (at + 1) & mask) {
      const entry = index[at] as number;
      if (entry === 0) return NO_CLIENT;
      const c = entry - 1;
      if (this.hi[c] === hi && this.lo[c] === lo && this.family[c] === family) return c;
    }
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
      this.bucket[c] = 0;
      this.current[c] = 0;
      this.previous[c] = 0;
      this.pending[c] = 0;
      this.penalty[c] = 0;
      this.penaltyAt[c] = 0;
      this.bannedUntil[c] = 0;
      this.offences[c] = 0;
    }
    this.family[c] = family;
    this.hi[c] = hi;
    this.lo[c] = lo;
    const hash = this.#hashOf(family, hi, lo);
    this.#hash[c] = hash;
    const index = this.#index;
    const mask = this.#mask;
    let at = hash & mask;
    while (index[at] !== 0) at = (at + 1) & mask;
    index[at] = c + 1;
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
    for (let c = this.#oldest; c !== NO_CLIENT; c = this.#newer[c] as number) visit(c);
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
    this.bucket.fill(0, 0, this.#size);
    this.current.fill(0, 0, this.#size);
    this.previous.fill(0, 0, this.#size);
    this.pending.fill(0, 0, this.#size);
    this.penalty.fill(0, 0, this.#size);
    this.penaltyAt.fill(0, 0, this.#size);
    this.bannedUntil.fill(0, 0, this.#size);
    this.offences.fill(0, 0, this.#size);
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
    let hole = (this.#hash[c] as number) & mask;
    while (index[hole] !== c + 1) hole = (hole + 1) & mask;
    index[hole] = 0;
    for (let at = (hole + 1) & mask; ; at = (at + 1) & mask) {
      const entry = index[at] as number;
      if (entry === 0) return;
      const home = (this.#hash[entry - 1] as number) & mask;
      // The entry may move into the hole unless its home lies cyclically in (hole, at].
      const stays = hole <= at ? home > hole && home <= at : home > hole || home <= at;
      if (stays) continue;
      index[hole] = entry;
      index[at] = 0;
      hole = at;
    }
  }

  #append(c: number): void {
    this.#older[c] = this.#newest;
    this.#newer[c] = NO_CLIENT;
    if (this.#newest !== NO_CLIENT) this.#newer[this.#newest] = c;
    else this.#oldest = c;
    this.#newest = c;
  }

  #unlink(c: number): void {
    const older = this.#older[c] as number;
    const newer = this.#newer[c] as number;
    if (older !== NO_CLIENT) this.#newer[older] = newer;
    else this.#oldest = newer;
    if (newer !== NO_CLIENT) this.#older[newer] = older;
    else this.#newest = older;
  }
}
