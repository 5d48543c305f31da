/**
 * The combined address table: one lookup answers for the allowlist (configured ranges and files)
 * and every address list, where the engine asked each of their tables in turn. table/merge.ts
 * merges their tables; here a combination (which allowlist sources and which lists cover an
 * address, and for CSV lists the entry's own score) becomes what the engine needs: allowed or not,
 * and the list matches in configuration order, built once and frozen.
 *
 * The table is rebuilt whenever the allowlist or the lists change, in a worker thread when large
 * (the tables' records are in SharedArrayBuffers: nothing is copied); the latest request wins and
 * a superseded build is discarded. Until a build for the current sources is in, the engine asks
 * the tables one by one: answers never wait for it.
 */
import type { Logger } from 'spop';
import { PackedListEntries } from '../sources/list-entries.js';
import { IntervalTable, type IntervalTableData } from '../table/index.js';
import { ABSENT, type MergeJob, type MergeResult, NO_KEY, mergeJob, mergeJobRecords, mergeTables, mergeTablesInWorker } from '../table/merge.js';
import type { ListEntries, Match } from '../types.js';
import { type CompiledAllowlist, type ListSlot, entryMatch } from './list-slot.js';

export interface CombinedTableOptions {
  /** Merge in a worker thread from this many records (all tables together) on; below, inline (measured: about 1 ms for 1,000 records, 5 ms before the JIT warms up). Default 2,000. */
  readonly workerThreshold?: number;
  /** A merge thread still busy after this long is stopped; the per-table lookups stay. Default 60 s. */
  readonly timeoutMs?: number;
  /** Distinct combinations allowed; beyond, the per-table lookups stay (with a warning). Default 65,536. */
  readonly maxCombinations?: number;
}

export const DEFAULT_COMBINED_WORKER_THRESHOLD = 2_000;
export const DEFAULT_COMBINED_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_COMBINATIONS = 65_536;

/** The combined table of one allowlist and one set of lists, and what its combinations mean. */
export interface CombinedTable {
  /** The sources it was built from: it answers only while they are the engine's. */
  readonly allow: CompiledAllowlist;
  readonly lists: readonly ListSlot[];
  /** Address to combination id (-1: no source covers it). */
  readonly table: IntervalTable;
  /** Per combination: 1 when an allowlist source covers it. */
  readonly allowed: Uint8Array;
  /** Per combination: the list matches, in configuration order (frozen). */
  readonly matches: readonly (readonly Match[])[];
}

const NO_KEYS = new Uint8Array(0);

function allowTables(allow: CompiledAllowlist): IntervalTable[] {
  return [allow.table, ...(allow.files ?? []).map((file) => file.table)];
}

/** The entries' own scores as merge keys (NO_KEY: none): the loaded arrays themselves when packed (shared, not copied). */
function scoreKeys(entries: ListEntries): Uint8Array {
  if (entries instanceof PackedListEntries) return entries.data.scores;
  const keys = new Uint8Array(entries.length);
  for (let i = 0; i < keys.length; i++) {
    const score = entries.scoreAt(i);
    keys[i] = score < 0 ? NO_KEY : score;
  }
  return keys;
}

/** The merge job of an allowlist and lists: the allowlist's tables first, then the lists in order. */
export function combinedJob(allow: CompiledAllowlist, lists: readonly ListSlot[], maxCombinations: number): MergeJob {
  const tables: { table: IntervalTableData; keys: Uint8Array }[] = allowTables(allow).map((table) => ({ table: table.toData(), keys: NO_KEYS }));
  for (const slot of lists) tables.push({ table: slot.compiled.table.toData(), keys: scoreKeys(slot.compiled.list.entries) });
  return mergeJob(tables, maxCombinations);
}

/** What the merged combinations mean for these sources. */
export function combinedTable(allow: CompiledAllowlist, lists: readonly ListSlot[], result: MergeResult & { ok: true }): CombinedTable {
  const allowCount = allowTables(allow).length;
  const width = allowCount + lists.length;
  const { combinations } = result;
  const count = combinations.length / width;
  const allowed = new Uint8Array(count);
  const matches: (readonly Match[])[] = [];
  for (let c = 0; c < count; c++) {
    const at = c * width;
    for (let k = 0; k < allowCount; k++) if (combinations[at + k] !== ABSENT) allowed[c] = 1;
    const found: Match[] = [];
    if (allowed[c] === 0) {
      for (let j = 0; j < lists.length; j++) {
        const key = combinations[at + allowCount + j] as number;
        if (key === ABSENT) continue;
        const slot = lists[j] as ListSlot;
        found.push(key === NO_KEY ? slot.match : entryMatch(slot, key));
      }
    }
    matches.push(Object.freeze(found));
  }
  return { allow, lists, table: IntervalTable.fromFlattened(result.table), allowed, matches };
}

/** Rebuilds the combined table when asked, one build at a time, and hands each one in if its sources are still current. */
export class CombinedTableBuilder {
  readonly #options: Required<CombinedTableOptions>;
  readonly #logger: Logger | undefined;
  readonly #current: () => { allow: CompiledAllowlist; lists: readonly ListSlot[] };
  readonly #install: (table: CombinedTable) => void;
  #running: Promise<void> | undefined;
  #again = false;

  constructor(
    options: CombinedTableOptions,
    logger: Logger | undefined,
    current: () => { allow: CompiledAllowlist; lists: readonly ListSlot[] },
    install: (table: CombinedTable) => void,
  ) {
    this.#options = {
      workerThreshold: options.workerThreshold ?? DEFAULT_COMBINED_WORKER_THRESHOLD,
      timeoutMs: options.timeoutMs ?? DEFAULT_COMBINED_TIMEOUT_MS,
      maxCombinations: options.maxCombinations ?? DEFAULT_MAX_COMBINATIONS,
    };
    this.#logger = logger;
    this.#current = current;
    this.#install = install;
  }

  /** The sources changed: build for them (after the running build, whose result is then discarded). */
  request(): void {
    this.#again = true;
    this.#running ??= this.#run();
  }

  /** Resolves when no build is running or asked for. */
  async settled(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  /** One build for the current sources; its result is dropped if they changed meanwhile. */
  async #build(): Promise<void> {
    const { allow, lists } = this.#current();
    const started = performance.now();
    const job = combinedJob(allow, lists, this.#options.maxCombinations);
    const records = mergeJobRecords(job);
    const result: MergeResult =
      records < this.#options.workerThreshold ? mergeTables(job) : await mergeTablesInWorker(job, { timeoutMs: this.#options.timeoutMs });
    if (this.#again) return; // superseded: the next turn builds for the current sources
    if (!result.ok) {
      const message = `combined address table: ${result.error}: keeping per-table lookups`;
      if (result.tooMany) this.#logger?.warn(message, { lists: lists.length });
      else this.#logger?.error(message, { lists: lists.length });
      return;
    }
    this.#install(combinedTable(allow, lists, result));
    this.#logger?.debug('combined address table built', {
      records,
      intervals: result.table.intervals,
      combinations: result.combinations.length / (job.sources.length || 1),
      ms: Math.round(performance.now() - started),
    });
  }

  async #run(): Promise<void> {
    try {
      while (this.#again) {
        // Changes made together (a reload sets the allowlist, then the lists) make one build.
        await Promise.resolve();
        this.#again = false;
        try {
          await this.#build();
        } catch (err) {
          // A bug here must not take the process down: the per-table lookups answer the same.
          this.#logger?.error(`combined address table: ${String(err)}: keeping per-table lookups`);
        }
      }
    } finally {
      this.#running = undefined;
    }
  }
}
