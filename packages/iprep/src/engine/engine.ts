/**
 * The reputation engine: what every source says about one address, combined
 * into a verdict. Pure and synchronous: no I/O, no await. Lists arrive
 * compiled (their tables are built off the hot path) and are swapped in by
 * replacing one reference, so a lookup sees the old state or the new one.
 */
import { type IpRange, formatRange, isIPv4Mapped, parseAddress, wordAt } from '../net/address.js';
import type { BehaviourTracker } from '../behaviour/index.js';
import type { DecisionIndex } from '../decisions/index.js';
import { GeoMatcher } from '../geo/geo-matcher.js';
import { IntervalTable, SpecialRanges } from '../table/index.js';
import { ASN_LIST_FORMATS, type Decision, type IprepConfig, type ListEntry, type LoadedList, type Match, type Verdict } from '../types.js';
import type { Logger } from 'spop';
import { INTERNAL, combine, decidesAlone } from './verdict.js';
import { type CombinedTable, CombinedTableBuilder, type CombinedTableOptions } from './combined.js';
import { ALLOW_MATCH, type CompiledAllowlist, type CompiledList, type ListSlot, entryMatch, listSlot } from './list-slot.js';

export type { CompiledAllowlist, CompiledList } from './list-slot.js';
export type { CombinedTableOptions } from './combined.js';

export type EngineConfig = Pick<IprepConfig, 'thresholds' | 'special'>;

export interface EngineDependencies {
  readonly decisions: DecisionIndex;
  /** Absent when behaviour is disabled. */
  readonly behaviour?: BehaviourTracker | undefined;
  readonly special?: SpecialRanges;
  /** The combined table of the allowlist and the lists (combined.ts); false: one lookup per table. Default: on. */
  readonly combined?: CombinedTableOptions | false;
  /** Where a failed combined table build is told. */
  readonly logger?: Logger;
}

export class ReputationEngine {
  #config: EngineConfig;
  readonly #decisions: DecisionIndex;
  readonly #behaviour: BehaviourTracker | undefined;
  readonly #special: SpecialRanges;
  /** Match of each special range by its number (null: the range's policy is none), built on first use. */
  readonly #specialMatches: (Match | null | undefined)[];
  /** Each decision's hot-path match, shared by the decisions saying the same thing (see #decisionMatch). */
  readonly #decisionMatches = new WeakMap<Decision, Match>();
  readonly #sharedDecisionMatches = new Map<string, Match>();
  #allow: CompiledAllowlist = { ranges: [], table: IntervalTable.empty() };
  #lists: readonly ListSlot[] = [];
  /** One lookup for the allowlist and the lists, when built from the current ones (see #combinedNow). */
  #combined: CombinedTable | undefined;
  readonly #builder: CombinedTableBuilder | undefined;
  /** Reused by the hot path: matches of the address being scored. */
  readonly #scratch: Match[] = [];
  /** Country and ASN: rules, ASN lists, and the last address's location (geo/). */
  readonly geo = new GeoMatcher();

