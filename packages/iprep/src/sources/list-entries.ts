/**
 * A list's entries as typed arrays: what the worker thread that parses a list sends back
 * (transferred, not copied), and what the engine reads on a hit. A million entries are a
 * few arrays, not a million objects for the main thread to receive and the GC to walk;
 * entry objects are only built on demand (explain, allowlist files).
 */
import type { IpRange } from '../net/address.js';
import type { PackedFamily } from '../table/flatten.js';
import { sharedUint8Copy, transferableBuffers } from '../table/shared.js';
import type { ListEntries, ListEntry } from '../types.js';
import type { EntrySink } from './formats.js';

/** Marks an entry without its own score in `scores`. */
const NO_SCORE = 255;

export interface PackedListData {
  readonly count: number;
  /** The entries' ranges by family, in entry order; `values` holds each one's entry index. */
  readonly v4: PackedFamily;
  readonly v6: PackedFamily;
  /** Per entry: its position in v4, or -1 - its position in v6. */
  readonly slots: Int32Array;
  /** Per entry: its own score (CSV lists), NO_SCORE without; empty when no entry has one. Shared (a SharedArrayBuffer), like the list's table. */
  readonly scores: Uint8Array;
  /** Entry i's note is noteBytes[noteOffsets[i] .. noteOffsets[i + 1]) in UTF-8; both empty when no entry has a note. */
  readonly noteOffsets: Uint32Array;
  readonly noteBytes: Uint8Array;
}

/** The buffers of packed entries, to transfer them between threads (each array owns its buffer). */
export function packedListTransferList(data: PackedListData): ArrayBuffer[] {
  return transferableBuffers([
    data.v4.starts,
    data.v4.ends,
    data.v4.values,
    data.v6.starts,
    data.v6.ends,
    data.v6.values,
    data.slots,
    data.scores,
    data.noteOffsets,
    data.noteBytes,
  ]);
}

/** Fills packed entries as a parser finds them (arrays grow by doubling, and are trimmed at the end). */
export class PackedListBuilder implements EntrySink {
  #count = 0;
  #v4 = 0;
  #v6 = 0;
  #v4Starts = new Uint32Array(256);
  #v4Ends = new Uint32Array(256);
  #v4Ids = new Int32Array(256);
  #v6Starts = new Uint32Array(256);
  #v6Ends = new Uint32Array(256);
  #v6Ids = new Int32Array(64);
  #slots = new Int32Array(256);
  #scores: Uint8Array | undefined;
  #noteOffsets: Uint32Array | undefined;
  #noteBytes: Uint8Array | undefined;
  #noteLength = 0;
  readonly #encoder = new TextEncoder();

  get length(): number {
    return this.#count;
  }

