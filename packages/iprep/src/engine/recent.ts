/**
 * The values of the last few keys set, found by identity: a handful of comparisons, where a
 * WeakMap or Map read costs a hash lookup and a miss of a two-entry cache a shuffle of fields.
 * Verdicts are few and reused (unknown, one per list, RFC 6890 range, penalty step), and traffic
 * alternates between several of them: random IPv4 sources alone give unknown, multicast and
 * reserved verdicts.
 */
const SLOTS = 4;

export class RecentByIdentity<K extends object, V> {
  readonly #keys: (K | undefined)[] = new Array<K | undefined>(SLOTS).fill(undefined);
  readonly #values: (V | undefined)[] = new Array<V | undefined>(SLOTS).fill(undefined);
  /** The slot the next set replaces (round robin: a hit moves nothing). */
  #next = 0;

  get(key: K): V | undefined {
    const keys = this.#keys;
    for (let i = 0; i < SLOTS; i++) if (keys[i] === key) return this.#values[i];
    return undefined;
  }

  set(key: K, value: V): void {
    const slot = this.#next;
    this.#keys[slot] = key;
    this.#values[slot] = value;
    this.#next = (slot + 1) % SLOTS;
  }
}
