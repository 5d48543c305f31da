/**
 * Typed reading of a parsed YAML document. Every reader method returns the
 * value, or undefined after recording a problem at the node's line and column,
 * so that one pass reports every problem of the file, not just the first.
 */
import { type Document, type LineCounter, type Node, type YAMLMap, isAlias, isMap, isScalar, isSeq } from 'yaml';
import { BYTE_SIZE_HINT, formatByteSize, parseByteSize } from './byte-size.js';
import { formatDuration, parseDuration } from './duration.js';

/** One problem of a configuration file; line and column are 1-based. */
export interface ConfigProblem {
  readonly line?: number;
  readonly column?: number;
  /** Where the value came from when not the file: a flag (`--admin-host`). */
  readonly origin?: string;
  readonly message: string;
}

/** A restriction on a string value, with the words that explain it. */
export interface StringRule {
  readonly pattern: RegExp;
  /** Completes "must be ...": `a variable name (letters, digits, '_' and '.')`. */
  readonly expected: string;
}

const NON_EMPTY: StringRule = { pattern: /\S/, expected: 'a non-empty string' };

export class NodeReader {
  readonly problems: ConfigProblem[] = [];
  readonly #document: Document;
  readonly #lineCounter: LineCounter;

  constructor(document: Document, lineCounter: LineCounter) {
    this.#document = document;
    this.#lineCounter = lineCounter;
  }

  /** Records a problem at the start of `node`, or at `offset`, or without a position. */
  report(at: Node | number | undefined, message: string): void {
    const offset = typeof at === 'number' ? at : at?.range?.[0];
    if (offset === undefined) {
      this.problems.push({ message });
      return;
    }
    const { line, col } = this.#lineCounter.linePos(offset);
    this.problems.push({ line, column: col, message });
  }

  /** The node itself, or the node an alias (`*name`) points to. */
  resolve(node: Node | undefined): Node | undefined {
    return isAlias(node) ? (node.resolve(this.#document) as Node | undefined) : node;
  }

  string(node: Node | undefined, what: string, rule: StringRule = NON_EMPTY): string | undefined {
    const value = this.#scalar(node, what, rule.expected);
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !rule.pattern.test(value)) {
      const hint = typeof value === 'number' || typeof value === 'boolean' ? ' (quote it to make it text)' : '';
      this.report(node, `${what} must be ${rule.expected}, got ${show(value)}${hint}`);
      return undefined;
    }
    return value;
  }

  /** An integer from min to max (inclusive); max omitted: no upper bound. */
  integer(node: Node | undefined, what: string, min: number, max?: number): number | undefined {
    const expected = max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    const value = this.#scalar(node, what, expected);
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || (max !== undefined && value > max)) {
      this.report(node, `${what} must be ${expected}, got ${show(value)}`);
      return undefined;
    }
    return value;
  }

  /** A number from min to max (inclusive); max omitted: no upper bound. */
  number(node: Node | undefined, what: string, min: number, max?: number): number | undefined {
    const expected = max === undefined ? `a number >= ${min}` : `a number from ${min} to ${max}`;
    const value = this.#scalar(node, what, expected);
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || (max !== undefined && value > max)) {
      this.report(node, `${what} must be ${expected}, got ${show(value)}`);
      return undefined;
    }
    return value;
  }

  boolean(node: Node | undefined, what: string): boolean | undefined {
    const value = this.#scalar(node, what, 'true or false');
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean') {
      this.report(node, `${what} must be true or false, got ${show(value)}`);
      return undefined;
    }
    return value;
  }

  /** A duration in milliseconds (see parseDuration), from min to max. */
  duration(node: Node | undefined, what: string, min: number, max?: number): number | undefined {
    const value = this.#scalar(node, what, 'a duration');
    if (value === undefined) return undefined;
    let ms: number;
    try {
      ms = parseDuration(value as string | number);
    } catch (e) {
      this.report(node, `${what}: ${(e as Error).message}`);
      return undefined;
    }
    if (ms < min || (max !== undefined && ms > max)) {
      const range = max === undefined ? `at least ${formatDuration(min)}` : `from ${formatDuration(min)} to ${formatDuration(max)}`;
      this.report(node, `${what} must be ${range}, got ${show(value)}`);
      return undefined;
    }
    return ms;
  }

  /** A size in bytes (see parseByteSize), from min to max. */
  bytes(node: Node | undefined, what: string, min: number, max: number): number | undefined {
    const value = this.#scalar(node, what, 'a size');
    if (value === undefined) return undefined;
    const size = parseByteSize(value);
    if (size === undefined || size < min || size > max) {
      this.report(node, `${what} must be a size from ${formatByteSize(min)} to ${formatByteSize(max)} (${BYTE_SIZE_HINT}), got ${show(value)}`);
      return undefined;
    }
    return size;
  }

  /** One of the allowed words, with a suggestion for a near miss. */
  oneOf<T extends string>(node: Node | undefined, what: string, allowed: readonly T[]): T | undefined {
    const expected = `one of ${allowed.join(', ')}`;
    const value = this.#scalar(node, what, expected);
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      const near = typeof value === 'string' ? suggest(value, allowed) : undefined;
      this.report(node, `${what} must be ${expected}; got ${show(value)}${near === undefined ? '' : ` (did you mean ${near}?)`}`);
      return undefined;
    }
    return value as T;
  }

  /** A map of keys; absent or empty (`key:` with nothing after it) reads as an empty map. */
  map(node: Node | undefined, what: string): MapReader {
    const target = this.resolve(node);
    if (target === undefined || isNull(target)) return new MapReader(this, undefined, what, node);
    if (!isMap(target)) {
      this.report(node, `${what} must be a map of keys, got ${describe(target)}`);
      return new MapReader(this, undefined, what, node);
    }
    return new MapReader(this, target, what, node);
  }

  /** A map that must be there (an item of a list); undefined after reporting anything else. */
  requiredMap(node: Node | undefined, what: string): MapReader | undefined {
    const target = this.resolve(node);
    if (target === undefined || isNull(target)) {
      this.report(node, `${what} has no value: it must be a map of keys`);
      return undefined;
    }
    if (isMap(target)) return new MapReader(this, target, what);
    this.report(node, `${what} must be a map of keys, got ${describe(target)}`);
    return undefined;
  }

  /** The items of a list; absent or empty reads as no items. */
  seq(node: Node | undefined, what: string): Node[] {
    const target = this.resolve(node);
    if (target === undefined || isNull(target)) return [];
    if (!isSeq(target)) {
      this.report(node, `${what} must be a list, got ${describe(target)}`);
      return [];
    }
    return target.items.map((item) => this.resolve(item as Node) ?? (item as Node));
  }

  /**
   * The JS value of a scalar node; undefined when absent, or after reporting a
   * node that is empty or not a scalar. `expected` completes "must be ...".
   */
  #scalar(node: Node | undefined, what: string, expected: string): unknown {
    const target = this.resolve(node);
    if (target === undefined) return undefined;
    if (isNull(target)) {
      this.report(node, `${what} has no value: it must be ${expected}`);
      return undefined;
    }
    if (!isScalar(target)) {
      this.report(node, `${what} must be ${expected}, got ${describe(target)}`);
      return undefined;
    }
    return target.value;
  }
}

