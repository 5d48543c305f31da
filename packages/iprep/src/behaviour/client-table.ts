/**
 * Per-client state, found by numbers rather than strings, with a hard bound
 * on how many clients are kept. A client is an IPv4 address or an IPv6 prefix
 * of at most 64 bits, held as two int32 words (`hi`, `lo`; IPv4 uses `hi`).
 *
 * Shaped for a botnet's churn (every message from a new source, the table
 * full, each new client forgetting another) without garbage: every client is
 * a slot number 0..maxClients-1 into one buffer of records allocated once,
 * found through an open-addressing hash index (linear probing, load <= 1/2,
 * backward-shift deletion: no tombstones). Adding, touching and forgetting a
 * client write numbers into those arrays; no object is made, so the collector
 * has nothing to trace or move however many clients there are.
 *
 * Which client is forgotten when full: CLOCK (second chance). Each record
 * has a "seen" mark, set when the client is seen again (`touch`); a hand
 * goes round the slots in order, clearing the marks it passes, and the first
 * client not seen since the hand last passed it gives its slot to the new
 * one. A client seen again within a turn of the hand is kept; a client seen
 * once goes in its turn. The hand passes at most MAX_SWEEP marked clients per
 * new one and then takes the next slot whatever its mark, so one message
 * never sweeps the whole table. Slots fill in order and the hand starts at
 * slot 0, so clients never seen again go first in, first out.
 *
 * Laid out for the cache, since with random sources every access misses it:
 * a client's counters and its key are one record of STATE_STRIDE doubles
 * (80 bytes, two cache lines), so a lookup's key check, the counters and the
 * seen mark share lines; forgetting reads records in slot order (the
 * prefetcher follows the hand); a hit is the index probe and the record, with
 * no recency list to relink. The index keeps each entry's hash beside its
 * slot, so a probe and a backward shift read the index alone and only a
 * matching hash reads the record.
 *
 * The hash is seeded at random per table: which sources collide cannot be
 * chosen from outside to make long probe sequences.
 */
import { randomBytes } from 'node:crypto';

/** No slot: a client not found. */
export const NO_CLIENT = -1;

/** Doubles per client record: `state[c * STATE_STRIDE + FIELD]`, the 8 counters (BUCKET...OFFENCES) then the key. */
export const STATE_STRIDE = 10;
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
/** Marked clients the hand passes at most per client added, before it takes the next slot regardless: one step reads at most this many records in order (80 KiB), a few microseconds. */
export const MAX_SWEEP = 1024;

/** The key, as int32s after the counters: `ints[c * RECORD_INTS + ...]`. */
const RECORD_INTS = STATE_STRIDE * 2;
const HI = 16;
const LO = 17;
/** The family (4 or 6), the SEEN mark, and HAS_TEXT (a key text is kept for the slot). */
const FLAGS = 18;
const HASH = 19;
const FAMILY_BITS = 0xff;
const SEEN = 0x100;
const HAS_TEXT = 0x200;

export class ClientTable {
  readonly maxClients: number;
  /**
   * The records of every client, STATE_STRIDE doubles each, counters first (see BUCKET...OFFENCES). A
   * public array rather than accessors, so the tracker's hot path reads and writes it directly. A slot
   * added has zero counters. The doubles past OFFENCES are the key (this class's).
   */
  readonly state: Float64Array;
  /** The same records as int32s, for the key. */
  readonly #ints: Int32Array;
  /** Hash index, two ints per entry: slot + 1 (0: empty) and the key's hash. Capacity a power of two >= 2 x maxClients. */
  readonly #index: Int32Array;
  readonly #mask: number;
  readonly #seed: number;
  /** Key texts built for clients that needed one (deltas, bans, top clients), by slot; dropped with the client. */
  readonly #keyTexts = new Map<number, string>();
  /** The slot the CLOCK hand looks at next when a client must be forgotten. */
  #hand = 0;
  #size = 0;

  constructor(maxClients: number) {
    if (!Number.isInteger(maxClients) || maxClients < 1) throw new RangeError(`maxClients must be an integer >= 1, got ${maxClients}`);
    this.maxClients = maxClients;
    // Allocated once at the bound: memory pages are only committed as slots get used (the
    // allocator hands out zeroed pages lazily), and nothing is ever copied to grow.
    const records = new ArrayBuffer(maxClients * STATE_STRIDE * 8);
    this.state = new Float64Array(records);
    this.#ints = new Int32Array(records);
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
    const ints = this.#ints;
    const mask = this.#mask;
    const hash = this.#hashOf(family, hi, lo);
    for (let at = hash & mask; ; at = (at + 1) & mask) {
      const entry = index[at * 2] as number;
      if (entry === 0) return NO_CLIENT;
      if (index[at * 2 + 1] !== hash) continue;
      const k = (entry - 1) * RECORD_INTS;
      if (ints[k + HI] === hi && ints[k + LO] === lo && ((ints[k + FLAGS] as number) & FAMILY_BITS) === family) return entry - 1;
    }
  }

