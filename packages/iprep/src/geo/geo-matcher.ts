/**
 * The engine's geo part: locates an address in the country and ASN tables (two binary searches,
 * no allocation), then adds the matches of the rules by country and by ASN and of the ASN lists.
 * Matches are built once per rule and list and indexed by the tables' labels, so the hot path
 * only reads arrays. The last location stays readable (`country`, `asn`) for the handler's
 * variables and the metrics.
 */
import { asnOfEntry } from '../sources/formats.js';
import type { IntervalTable } from '../table/interval-table.js';
import type { GeoLocation, GeoRuleConfig, ListConfig, ListEntry, LoadedList, Match } from '../types.js';
import type { GeoTable } from './geo-table.js';

/** A compiled list of ASNs (the engine's CompiledList): its table is keyed by AS number. */
export interface CompiledAsnList {
  readonly config: ListConfig;
  readonly list: LoadedList;
  readonly table: IntervalTable;
}

interface AsnListSlot {
  readonly compiled: CompiledAsnList;
  readonly match: Match;
}

export class GeoMatcher {
  #country: GeoTable | undefined;
  #asn: GeoTable | undefined;
  #rules: readonly GeoRuleConfig[] = [];
  /** Rule matches by country label and by ASN label (first rule naming it wins). */
  #byCountry: readonly (Match | undefined)[] = [];
  #byAsn: readonly (Match | undefined)[] = [];
  #asnLists: readonly AsnListSlot[] = [];
  /** The ASN looked up in ASN lists: its 4 bytes, as those lists key their entries. */
  readonly #asnKey = new Uint8Array(4);
  /** Label of the last address located in each table, -1 when not located (or no table). */
  country = -1;
  asn = -1;
  /** Changes whenever the tables do: labels of another generation mean something else. */
  generation = 0;

  /** Whether there is anything to locate addresses with. */
  get active(): boolean {
    return this.#country !== undefined || this.#asn !== undefined;
  }

  get countryTable(): GeoTable | undefined {
    return this.#country;
  }

  get asnTable(): GeoTable | undefined {
    return this.#asn;
  }

  setTables(country: GeoTable | undefined, asn: GeoTable | undefined): void {
    if (country === this.#country && asn === this.#asn) return;
    this.#country = country;
    this.#asn = asn;
    this.generation++;
    this.country = -1;
    this.asn = -1;
    this.#index();
  }

  setRules(rules: readonly GeoRuleConfig[]): void {
    this.#rules = rules;
    this.#index();
  }

  /** Lists of format asn / asn-drop: their entries are AS numbers. */
  setAsnLists(lists: readonly CompiledAsnList[]): void {
    this.#asnLists = lists.map((compiled) => ({ compiled, match: listMatch(compiled.config) }));
  }

  get asnLists(): readonly CompiledAsnList[] {
    return this.#asnLists.map((slot) => slot.compiled);
  }

  /** Looks the address up (4 or 16 bytes, IPv4 already unmapped): sets `country` and `asn`. */
  locate(address: Uint8Array): void {
    this.country = this.#country === undefined ? -1 : this.#country.lookup(address);
    this.asn = this.#asn === undefined ? -1 : this.#asn.lookup(address);
  }

  /** Adds the matches of the located address; with `detail`, each names the country or AS it matched. */
  collect(out: Match[], detail: boolean): void {
    const country = this.country;
    if (country >= 0) {
      const match = this.#byCountry[country];
      if (match !== undefined) out.push(detail ? { ...match, detail: `country ${this.#country?.text(country)}` } : match);
    }
    const label = this.asn;
    if (label < 0) return;
    const match = this.#byAsn[label];
    if (match !== undefined) out.push(detail ? { ...match, detail: this.#asnText(label) } : match);
    const lists = this.#asnLists;
    if (lists.length === 0) return;
    const asn = (this.#asn as GeoTable).asn(label);
    const key = this.#asnKey;
    key[0] = asn >>> 24;
    key[1] = (asn >>> 16) & 255;
    key[2] = (asn >>> 8) & 255;
    key[3] = asn & 255;
    for (let i = 0; i < lists.length; i++) {
      const slot = lists[i] as AsnListSlot;
      const index = slot.compiled.table.lookup(key);
      if (index < 0) continue;
      if (!detail) out.push(slot.match);
      else {
        const note = (slot.compiled.list.entries.at(index) as ListEntry).note;
        out.push({ ...slot.match, detail: `AS${asnOfEntry(slot.compiled.list.entries.at(index) as ListEntry)}${note ? ` ${note}` : ''}` });
      }
    }
  }

  /** The located address's country and AS (explain), undefined when neither is known. */
  location(): GeoLocation | undefined {
    const out: { country?: string; asn?: number; organization?: string } = {};
    if (this.country >= 0 && this.#country !== undefined) out.country = this.#country.text(this.country);
    if (this.asn >= 0 && this.#asn !== undefined) {
      out.asn = this.#asn.asn(this.asn);
      const name = this.#asn.name(this.asn);
      if (name !== '') out.organization = name;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }

  #asnText(label: number): string {
    const table = this.#asn as GeoTable;
    const name = table.name(label);
    return name === '' ? table.text(label) : `${table.text(label)} ${name}`;
  }

  #index(): void {
    const byCountry: (Match | undefined)[] = [];
    const byAsn: (Match | undefined)[] = [];
    for (const rule of this.#rules) {
      const match = ruleMatch(rule);
      for (const code of rule.countries) {
        const label = this.#country?.labelOfCountry(code) ?? -1;
        if (label >= 0) byCountry[label] ??= match;
      }
      for (const asn of rule.asns) {
        const label = this.#asn?.labelOfAsn(asn) ?? -1;
        if (label >= 0) byAsn[label] ??= match;
      }
    }
    this.#byCountry = byCountry;
    this.#byAsn = byAsn;
  }
}

function ruleMatch(rule: GeoRuleConfig): Match {
  const base = { kind: 'geo', source: rule.name, category: rule.category } as const;
  const action = rule.action === undefined ? {} : { action: rule.action };
  if (rule.score !== undefined) return Object.freeze({ ...base, ...action, score: rule.score });
  return Object.freeze({ ...base, ...action, penalty: rule.penalty ?? 50 });
}

/** What a hit on an ASN list means, as for any list: its score, or its penalty (default 50). */
function listMatch(config: ListConfig): Match {
  const base = { kind: 'list', source: config.name, category: config.category } as const;
  const action = config.action === undefined ? {} : { action: config.action };
  if (config.score !== undefined) return Object.freeze({ ...base, ...action, score: config.score });
  return Object.freeze({ ...base, ...action, penalty: config.penalty ?? 50 });
}
