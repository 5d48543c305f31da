/**
 * List entries that can never apply: those wholly inside an internal range (private, loopback,
 * link-local...), which `special` decides before any list when it is enabled. Found where the
 * list is parsed (off the main thread for big lists), so that loading it can say so instead of
 * leaving an operator's block silently without effect.
 */
import { formatRange } from '../net/address.js';
import { SpecialRanges } from '../table/special-ranges.js';
import { type PackedListData, readAddress } from './list-entries.js';

export interface EntriesInsideInternal {
  readonly count: number;
  /** The first few (IPv4 ones first), as `entry (range name, RFC)`. */
  readonly examples: readonly string[];
}

const MAX_EXAMPLES = 3;

let specialRanges: SpecialRanges | undefined;

export function entriesInsideInternal(data: PackedListData): EntriesInsideInternal {
  specialRanges ??= new SpecialRanges();
  const examples: string[] = [];
  let count = 0;
  for (const [family, words] of [
    [data.v4, 1],
    [data.v6, 4],
  ] as const) {
    const start = new Uint8Array(words * 4);
    const end = new Uint8Array(words * 4);
    for (let p = 0; p < family.values.length; p++) {
      readAddress(family.starts, p, words, start);
      readAddress(family.ends, p, words, end);
      const range = specialRanges.lookup(start);
      if (range === undefined || range.policy !== 'internal' || specialRanges.lookup(end) !== range) continue;
      if (count++ < MAX_EXAMPLES) examples.push(`${describeEntry(start, end, words)} (${range.name}, ${range.rfc})`);
    }
  }
  return { count, examples };
}

function describeEntry(start: Uint8Array, end: Uint8Array, words: number): string {
  return formatRange({ family: words === 1 ? 4 : 6, start: start.slice(), end: end.slice() });
}

/** The warning loading such a list gives (the agent's log, spoa check). */
export function insideInternalWarning(list: string, inside: EntriesInsideInternal): string {
  const entries = inside.count === 1 ? '1 entry falls' : `${inside.count} entries fall`;
  return `list ${list}: ${entries} inside internal ranges, which special decides first: they never apply (e.g. ${inside.examples.join(', ')}); set special.enabled: false, or use a decision, to score internal addresses`;
}
