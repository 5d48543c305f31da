/**
 * The hot-path view of the shared decisions. Each family keeps one Map per
 * prefix length present (exact addresses are simply the /32 or /128 table),
 * keyed by the masked network; a lookup masks the address for each present
 * length, longest first, so the most specific unexpired decision wins. There
 * are only a handful of distinct lengths in practice, so this is a few Map
 * reads per lookup, with no allocation and no strings.
 *
 * Keys are int32 numbers (small integers to V8, never boxed): the network
 * itself for IPv4, a hash of the four masked words for IPv6, with collisions
 * chained and every candidate checked word by word.
 */
import { isIPv4Mapped, wordAt } from '../net/address.js';
import type { Decision, DecisionChange } from '../types.js';
import { parseDecisionTarget } from './decision.js';

export interface DecisionIndexOptions {
  /** Called for a decision whose value is not an address or CIDR prefix; it is left out of the index. */
  onInvalid?: (decision: Decision, problem: string) => void;
}

/** MASKS[length * 4 + i]: the mask of 32-bit word i for a prefix of `length` bits (0..128). */
const MASKS = new Int32Array(129 * 4);
for (let length = 0; length <= 128; length++) {
  for (let i = 0; i < 4; i++) {
    const bits = Math.min(32, Math.max(0, length - 32 * i));
    MASKS[length * 4 + i] = bits === 0 ? 0 : -1 << (32 - bits);
  }
}

/** int32 hash of an IPv6 network (murmur3-style mixing); IPv4 networks are their own key. */
function hashWords(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w0 ^ 0x2545f491, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ w1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ w2, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ w3, 0x27d4eb2f);
  return (h ^ (h >>> 15)) | 0;
}

function unexpired(decision: Decision, now: number): boolean {
  return decision.expiresAt === null || decision.expiresAt > now;
}

/** One indexed decision and its network as four masked words (IPv4 uses w0 only). */
class Entry {
  /** Next entry with the same Map key (same network, or an IPv6 hash collision). */
  next: Entry | undefined = undefined;

  constructor(
    readonly decision: Decision,
    readonly table: FamilyTable,
    readonly prefixLength: number,
    readonly w0: number,
    readonly w1: number,
    readonly w2: number,
    readonly w3: number,
  ) {}
}

/** The decisions of one address family. */
class FamilyTable {
  /** Per prefix length: Map key -> chain of entries. */
  readonly #byLength: (Map<number, Entry> | undefined)[];
  /** Prefix lengths present, longest first. */
  #lengths: number[] = [];

  constructor(readonly family: 4 | 6) {
    this.#byLength = new Array<Map<number, Entry> | undefined>(family === 4 ? 33 : 129).fill(undefined);
  }

  #key(w0: number, w1: number, w2: number, w3: number): number {
    return this.family === 4 ? w0 : hashWords(w0, w1, w2, w3);
  }

  add(entry: Entry): void {
    let map = this.#byLength[entry.prefixLength];
    if (map === undefined) {
      map = new Map();
      this.#byLength[entry.prefixLength] = map;
      this.#lengths = [...this.#lengths, entry.prefixLength].sort((a, b) => b - a);
    }
    const key = this.#key(entry.w0, entry.w1, entry.w2, entry.w3);
    entry.next = map.get(key);
    map.set(key, entry);
  }

  remove(entry: Entry): void {
    const map = this.#byLength[entry.prefixLength];
    if (map === undefined) return;
    const key = this.#key(entry.w0, entry.w1, entry.w2, entry.w3);
    let previous: Entry | undefined;
    for (let e = map.get(key); e !== undefined; previous = e, e = e.next) {
      if (e !== entry) continue;
      if (previous !== undefined) previous.next = e.next;
      else if (e.next !== undefined) map.set(key, e.next);
      else map.delete(key);
      break;
    }
    if (map.size === 0) {
      this.#byLength[entry.prefixLength] = undefined;
      this.#lengths = this.#lengths.filter((length) => length !== entry.prefixLength);
    }
  }

  /** The unexpired entry with the longest prefix containing the address (given as four words). */
  find(w0: number, w1: number, w2: number, w3: number, now: number): Entry | undefined {
    const lengths = this.#lengths;
    for (let i = 0; i < lengths.length; i++) {
      const length = lengths[i] as number;
      const m = length * 4;
      const m0 = w0 & (MASKS[m] as number);
      const m1 = w1 & (MASKS[m + 1] as number);
      const m2 = w2 & (MASKS[m + 2] as number);
      const m3 = w3 & (MASKS[m + 3] as number);
      const map = this.#byLength[length] as Map<number, Entry>;
      for (let e = map.get(this.#key(m0, m1, m2, m3)); e !== undefined; e = e.next) {
        if (e.w0 === m0 && e.w1 === m1 && e.w2 === m2 && e.w3 === m3 && unexpired(e.decision, now)) return e;
      }
    }
    return undefined;
  }

  clear(): void {
    this.#byLength.fill(undefined);
    this.#lengths = [];
  }
}

