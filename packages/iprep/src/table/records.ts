/**
 * From sorted, disjoint intervals to the records a table reads (layout.ts, FamilyRecords): each
 * interval's start, end and value side by side, and for a family of 16 records or more an index
 * sized by the family (measured: packages/iprep/bench/lpm-threshold.ts). Both are built where the
 * intervals are made, in a worker thread for large lists and databases, so that the main thread
 * only wraps the arrays it receives.
 */
import type { FamilyIntervals, FamilyRecords, IntervalTableData } from './layout.js';
import { sharedUint32 } from './shared.js';

/** Records from which a family gets an index: below, a search of at most 4 steps. */
export const INDEX_MIN_RECORDS = 16;
/** Index bits: about one bucket per record, 2^8 to 2^16 buckets. */
const MIN_INDEX_BITS = 8;
const MAX_INDEX_BITS = 16;

/**
 * Index buckets of a family of `n` records, as a power of 2: about one record per bucket, so that a
 * small table's index is as small as its records (an allowlist of 1,000 addresses: 4 KiB, not
 * 256 KiB) and both stay in cache, while a large one gets the full /16 index.
 */
export function indexBits(n: number): number {
  return Math.min(MAX_INDEX_BITS, Math.max(MIN_INDEX_BITS, Math.ceil(Math.log2(n))));
}

/**
 * The table data of flattened families: records and their indexes. `shared`: records in
 * SharedArrayBuffers (shared.ts), for tables that another thread may read (lists: the combined
 * table's merge).
 */
export function tableData(size: number, v4: FamilyIntervals, v6: FamilyIntervals, shared = false): IntervalTableData {
  return { size, intervals: v4.values.length + v6.values.length, v4: familyRecords(v4, 1, shared), v6: familyRecords(v6, 4, shared) };
}

/** A family's records and index, from its intervals (`w` words per address). */
export function familyRecords(intervals: FamilyIntervals, w: number, shared = false): FamilyRecords {
  const { starts, ends, values } = intervals;
  const n = values.length;
  const stride = 2 * w + 1;
  const records = shared ? sharedUint32(n * stride) : new Uint32Array(n * stride);
  for (let i = 0; i < n; i++) {
    const at = i * stride;
    for (let k = 0; k < w; k++) {
      records[at + k] = starts[i * w + k] as number;
      records[at + w + k] = ends[i * w + k] as number;
    }
    records[at + 2 * w] = values[i] as number;
  }
  return { records, index: recordsIndex(records, w) };
}

/**
 * The index of records (`w`-word start and end, then the value) on the top `bits` bits of the
 * address (its first word for IPv6), or null below `minRecords` records; other values than the
 * defaults are for benchmarks. One pass over the records: a few ms for a million.
 */
export function recordsIndex(records: Uint32Array, w: number, minRecords = INDEX_MIN_RECORDS, bits?: number): Uint32Array | null {
  const stride = 2 * w + 1;
  const n = records.length / stride;
  if (n < minRecords) return null;
  const buckets = 2 ** (bits ?? indexBits(n));
  const shift = 32 - Math.log2(buckets);
  const index = new Uint32Array(buckets + 1);
  let i = 0;
  for (let b = 0; b < buckets; b++) {
    // Skip the records ending before bucket b (their end's first word is in an earlier bucket).
    while (i < n && (records[i * stride + w] as number) >>> shift < b) i++;
    index[b] = i;
  }
  index[buckets] = n;
  return index;
}

/** The right shift that turns an address's first word into its bucket of `index`. */
export function indexShift(index: Uint32Array): number {
  // index.length - 1 is 2^bits.
  return 1 + Math.clz32(index.length - 1);
}
