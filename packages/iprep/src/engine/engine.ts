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
import { ASN_LIST_FORMATS, type Decision, type IprepConfig, type ListConfig, type ListEntry, type LoadedList, type Match, type Verdict } from '../types.js';
import { INTERNAL, combine, decidesAlone } from './verdict.js';

/** A list ready for lookups: its table maps an address to the index of its entry. */
export interface CompiledList {
  readonly config: ListConfig;
  readonly list: LoadedList;
  readonly table: IntervalTable;
}

/** Addresses that always win: the configured ones compiled like a list, and allowlist files with their own tables. */
export interface CompiledAllowlist {
  readonly ranges: readonly IpRange[];
  readonly table: IntervalTable;
  /** Allowlist files as loaded (parsed and compiled off the main thread when big), consulted after `table`. */
  readonly files?: readonly LoadedList[];
}

export type EngineConfig = Pick<IprepConfig, 'thresholds' | 'special'>;

export interface EngineDependencies {
  readonly decisions: DecisionIndex;
  /** Absent when behaviour is disabled. */
  readonly behaviour?: BehaviourTracker | undefined;
  readonly special?: SpecialRanges;
}

/** A compiled list with the match objects its hits produce, built once. */
interface ListSlot {
  readonly compiled: CompiledList;
  /** The list's own match (its score or penalty, category, action). */
  readonly match: Match;
  /** Matches of entries carrying their own score (CSV), by score; built on first use. */
  readonly byScore: (Match | undefined)[];
}

export class ReputationEngine {
  #config: EngineConfig;
  readonly #decisions: DecisionIndex;
  readonly #behaviour: BehaviourTracker | undefined;
  readonly #special: SpecialRanges;
  /** Match of each special range by its number (null: the range's policy is none), built on first use. */
  readonly #specialMatches: (Match | null | undefined)[];
  readonly #decisionMatches = new WeakMap<Decision, Match>();
  #allow: CompiledAllowlist = { ranges: [], table: IntervalTable.empty() };
  #lists: readonly ListSlot[] = [];
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
  }

  /** New thresholds and special-range policy (reload). */
  configure(config: EngineConfig): void {
    this.#config = config;
    this.#specialMatches.fill(undefined);
  }

  setAllowlist(allow: CompiledAllowlist): void {
    this.#allow = allow;
  }

  /** Replaces every list at once: lookups see all the old lists or all the new ones. */
  setLists(lists: readonly CompiledList[]): void {
    const byAddress = lists.filter((compiled) => !ASN_LIST_FORMATS.includes(compiled.config.format));
    this.#lists = byAddress.map((compiled) => ({ compiled, match: listMatch(compiled.config), byScore: [] }));
    this.geo.setAsnLists(lists.filter((compiled) => ASN_LIST_FORMATS.includes(compiled.config.format)));
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

    // Empty tables (no allowlist, no decision: the usual case) are not asked.
    const allow = this.#allow;
    const allowed = allow.table.size === 0 ? -1 : allow.table.lookupWords(v4, a0, a1, a2, a3);
    if (allowed >= 0) {
      out.push(detail ? { ...ALLOW_MATCH, detail: formatRange(allow.ranges[allowed] as IpRange) } : ALLOW_MATCH);
      if (!detail) return;
    } else if (allow.files !== undefined) {
      for (let i = 0; i < allow.files.length; i++) {
        const file = allow.files[i] as LoadedList;
        const index = file.table.lookupWords(v4, a0, a1, a2, a3);
        if (index < 0) continue;
        out.push(detail ? { ...ALLOW_MATCH, detail: formatRange((file.entries.at(index) as ListEntry).range) } : ALLOW_MATCH);
        if (!detail) return;
        break;
      }
    }

    const decision = this.#decisions.size === 0 ? undefined : this.#decisions.lookup(address, now);
    if (decision !== undefined) {
      out.push(this.#decisionMatch(decision));
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

    if (geo.active) geo.collect(out, detail);

    const behaviour = this.#behaviour?.evaluate(address, now, detail);
    if (behaviour !== undefined) out.push(behaviour);
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

  #decisionMatch(d: Decision): Match {
    let match = this.#decisionMatches.get(d);
    if (match === undefined) {
      const until = d.expiresAt === null ? 'never expires' : `until ${dateText(d.expiresAt)}`;
      match = {
        kind: 'decision',
        source: d.origin === 'behaviour' ? 'behaviour:ban' : 'manual',
        category: d.category,
        score: d.score,
        action: d.action,
        detail: `${d.key} by ${d.origin}${d.reason ? `: ${d.reason}` : ''}, ${until}`,
      };
      this.#decisionMatches.set(d, match);
    }
    return match;
  }
}

/** Adds matches from outside the address unless the address's first match decides alone. */
function addExtra(matches: Match[], extra: readonly Match[]): void {
  if (matches.length > 0 && decidesAlone(matches[0] as Match)) return;
  for (let i = 0; i < extra.length; i++) matches.push(extra[i] as Match);
}

const ALLOW_MATCH: Match = Object.freeze({ kind: 'allowlist', source: 'allowlist', category: 'allowlisted', score: 100, action: 'allow' });

/** What a hit on this list means: its absolute score (hard list) or its penalty (default 50). */
function listMatch(config: ListConfig): Match {
  const base = { kind: 'list', source: config.name, category: config.category } as const;
  const action = config.action === undefined ? {} : { action: config.action };
  if (config.score !== undefined) return Object.freeze({ ...base, ...action, score: config.score });
  return Object.freeze({ ...base, ...action, penalty: config.penalty ?? 50 });
}

function entryMatch(slot: ListSlot, score: number): Match {
  const cached = slot.byScore[score];
  if (cached !== undefined) return cached;
  const { penalty: _ignored, ...rest } = slot.match;
  const match = Object.freeze({ ...rest, score });
  slot.byScore[score] = match;
  return match;
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
