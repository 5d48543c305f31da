/**
 * A compiled country or ASN database as the engine reads it: an address gives a label index (one
 * binary search, no allocation), and the label its country code or AS number. Country codes are
 * strings built once per label; organisation names are decoded on demand (explain, status).
 */
import { IntervalTable } from '../table/interval-table.js';
import type { GeoKind, GeoTableData } from './mmdb.js';

export class GeoTable {
  readonly kind: GeoKind;
  readonly databaseType: string;
  readonly builtAt: number;
  readonly table: IntervalTable;
  /** Per label: the country code (country databases only). */
  readonly #texts: readonly string[];
  readonly #labels: Uint32Array;
  readonly #nameOffsets: Uint32Array;
  readonly #nameBytes: Uint8Array;

  /** Wraps what compileMmdb made (in a worker thread of this process) without checking it again. */
  constructor(data: GeoTableData) {
    this.kind = data.kind;
    this.databaseType = data.databaseType;
    this.builtAt = data.builtAt;
    this.table = IntervalTable.fromFlattened(data.table);
    this.#labels = data.labels;
    this.#nameOffsets = data.nameOffsets;
    this.#nameBytes = data.nameBytes;
    // A few hundred country codes, built once; AS texts are built when asked (explain, metrics), not for 100,000 ASNs here.
    this.#texts = data.kind === 'country' ? Array.from(data.labels, (packed) => String.fromCharCode(packed >>> 8, packed & 255)) : [];
  }

  /** Distinct countries or AS numbers. */
  get labelCount(): number {
    return this.#labels.length;
  }

  /** The label index of the address (4 or 16 bytes), -1 when the database does not know it. */
  lookup(address: Uint8Array): number {
    return this.table.lookup(address);
  }

  /** `FR`, or `AS64496`. */
  text(label: number): string {
    if (this.kind === 'asn') return label >= 0 && label < this.#labels.length ? `AS${this.#labels[label]}` : '';
    return this.#texts[label] ?? '';
  }

  /** The AS number of a label of an ASN database (0 for none). */
  asn(label: number): number {
    return this.kind === 'asn' ? (this.#labels[label] ?? 0) : 0;
  }

  /** The label of an AS number, -1 when the database names no network of it. */
  labelOfAsn(asn: number): number {
    this.#asnIndex ??= new Map(Array.from(this.#labels, (value, label) => [value, label]));
    return this.#asnIndex.get(asn) ?? -1;
  }

  #asnIndex: Map<number, number> | undefined;

  /** The label of a country code, -1 when the database names none of it. */
  labelOfCountry(code: string): number {
    return this.kind === 'country' ? this.#texts.indexOf(code) : -1;
  }

  /** The organisation an ASN database gives the label ('' when none). */
  name(label: number): string {
    const offsets = this.#nameOffsets;
    if (label < 0 || label + 1 >= offsets.length) return '';
    return new TextDecoder().decode(this.#nameBytes.subarray(offsets[label], offsets[label + 1]));
  }
}
