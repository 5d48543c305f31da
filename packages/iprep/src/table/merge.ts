/**
 * Merging interval tables into one: for every address, which of the tables cover it and with
 * which key (a small number per table value, such as a list entry's own score). A sweep over the
 * boundaries of the tables' records (sorted, disjoint intervals per family: layout.ts) cuts the
 * address space into segments on which every table's answer is constant; each distinct tuple of
 * answers is interned into a combination id, and adjacent segments with the same id merge. The
 * result is a table whose value is the combination id, and the combinations' tuples: one lookup
 * answers for every table at once.
 *
 * Generic over tables: what a combination means is the caller's (engine/combined.ts).
 */
import { runWorkerJob } from './compile.js';
import type { FamilyRecords, IntervalTableData } from './layout.js';
import { recordsIndex } from './records.js';
import { isShared, transferableBuffers } from './shared.js';
import { compareWords, nextWords } from './words.js';

/** The key of a table value beyond its keys array: the table covers the address, with nothing more to say. */
export const NO_KEY = 255;
/** A combination's entry for a table that does not cover the address. */
export const ABSENT = -1;

/** One table of a merge: its records by family (indexes are not needed) and its values' keys. */
export interface MergeSource {
  readonly v4: Uint32Array;
  readonly v6: Uint32Array;
  /** keys[value] (0..255) for a record of that value; NO_KEY for values past its end. */
  readonly keys: Uint8Array;
}

export interface MergeJob {
  readonly sources: readonly MergeSource[];
  /** Distinct combinations allowed; one more and the merge gives up. */
  readonly maxCombinations: number;
}

export type MergeResult =
  | {
      readonly ok: true;
      /** Values are combination ids. */
      readonly table: IntervalTableData;
      /** Combination c's entry for source k: combinations[c * sources + k], a key or ABSENT. */
      readonly combinations: Int16Array;
    }
  | { readonly ok: false; readonly error: string; readonly tooMany: boolean };

/** A merge job over tables (their records are referenced, not copied). */
export function mergeJob(tables: readonly { readonly table: IntervalTableData; readonly keys: Uint8Array }[], maxCombinations: number): MergeJob {
  return { sources: tables.map(({ table, keys }) => ({ v4: table.v4.records, v6: table.v6.records, keys })), maxCombinations };
}

/** Records in a merge job: what decides whether it is worth a thread. */
export function mergeJobRecords(job: MergeJob): number {
  let records = 0;
  for (const source of job.sources) records += source.v4.length / 3 + source.v6.length / 9;
  return records;
}

/** Bytes of the job's arrays that posting it to a thread would copy: those not in SharedArrayBuffers. */
export function sharedBytesMissing(job: MergeJob): number {
  let bytes = 0;
  for (const source of job.sources) for (const array of [source.v4, source.v6, source.keys]) if (!isShared(array)) bytes += array.byteLength;
  return bytes;
}

/** The merge, on the calling thread. */
export function mergeTables(job: MergeJob): MergeResult {
  const combinations = new Combinations(job.sources.length, job.maxCombinations);
  const keys = job.sources.map((source) => source.keys);
  const v4Records = job.sources.map((source) => source.v4);
  const v6Records = job.sources.map((source) => source.v6);
  const v4 = mergeFamily(v4Records, keys, 1, combinations);
  const v6 = v4 === null ? null : mergeFamily(v6Records, keys, 4, combinations);
  if (v4 === null || v6 === null) {
    return { ok: false, error: `more than ${job.maxCombinations} combinations`, tooMany: true };
  }
  const intervals = v4.records.length / 3 + v6.records.length / 9;
  return { ok: true, table: { size: intervals, intervals, v4, v6 }, combinations: combinations.tuples() };
}

/** Heap a merge thread may use: the combinations' maps; its typed arrays are sized by the tables, which are bounded. */
const MERGE_HEAP_MB = 1024;

export interface MergeInWorkerOptions {
  /** A thread still busy after this long is stopped: the result is then a failure. */
  readonly timeoutMs: number;
}

/** The merge in a worker thread. Shared records (SharedArrayBuffers) reach it without a copy; the result is transferred back. */
export function mergeTablesInWorker(job: MergeJob, options: MergeInWorkerOptions): Promise<MergeResult> {
  return runWorkerJob<MergeResult>(new URL('./merge-worker.js', import.meta.url), job, {
    thread: 'the merge thread',
    timeoutMs: options.timeoutMs,
    heapMb: MERGE_HEAP_MB,
    failed: (problem) => ({ ok: false, error: problem, tooMany: false }),
  });
}

/** The buffers to transfer with a result. */
export function mergeResultTransferList(result: MergeResult): ArrayBuffer[] {
  if (!result.ok) return [];
  const { v4, v6 } = result.table;
  return transferableBuffers([v4.records, v6.records, result.combinations, ...[v4.index, v6.index].filter((index) => index !== null)]);
}

/**
 * Interned tuples: a trie of numbers (one level per source) whose last level gives the
 * combination id. The last tuple is remembered: most segments change one source at a time,
 * and many repeat the tuple of a segment a few steps back.
 */
class Combinations {
  readonly #width: number;
  readonly #max: number;
  readonly #inner = new Map<number, number>();
  readonly #last = new Map<number, number>();
  #nodes = 1;
  #count = 0;
  #tuples: Int16Array;

  constructor(width: number, max: number) {
    this.#width = width;
    this.#max = max;
    this.#tuples = new Int16Array(Math.max(1, width) * 64);
  }