/** The hot-path view of the shared decisions: exact addresses in a Map, ranges in a small sorted structure. */
export class DecisionIndex {
  readonly #v4 = new FamilyTable(4);
  readonly #v6 = new FamilyTable(6);
  readonly #byKey = new Map<string, Entry>();
  readonly #onInvalid: ((decision: Decision, problem: string) => void) | undefined;

  constructor(options: DecisionIndexOptions = {}) {
    this.#onInvalid = options.onInvalid;
  }

  replaceAll(decisions: readonly Decision[]): void {
    this.#byKey.clear();
    this.#v4.clear();
    this.#v6.clear();
    for (const decision of decisions) this.#put(decision);
  }

  apply(change: DecisionChange): void {
    if (change.op === 'put') this.#put(change.decision);
    else this.#delete(change.key);
  }

  /**
   * The most specific unexpired decision containing the address (exact ip beats range, longer
   * prefix beats shorter), or undefined. No allocation when nothing matches. An IPv4-mapped IPv6
   * address (::ffff:a.b.c.d) is matched as the IPv4 address first, then against IPv6 ranges.
   */
  lookup(address: Uint8Array, now: number): Decision | undefined {
    if (address.length === 4) return this.#v4.find(wordAt(address, 0), 0, 0, 0, now)?.decision;
    if (address.length !== 16) return undefined;
    if (isIPv4Mapped(address)) {
      const entry = this.#v4.find(wordAt(address, 12), 0, 0, 0, now);
      if (entry !== undefined) return entry.decision;
    }
    return this.#v6.find(wordAt(address, 0), wordAt(address, 4), wordAt(address, 8), wordAt(address, 12), now)?.decision;
  }

  /** The decision held under `key`, expired or not. */
  get(key: string): Decision | undefined {
    return this.#byKey.get(key)?.decision;
  }

  /** Unexpired decisions, for listing. */
  list(now: number): Decision[] {
    const out: Decision[] = [];
    for (const entry of this.#byKey.values()) if (unexpired(entry.decision, now)) out.push(entry.decision);
    return out;
  }

  /** Forgets expired decisions (lookups already ignore them); returns how many. */
  prune(now: number): number {
    let removed = 0;
    for (const [key, entry] of this.#byKey) {
      if (unexpired(entry.decision, now)) continue;
      this.#byKey.delete(key);
      entry.table.remove(entry);
      removed++;
    }
    return removed;
  }

  /** Decisions held, expired ones included until pruned or deleted. */
  get size(): number {
    return this.#byKey.size;
  }

  #put(decision: Decision): void {
    this.#delete(decision.key);
    let target;
    try {
      target = parseDecisionTarget(decision.value);
    } catch (err) {
      this.#onInvalid?.(decision, (err as Error).message);
      return;
    }
    const { address, prefixLength } = target;
    const table = address.length === 4 ? this.#v4 : this.#v6;
    const entry =
      address.length === 4
        ? new Entry(decision, table, prefixLength, wordAt(address, 0), 0, 0, 0)
        : new Entry(decision, table, prefixLength, wordAt(address, 0), wordAt(address, 4), wordAt(address, 8), wordAt(address, 12));
    table.add(entry);
    this.#byKey.set(decision.key, entry);
  }

  #delete(key: string): void {
    const entry = this.#byKey.get(key);
    if (entry === undefined) return;
    this.#byKey.delete(key);
    entry.table.remove(entry);
  }
}