  add(range: IpRange, score: number | undefined, note: string | undefined): void {
    const id = this.#count++;
    this.#slots = fit(this.#slots, id + 1);
    if (range.family === 4) {
      const p = this.#v4++;
      this.#v4Starts = fit(this.#v4Starts, p + 1);
      this.#v4Ends = fit(this.#v4Ends, p + 1);
      this.#v4Ids = fit(this.#v4Ids, p + 1);
      this.#v4Starts[p] = word(range.start, 0);
      this.#v4Ends[p] = word(range.end, 0);
      this.#v4Ids[p] = id;
      this.#slots[id] = p;
    } else {
      const p = this.#v6++;
      this.#v6Starts = fit(this.#v6Starts, (p + 1) * 4);
      this.#v6Ends = fit(this.#v6Ends, (p + 1) * 4);
      this.#v6Ids = fit(this.#v6Ids, p + 1);
      for (let k = 0; k < 4; k++) {
        this.#v6Starts[p * 4 + k] = word(range.start, k * 4);
        this.#v6Ends[p * 4 + k] = word(range.end, k * 4);
      }
      this.#v6Ids[p] = id;
      this.#slots[id] = -1 - p;
    }
    if (score !== undefined || this.#scores !== undefined) {
      if (this.#scores === undefined) this.#scores = new Uint8Array(Math.max(256, id + 1)).fill(NO_SCORE);
      this.#scores = fit(this.#scores, id + 1, NO_SCORE);
      this.#scores[id] = score ?? NO_SCORE;
    }
    if (note || this.#noteOffsets !== undefined) {
      this.#noteOffsets = fit(this.#noteOffsets ?? new Uint32Array(256), id + 2);
      if (note) {
        this.#noteBytes = fit(this.#noteBytes ?? new Uint8Array(4096), this.#noteLength + note.length * 3);
        this.#noteLength += this.#encoder.encodeInto(note, this.#noteBytes.subarray(this.#noteLength)).written;
      }
      this.#noteOffsets[id + 1] = this.#noteLength;
    }
  }

  finish(): PackedListData {
    const n = this.#count;
    const notes = this.#noteOffsets;
    return {
      count: n,
      v4: { starts: this.#v4Starts.slice(0, this.#v4), ends: this.#v4Ends.slice(0, this.#v4), values: this.#v4Ids.slice(0, this.#v4) },
      v6: { starts: this.#v6Starts.slice(0, this.#v6 * 4), ends: this.#v6Ends.slice(0, this.#v6 * 4), values: this.#v6Ids.slice(0, this.#v6) },
      slots: this.#slots.slice(0, n),
      scores: sharedUint8Copy(this.#scores === undefined ? new Uint8Array(0) : this.#scores.subarray(0, n)),
      noteOffsets: notes === undefined ? new Uint32Array(0) : notes.slice(0, n + 1),
      noteBytes: this.#noteBytes === undefined ? new Uint8Array(0) : this.#noteBytes.slice(0, this.#noteLength),
    };
  }
}

/** Entries read from packed arrays; each entry object is built when asked for. */
export class PackedListEntries implements ListEntries {
  readonly #data: PackedListData;
  readonly #decoder = new TextDecoder();

  constructor(data: PackedListData) {
    this.#data = data;
  }

  /** Packs entry objects (lists built in code, tests). */
  static from(entries: Iterable<ListEntry>): PackedListEntries {
    const builder = new PackedListBuilder();
    for (const entry of entries) builder.add(entry.range, entry.score, entry.note);
    return new PackedListEntries(builder.finish());
  }

  get length(): number {
    return this.#data.count;
  }

  /** The arrays themselves (their ranges are what the list's table was compiled from). */
  get data(): PackedListData {
    return this.#data;
  }

  scoreAt(index: number): number {
    const score = this.#data.scores[index];
    return score === undefined || score === NO_SCORE ? -1 : score;
  }

  at(index: number): ListEntry | undefined {
    const data = this.#data;
    if (!Number.isInteger(index) || index < 0 || index >= data.count) return undefined;
    const slot = data.slots[index] as number;
    const range: IpRange =
      slot >= 0
        ? { family: 4, start: bytes(data.v4.starts, slot, 1), end: bytes(data.v4.ends, slot, 1) }
        : { family: 6, start: bytes(data.v6.starts, -1 - slot, 4), end: bytes(data.v6.ends, -1 - slot, 4) };
    const entry: { range: IpRange; score?: number; note?: string } = { range };
    const score = this.scoreAt(index);
    if (score >= 0) entry.score = score;
    if (data.noteOffsets.length > index + 1) {
      const from = data.noteOffsets[index] as number;
      const to = data.noteOffsets[index + 1] as number;
      if (to > from) entry.note = this.#decoder.decode(data.noteBytes.subarray(from, to));
    }
    return entry;
  }

  *[Symbol.iterator](): Iterator<ListEntry> {
    for (let i = 0; i < this.#data.count; i++) yield this.at(i) as ListEntry;
  }
}

/** `array` when it holds `needed` items, else a copy twice as large (new items set to `fill`). */
function fit<T extends Uint32Array | Int32Array | Uint8Array>(array: T, needed: number, fill = 0): T {
  if (needed <= array.length) return array;
  const grown = new (array.constructor as new (length: number) => T)(Math.max(needed, array.length * 2));
  grown.set(array);
  if (fill !== 0) grown.fill(fill, array.length);
  return grown;
}

function word(bytes: Uint8Array, at: number): number {
  return (((bytes[at] as number) << 24) | ((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number)) >>> 0;
}

function bytes(words: Uint32Array, position: number, w: number): Uint8Array {
  return readAddress(words, position, w, new Uint8Array(w * 4));
}

/** Writes the address at `position` of packed `words` (`w` words per address: 1 for IPv4, 4 for IPv6) into `out`, and returns it. */
export function readAddress(words: Uint32Array, position: number, w: number, out: Uint8Array): Uint8Array {
  for (let k = 0; k < w; k++) {
    const value = words[position * w + k] as number;
    out[k * 4] = value >>> 24;
    out[k * 4 + 1] = (value >>> 16) & 255;
    out[k * 4 + 2] = (value >>> 8) & 255;
    out[k * 4 + 3] = value & 255;
  }
  return out;
}
