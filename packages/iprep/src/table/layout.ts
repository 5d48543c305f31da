/**
 * The layout shared by the table's compiler (flatten.ts, records.ts) and its lookups
 * (interval-table.ts): what a table is compiled from, and the typed arrays it is made of. Types
 * only, so that none of these modules needs the others.
 */
import type { IpRange } from '../net/address.js';

export interface TableEntry {
  readonly range: IpRange;
  /** An integer >= 0 (at most 2^31 - 1), typically an index into the caller's metadata. */
  readonly value: number;
}

/**
 * Sorted, disjoint intervals of one family, as the compilers make them (flattened entries, a geo
 * database's networks): `starts` and `ends` hold 1 (IPv4) or 4 (IPv6) words per interval, inclusive.
 */
export interface FamilyIntervals {
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
  readonly values: Int32Array;
}

/**
 * One family as the table reads it. `records`: the family's intervals, sorted and disjoint, each
 * its start, its end (1 word each for IPv4, 4 for IPv6, inclusive) and its value, side by side, so
 * that the interval a search finds costs one cache line, where separate starts, ends and values
 * arrays took three.
 *
 * `index`, for families of 16 records or more (records.ts): 2^bits + 1 words, bits 8 to 16 sized
 * by the family (about one bucket per record); a bucket is the address's top `bits` bits (of its
 * first word for IPv6); index[b] = the first record whose end reaches bucket b, index[2^bits] =
 * the number of records. The record holding an address of bucket b is one of index[b]..index[b + 1].
 */
export interface FamilyRecords {
  readonly records: Uint32Array;
  readonly index: Uint32Array | null;
}

/** A table as plain typed arrays, to send to or from a worker thread. */
export interface IntervalTableData {
  /** Entries the table was compiled from. */
  readonly size: number;
  /** Intervals, both families (records). */
  readonly intervals: number;
  readonly v4: FamilyRecords;
  readonly v6: FamilyRecords;
}
