/** The match objects an address's allowlist and list hits produce, built once (frozen: the verdict caches key on them). */
import type { IntervalTable } from '../table/index.js';
import type { IpRange } from '../net/address.js';
import type { ListConfig, LoadedList, Match } from '../types.js';

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

/** A compiled list with the match objects its hits produce, built once. */
export interface ListSlot {
  readonly compiled: CompiledList;
  /** The list's own match (its score or penalty, category, action). */
  readonly match: Match;
  /** Matches of entries carrying their own score (CSV), by score; built on first use. */
  readonly byScore: (Match | undefined)[];
}

export const ALLOW_MATCH: Match = Object.freeze({ kind: 'allowlist', source: 'allowlist', category: 'allowlisted', score: 100, action: 'allow' });

export function listSlot(compiled: CompiledList): ListSlot {
  return { compiled, match: listMatch(compiled.config), byScore: [] };
}

/** What a hit on this list means: its absolute score (hard list) or its penalty (default 50). */
function listMatch(config: ListConfig): Match {
  const base = { kind: 'list', source: config.name, category: config.category } as const;
  const action = config.action === undefined ? {} : { action: config.action };
  if (config.score !== undefined) return Object.freeze({ ...base, ...action, score: config.score });
  return Object.freeze({ ...base, ...action, penalty: config.penalty ?? 50 });
}

/** The match of an entry with its own score (CSV). */
export function entryMatch(slot: ListSlot, score: number): Match {
  const cached = slot.byScore[score];
  if (cached !== undefined) return cached;
  const { penalty: _ignored, ...rest } = slot.match;
  const match = Object.freeze({ ...rest, score });
  slot.byScore[score] = match;
  return match;
}