  /** True when slot `c` holds this client now. */
  holds(c: number, family: 4 | 6, hi: number, lo: number): boolean {
    if (!(c >= 0 && c < this.#size)) return false;
    const ints = this.#ints;
    const k = c * RECORD_INTS;
    return ints[k + HI] === hi && ints[k + LO] === lo && ((ints[k + FLAGS] as number) & FAMILY_BITS) === family;
  }

  familyOf(c: number): 4 | 6 {
    return ((this.#ints[c * RECORD_INTS + FLAGS] as number) & FAMILY_BITS) as 4 | 6;
  }

  hiOf(c: number): number {
    return this.#ints[c * RECORD_INTS + HI] as number;
  }

  loOf(c: number): number {
    return this.#ints[c * RECORD_INTS + LO] as number;
  }

  /** Adds a client (absent: check with `find`), not yet seen again; when full, forgets the one the CLOCK hand picks. */
  add(family: 4 | 6, hi: number, lo: number): number {
    let c: number;
    const state = this.state;
    if (this.#size < this.maxClients) {
      c = this.#size++;
    } else {
      c = this.#sweep();
      this.#unindex(c);
      // The mark is in the record the hand just read: no Map lookup for the many clients without a text.
      if (((this.#ints[c * RECORD_INTS + FLAGS] as number) & HAS_TEXT) !== 0) this.#keyTexts.delete(c);
      // Plain stores: the record's line is in the cache already (the hand read it), a fill would be a call.
      const at = c * STATE_STRIDE;
      state[at + BUCKET] = 0;
      state[at + CURRENT] = 0;
      state[at + PREVIOUS] = 0;
      state[at + PENDING] = 0;
      state[at + PENALTY] = 0;
      state[at + PENALTY_AT] = 0;
      state[at + BANNED_UNTIL] = 0;
      state[at + OFFENCES] = 0;
    }
    const hash = this.#hashOf(family, hi, lo);
    const ints = this.#ints;
    const k = c * RECORD_INTS;
    ints[k + HI] = hi;
    ints[k + LO] = lo;
    ints[k + FLAGS] = family;
    ints[k + HASH] = hash;
    const index = this.#index;
    const mask = this.#mask;
    let at = hash & mask;
    while (index[at * 2] !== 0) at = (at + 1) & mask;
    index[at * 2] = c + 1;
    index[at * 2 + 1] = hash;
    return c;
  }

  /** Marks a client as seen again: the hand will pass it once before forgetting it. */
  touch(c: number): void {
    const ints = this.#ints;
    const f = c * RECORD_INTS + FLAGS;
    ints[f] = (ints[f] as number) | SEEN;
  }

  /** Calls `visit` for every client, in slot order (not an order of recency). */
  forEach(visit: (c: number) => void): void {
    const size = this.#size;
    for (let c = 0; c < size; c++) visit(c);
  }

  /** The client's key text, built by `make` the first time and kept while the client is. */
  keyText(c: number, make: (c: number) => string): string {
    let text = this.#keyTexts.get(c);
    if (text === undefined) {
      text = make(c);
      this.#keyTexts.set(c, text);
      const ints = this.#ints;
      const f = c * RECORD_INTS + FLAGS;
      ints[f] = (ints[f] as number) | HAS_TEXT;
    }
    return text;
  }

  clear(): void {
    this.#index.fill(0);
    this.state.fill(0, 0, this.#size * STATE_STRIDE);
    this.#keyTexts.clear();
    this.#hand = 0;
    this.#size = 0;
  }

  /** Moves the hand to the slot to reuse: the first client not seen since the hand last passed, or the one after MAX_SWEEP passed. */
  #sweep(): number {
    const ints = this.#ints;
    const max = this.maxClients;
    let hand = this.#hand;
    for (let passed = 0; ; passed++) {
      const c = hand;
      hand = hand + 1 === max ? 0 : hand + 1;
      const f = c * RECORD_INTS + FLAGS;
      const flags = ints[f] as number;
      if ((flags & SEEN) === 0 || passed === MAX_SWEEP) {
        this.#hand = hand;
        return c;
      }
      ints[f] = flags & ~SEEN;
    }
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
    let hole = (this.#ints[c * RECORD_INTS + HASH] as number) & mask;
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
}
