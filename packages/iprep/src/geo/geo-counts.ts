/**
 * Messages by country and by ASN, for /metrics and the status page: one array slot per label of
 * the tables in service (a counter per message, no allocation), folded into totals by name when
 * the tables change. Only the most seen are shown, and the totals kept are bounded.
 */
import type { GeoCount } from '../admin/status.js';
import type { GeoMatcher } from './geo-matcher.js';
import type { GeoTable } from './geo-table.js';

export type { GeoCount };

/** Names kept in the totals of older tables; the least seen go first. */
const MAX_FOLDED = 10_000;

export class GeoCounts {
  #generation = -1;
  #countries = new Float64Array(0);
  #asns = new Float64Array(0);
  /** The tables the arrays count labels of (the matcher's change under it on a reload). */
  #countryTable: GeoTable | undefined;
  #asnTable: GeoTable | undefined;
  readonly #folded = { country: new Map<string, number>(), asn: new Map<string, number>() };
  readonly #names = new Map<string, string>();

  /** Counts the address `geo` located last. */
  count(geo: GeoMatcher): void {
    if (geo.generation !== this.#generation) this.#renew(geo);
    if (geo.country >= 0) this.#countries[geo.country] = (this.#countries[geo.country] as number) + 1;
    if (geo.asn >= 0) this.#asns[geo.asn] = (this.#asns[geo.asn] as number) + 1;
  }

  /** The `n` most seen countries or ASNs since start, most seen first. */
  top(kind: 'country' | 'asn', n: number): GeoCount[] {
    const totals = new Map(this.#folded[kind]);
    const counts = kind === 'country' ? this.#countries : this.#asns;
    const table = kind === 'country' ? this.#countryTable : this.#asnTable;
    if (table !== undefined) {
      for (let label = 0; label < counts.length; label++) {
        const count = counts[label] as number;
        if (count === 0) continue;
        const value = table.text(label);
        totals.set(value, (totals.get(value) ?? 0) + count);
      }
    }
    return [...totals]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, n)
      .map(([value, count]) => {
        const name = kind === 'asn' ? this.#nameOf(value) : '';
        return name === '' ? { value, count } : { value, count, name };
      });
  }

  #nameOf(value: string): string {
    const known = this.#names.get(value);
    if (known !== undefined) return known;
    const table = this.#asnTable;
    const label = table === undefined ? -1 : table.labelOfAsn(Number(value.slice(2)));
    return label < 0 || table === undefined ? '' : table.name(label);
  }

  #renew(geo: GeoMatcher): void {
    this.#fold('country', this.#countries, this.#countryTable);
    this.#fold('asn', this.#asns, this.#asnTable);
    this.#generation = geo.generation;
    this.#countryTable = geo.countryTable;
    this.#asnTable = geo.asnTable;
    this.#countries = new Float64Array(geo.countryTable?.labelCount ?? 0);
    this.#asns = new Float64Array(geo.asnTable?.labelCount ?? 0);
  }

  #fold(kind: 'country' | 'asn', counts: Float64Array, table: { text(label: number): string; name(label: number): string } | undefined): void {
    if (table === undefined) return;
    const totals = this.#folded[kind];
    for (let label = 0; label < counts.length; label++) {
      const count = counts[label] as number;
      if (count === 0) continue;
      const value = table.text(label);
      totals.set(value, (totals.get(value) ?? 0) + count);
      if (kind === 'asn' && this.#names.size < MAX_FOLDED) {
        const name = table.name(label);
        if (name !== '') this.#names.set(value, name);
      }
    }
    if (totals.size > MAX_FOLDED) {
      const kept = [...totals].sort((a, b) => b[1] - a[1]).slice(0, MAX_FOLDED);
      totals.clear();
      for (const [value, count] of kept) totals.set(value, count);
    }
  }
}
