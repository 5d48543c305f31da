/**
 * A compiled longest-prefix-match table: sorted, disjoint address intervals
 * per family, each carrying the value of the most specific range that covers
 * it. Immutable; a new table is compiled and swapped in to change it.
 *
 * IPv4 intervals are one Uint32 word per address, IPv6 intervals four words
 * (big-endian word order). Lookups are a binary search over the starts, with
 * no allocation.
 *
 * A table of more than a few intervals also gets a first-level index on the
 * top 16 bits of the address (65,537 Uint32: 256 KiB per family): the search
 * then covers only the intervals reaching into that /16 (IPv4) or /16 of the
 * first word (IPv6), one or two steps instead of 17 to 20 for 100,000 to
 * 1,000,000 intervals. Those steps were cache misses each, the most expensive
 * part of scoring an address.
 */
import { familyBuffers, flattenEntries, packEntries } from './flatten.js';
import type { FamilyIntervals, IntervalTableData, TableEntry } from './layout.js';
import { compareWords, readWord } from './words.js';

/** Fewer intervals than this are searched directly: the index would cost more memory than it saves time. */
const INDEX_MIN_INTERVALS = 16;
const BUCKETS = 65536;

/**
 * index[b] = the first interval whose end reaches bucket b (its end's top 16 bits >= b), for b in
 * 0..65536 (index[65536] = n). The intervals that may hold an address of bucket b are then
 * index[b]..index[b + 1]: the later ones start past the bucket, the earlier ones end before it.
 * One pass over the ends: about 2 ms for a million intervals.
 */
function bucketIndex(ends: Uint32Array, words: number): Uint32Array | null {
  const n = ends.length / words;
  if (n < INDEX_MIN_INTERVALS) return null;
  const index = new Uint32Array(BUCKETS + 1);
  let i = 0;
  for (let b = 0; b < BUCKETS; b++) {
    while (i < n && (ends[i * words] as number) >>> 16 < b) i++;
    index[b] = i;
  }
  index[BUCKETS] = n;
  return index;
}

// Defined in layout.ts (shared with flatten.ts) and exported here too, with the table they describe.
export type { FamilyIntervals, IntervalTableData, TableEntry } from './layout.js';

export class IntervalTable {
  /** Entries compiled (both families). */
  readonly size: number;
  /** Disjoint intervals kept (both families). */
  readonly intervals: number;
  readonly #v4Starts: Uint32Array;
  readonly #v4Ends: Uint32Array;
  readonly #v4Values: Int32Array;
  readonly #v6Starts: Uint32Array;
  readonly #v6Ends: Uint32Array;
  readonly #v6Values: Int32Array;
  readonly #v4Index: Uint32Array | null;
  readonly #v6Index: Uint32Array | null;

  private constructor(data: IntervalTableData) {
    this.size = data.size;
    this.intervals = data.v4.values.length + data.v6.values.length;
    this.#v4Starts = data.v4.starts;
    this.#v4Ends = data.v4.ends;
    this.#v4Values = data.v4.values;
    this.#v6Starts = data.v6.starts;
    this.#v6Ends = data.v6.ends;
    this.#v6Values = data.v6.values;
    this.#v4Index = bucketIndex(data.v4.ends, 1);
    this.#v6Index = bucketIndex(data.v6.ends, 4);
  }

  /**
   * Compiles entries (any mix of IPv4 and IPv6 ranges, overlapping or not).
   * The smallest range containing an address gives its value; between equal
   * ranges the later entry wins. Throws on a bad entry, naming its index.
   */
  static compile(entries: Iterable<TableEntry>): IntervalTable {
    return new IntervalTable(flattenEntries(packEntries(entries)));
  }

  static empty(): IntervalTable {
    const none: FamilyIntervals = { starts: new Uint32Array(0), ends: new Uint32Array(0), values: new Int32Array(0) };
    return new IntervalTable({ size: 0, v4: none, v6: none });
  }

  /** Checks the arrays (sorted, disjoint, values >= 0) and wraps them without copying. */
  static fromData(data: IntervalTableData): IntervalTable {
    if (!Number.isInteger(data.size) || data.size < 0) throw new TypeError(`interval table data: bad size ${String(data.size)}`);
    checkFamily(data.v4, 1, 'IPv4');
    checkFamily(data.v6, 4, 'IPv6');
    return new IntervalTable(data);
  }

  /**
   * Wraps arrays that flattenEntries made (in a worker thread of this process) without checking
   * them again: they are sorted and disjoint by construction, and checking a million intervals
   * would pause the main thread for tens of ms, the very pause the worker thread is there to avoid.
   */
  static fromFlattened(data: IntervalTableData): IntervalTable {
    return new IntervalTable(data);
  }

