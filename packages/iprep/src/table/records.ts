/**
 * From sorted, disjoint intervals to the records a table reads (layout.ts, FamilyRecords): the
 * gaps become records without a value, so that a lookup needs no end, and a table of 16 records or
 * more gets its index, sized by the table (measured: packages/iprep/bench/lpm-threshold.ts). Both run where the intervals are made, in a worker thread for large lists
 * and databases, so that the main thread only wraps the arrays it receives.
 */
import type { FamilyIntervals, FamilyRecords, IntervalTableData } from './layout.js';
import { compareWords } from './words.js';

/** A record's value where no range covers its addresses (read back as -1 with `| 0`). */
export const NO_VALUE = 0xffffffff;

/** Records from which a family gets an index: below, a search of at most 4 steps. */
export const INDEX_MIN_RECORDS = 16;
/** Index bits: about one bucket per record, 2^8 to 2^16 buckets. */
const MIN_INDEX_BITS = 8;
const MAX_INDEX_BITS = 16;

/**
 * Index buckets of a family of `n` records, as a power of 2: about one record per bucket, so that a
 * small table's index is as small as its records (an allowlist of 1,000 addresses: 8 KiB, not
 * 256 KiB) and both stay in cache, while a large one gets the full /16 index.
 */
export function indexBits(n: number): number {
  return Math.min(MAX_INDEX_BITS, Math.max(MIN_INDEX_BITS, Math.ceil(Math.log2(n))));
}

/** The table data of flattened families: records with their gaps, and their indexes. */
export function tableData(size: number, v4: FamilyIntervals, v6: FamilyIntervals): IntervalTableData {
  return { size, intervals: v4.values.length + v6.values.length, v4: familyRecords(v4, 1), v6: familyRecords(v6, 4) };
}

/** A family's records (gaps included) and index, from its intervals (`w` words per address). */
export function familyRecords(intervals: FamilyIntervals, w: number): FamilyRecords {
  const { starts, ends, values } = intervals;
  const n = values.length;
  const stride = w + 1;
  // At most one gap before each interval, and one after the last.
  const out = new Uint32Array((2 * n + 1) * stride);
  let count = 0;
  const cursor = new Uint32Array(w); // first address not yet in a record
  let covered = false; // the records reach the family's last address
  for (let i = 0; i < n; i++) {
    const at = i * w;
    if (compareWords(starts, at, cursor, 0, w) > 0) {
      out.set(cursor, count * stride);
      out[count++ * stride + w] = NO_VALUE;
    }
    out.set(starts.subarray(at, at + w), count * stride);
    out[count++ * stride + w] = values[i] as number;
    // cursor = end + 1, unless the end is the family's last address.
    let carry = 1;
    for (let k = w - 1; k >= 0; k--) {
      const s = (ends[at + k] as number) + carry;
      carry = s > 0xffffffff ? 1 : 0;
      cursor[k] = s >>> 0;
    }
    covered = carry === 1;
  }
  if (!covered) {
    out.set(cursor, count * stride);
    out[count++ * stride + w] = NO_VALUE;
  }
  const records = out.slice(0, count * stride);
  return { records, index: recordsIndex(records, w) };
}

/**
 * The index of records (`w` start words each, then the value) on the top `bits` bits of the
 * address (its first word for IPv6), or null below `minRecords` records; other values than the
 * defaults are for benchmarks. index[b] = the record holding the first address of bucket b,
 * index[2^bits] = the last record. One pass over the records: a few ms for a million.
 */
export function recordsIndex(records: Uint32Array, w: number, minRecords = INDEX_MIN_RECORDS, bits?: number): Uint32Array | null {
  const stride = w + 1;
  const n = records.length / stride;
  if (n < minRecords) return null;
  const buckets = 2 ** (bits ?? indexBits(n));
  const width = 2 ** 32 / buckets;
  const index = new Uint32Array(buckets + 1);
  let i = 0;
  for (let b = 0; b < buckets; b++) {
    const first = b * width; // the bucket's first address (first word)
    for (;;) {
      const next = i + 1;
      if (next >= n) break;
      const at = next * stride;
      const s0 = records[at] as number;
      // Record `next` starts at or before (first, 0, 0, 0)?
      if (s0 > first || (s0 === first && w > 1 && ((records[at + 1] as number) | (records[at + 2] as number) | (records[at + 3] as number)) !== 0)) break;
      i = next;
    }
    index[b] = i;
  }
  index[buckets] = n - 1;
  return index;
}

/** The right shift that turns an address's first word into its bucket of `index`. */
export function indexShift(index: Uint32Array): number {
  // index.length - 1 is 2^bits.
  return 1 + Math.clz32(index.length - 1);
}
