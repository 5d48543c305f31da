/**
 * Compiles a MaxMind DB file (GeoLite2, DB-IP, IPinfo, ip-location-db `.mmdb`) into the engine's own
 * interval table: every network of the search tree, in address order, with the index of its country
 * or AS number as value. Lookups are then the table's binary search over typed arrays, with no
 * allocation and no per-address cache; the file is walked once, in a worker thread (geo-job.ts).
 *
 * The tree is walked here; each distinct data record is decoded once by mmdb-lib's reader (the
 * decoder of the `maxmind` package), at the first address that points to it.
 */
import { Reader } from 'mmdb-lib';
import { formatAddress } from '../net/address.js';
import { type FamilyIntervals, type IntervalTableData, intervalTableTransferList } from '../table/interval-table.js';
import { tableData } from '../table/records.js';

export const GEO_KINDS = ['country', 'asn'] as const;
export type GeoKind = (typeof GEO_KINDS)[number];

/** A compiled database: plain data and typed arrays, transferred from the worker thread. */
export interface GeoTableData {
  readonly kind: GeoKind;
  /** The file's `database_type` (`GeoLite2-Country`, `DBIP-ASN-Lite`, ...). */
  readonly databaseType: string;
  /** When the file was built (ms since the epoch). */
  readonly builtAt: number;
  /** The table's values index `labels`. */
  readonly table: IntervalTableData;
  /** Per label: a country code packed as two char codes (`(c0 << 8) | c1`), or an AS number. */
  readonly labels: Uint32Array;
  /** ASN databases: label i's organisation is names[nameOffsets[i] .. nameOffsets[i + 1]) in UTF-8; empty otherwise. */
  readonly nameOffsets: Uint32Array;
  readonly nameBytes: Uint8Array;
}

export interface MmdbLimits {
  /** Most intervals the table may hold (networks after merging neighbours of the same value). */
  readonly maxNetworks: number;
}

/** Most distinct countries or AS numbers a database may name (there are about 120,000 ASNs in use). */
export const MAX_GEO_LABELS = 1 << 20;

/** Longest organisation name kept. */
const MAX_NAME_LENGTH = 120;

/** A database that cannot be used; the message names the file. */
export class MmdbError extends Error {
  override readonly name = 'MmdbError';
}

export function geoTableTransferList(data: GeoTableData): ArrayBuffer[] {
  return intervalTableTransferList(data.table).concat([data.labels, data.nameOffsets, data.nameBytes].map((array) => array.buffer as ArrayBuffer));
}

/** Compiles `db` (the whole file) as a database of `kind`; throws an MmdbError naming `origin` when it cannot be used. */
export function compileMmdb(db: Buffer, kind: GeoKind, origin: string, limits: MmdbLimits): GeoTableData {
  let reader: Reader<Record<string, unknown>>;
  try {
    reader = new Reader<Record<string, unknown>>(db);
  } catch (err) {
    throw new MmdbError(`${origin}: not a MaxMind DB file (${(err as Error).message})`);
  }
  const meta = reader.metadata;
  const { nodeCount, recordSize, ipVersion, searchTreeSize, nodeByteSize } = meta;
  if (![24, 28, 32].includes(recordSize)) throw new MmdbError(`${origin}: unsupported record size ${recordSize}`);
  if (ipVersion !== 4 && ipVersion !== 6) throw new MmdbError(`${origin}: unsupported ip_version ${ipVersion}`);
  const dataEnd = db.lastIndexOf(METADATA_MARKER);
  if (!Number.isInteger(nodeCount) || nodeCount <= 0 || searchTreeSize + 16 > dataEnd) {
    throw new MmdbError(`${origin}: truncated or corrupt: a search tree of ${nodeCount} nodes does not fit in ${db.length} bytes`);
  }
  const walker = new TreeWalker(db, reader, kind, origin, limits, { nodeCount, recordSize, nodeByteSize, ipVersion, searchTreeSize, dataEnd });
  walker.walk();
  if (walker.labelCount === 0) {
    throw new MmdbError(`${origin}: no ${kind === 'country' ? 'country code' : 'AS number'} in its ${walker.records} records: is it a ${kind} database?`);
  }
  return {
    kind,
    databaseType: String(meta.databaseType ?? ''),
    builtAt: meta.buildEpoch instanceof Date ? meta.buildEpoch.getTime() : 0,
    table: tableData(walker.networks, walker.v4.finish(), walker.v6.finish()),
    ...walker.labels(),
  };
}

const METADATA_MARKER = Buffer.from([0xab, 0xcd, 0xef, ...Buffer.from('MaxMind.com')]);