  /** The id of the tuple, or -1 when it would be one combination too many. */
  intern(tuple: Int16Array): number {
    const width = this.#width;
    let node = 0;
    for (let k = 0; k < width - 1; k++) {
      const code = node * 257 + (tuple[k] as number) + 1;
      let next = this.#inner.get(code);
      if (next === undefined) {
        next = this.#nodes++;
        this.#inner.set(code, next);
      }
      node = next;
    }
    const code = node * 257 + (tuple[width - 1] as number) + 1;
    const known = this.#last.get(code);
    if (known !== undefined) return known;
    if (this.#count === this.#max) return -1;
    const id = this.#count++;
    if ((id + 1) * width > this.#tuples.length) {
      const grown = new Int16Array(this.#tuples.length * 2);
      grown.set(this.#tuples);
      this.#tuples = grown;
    }
    this.#tuples.set(tuple, id * width);
    this.#last.set(code, id);
    return id;
  }

  tuples(): Int16Array {
    return this.#tuples.slice(0, this.#count * this.#width);
  }
}

/**
 * The sweep over one family (`w` words per address). Each source has a cursor on its first record
 * that does not end before the position; between the position and the nearest boundary ahead (a
 * covering record's end, or the start of the next one, minus one) every source's answer is
 * constant. Each step ends at a boundary: at most two steps per record. Null: too many
 * combinations.
 */
function mergeFamily(records: readonly Uint32Array[], keys: readonly Uint8Array[], w: number, combinations: Combinations): FamilyRecords | null {
  const width = records.length;
  const stride = 2 * w + 1;
  const counts = records.map((r) => r.length / stride);
  const total = counts.reduce((sum, n) => sum + n, 0);
  const cursor = new Int32Array(width);
  const state = new Int16Array(width);
  const previous = new Int16Array(width).fill(ABSENT);
  let previousId = -1;
  const position = new Uint32Array(w);
  const segmentEnd = new Uint32Array(w);
  const beforeStart = new Uint32Array(w);
  // The records made (start, end, value: layout.ts), grown by doubling: merged intervals are
  // usually far fewer than the 2 * total + 1 segments the boundaries could cut.
  let output = new Uint32Array(Math.min(2 * total + 1, 1024) * stride);
  let out = 0;
  let contiguous = false;

  /** Moves the position to the nearest start of a record ahead; false when there is none. */
  const jump = (): boolean => {
    let found = false;
    for (let k = 0; k < width; k++) {
      const c = cursor[k] as number;
      if (c >= (counts[k] as number)) continue;
      const r = records[k] as Uint32Array;
      if (!found || compareWords(r, c * stride, position, 0, w) < 0) {
        for (let i = 0; i < w; i++) position[i] = r[c * stride + i] as number;
        found = true;
      }
    }
    return found;
  };

  if (!jump()) return { records: new Uint32Array(0), index: null };
  for (;;) {
    let covered = false;
    let bounded = false;
    for (let k = 0; k < width; k++) {
      const c = cursor[k] as number;
      if (c >= (counts[k] as number)) {
        state[k] = ABSENT;
        continue;
      }
      const r = records[k] as Uint32Array;
      const at = c * stride;
      if (compareWords(r, at, position, 0, w) <= 0) {
        // Starts at or before the position, and (cursor) does not end before it: covers it.
        const value = r[at + 2 * w] as number;
        const sourceKeys = keys[k] as Uint8Array;
        state[k] = value < sourceKeys.length ? (sourceKeys[value] as number) : NO_KEY;
        covered = true;
        if (!bounded || compareWords(r, at + w, segmentEnd, 0, w) < 0) for (let i = 0; i < w; i++) segmentEnd[i] = r[at + w + i] as number;
      } else {
        state[k] = ABSENT;
        // The record starts after the position (so its start is not 0): the segment ends before it.
        let borrow = 1;
        for (let i = w - 1; i >= 0; i--) {
          const d = (r[at + i] as number) - borrow;
          borrow = d < 0 ? 1 : 0;
          beforeStart[i] = d >>> 0;
        }
        if (!bounded || compareWords(beforeStart, 0, segmentEnd, 0, w) < 0) segmentEnd.set(beforeStart);
      }
      bounded = true;
    }
    if (!covered) {
      contiguous = false;
      if (!jump()) break;
      continue;
    }

    let same = previousId >= 0;
    for (let k = 0; same && k < width; k++) same = state[k] === previous[k];
    const id = same ? previousId : combinations.intern(state);
    if (id < 0) return null;
    previousId = id;
    previous.set(state);

    if (!contiguous || output[out * stride - 1] !== id) {
      if ((out + 1) * stride > output.length) {
        const grown = new Uint32Array(output.length * 2);
        grown.set(output);
        output = grown;
      }
      for (let i = 0; i < w; i++) output[out * stride + i] = position[i] as number;
      output[out * stride + 2 * w] = id;
      out++;
    }
    for (let i = 0; i < w; i++) output[(out - 1) * stride + w + i] = segmentEnd[i] as number;

    // position = segmentEnd + 1, unless that is past the family's last address.
    if (!nextWords(segmentEnd, position, w)) break;
    contiguous = true;
    // Cursors past the records that end before the new position.
    for (let k = 0; k < width; k++) {
      const r = records[k] as Uint32Array;
      const n = counts[k] as number;
      let c = cursor[k] as number;
      while (c < n && compareWords(r, c * stride + w, position, 0, w) < 0) c++;
      cursor[k] = c;
    }
  }
  const made = output.slice(0, out * stride);
  return { records: made, index: recordsIndex(made, w) };
}