  constructor(config: EngineConfig, deps: EngineDependencies) {
    this.#config = config;
    this.#decisions = deps.decisions;
    this.#behaviour = deps.behaviour;
    this.#special = deps.special ?? new SpecialRanges();
    this.#specialMatches = new Array<Match | null | undefined>(this.#special.size).fill(undefined);
    if (deps.combined !== false) {
      this.#builder = new CombinedTableBuilder(
        deps.combined ?? {},
        deps.logger,
        () => ({ allow: this.#allow, lists: this.#lists }),
        (combined) => {
          if (combined.allow === this.#allow && combined.lists === this.#lists) this.#combined = combined;
        },
      );
    }
  }

  /** New thresholds and special-range policy (reload). */
  configure(config: EngineConfig): void {
    this.#config = config;
    this.#specialMatches.fill(undefined);
  }

  setAllowlist(allow: CompiledAllowlist): void {
    this.#allow = allow;
    this.#combined = undefined;
    this.#builder?.request();
  }

  /** Replaces every list at once: lookups see all the old lists or all the new ones. */
  setLists(lists: readonly CompiledList[]): void {
    const byAddress = lists.filter((compiled) => !ASN_LIST_FORMATS.includes(compiled.config.format));
    this.#lists = byAddress.map(listSlot);
    this.#combined = undefined;
    this.#builder?.request();
    this.geo.setAsnLists(lists.filter((compiled) => ASN_LIST_FORMATS.includes(compiled.config.format)));
  }

  /** True when lookups use the combined table (built from the current allowlist and lists). */
  get combinedActive(): boolean {
    return this.#combinedNow() !== undefined;
  }

  /** Resolves when the combined table's rebuilds are done: with whether lookups use it. */
  async combinedSettled(): Promise<boolean> {
    await this.#builder?.settled();
    return this.combinedActive;
  }

  /** The combined table if it was built from exactly the current allowlist and lists. */
  #combinedNow(): CombinedTable | undefined {
    const combined = this.#combined;
    return combined !== undefined && combined.allow === this.#allow && combined.lists === this.#lists ? combined : undefined;
  }

  get lists(): readonly CompiledList[] {
    return this.#lists.map((slot) => slot.compiled).concat(this.geo.asnLists);
  }

  get allowlist(): CompiledAllowlist {
    return this.#allow;
  }

  /**
   * The verdict for an address (4 or 16 bytes), without the list of matches. The hot path.
   * `extra`: matches about the client from elsewhere (its TLS fingerprint), combined with the
   * address's unless one of those decides alone (allowlist, decision, internal address).
   */
  score(address: Uint8Array, now: number, extra?: readonly Match[]): Verdict {
    const matches = this.#scratch;
    // pop() is inlined; assigning `length` is a runtime call on every message.
    while (matches.length > 0) matches.pop();
    this.#collect(address, now, matches, false);
    if (extra !== undefined && extra.length > 0) addExtra(matches, extra);
    return combine(matches, this.#config.thresholds, false);
  }

  /** The verdict with every match and what it matched (the admin API's explain). */
  explain(address: Uint8Array | string, now: number, extra?: readonly Match[]): Verdict {
    const bytes = typeof address === 'string' ? parseAddress(address) : address;
    if (bytes === undefined) throw new TypeError(`not an IP address: ${JSON.stringify(address)}`);
    const matches: Match[] = [];
    this.#collect(bytes, now, matches, true);
    if (extra !== undefined && extra.length > 0) addExtra(matches, extra);
    const verdict = combine(matches, this.#config.thresholds, true);
    const location = this.geo.active ? this.geo.location() : undefined;
    return location === undefined ? verdict : { ...verdict, location };
  }

  /**
   * Collects matches in precedence order. Without `detail` it stops at the
   * first match that decides alone and reuses prebuilt match objects.
   */
  #collect(input: Uint8Array, now: number, out: Match[], detail: boolean): void {
    // HAProxy may hand an IPv4 client over as ::ffff:a.b.c.d: judge it as IPv4.
    const address = isIPv4Mapped(input) ? input.subarray(12) : input;
    // Located first: the handler's ip_country / ip_asn are set whatever decides.
    const geo = this.geo;
    if (geo.active) geo.locate(address);
    // Read once as unsigned words; every table below is asked with these numbers (one read and
    // family test per message, not one per table).
    const v4 = address.length === 4;
    if (!v4 && address.length !== 16) throw new RangeError(`an address has 4 or 16 bytes, got ${address.length}`);
    const a0 = wordAt(address, 0) >>> 0;
    const a1 = v4 ? 0 : wordAt(address, 4) >>> 0;
    const a2 = v4 ? 0 : wordAt(address, 8) >>> 0;
    const a3 = v4 ? 0 : wordAt(address, 12) >>> 0;

    // Explain (detail) names each entry: it asks the tables one by one.
    const combined = detail ? undefined : this.#combinedNow();
    let combination = -1;
    if (combined !== undefined) {
      combination = combined.table.lookupWords(v4, a0, a1, a2, a3);
      if (combination >= 0 && combined.allowed[combination] === 1) {
        out.push(ALLOW_MATCH);
        return;
      }
    } else if (this.#collectAllowlist(this.#allow, v4, a0, a1, a2, a3, out, detail) && !detail) {
      return;
    }

    const decision = this.#decisions.size === 0 ? undefined : this.#decisions.lookup(address, now);
    if (decision !== undefined) {
      out.push(this.#decisionMatch(decision, detail));
      if (!detail) return;
    }

    if (this.#config.special.enabled) {
      const special = this.#special.indexWords(v4, a0, a1, a2, a3);
      const match = special < 0 ? null : this.#specialMatch(special);
      if (match !== null) {
        out.push(detail ? { ...match, detail: this.#special.at(special).cidr } : match);
        if (!detail && match.category === INTERNAL) return;
      }
    }

    if (combined !== undefined) {
      if (combination >= 0) {
        const matches = combined.matches[combination] as readonly Match[];
        for (let i = 0; i < matches.length; i++) out.push(matches[i] as Match);
      }
    } else {
      this.#collectLists(v4, a0, a1, a2, a3, out, detail);
    }

    if (geo.active) geo.collect(out, detail);

    const behaviour = this.#behaviour?.evaluate(address, now, detail);
    if (behaviour !== undefined) out.push(behaviour);
  }

  /** Adds the allowlist's match if the address is on it (true then), asking its tables one by one. */
  #collectAllowlist(allow: CompiledAllowlist, v4: boolean, a0: number, a1: number, a2: number, a3: number, out: Match[], detail: boolean): boolean {
    // An empty table (no configured allowlist ranges: the usual case) is not asked.
    const allowed = allow.table.size === 0 ? -1 : allow.table.lookupWords(v4, a0, a1, a2, a3);
    if (allowed >= 0) {
      out.push(detail ? { ...ALLOW_MATCH, detail: formatRange(allow.ranges[allowed] as IpRange) } : ALLOW_MATCH);
      return true;
    }
    const files = allow.files;
    if (files === undefined) return false;
    for (let i = 0; i < files.length; i++) {
      const file = files[i] as LoadedList;
      const index = file.table.lookupWords(v4, a0, a1, a2, a3);
      if (index < 0) continue;
      out.push(detail ? { ...ALLOW_MATCH, detail: formatRange((file.entries.at(index) as ListEntry).range) } : ALLOW_MATCH);
      return true;
    }
    return false;
  }

  /** The lists' matches, in configuration order, asking their tables one by one. */
  #collectLists(v4: boolean, a0: number, a1: number, a2: number, a3: number, out: Match[], detail: boolean): void {
    const lists = this.#lists;
    for (let i = 0; i < lists.length; i++) {
      const slot = lists[i] as ListSlot;
      const index = slot.compiled.table.lookupWords(v4, a0, a1, a2, a3);
      if (index < 0) continue;
      const entries = slot.compiled.list.entries;
      const score = entries.scoreAt(index);
      const match = score < 0 ? slot.match : entryMatch(slot, score);
      out.push(detail ? { ...match, detail: entryDetail(entries.at(index) as ListEntry) } : match);
    }
  }

  #specialMatch(index: number): Match | null {
    let match = this.#specialMatches[index];
    if (match === undefined) {
      const range = this.#special.at(index);
      const { internalAction, bogonScore } = this.#config.special;
      const source = `rfc6890:${range.name}`;
      // Frozen like every match the hot path collects: the verdict cache keys on them.
      if (range.policy === 'internal') match = Object.freeze({ kind: 'special', source, category: INTERNAL, score: 100, action: internalAction });
      else if (range.policy === 'bogon') match = Object.freeze({ kind: 'special', source, category: 'bogon', score: bogonScore });
      else match = null;
      this.#specialMatches[index] = match;
    }
    return match;
  }

  /**
   * Without detail (the hot path), one frozen match for every decision that says the same thing
   * (source, category, score, action): a thousand banned clients then share one verdict and one
   * cached answer, instead of a verdict, an answer and three scattered cache reads each. With
   * detail (explain), the decision's own match, naming its key, origin, reason and expiry.
   */
  #decisionMatch(d: Decision, detail: boolean): Match {
    let match = this.#decisionMatches.get(d);
    if (match === undefined) {
      const source = d.origin === 'behaviour' ? 'behaviour:ban' : 'manual';
      const key = `${source}\n${d.category}\n${d.score}\n${d.action}`;
      match = this.#sharedDecisionMatches.get(key);
      if (match === undefined) {
        match = Object.freeze({ kind: 'decision', source, category: d.category, score: d.score, action: d.action });
        // Categories come from operators and the configuration: the bound only guards against surprises.
        if (this.#sharedDecisionMatches.size < MAX_SHARED_DECISION_MATCHES) this.#sharedDecisionMatches.set(key, match);
      }
      this.#decisionMatches.set(d, match);
    }
    if (!detail) return match;
    const until = d.expiresAt === null ? 'never expires' : `until ${dateText(d.expiresAt)}`;
    return { ...match, detail: `${d.key} by ${d.origin}${d.reason ? `: ${d.reason}` : ''}, ${until}` };
  }
}

/** Distinct decision matches kept for sharing (source, category, score, action). */
const MAX_SHARED_DECISION_MATCHES = 4096;

/** Adds matches from outside the address unless the address's first match decides alone. */
function addExtra(matches: Match[], extra: readonly Match[]): void {
  if (matches.length > 0 && decidesAlone(matches[0] as Match)) return;
  for (let i = 0; i < extra.length; i++) matches.push(extra[i] as Match);
}

function entryDetail(entry: ListEntry): string {
  const range = formatRange(entry.range);
  return entry.note ? `${range} ${entry.note}` : range;
}

/** ISO text of a time, or its milliseconds when past what a Date holds (a decision stored before durations were capped). */
function dateText(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? `${ms} ms since 1970` : date.toISOString();
}