interface TreeShape {
  readonly nodeCount: number;
  readonly recordSize: number;
  readonly nodeByteSize: number;
  readonly ipVersion: 4 | 6;
  readonly searchTreeSize: number;
  /** Where the data section ends (the metadata marker). */
  readonly dataEnd: number;
}

/** Pointers to data records without a usable label. */
const NO_LABEL = -1;

class TreeWalker {
  readonly v4 = new IntervalBuilder(1);
  readonly v6 = new IntervalBuilder(4);
  /** Data networks met (before merging). */
  networks = 0;
  /** Distinct data records decoded. */
  records = 0;
  readonly #db: Buffer;
  readonly #reader: Reader<Record<string, unknown>>;
  readonly #kind: GeoKind;
  readonly #origin: string;
  readonly #limits: MmdbLimits;
  readonly #shape: TreeShape;
  readonly #ipv4Start: number;
  /** The address bits of the node being walked (IPv4 databases use the first word only). */
  readonly #path = new Uint32Array(4);
  /** Label index by data pointer. */
  readonly #byPointer = new Map<number, number>();
  /** Label index by label value (equal countries from different records share one). */
  readonly #byValue = new Map<number, number>();
  readonly #labelValues: number[] = [];
  readonly #names: string[] = [];
  #visits = 0;

  constructor(db: Buffer, reader: Reader<Record<string, unknown>>, kind: GeoKind, origin: string, limits: MmdbLimits, shape: TreeShape) {
    this.#db = db;
    this.#reader = reader;
    this.#kind = kind;
    this.#origin = origin;
    this.#limits = limits;
    this.#shape = shape;
    this.#ipv4Start = shape.ipVersion === 6 ? this.#findIpv4Start() : 0;
  }

  get labelCount(): number {
    return this.#labelValues.length;
  }

  walk(): void {
    this.#node(0, 0);
  }

  labels(): Pick<GeoTableData, 'labels' | 'nameOffsets' | 'nameBytes'> {
    const labels = Uint32Array.from(this.#labelValues);
    if (this.#kind !== 'asn') return { labels, nameOffsets: new Uint32Array(0), nameBytes: new Uint8Array(0) };
    const encoder = new TextEncoder();
    const encoded = this.#names.map((name) => encoder.encode(name));
    const nameOffsets = new Uint32Array(encoded.length + 1);
    let total = 0;
    encoded.forEach((bytes, i) => {
      total += bytes.length;
      nameOffsets[i + 1] = total;
    });
    const nameBytes = new Uint8Array(total);
    encoded.forEach((bytes, i) => nameBytes.set(bytes, nameOffsets[i] as number));
    return { labels, nameOffsets, nameBytes };
  }

  #node(node: number, depth: number): void {
    const { nodeByteSize, nodeCount, searchTreeSize } = this.#shape;
    // A valid tree reaches each node once (aliases of the IPv4 subtree are skipped): more is a loop.
    if (++this.#visits > nodeCount) throw new MmdbError(`${this.#origin}: corrupt search tree (a node is reached twice)`);
    const offset = node * nodeByteSize;
    if (offset + nodeByteSize > searchTreeSize) throw new MmdbError(`${this.#origin}: corrupt search tree (node ${node} out of bounds)`);
    const bits = this.#shape.ipVersion === 4 ? 32 : 128;
    if (depth >= bits) throw new MmdbError(`${this.#origin}: corrupt search tree (deeper than ${bits} bits)`);
    this.#record(this.#left(offset), depth + 1);
    setBit(this.#path, depth);
    this.#record(this.#right(offset), depth + 1);
    clearBit(this.#path, depth);
  }

  /** A record reached with `depth` bits of address fixed. */
  #record(record: number, depth: number): void {
    const { nodeCount } = this.#shape;
    if (record === nodeCount) return; // no data
    if (record < nodeCount) {
      // IPv6 databases point ::ffff:0:0/96 and 2002::/16 at the IPv4 subtree too; IPv4 addresses are looked up as such.
      if (record === this.#ipv4Start && this.#shape.ipVersion === 6 && !(depth === 96 && this.#underIpv4(96))) return;
      this.#node(record, depth);
      return;
    }
    this.#data(record, depth);
  }

  #data(record: number, depth: number): void {
    const { nodeCount, searchTreeSize, dataEnd } = this.#shape;
    const at = record - nodeCount + searchTreeSize;
    if (at >= dataEnd) throw new MmdbError(`${this.#origin}: corrupt search tree (a data pointer past the data section)`);
    const label = this.#labelOf(record, depth);
    if (label === NO_LABEL) return;
    this.networks++;
    const path = this.#path;
    if (this.#shape.ipVersion === 4) {
      this.#addV4(path[0] as number, depth, label);
    } else if (this.#underIpv4(Math.min(depth, 96))) {
      // ::/96 holds the IPv4 addresses; a record covering all of it covers all of IPv4 as well.
      this.#addV4(path[3] as number, Math.max(0, depth - 96), label);
      if (depth < 96) this.v6.add(path, depth, label, this.#limits.maxNetworks, this.#origin);
    } else {
      this.v6.add(path, depth, label, this.#limits.maxNetworks, this.#origin);
    }
  }

  #addV4(word: number, length: number, label: number): void {
    this.#path4[0] = word;
    this.v4.add(this.#path4, length, label, this.#limits.maxNetworks, this.#origin);
  }

  readonly #path4 = new Uint32Array(1);

  /** Whether the first `bits` bits of the path are zero (the path is inside ::/bits). */
  #underIpv4(bits: number): boolean {
    const path = this.#path;
    for (let w = 0; w * 32 < bits; w++) {
      const used = Math.min(32, bits - w * 32);
      const mask = used === 32 ? 0xffffffff : ~(0xffffffff >>> used) >>> 0;
      if (((path[w] as number) & mask) !== 0) return false;
    }
    return true;
  }

  #labelOf(record: number, depth: number): number {
    const known = this.#byPointer.get(record);
    if (known !== undefined) return known;
    this.records++;
    let value: unknown;
    const address = this.#addressText(depth);
    try {
      value = this.#reader.get(address);
    } catch (err) {
      const length = this.#shape.ipVersion === 6 && address.includes('.') ? depth - 96 : depth;
      throw new MmdbError(`${this.#origin}: corrupt data record for ${address}/${length} (${(err as Error).message})`);
    }
    const label = this.#kind === 'country' ? this.#countryLabel(value) : this.#asnLabel(value);
    this.#byPointer.set(record, label);
    return label;
  }

  #countryLabel(value: unknown): number {
    const code = countryCodeOf(value);
    if (code === undefined) return NO_LABEL;
    return this.#intern((code.charCodeAt(0) << 8) | code.charCodeAt(1), '');
  }

  #asnLabel(value: unknown): number {
    const asn = asnOf(value);
    if (asn === undefined) return NO_LABEL;
    return this.#intern(asn, organisationOf(value));
  }

  #intern(value: number, name: string): number {
    const known = this.#byValue.get(value);
    if (known !== undefined) return known;
    const index = this.#labelValues.length;
    if (index >= MAX_GEO_LABELS) throw new MmdbError(`${this.#origin}: more than ${MAX_GEO_LABELS} distinct ${this.#kind} values`);
    this.#labelValues.push(value);
    this.#names.push(name);
    this.#byValue.set(value, index);
    return index;
  }

