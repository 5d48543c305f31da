/**
 * `spoa decisions import`: decisions from plain values (one a line), CSV or JSON (an array, or one
 * value per line: JSON Lines), each checked here by the admin API's own rules, so that a bad line is
 * reported with its number and the others still go.
 */
import { decisionInputFromJson } from '../admin/decision-input.js';
import { isRecord } from '../admin/guards.js';
import { parseRange } from '../net/address.js';
import type { DecisionBody } from './client.js';

export const IMPORT_FORMATS = ['plain', 'csv', 'json'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/** Largest file read, and most lines (or JSON array items) in one import: beyond, split the file. */
export const MAX_IMPORT_BYTES = 64 * 1024 * 1024;
export const MAX_IMPORT_LINES = 1_000_000;
/** Problems kept with their text; beyond, only counted (a file of garbage must not fill memory with messages). */
export const MAX_PROBLEMS_KEPT = 1000;

/** CSV columns; without a header line they are value,action,duration,reason. */
const CSV_COLUMNS = ['value', 'action', 'duration', 'reason', 'score', 'category', 'force'] as const;
type CsvColumn = (typeof CSV_COLUMNS)[number];
const HEADERLESS: readonly CsvColumn[] = ['value', 'action', 'duration', 'reason'];

export interface ImportRow {
  /** `line 3`, or `item 3` of a JSON array. */
  readonly where: string;
  readonly body: DecisionBody;
}

export interface ImportProblem {
  readonly where: string;
  readonly message: string;
}

/** Bad lines: the first MAX_PROBLEMS_KEPT with their reason, all of them counted. */
export class ImportProblems {
  readonly kept: ImportProblem[] = [];
  count = 0;

  add(where: string, message: string): void {
    this.count++;
    if (this.kept.length < MAX_PROBLEMS_KEPT) this.kept.push({ where, message });
  }
}

export interface ParsedImport {
  readonly rows: readonly ImportRow[];
  readonly problems: ImportProblems;
}

/** Defaults of every decision of the file (flags): a field the file gives wins. */
export type ImportDefaults = Pick<DecisionBody, 'action' | 'duration' | 'reason' | 'force'>;

/** A whole-file problem: too large, not JSON, an unknown CSV column (exit 2). */
export class ImportFileError extends Error {}

/** The format a file name says: `.csv`, `.json`/`.jsonl`/`.ndjson`, else plain. */
export function formatOfPath(path: string): ImportFormat {
  const lower = path.toLowerCase();
  if (lower.endsWith('.csv')) return 'csv';
  if (/\.(json|jsonl|ndjson)$/.test(lower)) return 'json';
  return 'plain';
}

export function parseImport(text: string, format: ImportFormat, defaults: ImportDefaults = {}): ParsedImport {
  if (Buffer.byteLength(text) > MAX_IMPORT_BYTES) throw new ImportFileError(`the file is larger than ${MAX_IMPORT_BYTES} bytes: split it`);
  // Counted before splitting: a file of empty lines would otherwise make millions of strings first.
  for (let i = text.indexOf('\n'), n = 1; i !== -1; i = text.indexOf('\n', i + 1)) {
    if (++n > MAX_IMPORT_LINES) throw new ImportFileError(`more than ${MAX_IMPORT_LINES} lines: split the file`);
  }
  const rows: ImportRow[] = [];
  const problems = new ImportProblems();
  const add = (where: string, item: unknown): void => {
    try {
      rows.push({ where, body: checkedBody(item, defaults) });
    } catch (e) {
      problems.add(where, (e as Error).message);
    }
  };
  const lines = text.split(/\r?\n/);
  switch (format) {
    case 'plain':
      lines.forEach((line, i) => {
        const value = line.replace(/#.*/, '').trim();
        if (value !== '') add(`line ${i + 1}`, value);
      });
      break;
    case 'csv':
      parseCsv(lines, add, problems);
      break;
    case 'json':
      if (text.trimStart().startsWith('[')) {
        let items: unknown;
        try {
          items = JSON.parse(text);
        } catch (e) {
          throw new ImportFileError(`not a JSON array: ${(e as Error).message}`);
        }
        if (!Array.isArray(items)) throw new ImportFileError('not a JSON array');
        if (items.length > MAX_IMPORT_LINES) throw new ImportFileError(`more than ${MAX_IMPORT_LINES} items: split the file`);
        items.forEach((item, i) => add(`item ${i + 1}`, item));
        break;
      }
      lines.forEach((line, i) => {
        if (line.trim() === '') return;
        let item: unknown;
        try {
          item = JSON.parse(line);
        } catch (e) {
          problems.add(`line ${i + 1}`, `not JSON: ${(e as Error).message}`);
          return;
        }
        add(`line ${i + 1}`, item);
      });
      break;
  }
  return { rows, problems };
}

/** A value (string) or an object as POST /decisions takes it, with the defaults under it, checked. */
function checkedBody(item: unknown, defaults: ImportDefaults): DecisionBody {
  const fields = typeof item === 'string' ? { value: item } : item;
  if (!isRecord(fields)) throw new TypeError('expected an address, a CIDR or an object with "value"');
  const body: Record<string, unknown> = { ...defaults, ...fields };
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
  decisionInputFromJson(body); // the admin API's own checks, named after the field
  const value = (body['value'] as string).trim();
  try {
    parseRange(value);
  } catch (e) {
    throw new TypeError(`${JSON.stringify(value)}: ${(e as Error).message}`);
  }
  return { ...(body as unknown as DecisionBody), value };
}

function parseCsv(lines: readonly string[], add: (where: string, item: unknown) => void, problems: ImportProblems): void {
  let columns: readonly CsvColumn[] | undefined;
  lines.forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    let cells: string[];
    try {
      cells = csvCells(line);
    } catch (e) {
      problems.add(where, (e as Error).message);
      return;
    }
    if (columns === undefined) {
      const names = cells.map((c) => c.trim().toLowerCase());
      if (names.includes('value')) {
        const unknown = names.filter((n) => !(CSV_COLUMNS as readonly string[]).includes(n));
        if (unknown.length > 0) throw new ImportFileError(`${where}: unknown column ${unknown.join(', ')} (expected ${CSV_COLUMNS.join(', ')})`);
        columns = names as CsvColumn[];
        return;
      }
      columns = HEADERLESS;
    }
    if (cells.length > columns.length) {
      problems.add(where, `${cells.length} fields, more than the ${columns.length} columns (${columns.join(',')})`);
      return;
    }
    const fields: Record<string, unknown> = {};
    columns.forEach((column, c) => {
      const cell = cells[c]?.trim() ?? '';
      if (cell === '') return;
      if (column === 'score') fields[column] = /^\d+(\.\d+)?$/.test(cell) ? Number(cell) : cell;
      else if (column === 'force') fields[column] = cell === 'true' ? true : cell === 'false' ? false : cell;
      else if (column === 'duration' && /^(never|null)$/i.test(cell)) fields[column] = null;
      else fields[column] = cell;
    });
    add(where, fields);
  });
}

/** The fields of one CSV line (RFC 4180 quoting: `"a, b"`, `"say ""hi"""`); a field cannot span lines. */
export function csvCells(line: string): string[] {
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    let cell = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new TypeError('unterminated quoted field');
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            cell += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        cell += line[i++];
      }
      if (i < line.length && line[i] !== ',') throw new TypeError(`text after a closing quote at column ${i + 1}`);
    } else {
      const end = line.indexOf(',', i);
      cell = line.slice(i, end === -1 ? line.length : end);
      if (cell.includes('"')) throw new TypeError(`a quote inside an unquoted field at column ${i + 1}`);
      i = end === -1 ? line.length : end;
    }
    cells.push(cell);
    if (i >= line.length) return cells;
    i++; // the comma
  }
}
