/**
 * Parsers for the list formats the engine reads (see LIST_FORMATS in types.ts).
 *
 * One bad line never sinks a list: it is skipped with a warning `origin:line: problem`
 * (JSON documents name the element instead: `origin:prefixes[3]: problem`). A list
 * only fails as a whole when it is structurally wrong: not a JSON document where one
 * is expected, or not one valid entry among its data lines (an HTML error page, the
 * wrong format configured). Those throw ListFormatError.
 */
import { type IpRange, parseAddress, parseRange, prefixRange } from '../net/address.js';
import type { ListEntry, ListFormat } from '../types.js';

/** A list that cannot be used at all; the message names the origin (and line when relevant). */
export class ListFormatError extends Error {
  override readonly name = 'ListFormatError';
}

export interface ParsedList {
  entries: ListEntry[];
  warnings: string[];
}

/** Warnings kept per list; a garbage file of a million lines must not make a million strings. */
export const MAX_WARNINGS = 100;

/** Parses one list. See the module comment for what is skipped and what throws. */
export function parseList(format: ListFormat, text: string, origin: string): ParsedList {
  const parser = PARSERS[format] as (typeof PARSERS)[ListFormat] | undefined;
  if (parser === undefined) throw new ListFormatError(`${origin}: unknown list format ${JSON.stringify(format)}`);
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  return parser(body, origin);
}

const PARSERS: Record<ListFormat, (text: string, origin: string) => ParsedList> = {
  netset: (text, origin) => parseLines(text, origin, netsetLine),
  csv: (text, origin) => parseLines(text, origin, csvLineParser()),
  'spamhaus-json': parseSpamhausJson,
  'spamhaus-text': (text, origin) => parseLines(text, origin, spamhausTextLine),
  'tor-exits': (text, origin) => parseLines(text, origin, torLineParser()),
  'aws-json': (text, origin) =>
    parsePrefixDocument(text, origin, 'an AWS ip-ranges.json', [
      { array: 'prefixes', keys: ['ip_prefix'], noteKeys: ['region', 'service'], required: true },
      { array: 'ipv6_prefixes', keys: ['ipv6_prefix'], noteKeys: ['region', 'service'], required: false },
    ]),
  'gcp-json': (text, origin) =>
    parsePrefixDocument(text, origin, 'a Google cloud.json / goog.json', [
      { array: 'prefixes', keys: ['ipv4Prefix', 'ipv6Prefix'], noteKeys: ['scope', 'service'], required: true },
    ]),
};

// ---------------------------------------------------------------------------
// Collecting entries and warnings

class Collector {
  readonly entries: ListEntry[] = [];
  readonly warnings: string[] = [];
  /** Data items seen (valid or not): comments, blank lines and headers are not data. */
  items = 0;
  private invalid = 0;

  constructor(readonly origin: string) {}

  add(entry: ListEntry): void {
    this.items++;
    this.entries.push(entry);
  }

  skip(where: string | number, problem: string): void {
    this.items++;
    this.invalid++;
    if (this.invalid <= MAX_WARNINGS) this.warnings.push(`${this.origin}:${where}: ${problem}`);
  }

  finish(): ParsedList {
    if (this.entries.length === 0 && this.items > 0) {
      throw new ListFormatError(
        `${this.origin}: no valid entry in ${this.items} data ${this.items === 1 ? 'item' : 'items'}; first problem: ${this.warnings[0] as string}`,
      );
    }
    if (this.invalid > MAX_WARNINGS) {
      this.warnings.push(`${this.origin}: ${this.invalid - MAX_WARNINGS} more invalid items not listed`);
    }
    return { entries: this.entries, warnings: this.warnings };
  }
}

/** What one line is: an entry, a problem (the line is skipped with a warning), or not data (null). */
type LineResult = ListEntry | string | null;
type LineParser = (line: string) => LineResult;

