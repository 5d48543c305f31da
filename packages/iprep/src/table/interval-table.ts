/**
 * A compiled longest-prefix-match table: sorted, disjoint address intervals per family, each
 * carrying the value of the most specific range that covers it. Immutable; a new table is
 * compiled and swapped in to change it.
 *
 * An interval is a record of its start, its end (one Uint32 word each for IPv4, four for IPv6,
 * big-endian word order) and its value, side by side in one array per family (layout.ts): a lookup
 * is a binary search over the starts, and the end and value of the interval found lie beside its
 * start, in the same cache line. No allocation.
 *
 * A family of 16 records or more also has a first-level index on the top bits of the address
 * (of its first word for IPv6), built with the records: the search then covers only the records
 * of that bucket, one or two steps instead of 17 to 20 for 100,000 to 1,000,000 intervals, steps
 * that were cache misses each. The index has about one bucket per record (records.ts,
 * indexBits): a /16 index (65,537 Uint32, 256 KiB) for large tables, a few KiB for an allowlist,
 * small enough to stay in cache with its records.
 */
import { flattenEntries, packEntries } from './flatten.js';
import type { FamilyRecords, IntervalTableData, TableEntry } from './layout.js';
import { MAX_TABLE_VALUE } from './flatten.js';
import { familyRecords, indexShift, recordsIndex } from './records.js';
import { transferableBuffers } from './shared.js';
import { compareWords, readWord } from './words.js';

// Defined in layout.ts (shared with flatten.ts) and exported here too, with the table they describe.
export type { FamilyIntervals, FamilyRecords, IntervalTableData, TableEntry } from './layout.js';

const NO_INTERVALS = { starts: new Uint32Array(0), ends: new Uint32Array(0), values: new Int32Array(0) };

export class IntervalTable {
  /** Entries compiled (both families). */
  readonly size: number;
  /** Disjoint intervals kept (both families). */
  readonly intervals: number;
  readonly #v4Records: Uint32Array;
  readonly #v6Records: Uint32Array;
  /** Number of the last record (-1: none). */
  readonly #v4Last: number;
  readonly #v6Last: number;
  readonly #v4Index: Uint32Array | null;
  readonly #v6Index: Uint32Array | null;
  /** Address (first word) >>> shift = its index bucket. */
  readonly #v4Shift: number;
  readonly #v6Shift: number;

  private constructor(data: IntervalTableData) {
    this.size = data.size;
    this.intervals = data.intervals;
    this.#v4Records = data.v4.records;
    this.#v6Records = data.v6.records;
    this.#v4Last = data.v4.records.length / 3 - 1;
    this.#v6Last = data.v6.records.length / 9 - 1;
    this.#v4Index = data.v4.index;
    this.#v6Index = data.v6.index;
    this.#v4Shift = data.v4.index === null ? 0 : indexShift(data.v4.index);
    this.#v6Shift = data.v6.index === null ? 0 : indexShift(data.v6.index);
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
    return new IntervalTable({ size: 0, intervals: 0, v4: familyRecords(NO_INTERVALS, 1), v6: familyRecords(NO_INTERVALS, 4) });
  }

  /**
   * Checks the records (sorted, disjoint intervals, values >= 0) and wraps them without copying;
   * the index is built here, not taken from the data.
   */
  static fromData(data: IntervalTableData): IntervalTable {
    if (!Number.isInteger(data.size) || data.size < 0) throw new TypeError(`interval table data: bad size ${String(data.size)}`);
    const intervals = checkFamily(data.v4, 1, 'IPv4') + checkFamily(data.v6, 4, 'IPv6');
    if (data.intervals !== intervals) throw new RangeError(`interval table data: ${String(data.intervals)} intervals announced, ${intervals} found`);
    return new IntervalTable({
      size: data.size,
      intervals,
      v4: { records: data.v4.records, index: recordsIndex(data.v4.records, 1) },
      v6: { records: data.v6.records, index: recordsIndex(data.v6.records, 4) },
    });
  }

