/**
 * Parsers for the list formats the engine reads (see LIST_FORMATS in types.ts).
 *
 * One bad line never sinks a list: it is skipped with a warning `origin:line: problem`
 * (JSON documents name the element instead: `origin:prefixes[3]: problem`). A list
 * only fails as a whole when it is structurally wrong: not a JSON document where one
 * is expected, or not one valid entry among its data lines (an HTML error page, the
 * wrong format configured). Those throw ListFormatError.
 */
import { type IpRange, parseAddress, prefixRange, readRange } from '../net/address.js';
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

/** Where parsed entries go: an array (parseList), or typed arrays built in a worker thread (list-job.ts). */
export interface EntrySink {
  /** Entries added so far. */
  readonly length: number;
  add(range: IpRange, score: number | undefined, note: string | undefined): void;
}

/** What parsing into a sink found besides the entries. */
export interface ParseReport {
  readonly warnings: string[];
  /** Data items skipped as invalid (warnings keep the first MAX_WARNINGS of them). */
  readonly invalid: number;
}

/** Parses one list. See the module comment for what is skipped and what throws. */
export function parseList(format: ListFormat, text: string, origin: string): ParsedList {
  const entries: ListEntry[] = [];
  const sink: EntrySink = {
    get length() {
      return entries.length;
    },
    add(range, score, note) {
      const entry: { range: IpRange; score?: number; note?: string } = { range };
      if (score !== undefined) entry.score = score;
      if (note) entry.note = note;
      entries.push(entry);
    },
  };
  const { warnings } = parseListInto(format, text, origin, sink);
  return { entries, warnings };
}

/**
 * Parses one list into `sink`, stopping with a ListFormatError past `maxEntries` entries.
 * A bad line is skipped without an exception: one thrown error per line would cost seconds
 * for a garbage download of a million lines.
 */
export function parseListInto(format: ListFormat, text: string, origin: string, sink: EntrySink, maxEntries = Infinity): ParseReport {
  const parser = PARSERS[format] as (typeof PARSERS)[ListFormat] | undefined;
  if (parser === undefined) throw new ListFormatError(`${origin}: unknown list format ${JSON.stringify(format)}`);
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  return parser(body, new Collector(origin, sink, maxEntries));
}

const PARSERS: Record<ListFormat, (text: string, out: Collector) => ParseReport> = {
  netset: (text, out) => parseLines(text, out, netsetLine),
  csv: (text, out) => parseLines(text, out, csvLineParser()),
  'spamhaus-json': parseSpamhausJson,
  'spamhaus-text': (text, out) => parseLines(text, out, spamhausTextLine),
  'tor-exits': (text, out) => parseLines(text, out, torLineParser()),
  'aws-json': (text, out) =>
    parsePrefixDocument(text, out, 'an AWS ip-ranges.json', [
      { array: 'prefixes', keys: ['ip_prefix'], noteKeys: ['region', 'service'], required: true },
      { array: 'ipv6_prefixes', keys: ['ipv6_prefix'], noteKeys: ['region', 'service'], required: false },
    ]),
  'gcp-json': (text, out) =>
    parsePrefixDocument(text, out, 'a Google cloud.json / goog.json', [
      { array: 'prefixes', keys: ['ipv4Prefix', 'ipv6Prefix'], noteKeys: ['scope', 'service'], required: true },
    ]),
  asn: (text, out) => parseLines(text, out, asnLine),
  'asn-drop': parseAsnDrop,
};

// ---------------------------------------------------------------------------
// Collecting entries and warnings

class Collector {
  readonly warnings: string[] = [];
  /** Data items seen (valid or not): comments, blank lines and headers are not data. */
  items = 0;
  #invalid = 0;

  readonly #sink: EntrySink;
  readonly #maxEntries: number;

  constructor(
    readonly origin: string,
    sink: EntrySink,
    maxEntries: number,
  ) {
    this.#sink = sink;
    this.#maxEntries = maxEntries;
  }