function parseLines(text: string, origin: string, parseLine: LineParser): ParsedList {
  const out = new Collector(origin);
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const result = parseLine((lines[i] as string).trim());
    if (result === null) continue;
    if (typeof result === 'string') out.skip(i + 1, result);
    else out.add(result);
  }
  return out.finish();
}

/** An entry, or the TypeError message of parseRange as the problem. */
function rangeEntry(text: string, note?: string, score?: number): ListEntry | string {
  try {
    const entry: { range: IpRange; score?: number; note?: string } = { range: parseRange(text) };
    if (score !== undefined) entry.score = score;
    if (note) entry.note = note;
    return entry;
  } catch (err) {
    return (err as Error).message;
  }
}

function isBlankOrComment(line: string): boolean {
  return line === '' || line.startsWith('#') || line.startsWith(';');
}

// ---------------------------------------------------------------------------
// Line formats

/** `192.0.2.0/24`, `192.0.2.1`, `192.0.2.1-192.0.2.9`, optionally followed by whitespace and a comment. */
function netsetLine(line: string): LineResult {
  if (isBlankOrComment(line)) return null;
  const space = line.search(/\s/);
  if (space < 0) return rangeEntry(line);
  const rest = line.slice(space).trimStart();
  if (!rest.startsWith('#') && !rest.startsWith(';')) return `unexpected text after the address: ${JSON.stringify(rest)}`;
  return rangeEntry(line.slice(0, space));
}

/** Legacy Spamhaus DROP text: `192.0.2.0/24 ; SBL000001`. */
function spamhausTextLine(line: string): LineResult {
  if (isBlankOrComment(line)) return null;
  const semicolon = line.indexOf(';');
  if (semicolon < 0) return rangeEntry(line);
  return rangeEntry(line.slice(0, semicolon), line.slice(semicolon + 1).trim() || undefined);
}

/** `address-or-range,score[,note]`; a first data line with neither an address nor a numeric score is the header. */
function csvLineParser(): LineParser {
  let firstDataLine = true;
  return (line) => {
    if (line === '' || line.startsWith('#')) return null;
    const fields = splitCsv(line);
    const isFirst = firstDataLine;
    firstDataLine = false;
    if (typeof fields === 'string') return fields;
    const [address = '', score, ...noteFields] = fields;
    const entry = rangeEntry(address, noteFields.join(',').trim() || undefined, Number(score));
    if (isFirst && typeof entry === 'string' && score !== undefined && !/^\d/.test(score)) return null; // the header
    if (score === undefined) return 'expected address,score[,note]';
    if (!/^\d{1,3}$/.test(score) || Number(score) > 100) return `score must be an integer 0..100, not ${JSON.stringify(score)}`;
    return entry;
  };
}

/** Splits one CSV line into trimmed fields; double-quoted fields may hold commas and `""`. Returns a problem on a bad quote. */
function splitCsv(line: string): string[] | string {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const quote = line.indexOf('"', i);
        if (quote < 0) return 'unterminated quoted field';
        value += line.slice(i, quote);
        i = quote + 1;
        if (line[i] !== '"') break;
        value += '"';
        i++;
      }
      while (line[i] === ' ' || line[i] === '\t') i++;
      if (i < line.length && line[i] !== ',') return 'text after a closing quote';
      fields.push(value.trim());
    } else {
      const comma = line.indexOf(',', i);
      fields.push(line.slice(i, comma < 0 ? line.length : comma).trim());
      i = comma < 0 ? line.length : comma;
    }
    if (i >= line.length) return fields;
    i++; // the comma
  }
}

/**
 * The Tor bulk exit list (one address per line), or TorDNSEL records:
 * `ExitNode <fingerprint>`, `Published ...`, `LastStatus ...`, `ExitAddress <address> <date> <time>`.
 * TorDNSEL entries carry the relay fingerprint as their note.
 */
