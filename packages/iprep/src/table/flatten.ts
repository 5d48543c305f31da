/**
 * Compilation of a longest-prefix-match table: entries are packed into typed
 * arrays (one pass over the caller's objects), then each address family is
 * flattened into sorted, disjoint intervals whose value is already the one of
 * the most specific range covering them.
 *
 * Addresses are big-endian Uint32 words: one per IPv4 address, four per IPv6
 * address. The same code handles both families, with `w` 1 or 4.
 */
import { formatAddress } from '../net/address.js';
import type { FamilyIntervals, IntervalTableData, TableEntry } from './layout.js';
import { tableData } from './records.js';
import { compareWords, nextWords, readWord } from './words.js';

/** The entries of one family, in input order (a later entry wins ties). */
export interface PackedFamily {
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
  readonly values: Int32Array;
}

export interface PackedEntries {
  readonly v4: PackedFamily;
  readonly v6: PackedFamily;
}

/** Largest value an entry may carry (values live in an Int32Array, -1 means no match). */
export const MAX_TABLE_VALUE = 0x7fffffff;

/** Copies and checks the entries; throws a TypeError or RangeError naming the entry's index. */
export function packEntries(entries: Iterable<TableEntry>): PackedEntries {
  const list: readonly TableEntry[] = Array.isArray(entries) ? entries : Array.from(entries);
  let v4Count = 0;
  for (const entry of list) if (entry.range.family === 4) v4Count++;
  const v4 = allocateFamily(v4Count, 1);
  const v6 = allocateFamily(list.length - v4Count, 4);
  let v4Next = 0;
  let v6Next = 0;
  for (let index = 0; index < list.length; index++) {
    const { range, value } = list[index] as TableEntry;
    if (!Number.isInteger(value) || value < 0 || value > MAX_TABLE_VALUE) {
      throw new RangeError(`table entry ${index}: value ${String(value)} is not an integer in 0..${MAX_TABLE_VALUE}`);
    }
    const { family, start, end } = range;
    const bytes = family === 4 ? 4 : family === 6 ? 16 : 0;
    if (bytes === 0 || start.length !== bytes || end.length !== bytes) {
      throw new TypeError(`table entry ${index}: range is not ${bytes === 0 ? 'IPv4 or IPv6' : `${bytes} bytes`} (family ${String(family)})`);
    }
    const packed = bytes === 4 ? v4 : v6;
    const id = bytes === 4 ? v4Next++ : v6Next++;
    const w = bytes >> 2;
    for (let k = 0; k < w; k++) {
      packed.starts[id * w + k] = readWord(start, k * 4);
      packed.ends[id * w + k] = readWord(end, k * 4);
    }
    if (compareWords(packed.starts, id * w, packed.ends, id * w, w) > 0) {
      throw new RangeError(`table entry ${index}: range ends before it starts (${formatAddress(start)}-${formatAddress(end)})`);
    }
    packed.values[id] = value;
  }
  return { v4, v6 };
}

/** The buffers of packed entries, to transfer them to a worker thread. */
export function packedTransferList(packed: PackedEntries): ArrayBuffer[] {
  return familyBuffers(packed.v4).concat(familyBuffers(packed.v6));
}

/** The buffers of a family's arrays (each array owns its buffer here). */
export function familyBuffers(family: PackedFamily): ArrayBuffer[] {
  return [family.starts.buffer as ArrayBuffer, family.ends.buffer as ArrayBuffer, family.values.buffer as ArrayBuffer];
}

/** The table of packed entries: flattened into intervals, then records and indexes (records.ts; `shared`: see tableData). */
export function flattenEntries(packed: PackedEntries, shared = false): IntervalTableData {
  return tableData(packed.v4.values.length + packed.v6.values.length, flattenFamily(packed.v4, 1), flattenFamily(packed.v6, 4), shared);
}

function allocateFamily(count: number, w: number): PackedFamily {
  return { starts: new Uint32Array(count * w), ends: new Uint32Array(count * w), values: new Int32Array(count) };
}

/**
 * The sweep: entries sorted by start are opened in turn into a min-heap of
 * their specificity ranks (smallest range first, then latest entry), so the
 * top is the entry that answers; entries that have ended are dropped lazily
 * when they reach the top. Between two events (an entry opening, the top
 * entry ending) the answer is the top entry's value. Each entry is pushed and
 * popped once: O(n log n), and the sorts are linear.
 */
