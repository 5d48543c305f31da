/**
 * One MaxMind DB file (country or ASN), kept current: loaded and compiled in a worker thread,
 * reloaded when the file changes. A new copy replaces the last good one only once it compiled;
 * otherwise the last good copy stays in service and the error (naming the file) is reported by
 * status().lastError, the log and /health, as lists do.
 */
import { stat } from 'node:fs/promises';
import { type Logger, silentLogger } from 'spop';
import { watchFile } from '../sources/file-watch.js';
import { runWorkerJob } from '../table/compile.js';
import { type GeoJob, type GeoJobResult, runGeoJob } from './geo-job.js';
import { GeoTable } from './geo-table.js';
import type { GeoDatabaseStatus } from '../types.js';
import type { GeoKind } from './mmdb.js';

export interface GeoDatabaseConfig {
  readonly kind: GeoKind;
  readonly path: string;
  /** Largest file read. */
  readonly maxBytes: number;
  /** Most networks (intervals) compiled. */
  readonly maxEntries: number;
}

/** What status() tells (types.ts, for the admin API). */
export type GeoStatus = GeoDatabaseStatus;

export interface GeoSourceOptions {
  readonly logger?: Logger;
  readonly now?: () => number;
  /** Whether start() watches the file. Default true. */
  readonly watch?: boolean;
  /** Files from this size on are compiled in a worker thread. Default 64 KiB (a real database is MBs). */
  readonly workerThresholdBytes?: number;
}

const DEFAULT_WORKER_THRESHOLD_BYTES = 64 * 1024;
/** Heap of the compiling thread: the file (at most max-bytes) and its tables. */
const WORKER_HEAP_MB = 1024;
/** A real database compiles in about a second; a crafted one that keeps the thread busy is stopped. */
const WORKER_TIMEOUT_MS = 120_000;

interface GoodCopy {
  readonly table: GeoTable;
  readonly digest: string;
  readonly loadedAt: number;
}

export class GeoSource {
  readonly config: GeoDatabaseConfig;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #watchFile: boolean;
  readonly #workerThresholdBytes: number;
  #good: GoodCopy | undefined;
  #lastError: string | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #unwatch: (() => void) | undefined;

  constructor(config: GeoDatabaseConfig, options: GeoSourceOptions = {}) {
    this.config = config;
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.#watchFile = options.watch ?? true;
    this.#workerThresholdBytes = options.workerThresholdBytes ?? DEFAULT_WORKER_THRESHOLD_BYTES;
  }

  /** The table in service, after the first good load. */
  current(): GeoTable | undefined {
    return this.#good?.table;
  }

  /** Reads the file: the new table, or the one in service when unchanged; throws (naming the file) when it cannot be used. */
  async load(): Promise<GeoTable> {
    return (await this.refresh()) ?? (this.#good as GoodCopy).table;
  }

  /** Re-reads the file: the new table when it changed and compiled, undefined when unchanged; rejects keeping the last good copy. */
  refresh(): Promise<GeoTable | undefined> {
    const run = this.#queue.then(() => this.#read());
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Watches the file (file-watch.ts); onUpdate gets each new table. */
  start(onUpdate: (table: GeoTable) => void): void {
    if (!this.#watchFile || this.#unwatch !== undefined) return;
    this.#unwatch = watchFile(this.config.path, () => void this.#refreshAndNotify(onUpdate), {
      logger: this.#logger,
      what: `geo ${this.config.kind}`,
    });
  }

  stop(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  status(): GeoStatus {
    const good = this.#good;
    return {
      kind: this.config.kind,
      path: this.config.path,
      networks: good?.table.table.intervals ?? 0,
      labels: good?.table.labelCount ?? 0,
      databaseType: good?.table.databaseType ?? null,
      builtAt: good === undefined || good.table.builtAt === 0 ? null : good.table.builtAt,
      loadedAt: good?.loadedAt ?? null,
      lastError: this.#lastError,
    };
  }

  async #refreshAndNotify(onUpdate: (table: GeoTable) => void): Promise<void> {
    let table: GeoTable | undefined;
    try {
      table = await this.refresh();
    } catch (err) {
      this.#logger.warn(`${(err as Error).message}; keeping the last good copy`, { geo: this.config.kind });
      return;
    }
    if (table !== undefined && this.#unwatch !== undefined) onUpdate(table);
  }

  async #read(): Promise<GeoTable | undefined> {
    const { path: file, kind, maxBytes, maxEntries } = this.config;
    try {
      let size: number;
      try {
        size = (await stat(file)).size;
      } catch (err) {
        throw new Error(`cannot read ${file}: ${(err as Error).message}`);
      }
      const job: GeoJob = { path: file, kind, maxBytes, maxNetworks: maxEntries, unchangedDigest: this.#good?.digest };
      const result = size < this.#workerThresholdBytes ? runGeoJob(job) : await runInWorker(job);
      if (!result.ok) throw new Error(result.error);
      this.#lastError = null;
      if (result.unchanged) return undefined;
      const table = new GeoTable(result.data);
      this.#good = { table, digest: result.digest, loadedAt: this.#now() };
      this.#logger.info(`geo ${kind}: ${table.table.intervals} networks of ${table.labelCount} ${kind === 'country' ? 'countries' : 'ASNs'} loaded`, {
        path: file,
        databaseType: table.databaseType,
      });
      return table;
    } catch (err) {
      const message = `geo ${kind}-db: ${(err as Error).message}`;
      this.#lastError = message;
      throw new Error(message, { cause: err });
    }
  }
}

function runInWorker(job: GeoJob): Promise<GeoJobResult> {
  return runWorkerJob<GeoJobResult>(new URL('./geo-worker.js', import.meta.url), job, {
    thread: 'the compiling thread',
    heapMb: WORKER_HEAP_MB,
    timeoutMs: WORKER_TIMEOUT_MS,
    failed: (problem) => ({ ok: false, error: `${job.path}: ${problem}` }),
  });
}
