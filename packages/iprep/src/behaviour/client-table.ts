/**
 * Per-client state, found by numbers rather than strings, with a hard bound
 * on how many clients are kept. A client is an IPv4 address or an IPv6 prefix
 * of at most 64 bits, held as two int32 words (`hi`, `lo`; IPv4 uses `hi`):
 * IPv4 in a Map<number, state> keyed by the address; IPv6 in a Map<number,
 * state> keyed by a 32-bit hash of both words, clients whose hashes collide
 * chained through `sameHash` (one Map, not one per /32: random prefixes would
 * otherwise cost a Map each). Keys stay small integers to V8 (never boxed).
 * An intrusive doubly linked list orders clients from least to most recently
 * seen; touching one is a few pointer writes, and the oldest goes first when full.
 */

/** Everything the tracker knows about one client. */
export class ClientState {
  /** Key text, built the first time it is needed (deltas, bans). */
  keyText: string | undefined = undefined;
  /** Sliding window: counts of the current fixed bucket (index `bucket`) and the one before it. */
  bucket = 0;
  current = 0;
  previous = 0;
  /** Weight counted since the last `takeDeltas`. */
  pending = 0;
  /** Rate penalty as given, and when (decay runs from then). */
  penalty = 0;
  penaltyAt = 0;
  /** End of the current ban (ms since epoch), 0 when never banned. */
  bannedUntil = 0;
  offences = 0;
  older: ClientState | undefined = undefined;
  newer: ClientState | undefined = undefined;
  /** The next IPv6 client whose key hashes the same. */
  sameHash: ClientState | undefined = undefined;

  constructor(
    readonly family: 4 | 6,
    readonly hi: number,
    readonly lo: number,
  ) {}
}

export class ClientTable {
  readonly #v4 = new Map<number, ClientState>();
  readonly #v6 = new Map<number, ClientState>();
  #oldest: ClientState | undefined = undefined;
  #newest: ClientState | undefined = undefined;
  #size = 0;

  constructor(readonly maxClients: number) {}

  get size(): number {
    return this.#size;
  }

  find(family: 4 | 6, hi: number, lo: number): ClientState | undefined {
    if (family === 4) return this.#v4.get(hi);
    let state = this.#v6.get(hashWords(hi, lo));
    while (state !== undefined && (state.hi !== hi || state.lo !== lo)) state = state.sameHash;
    return state;
  }

  /** Adds a client as the most recently seen, forgetting the least recently seen one when full. */
  add(family: 4 | 6, hi: number, lo: number): ClientState {
    if (this.#size >= this.maxClients && this.#oldest !== undefined) this.#remove(this.#oldest);
    const state = new ClientState(family, hi, lo);
    if (family === 4) {
      this.#v4.set(hi, state);
    } else {
      const hash = hashWords(hi, lo);
      state.sameHash = this.#v6.get(hash);
      this.#v6.set(hash, state);
    }
    this.#append(state);
    this.#size++;
    return state;
  }

  /** Marks a client as the most recently seen. */
  touch(state: ClientState): void {
    if (state === this.#newest) return;
    this.#unlink(state);
    this.#append(state);
  }

  /** Calls `visit` for every client, least recently seen first. */
  forEach(visit: (state: ClientState) => void): void {
    for (let s = this.#oldest; s !== undefined; s = s.newer) visit(s);
  }

  clear(): void {
    this.#v4.clear();
    this.#v6.clear();
    this.#oldest = undefined;
    this.#newest = undefined;
    this.#size = 0;
  }

  #remove(state: ClientState): void {
    if (state.family === 4) {
      this.#v4.delete(state.hi);
    } else {
      const hash = hashWords(state.hi, state.lo);
      const head = this.#v6.get(hash);
      if (head === state) {
        if (state.sameHash === undefined) this.#v6.delete(hash);
        else this.#v6.set(hash, state.sameHash);
      } else {
        let before = head;
        while (before !== undefined && before.sameHash !== state) before = before.sameHash;
        if (before !== undefined) before.sameHash = state.sameHash;
      }
      state.sameHash = undefined;
    }
    this.#unlink(state);
    this.#size--;
  }

  #append(state: ClientState): void {
    state.older = this.#newest;
    state.newer = undefined;
    if (this.#newest !== undefined) this.#newest.newer = state;
    else this.#oldest = state;
    this.#newest = state;
  }

  #unlink(state: ClientState): void {
    if (state.older !== undefined) state.older.newer = state.newer;
    else this.#oldest = state.newer;
    if (state.newer !== undefined) state.newer.older = state.older;
    else this.#newest = state.older;
    state.older = undefined;
    state.newer = undefined;
  }
}

/** A 32-bit hash of an IPv6 client's two words (Knuth's multiplicative constant mixes `hi`). */
function hashWords(hi: number, lo: number): number {
  return (Math.imul(hi, 0x9e3779b1) ^ lo) | 0;
}