  /**
   * Wraps records and indexes that this process made (flattenEntries or a geo database's
   * compiler, in a worker thread) without checking them again: they are right by construction,
   * and checking a million intervals would pause the main thread for tens of ms, the very pause
   * the worker thread is there to avoid.
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
      intervals: this.intervals,
      v4: { records: this.#v4Records, index: this.#v4Index },
      v6: { records: this.#v6Records, index: this.#v6Index },
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
    const records = this.#v4Records; // start, end, value
    let low = 0;
    let high = this.#v4Last;
    const index = this.#v4Index;
    if (index !== null) {
      const bucket = a >>> this.#v4Shift;
      low = index[bucket] as number;
      // The first record reaching the next bucket may start in this one: it is a candidate too.
      high = Math.min(index[bucket + 1] as number, high);
    }
    let found = -1; // last record starting at or before the address
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if ((records[mid * 3] as number) <= a) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    const at = found * 3;
    // `| 0`: an int32 (values are at most 2^31 - 1), not a uint32 that V8 may box as a double.
    return found >= 0 && a <= (records[at + 1] as number) ? (records[at + 2] as number) | 0 : -1;
  }

  #lookupV6(a0: number, a1: number, a2: number, a3: number): number {
    const records = this.#v6Records; // start (4 words), end (4 words), value
    let low = 0;
    let high = this.#v6Last;
    const index = this.#v6Index;
    if (index !== null) {
      const bucket = a0 >>> this.#v6Shift;
      low = index[bucket] as number;
      high = Math.min(index[bucket + 1] as number, high);
    }
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (notAfter(records, mid * 9, a0, a1, a2, a3)) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    if (found < 0) return -1;
    const at = found * 9;
    const value = (records[at + 8] as number) | 0;
    // a <= end, word by word.
    const e0 = records[at + 4] as number;
    if (a0 !== e0) return a0 < e0 ? value : -1;
    const e1 = records[at + 5] as number;
    if (a1 !== e1) return a1 < e1 ? value : -1;
    const e2 = records[at + 6] as number;
    if (a2 !== e2) return a2 < e2 ? value : -1;
    return a3 <= (records[at + 7] as number) ? value : -1;
  }
}

/**
 * The buffers to list in `transferList` when posting table data; the sender's arrays are detached.
 * Records in SharedArrayBuffers are shared, not transferred.
 */
export function intervalTableTransferList(data: IntervalTableData): ArrayBuffer[] {
  const arrays: Uint32Array[] = [];
  for (const family of [data.v4, data.v6]) {
    arrays.push(family.records);
    if (family.index !== null) arrays.push(family.index);
  }
  return transferableBuffers(arrays);
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

/** Checks a family's records; returns how many there are. */
function checkFamily(family: FamilyRecords, w: number, name: string): number {
  const { records } = family;
  if (!(records instanceof Uint32Array)) throw new TypeError(`interval table data: ${name} records must be a Uint32Array`);
  const stride = 2 * w + 1;
  const n = records.length / stride;
  if (!Number.isInteger(n)) throw new TypeError(`interval table data: ${name} records hold ${records.length} words, not a multiple of ${stride}`);
  for (let i = 0; i < n; i++) {
    const at = i * stride;
    if ((records[at + 2 * w] as number) > MAX_TABLE_VALUE) {
      throw new RangeError(`interval table data: ${name} record ${i} has a bad value ${records[at + 2 * w] as number}`);
    }
    if (compareWords(records, at, records, at + w, w) > 0) throw new RangeError(`interval table data: ${name} record ${i} ends before it starts`);
    if (i > 0 && compareWords(records, at - stride + w, records, at, w) >= 0) {
      throw new RangeError(`interval table data: ${name} record ${i} does not start after record ${i - 1} ends`);
    }
  }
  return n;
}
