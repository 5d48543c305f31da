/**
 * The layout shared by the table's compiler (flatten.ts) and its lookups (interval-table.ts): what a
 * table is compiled from, and the typed arrays it is made of. Types only, so that neither of the two
 * modules needs the other.
 */
import type { IpRange } from '../net/address.js';

export interface TableEntry {
  readonly range: IpRange;
  /** An integer >= 0 (at most 2^31 - 1), typically an index into the caller's metadata. */
  readonly value: number;
}

/** The intervals of one family: `starts` and `ends` hold 1 (IPv4) or 4 (IPv6) words per interval, inclusive. */
export interface FamilyIntervals {
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
  readonly values: Int32Array;
}

/** A table as plain typed arrays, to send to or from a worker thread. */
export interface IntervalTableData {
  /** Entries the table was compiled from. */
  readonly size: number;
  readonly v4: FamilyIntervals;
  readonly v6: FamilyIntervals;
}