  add(entry: Entry): void {
    this.items++;
    if (this.#sink.length >= this.#maxEntries) {
      throw new ListFormatError(`${this.origin}: more than ${this.#maxEntries} entries (max-entries)`);
    }
    this.#sink.add(entry.range, entry.score, entry.note);
  }

  skip(where: string | number, problem: string): void {
    this.items++;
    this.#invalid++;
    if (this.#invalid <= MAX_WARNINGS) this.warnings.push(`${this.origin}:${where}: ${problem}`);
  }

  finish(): ParseReport {
    if (this.#sink.length === 0 && this.items > 0) {
      throw new ListFormatError(
        `${this.origin}: no valid entry in ${this.items} data ${this.items === 1 ? 'item' : 'items'}; first problem: ${this.warnings[0] as string}`,
      );
    }
    if (this.#invalid > MAX_WARNINGS) {
      this.warnings.push(`${this.origin}: ${this.#invalid - MAX_WARNINGS} more invalid items not listed`);
    }
    return { warnings: this.warnings, invalid: this.#invalid };
  }
}

/** An entry as a parser finds it. */
interface Entry {
  readonly range: IpRange;
  readonly score?: number | undefined;
  readonly note?: string | undefined;
}

/** What one line is: an entry, a problem (the line is skipped with a warning), or not data (null). */
type LineResult = Entry | string | null;
type LineParser = (line: string) => LineResult;

/** Calls `each` with every line (without its CR LF or LF) and its 1-based number, without splitting the text into an array. */
function forEachLine(text: string, each: (line: string, number: number) => void): void {
  let start = 0;
  for (let number = 1; start <= text.length; number++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const stop = end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end;
    each(text.slice(start, stop), number);
    start = end + 1;
  }
}

function parseLines(text: string, out: Collector, parseLine: LineParser): ParseReport {
  forEachLine(text, (line, number) => {
    const result = parseLine(line.trim());
    if (result === null) return;
    if (typeof result === 'string') out.skip(number, result);
    else out.add(result);
  });
  return out.finish();
}

/** An entry, or the problem readRange found. */
function rangeEntry(text: string, note?: string, score?: number): Entry | string {
  const range = readRange(text);
  if (typeof range === 'string') return range;
  return { range, score, note: note || undefined };
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

function torAddress(text: string, note: string | undefined): Entry | string {
  const bytes = parseAddress(text);
  if (bytes === undefined) return `not an address: ${JSON.stringify(text)}`;
  return { range: prefixRange(bytes, bytes.length * 8), note: note || undefined };
}

// ---------------------------------------------------------------------------
// Lists of AS numbers. An ASN is kept as a one-address IPv4 "range" whose 32 bits are the AS
// number: the packed entries, the worker thread and the interval table then serve them unchanged,
// and the engine looks a located address's ASN up in them (geo/geo-matcher.ts).

/** The entry of an AS number (1 .. 2^32 - 1). */
export function asnEntry(asn: number, note?: string): Entry {
  const key = new Uint8Array([asn >>> 24, (asn >>> 16) & 255, (asn >>> 8) & 255, asn & 255]);
  return { range: { family: 4, start: key, end: key }, note: note || undefined };
}

/** The AS number of an entry of an ASN list. */
export function asnOfEntry(entry: ListEntry): number {
  const k = entry.range.start;
  return (((k[0] as number) << 24) | ((k[1] as number) << 16) | ((k[2] as number) << 8) | (k[3] as number)) >>> 0;
}

/** `AS64496`, `as64496` or `64496`; null when not an AS number. */
function readAsn(text: string): number | null {
  const digits = /^(?:AS)?(\d{1,10})$/i.exec(text)?.[1];
  const asn = digits === undefined ? NaN : Number(digits);
  return Number.isInteger(asn) && asn > 0 && asn <= 0xffffffff ? asn : null;
}

/** `AS64496` or `64496`, optionally followed by whitespace and a `#`/`;` comment (the note). */
function asnLine(line: string): LineResult {
  if (isBlankOrComment(line)) return null;
  const space = line.search(/\s/);
  const word = space < 0 ? line : line.slice(0, space);
  const rest = space < 0 ? '' : line.slice(space).trimStart();
  if (rest !== '' && !rest.startsWith('#') && !rest.startsWith(';')) return `unexpected text after the AS number: ${JSON.stringify(rest)}`;
  const asn = readAsn(word);
  if (asn === null) return `not an AS number: ${JSON.stringify(word)}`;
  return asnEntry(asn, rest.slice(1).trim());
}

/** Spamhaus ASN-DROP JSON lines: `{"asn":64496,"rir":...,"domain":...,"cc":...,"asname":...}`, then `{"type":"metadata",...,"records":N}`. */
function parseAsnDrop(text: string, out: Collector): ParseReport {
  let metadata: { line: number; records: unknown } | undefined;
  forEachLine(text, (raw, number) => {
    const line = raw.trim();
    if (line === '') return;
    const record = line.startsWith('{') ? parseJson(line) : undefined;
    if (record === undefined || !isObject(record)) {
      out.skip(number, `not a JSON object: ${JSON.stringify(line.length > 60 ? line.slice(0, 60) + '...' : line)}`);
    } else if (record['type'] === 'metadata') {
      metadata = { line: number, records: record['records'] };
    } else {
      const asn = typeof record['asn'] === 'number' || typeof record['asn'] === 'string' ? readAsn(String(record['asn'])) : null;
      if (asn === null) out.skip(number, 'no "asn" number');
      else out.add(asnEntry(asn, [record['asname'], record['domain'], record['cc']].filter((v) => typeof v === 'string' && v !== '').join(' ')));
    }
  });
  if (metadata !== undefined && typeof metadata.records === 'number' && metadata.records !== out.items) {
    throw new ListFormatError(`${out.origin}:${metadata.line}: the metadata says ${metadata.records} records, the file has ${out.items}`);
  }
  return out.finish();
}

// ---------------------------------------------------------------------------
// JSON formats

/** Spamhaus DROP JSON lines: `{"cidr":...,"sblid":...,"rir":...}`, then `{"type":"metadata",...,"records":N}`. */
function parseSpamhausJson(text: string, out: Collector): ParseReport {
  const origin = out.origin;
  let metadata: { line: number; records: unknown } | undefined;
  forEachLine(text, (raw, number) => {
    const line = raw.trim();
    if (line === '') return;
    // Only what may be an object or array goes to JSON.parse, which throws on anything else.
    const record = line.startsWith('{') || line.startsWith('[') ? parseJson(line) : undefined;
    if (record === undefined) {
      out.skip(number, `not a JSON object: ${JSON.stringify(line.length > 60 ? line.slice(0, 60) + '...' : line)}`);
    } else if (!isObject(record)) {
      out.skip(number, 'not a JSON object');
    } else if (record['type'] === 'metadata') {
      metadata = { line: number, records: record['records'] };
    } else if (typeof record['cidr'] !== 'string') {
      out.skip(number, 'no "cidr" string');
    } else {
      const entry = rangeEntry(record['cidr'], typeof record['sblid'] === 'string' ? record['sblid'] : undefined);
      if (typeof entry === 'string') out.skip(number, entry);
      else out.add(entry);
    }
  });
  // A count that disagrees with the lines present means a truncated or mangled download.
  if (metadata !== undefined && typeof metadata.records === 'number' && metadata.records !== out.items) {
    throw new ListFormatError(`${origin}:${metadata.line}: the metadata says ${metadata.records} records, the file has ${out.items}`);
  }
  return out.finish();
}

/** The value of a JSON text, or undefined when it is not JSON (only lines that look like objects get here). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
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
function parsePrefixDocument(text: string, out: Collector, what: string, arrays: PrefixArray[]): ParseReport {
  const origin = out.origin;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ListFormatError(`${origin}: not a JSON document (${(err as Error).message})`);
  }
  if (!isObject(doc)) throw new ListFormatError(`${origin}: not ${what} document (not a JSON object)`);
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