function flattenFamily(family: PackedFamily, w: number): FamilyIntervals {
  const n = family.values.length;
  // The entries in start order (position p), so the sweep reads memory in sequence.
  const byStart = sortIds(family.starts, w, identity(n));
  const starts = new Uint32Array(n * w);
  const ends = new Uint32Array(n * w);
  const values = new Int32Array(n);
  const positionOf = new Uint32Array(n);
  for (let p = 0; p < n; p++) {
    const id = byStart[p] as number;
    positionOf[id] = p;
    for (let k = 0; k < w; k++) {
      starts[p * w + k] = family.starts[id * w + k] as number;
      ends[p * w + k] = family.ends[id * w + k] as number;
    }
    values[p] = family.values[id] as number;
  }

  // Specificity rank: smallest range first, then the latest entry. The sort
  // is stable, so it starts from the positions listed by descending entry.
  const sizes = new Uint32Array(n * w); // end - start
  for (let p = 0; p < n; p++) {
    let borrow = 0;
    for (let k = w - 1; k >= 0; k--) {
      const at = p * w + k;
      const d = (ends[at] as number) - (starts[at] as number) - borrow;
      borrow = d < 0 ? 1 : 0;
      sizes[at] = d >>> 0;
    }
  }
  const latestFirst = new Uint32Array(n);
  for (let k = 0; k < n; k++) latestFirst[k] = positionOf[n - 1 - k] as number;
  const byRank = sortIds(sizes, w, latestFirst);
  const rank = new Uint32Array(n);
  for (let r = 0; r < n; r++) rank[byRank[r] as number] = r;

  const heap = new Uint32Array(n);
  let heapLength = 0;

  // At most one interval per push and one per pop.
  const outStarts = new Uint32Array(2 * n * w);
  const outEnds = new Uint32Array(2 * n * w);
  const outValues = new Int32Array(2 * n);
  let out = 0;

  const cursor = new Uint32Array(w); // first address not yet covered by an output interval
  const segmentEnd = new Uint32Array(w);
  let contiguous = false; // cursor is just after the last output interval
  let next = 0; // position of the next entry to open
  for (;;) {
    if (heapLength === 0) {
      if (next === n) break;
      const at = next * w;
      for (let k = 0; k < w; k++) cursor[k] = starts[at + k] as number;
      contiguous = false;
    }
    // Open the entries starting here.
    while (next < n && compareWords(starts, next * w, cursor, 0, w) <= 0) {
      const r = rank[next++] as number;
      let i = heapLength++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        const p = heap[parent] as number;
        if (p < r) break;
        heap[i] = p;
        i = parent;
      }
      heap[i] = r;
    }
    // Drop the entries that ended before here.
    while (heapLength > 0 && compareWords(ends, (byRank[heap[0] as number] as number) * w, cursor, 0, w) < 0) {
      const last = heap[--heapLength] as number;
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= heapLength) break;
        if (child + 1 < heapLength && (heap[child + 1] as number) < (heap[child] as number)) child++;
        const c = heap[child] as number;
        if (last < c) break;
        heap[i] = c;
        i = child;
      }
      heap[i] = last;
    }
    if (heapLength === 0) continue;

    const top = byRank[heap[0] as number] as number;
    if (next < n && compareWords(starts, next * w, ends, top * w, w) <= 0) {
      // The next entry opens inside the top one: this interval stops just before it.
      const at = next * w;
      let borrow = 1;
      for (let k = w - 1; k >= 0; k--) {
        const d = (starts[at + k] as number) - borrow;
        borrow = d < 0 ? 1 : 0;
        segmentEnd[k] = d >>> 0;
      }
    } else {
      for (let k = 0; k < w; k++) segmentEnd[k] = ends[top * w + k] as number;
    }

    const value = values[top] as number;
    if (!contiguous || outValues[out - 1] !== value) {
      for (let k = 0; k < w; k++) outStarts[out * w + k] = cursor[k] as number;
      outValues[out++] = value;
    }
    for (let k = 0; k < w; k++) outEnds[(out - 1) * w + k] = segmentEnd[k] as number;

    // cursor = segmentEnd + 1, unless that is past the family's last address.
    if (!nextWords(segmentEnd, cursor, w)) break;
    contiguous = true;
  }
  return { starts: outStarts.slice(0, out * w), ends: outEnds.slice(0, out * w), values: outValues.slice(0, out) };
}

function identity(n: number): Uint32Array {
  const ids = new Uint32Array(n);
  for (let k = 0; k < n; k++) ids[k] = k;
  return ids;
}

/**
 * `ids` reordered by their `w`-word keys, ascending, keeping the given order
 * among equal keys: LSD radix sort on 16-bit digits (stable), skipping digits
 * all keys share. May reuse `ids` as scratch.
 */
function sortIds(keys: Uint32Array, w: number, ids: Uint32Array): Uint32Array {
  const n = ids.length;
  let order: Uint32Array = ids;
  if (n < 2) return order;
  let spare: Uint32Array = new Uint32Array(n);
  const counts = new Uint32Array(0x10000);
  for (let word = w - 1; word >= 0; word--) {
    for (let shift = 0; shift <= 16; shift += 16) {
      counts.fill(0);
      for (let id = 0; id < n; id++) {
        const digit = ((keys[id * w + word] as number) >>> shift) & 0xffff;
        counts[digit] = (counts[digit] as number) + 1;
      }
      if (counts[((keys[word] as number) >>> shift) & 0xffff] === n) continue;
      // Counts become each digit's first position.
      let first = 0;
      for (let d = 0; d < 0x10000; d++) {
        const c = counts[d] as number;
        counts[d] = first;
        first += c;
      }
      for (let k = 0; k < n; k++) {
        const id = order[k] as number;
        const digit = ((keys[id * w + word] as number) >>> shift) & 0xffff;
        const position = counts[digit] as number;
        counts[digit] = position + 1;
        spare[position] = id;
      }
      const sorted = spare;
      spare = order;
      order = sorted;
    }
  }
  return order;
}