function torLineParser(): LineParser {
  let fingerprint: string | undefined;
  return (line) => {
    if (line === '' || line.startsWith('#')) return null;
    const words = line.split(/\s+/);
    const keyword = words[0] as string;
    if (keyword === 'ExitNode') {
      fingerprint = words[1];
      return null;
    }
    if (keyword === 'Published' || keyword === 'LastStatus') return null;
    if (keyword === 'ExitAddress') return torAddress(words[1] ?? '', fingerprint);
    if (words.length > 1) return `unexpected line: ${JSON.stringify(line)}`;
    return torAddress(keyword, undefined);
  };
}

function torAddress(text: string, note: string | undefined): ListEntry | string {
  const bytes = parseAddress(text);
  if (bytes === undefined) return `not an address: ${JSON.stringify(text)}`;
  const range = prefixRange(bytes, bytes.length * 8);
  return note ? { range, note } : { range };
}

// ---------------------------------------------------------------------------
// JSON formats

/** Spamhaus DROP JSON lines: `{"cidr":...,"sblid":...,"rir":...}`, then `{"type":"metadata",...,"records":N}`. */
function parseSpamhausJson(text: string, origin: string): ParsedList {
  const out = new Collector(origin);
  let metadata: { line: number; records: unknown } | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      out.skip(i + 1, `not a JSON object: ${JSON.stringify(line.length > 60 ? line.slice(0, 60) + '...' : line)}`);
      continue;
    }
    if (!isObject(record)) {
      out.skip(i + 1, 'not a JSON object');
    } else if (record['type'] === 'metadata') {
      metadata = { line: i + 1, records: record['records'] };
    } else if (typeof record['cidr'] !== 'string') {
      out.skip(i + 1, 'no "cidr" string');
    } else {
      const entry = rangeEntry(record['cidr'], typeof record['sblid'] === 'string' ? record['sblid'] : undefined);
      if (typeof entry === 'string') out.skip(i + 1, entry);
      else out.add(entry);
    }
  }
  // A count that disagrees with the lines present means a truncated or mangled download.
  if (metadata !== undefined && typeof metadata.records === 'number' && metadata.records !== out.items) {
    throw new ListFormatError(`${origin}:${metadata.line}: the metadata says ${metadata.records} records, the file has ${out.items}`);
  }
  return out.finish();
}

interface PrefixArray {
  /** The array of prefix objects in the document. */
  array: string;
  /** Keys that may hold the prefix in each object (the first string one wins). */
  keys: string[];
  /** Keys joined with spaces into the entry's note, when present. */
  noteKeys: string[];
  required: boolean;
}

/** A JSON document of prefix objects (AWS ip-ranges.json, Google cloud.json / goog.json). */
function parsePrefixDocument(text: string, origin: string, what: string, arrays: PrefixArray[]): ParsedList {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ListFormatError(`${origin}: not a JSON document (${(err as Error).message})`);
  }
  if (!isObject(doc)) throw new ListFormatError(`${origin}: not ${what} document (not a JSON object)`);
  const out = new Collector(origin);
  for (const spec of arrays) {
    const items = doc[spec.array];
    if (items === undefined && !spec.required) continue;
    if (!Array.isArray(items)) throw new ListFormatError(`${origin}: not ${what} document (no "${spec.array}" array)`);
    items.forEach((item: unknown, index) => {
      const where = `${spec.array}[${index}]`;
      if (!isObject(item)) return out.skip(where, 'not an object');
      const prefix = spec.keys.map((key) => item[key]).find((value) => typeof value === 'string');
      if (typeof prefix !== 'string') return out.skip(where, `no ${spec.keys.map((key) => `"${key}"`).join(' or ')} string`);
      const note = spec.noteKeys
        .map((key) => item[key])
        .filter((value): value is string => typeof value === 'string' && value !== '')
        .join(' ');
      const entry = rangeEntry(prefix, note || undefined);
      if (typeof entry === 'string') out.skip(where, entry);
      else out.add(entry);
    });
  }
  return out.finish();
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