  /** The first address of the network being walked, as text (what the reader looks up). */
  #addressText(depth: number): string {
    const path = this.#path;
    if (this.#shape.ipVersion === 4 || (depth >= 96 && this.#underIpv4(96))) {
      const word = this.#shape.ipVersion === 4 ? (path[0] as number) : (path[3] as number);
      return `${word >>> 24}.${(word >>> 16) & 255}.${(word >>> 8) & 255}.${word & 255}`;
    }
    const bytes = new Uint8Array(16);
    for (let w = 0; w < 4; w++) new DataView(bytes.buffer).setUint32(w * 4, path[w] as number);
    return formatAddress(bytes);
  }

  #findIpv4Start(): number {
    const { nodeCount, nodeByteSize, searchTreeSize } = this.#shape;
    let node = 0;
    for (let i = 0; i < 96 && node < nodeCount; i++) {
      const offset = node * nodeByteSize;
      if (offset + nodeByteSize > searchTreeSize) throw new MmdbError(`${this.#origin}: corrupt search tree (node ${node} out of bounds)`);
      node = this.#left(offset);
    }
    return node;
  }

  #left(offset: number): number {
    const db = this.#db;
    switch (this.#shape.recordSize) {
      case 24:
        return db.readUIntBE(offset, 3);
      case 28:
        return (((db[offset + 3] as number) & 0xf0) << 20) | db.readUIntBE(offset, 3);
      default:
        return db.readUInt32BE(offset);
    }
  }

  #right(offset: number): number {
    const db = this.#db;
    switch (this.#shape.recordSize) {
      case 24:
        return db.readUIntBE(offset + 3, 3);
      case 28:
        return (((db[offset + 3] as number) & 0x0f) << 24) | db.readUIntBE(offset + 4, 3);
      default:
        return db.readUInt32BE(offset + 4);
    }
  }
}

function setBit(path: Uint32Array, bit: number): void {
  path[bit >> 5] = ((path[bit >> 5] as number) | (0x80000000 >>> (bit & 31))) >>> 0;
}

function clearBit(path: Uint32Array, bit: number): void {
  path[bit >> 5] = ((path[bit >> 5] as number) & ~(0x80000000 >>> (bit & 31))) >>> 0;
}