  /**
   * The table's own arrays, not copies. Transferring their buffers
   * (`intervalTableTransferList`) detaches them: the table is then unusable.
   */
  toData(): IntervalTableData {
    return {
      size: this.size,
      v4: { starts: this.#v4Starts, ends: this.#v4Ends, values: this.#v4Values },
      v6: { starts: this.#v6Starts, ends: this.#v6Ends, values: this.#v6Values },
    };
  }

  /**
   * Value of the most specific (smallest) range containing the address, -1 if
   * none. The address is the bytes from `offset` to the end of the array: 4
   * for IPv4, 16 for IPv6 (so `lookup(mapped, 12)` looks up the IPv4 part of
   * an IPv4-mapped IPv6 address). No allocation.
   */
  lookup(address: Uint8Array, offset = 0): number {
    const length = address.length - offset;
    if (length === 4) return this.#lookupV4(readWord(address, offset));
    if (length === 16) {
      return this.#lookupV6(readWord(address, offset), readWord(address, offset + 4), readWord(address, offset + 8), readWord(address, offset + 12));
    }
    throw new RangeError(`lookup needs 4 or 16 address bytes from the offset, got ${length}`);
  }

  /**
   * `lookup` of an address already read as unsigned words: `a0` for IPv4, `a0..a3` for IPv6. The
   * engine reads a message's address once and asks every table with the same numbers.
   */
  lookupWords(v4: boolean, a0: number, a1: number, a2: number, a3: number): number {
    return v4 ? this.#lookupV4(a0) : this.#lookupV6(a0, a1, a2, a3);
  }

  #lookupV4(a: number): number {
    const starts = this.#v4Starts;
    let low = 0;
    let high = starts.length - 1;
    const index = this.#v4Index;
    if (index !== null) {
      const bucket = a >>> 16;
      low = index[bucket] as number;
      // The first interval reaching the next bucket may start in this one: it is a candidate too.
      high = Math.min(index[bucket + 1] as number, high);
    }
    let found = -1; // last interval starting at or before the address
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if ((starts[mid] as number) <= a) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found >= 0 && a <= (this.#v4Ends[found] as number) ? (this.#v4Values[found] as number) : -1;
  }

  #lookupV6(a0: number, a1: number, a2: number, a3: number): number {
    const starts = this.#v6Starts;
    let low = 0;
    let high = (starts.length >> 2) - 1;
    const index = this.#v6Index;
    if (index !== null) {
      const bucket = a0 >>> 16;
      low = index[bucket] as number;
      high = Math.min(index[bucket + 1] as number, high);
    }
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const at = mid << 2;
      if (notAfter(starts, at, a0, a1, a2, a3)) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    if (found < 0) return -1;
    const ends = this.#v6Ends;
    const at = found << 2;
    // a <= end, word by word.
    const e0 = ends[at] as number;
    if (a0 !== e0) return a0 < e0 ? (this.#v6Values[found] as number) : -1;
    const e1 = ends[at + 1] as number;
    if (a1 !== e1) return a1 < e1 ? (this.#v6Values[found] as number) : -1;
    const e2 = ends[at + 2] as number;
    if (a2 !== e2) return a2 < e2 ? (this.#v6Values[found] as number) : -1;
    return a3 <= (ends[at + 3] as number) ? (this.#v6Values[found] as number) : -1;
  }
}

/** The buffers to list in `transferList` when posting table data; the sender's arrays are detached. */
export function intervalTableTransferList(data: IntervalTableData): ArrayBuffer[] {
  return familyBuffers(data.v4).concat(familyBuffers(data.v6));
}

/** True when the 4-word value at `at` is <= (a0, a1, a2, a3). */
function notAfter(words: Uint32Array, at: number, a0: number, a1: number, a2: number, a3: number): boolean {
  const s0 = words[at] as number;
  if (s0 !== a0) return s0 < a0;
  const s1 = words[at + 1] as number;
  if (s1 !== a1) return s1 < a1;
  const s2 = words[at + 2] as number;
  if (s2 !== a2) return s2 < a2;
  return (words[at + 3] as number) <= a3;
}

function checkFamily(family: FamilyIntervals, words: number, name: string): void {
  const { starts, ends, values } = family;
  if (!(starts instanceof Uint32Array) || !(ends instanceof Uint32Array) || !(values instanceof Int32Array)) {
    throw new TypeError(`interval table data: ${name} starts/ends must be Uint32Arrays and values an Int32Array`);
  }
  const n = values.length;
  if (starts.length !== n * words || ends.length !== n * words) {
    throw new TypeError(`interval table data: ${name} has ${n} values but ${starts.length} start and ${ends.length} end words`);
  }
  for (let i = 0; i < n; i++) {
    const at = i * words;
    if ((values[i] as number) < 0) throw new RangeError(`interval table data: ${name} interval ${i} has a negative value`);
    if (compareWords(starts, at, ends, at, words) > 0) throw new RangeError(`interval table data: ${name} interval ${i} ends before it starts`);
    if (i > 0 && compareWords(ends, at - words, starts, at, words) >= 0) {
      throw new RangeError(`interval table data: ${name} interval ${i} is not after interval ${i - 1}`);
    }
  }
}