/**
 * The keys of one map (a section, a list item). Each key read becomes known;
 * `finish()` then reports the keys nobody asked for, with a suggestion.
 */
export class MapReader {
  readonly #known = new Set<string>();
  /** Where problems about the map as a whole are reported when it is absent or not a map. */
  readonly #anchor: Node | undefined;

  constructor(
    readonly reader: NodeReader,
    readonly node: YAMLMap | undefined,
    /** Path of this map in the file, for messages: `listen`, `lists[0]`; empty for the top level. */
    readonly path: string,
    anchor: Node | undefined = node,
  ) {
    this.#anchor = anchor;
  }

  /** Path of a key for messages: `listen.port`. */
  what(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  /** The value node of a key (aliases resolved), or undefined when the key is absent. */
  get(key: string): Node | undefined {
    this.#known.add(key);
    for (const pair of this.node?.items ?? []) {
      if (keyText(pair.key) === key) return this.reader.resolve((pair.value ?? undefined) as Node | undefined) ?? (pair.value as Node);
    }
    return undefined;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** Records a problem about the map as a whole (a missing key, two keys that exclude each other). */
  report(message: string): void {
    this.reader.report(this.node ?? this.#anchor, message);
  }

  /** Records a problem at the value of `key`. */
  reportAt(key: string, message: string): void {
    this.reader.report(this.get(key) ?? this.node ?? this.#anchor, message);
  }

  string(key: string, rule?: StringRule): string | undefined {
    return this.reader.string(this.get(key), this.what(key), rule);
  }
  integer(key: string, min: number, max?: number): number | undefined {
    return this.reader.integer(this.get(key), this.what(key), min, max);
  }
  number(key: string, min: number, max?: number): number | undefined {
    return this.reader.number(this.get(key), this.what(key), min, max);
  }
  boolean(key: string): boolean | undefined {
    return this.reader.boolean(this.get(key), this.what(key));
  }
  duration(key: string, min: number, max?: number): number | undefined {
    return this.reader.duration(this.get(key), this.what(key), min, max);
  }
  bytes(key: string, min: number, max: number): number | undefined {
    return this.reader.bytes(this.get(key), this.what(key), min, max);
  }
  oneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    return this.reader.oneOf(this.get(key), this.what(key), allowed);
  }
  map(key: string): MapReader {
    return this.reader.map(this.get(key), this.what(key));
  }
  seq(key: string): Node[] {
    return this.reader.seq(this.get(key), this.what(key));
  }

  /** True when the key is present with an explicit null (`key: null`, `key: ~`, `key:`). */
  isNull(key: string): boolean {
    const node = this.get(key);
    return node !== undefined && isNull(node);
  }

  /** Reports every key that was never read: misspelt or misplaced. */
  finish(): void {
    const known = [...this.#known];
    for (const pair of this.node?.items ?? []) {
      const key = keyText(pair.key);
      if (this.#known.has(key)) continue;
      const near = suggest(key, known);
      const hint = near !== undefined ? `did you mean ${this.what(near)}?` : `known keys: ${known.join(', ')}`;
      this.reader.report(pair.key as Node, `unknown key ${this.what(key)} (${hint})`);
    }
  }
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

function isNull(node: Node): boolean {
  return isScalar(node) && node.value === null;
}

function describe(node: Node): string {
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  return isScalar(node) ? show(node.value) : 'something else';
}

/** A value as messages quote it: strings in double quotes, the rest as written. */
export function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * The allowed word closest to a misspelt one: the same word in another case
 * style (`maxFrameSize`, `max_frame_size`), or one within a few typos.
 */
export function suggest(word: string, allowed: readonly string[]): string | undefined {
  const kebab = word
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/_/g, '-')
    .toLowerCase();
  const sameWord = allowed.find((a) => a === kebab);
  if (sameWord !== undefined) return sameWord;
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(word.length / 3)) + 1;
  for (const candidate of allowed) {
    const d = editDistance(kebab, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Edit distance: insertions, deletions, substitutions and swaps of neighbours (`prot` is 1 from `port`). */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const above = rows[i - 1] as number[];
      let d = Math.min((above[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1), (above[j] as number) + 1, (row[j - 1] as number) + 1);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}