/** Sorted, disjoint intervals as the walk finds them (in address order); neighbours of one value merge. */
class IntervalBuilder {
  #count = 0;
  #starts: Uint32Array;
  #ends: Uint32Array;
  #values: Int32Array;
  readonly #w: number;

  constructor(words: 1 | 4) {
    this.#w = words;
    this.#starts = new Uint32Array(1024 * words);
    this.#ends = new Uint32Array(1024 * words);
    this.#values = new Int32Array(1024);
  }

  /** The network of the first `length` bits of `path` (1 or 4 words). */
  add(path: Uint32Array, length: number, value: number, max: number, origin: string): void {
    const w = this.#w;
    const n = this.#count;
    if (n > 0 && this.#values[n - 1] === value && this.#follows(path, length)) {
      this.#setEnd(n - 1, path, length);
      return;
    }
    if (n >= max) throw new MmdbError(`${origin}: more than ${max} networks (max-entries)`);
    if ((n + 1) * w > this.#starts.length) {
      this.#starts = grow(this.#starts);
      this.#ends = grow(this.#ends);
      this.#values = grow(this.#values);
    }
    for (let k = 0; k < w; k++) this.#starts[n * w + k] = masked(path[k] as number, length - k * 32);
    this.#setEnd(n, path, length);
    this.#values[n] = value;
    this.#count = n + 1;
  }

  finish(): FamilyIntervals {
    const n = this.#count;
    const w = this.#w;
    return { starts: this.#starts.slice(0, n * w), ends: this.#ends.slice(0, n * w), values: this.#values.slice(0, n) };
  }

  #setEnd(i: number, path: Uint32Array, length: number): void {
    const w = this.#w;
    for (let k = 0; k < w; k++) {
      const used = length - k * 32;
      this.#ends[i * w + k] = (masked(path[k] as number, used) | hostBits(used)) >>> 0;
    }
  }

  /** Whether the network starts right after the last interval's end. */
  #follows(path: Uint32Array, length: number): boolean {
    const w = this.#w;
    const last = (this.#count - 1) * w;
    // end + 1 == start, word by word from the right with a carry.
    let carry = 1;
    for (let k = w - 1; k >= 0; k--) {
      const next = (this.#ends[last + k] as number) + carry;
      const start = masked(path[k] as number, length - k * 32);
      if (next >>> 0 !== start) return false;
      carry = next > 0xffffffff ? 1 : 0;
    }
    return carry === 0;
  }
}

/** `word` with only its first `used` bits (clamped to 0..32) kept. */
function masked(word: number, used: number): number {
  if (used >= 32) return word >>> 0;
  if (used <= 0) return 0;
  return (word & ~(0xffffffff >>> used)) >>> 0;
}

/** The host part of a word whose first `used` bits are the network's. */
function hostBits(used: number): number {
  if (used >= 32) return 0;
  if (used <= 0) return 0xffffffff;
  return 0xffffffff >>> used;
}

function grow<T extends Uint32Array | Int32Array>(array: T): T {
  const grown = new (array.constructor as new (length: number) => T)(array.length * 2);
  grown.set(array);
  return grown;
}

// ---------------------------------------------------------------------------
// What the databases call their fields

function field(value: unknown, ...path: string[]): unknown {
  let at = value;
  for (const key of path) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/** GeoLite2 / DB-IP `country.iso_code` (else `registered_country`), ip-location-db and IPinfo `country_code`, or a `country` string. */
export function countryCodeOf(value: unknown): string | undefined {
  for (const candidate of [
    field(value, 'country', 'iso_code'),
    field(value, 'country_code'),
    field(value, 'country'),
    field(value, 'registered_country', 'iso_code'),
  ]) {
    if (typeof candidate === 'string' && /^[A-Za-z]{2}$/.test(candidate)) return candidate.toUpperCase();
  }
  return undefined;
}

/** GeoLite2 / DB-IP `autonomous_system_number`, or `asn` as a number or `AS64496` (IPinfo). */
export function asnOf(value: unknown): number | undefined {
  for (const candidate of [field(value, 'autonomous_system_number'), field(value, 'asn')]) {
    const asn = typeof candidate === 'string' ? Number(/^(?:AS)?(\d{1,10})$/i.exec(candidate)?.[1]) : candidate;
    if (typeof asn === 'number' && Number.isInteger(asn) && asn > 0 && asn <= 0xffffffff) return asn;
  }
  return undefined;
}

function organisationOf(value: unknown): string {
  for (const candidate of [field(value, 'autonomous_system_organization'), field(value, 'as_name'), field(value, 'as_org'), field(value, 'org')]) {
    if (typeof candidate === 'string') return candidate.slice(0, MAX_NAME_LENGTH);
  }
  return '';
}
