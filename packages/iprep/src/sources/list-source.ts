/**
 * One configured list, from a file or a URL, kept current.
 *
 * A new copy only replaces the last good one after it parses and passes the sanity
 * checks (maxBytes, maxEntries, minEntries, maxShrink); otherwise the last good copy
 * stays in service and the failure is reported through status().lastError and the
 * logger. URL lists are fetched with conditional GETs and their last good copy is kept
 * on disk, so an agent that starts without network still has its lists.
 *
 * Bodies are streamed with a byte limit (Content-Length and file sizes are checked
 * first), and parsed and compiled by one job that runs in a worker thread when the body
 * is not small: the main thread only moves buffers and swaps a reference. A list file that
 * is not small is read and hashed by that job too, so its bytes never reach the main thread.
 */
import { stat } from 'node:fs/promises';
import { type Logger, silentLogger } from 'spop';
import { LIST_DEFAULTS } from '../config/defaults.js';
import { IntervalTable } from '../table/interval-table.js';
import type { ListConfig, ListStatus, LoadedList } from '../types.js';
import { watchFile } from './file-watch.js';
import { type ListBody, BodyTooLargeError, readListBody, tooLargeMessage } from './list-body.js';
import { ListCache, readBoundedFile } from './list-cache.js';
import { compileListBody, DEFAULT_WORKER_THRESHOLD_BYTES } from './list-compiler.js';
import type { ListJobResult } from './list-job.js';
import { PackedListEntries } from './list-entries.js';

export interface ListSourceOptions {
  /** Where URL lists keep their last good copy (created when first needed). */
  cacheDir: string;
  logger?: Logger;
  /** HTTP client. Default: the global fetch. */
  fetch?: typeof globalThis.fetch;
  /** Clock for loadedAt and the cache's fetchedAt (ms since epoch). Default Date.now. */
  now?: () => number;
  /** Whether start() watches list files for changes. Default true. URL lists are refreshed on their timer regardless. */
  watch?: boolean;
  /** How long one fetch may take, body included (ms). Default 30 s. */
  fetchTimeoutMs?: number;
  /** Bodies from this many bytes on are parsed in a worker thread. Default 64 KiB. */
  workerThresholdBytes?: number;
}

const DEFAULTS = {
  watch: true,
  fetchTimeoutMs: 30_000,
  /** Refresh periods vary by +-10% so that many agents do not fetch in step. */
  refreshJitter: 0.1,
} as const;

const USER_AGENT = 'iprep-spoa (list refresh)';

/** HTTP validators of the last good copy, sent back as If-None-Match / If-Modified-Since. */
interface Validators {
  readonly etag?: string;
  readonly lastModified?: string;
}

interface GoodCopy {
  list: LoadedList;
  /** Digest of the raw bytes, to tell an unchanged file or body from a new one. */
  readonly digest: string;
  validators: Validators;
}

/** A fetched body with its validators; `not-modified` after a 304. */
type FetchResult = { readonly body: ListBody; readonly validators: Validators } | 'not-modified';

/** What start() set up; callbacks from an older start() see a different object and do nothing. */
interface Running {
  readonly onUpdate: (list: LoadedList) => void;
  timer?: NodeJS.Timeout;
  unwatch?: (() => void) | undefined;
}

export class ListSource {
  readonly config: ListConfig;
  readonly #logger: Logger;
  readonly #fetch: typeof globalThis.fetch;
  readonly #now: () => number;
  readonly #watchFiles: boolean;
  readonly #fetchTimeoutMs: number;
  readonly #workerThresholdBytes: number | undefined;
  readonly #maxBytes: number;
  readonly #maxEntries: number;
  readonly #cache: ListCache;
  #good: GoodCopy | undefined;
  #lastError: string | null = null;
  /** Until the first load() settles, the list is loading. */
  #loading = true;
  /** load() and refresh() run one at a time, in call order. */
  #queue: Promise<unknown> = Promise.resolve();
  #running: Running | undefined;
  /** Aborted by stop(), so that no fetch outlives the source. */
  #stopSignal = new AbortController();

  constructor(config: ListConfig, options: ListSourceOptions) {
    if ((config.path === undefined) === (config.url === undefined)) {
      throw new TypeError(`list ${config.name}: exactly one of path and url is needed`);
    }
    this.config = config;
    this.#logger = options.logger ?? silentLogger;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#now = options.now ?? Date.now;
    this.#watchFiles = options.watch ?? DEFAULTS.watch;
    this.#fetchTimeoutMs = options.fetchTimeoutMs ?? DEFAULTS.fetchTimeoutMs;
    this.#workerThresholdBytes = options.workerThresholdBytes;
    this.#maxBytes = config.maxBytes ?? LIST_DEFAULTS.maxBytes;
    this.#maxEntries = config.maxEntries ?? LIST_DEFAULTS.maxEntries;
    this.#cache = new ListCache(options.cacheDir, config.name);
  }

  /**
   * First load: the file; or the URL, falling back to the last good copy on disk when the
   * fetch fails. Throws (message naming the list and the problem) when there is nothing usable.
   */
  load(): Promise<LoadedList> {
    return this.#serialize(async () => {
      try {
        if (this.config.url === undefined) {
          const list = (await this.#readChangedFile()) ?? (this.#good as GoodCopy).list;
          this.#lastError = null;
          return list;
        }
        return await this.#loadUrl(this.config.url);
      } catch (err) {
        this.#lastError = (err as Error).message;
        throw err;
      } finally {
        this.#loading = false;
      }
    });
  }

  /**
   * A URL list's last good copy from disk, without fetching (undefined when there is none or it is
   * unusable): what the agent can answer with at once while load() fetches. Files: undefined.
   */
  loadCached(): Promise<LoadedList | undefined> {
    return this.#serialize(async () => {
      const url = this.config.url;
      if (url !== undefined && this.#good === undefined) await this.#restoreFromCache(url);
      return this.#good?.list;
    });
  }

  /**
   * Re-reads / re-fetches now. Resolves the new list when the content changed and passed the
   * sanity checks, undefined when unchanged; on failure keeps the last good copy, records
   * status().lastError, and rejects.
   */
  refresh(): Promise<LoadedList | undefined> {
    return this.#serialize(async () => {
      try {
        const list = this.config.url === undefined ? await this.#readChangedFile() : await this.#fetchChanged(this.config.url);
        this.#lastError = null;
        return list;
      } catch (err) {
        this.#lastError = (err as Error).message;
        throw err;
      }
    });
  }

  /**
   * Keeps the list current: URL lists are refreshed every refreshMs (+-10%), files are watched
   * (when the watch option is on). onUpdate gets each new good copy; failures are logged.
   * Nothing here keeps the process alive.
   */
  start(onUpdate: (list: LoadedList) => void): void {
    if (this.#running !== undefined) throw new Error(`list ${this.config.name}: already started`);
    const run: Running = { onUpdate };
    this.#running = run;
    if (this.config.url !== undefined) this.#scheduleRefresh(run);
    else if (this.#watchFiles) {
      const fields = { list: this.config.name };
      run.unwatch = watchFile(this.config.path as string, () => void this.#refreshAndNotify(run), {
        logger: this.#logger,
        what: `list ${this.config.name}`,
        fields,
      });
    }
  }

  stop(): void {
    const run = this.#running;
    this.#running = undefined;
    if (run !== undefined) {
      clearTimeout(run.timer);
      run.unwatch?.();
    }
    this.#stopSignal.abort(new Error('the list source was stopped'));
    this.#stopSignal = new AbortController();
  }

  current(): LoadedList | undefined {
    return this.#good?.list;
  }

  status(): ListStatus {
    const list = this.#good?.list;
    return {
      name: this.config.name,
      format: this.config.format,
      origin: list?.origin ?? this.config.url ?? this.config.path ?? '',
      entries: list?.entries.length ?? 0,
      loadedAt: list?.loadedAt ?? null,
      lastError: this.#lastError,
      loading: this.#loading,
    };
  }

  // -------------------------------------------------------------------------
  // Files

  /** The file as a new good copy, or undefined when its content is the one in service. */
  async #readChangedFile(): Promise<LoadedList | undefined> {
    const file = this.config.path as string;
    const from = { origin: file, parseOrigin: file, loadedAt: this.#now(), validators: {} };
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch (err) {
      throw this.#error(`cannot read ${file}: ${(err as Error).message}`, err);
    }
    if (size > this.#maxBytes) throw this.#error(`${file}: ${tooLargeMessage('the file', size, this.#maxBytes)}`);
    if (size >= (this.#workerThresholdBytes ?? DEFAULT_WORKER_THRESHOLD_BYTES)) {
      // Read, hashed and parsed in the parsing thread: the main thread never holds the bytes.
      const job = { path: file, maxBytes: this.#maxBytes, unchangedDigest: this.#good?.digest };
      const result = await compileListBody(
        { format: this.config.format, origin: file, body: [], file: job, maxEntries: this.#maxEntries },
        { workerThresholdBytes: 0 },
      );
      if (result.ok && result.unchanged === true) return undefined;
      return this.#adopt(result, result.ok ? (result.digest as string) : '', from).list;
    }
    let body: ListBody;
    try {
      body = await readBoundedFile(file, this.#maxBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) throw this.#error(err.message, err);
      throw this.#error(`cannot read ${file}: ${(err as Error).message}`, err);
    }
    if (this.#good?.digest === body.digest) return undefined;
    return (await this.#accept(body, from)).list;
  }

  // -------------------------------------------------------------------------
  // URLs

  async #loadUrl(url: string): Promise<LoadedList> {
    if (this.#good === undefined) await this.#restoreFromCache(url);
    try {
      const list = (await this.#fetchChanged(url)) ?? (this.#good as GoodCopy).list;
      this.#lastError = null;
      return list;
    } catch (err) {
      const good = this.#good;
      if (good === undefined) throw new Error(`${(err as Error).message}; no last good copy in ${this.#cache.dir}`, { cause: err });
      this.#lastError = (err as Error).message;
      this.#logger.warn(`${this.#lastError}; using the last good copy`, { list: this.config.name, origin: good.list.origin });
      return good.list;
    }
  }

  /** Makes the copy on disk the good one, when it is for this URL and still passes the checks. */
  async #restoreFromCache(url: string): Promise<void> {
    try {
      const copy = await this.#cache.read(this.#maxBytes);
      if (copy === undefined) return;
      if (copy.meta.url !== url) {
        this.#logger.info(`list ${this.config.name}: the cached copy is of another URL, ignored`, { cached: copy.meta.url });
        return;
      }
      const { etag, lastModified } = copy.meta;
      await this.#accept(copy.body, {
        origin: `${this.#cache.bodyPath} (last good copy of ${url})`,
        parseOrigin: this.#cache.bodyPath,
        loadedAt: copy.meta.fetchedAt,
        validators: { ...(etag === undefined ? {} : { etag }), ...(lastModified === undefined ? {} : { lastModified }) },
      });
    } catch (err) {
      this.#logger.warn(`list ${this.config.name}: the cached copy is unusable: ${(err as Error).message}`, { list: this.config.name });
    }
  }

  /** Fetches the URL; a new good copy, or undefined when the server or the body says nothing changed. */
  async #fetchChanged(url: string): Promise<LoadedList | undefined> {
    const result = await this.#get(url, this.#good?.validators);
    const good = this.#good;
    if (result !== 'not-modified') {
      if (good?.digest !== result.body.digest) {
        const loadedAt = this.#now();
        const { list, body } = await this.#accept(result.body, { origin: url, parseOrigin: url, loadedAt, validators: result.validators });
        await this.#cache.write(body, { url, ...result.validators, fetchedAt: loadedAt }).catch((err: Error) => {
          this.#logger.warn(`list ${this.config.name}: cannot save the last good copy: ${err.message}`, { list: this.config.name });
        });
        return list;
      }
      (good as GoodCopy).validators = result.validators;
    }
    // Unchanged: a copy restored from disk is now confirmed by the server.
    if (good !== undefined && good.list.origin !== url) good.list = { ...good.list, origin: url };
    return undefined;
  }

  async #get(url: string, validators: Validators | undefined): Promise<FetchResult> {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT };
    if (validators?.etag !== undefined) headers['if-none-match'] = validators.etag;
    if (validators?.lastModified !== undefined) headers['if-modified-since'] = validators.lastModified;
    const conditional = validators?.etag !== undefined || validators?.lastModified !== undefined;
    // Not AbortSignal.any([AbortSignal.timeout(ms), ...]): on Node 20 the timeout signal inside it can be
    // garbage-collected before it fires (nodejs/node#57736), leaving the fetch to undici's 300 s timeout.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(timeoutError(this.#fetchTimeoutMs)), this.#fetchTimeoutMs);
    const stopped = this.#stopSignal.signal; // stop() replaces the controller: keep this one
    const onStop = (): void => deadline.abort(stopped.reason);
    if (stopped.aborted) onStop();
    else stopped.addEventListener('abort', onStop, { once: true });
    const signal = deadline.signal;
    try {
      const response = await this.#fetch(url, { headers, signal, redirect: 'follow' });
      if (response.status === 304 && conditional) {
        await response.body?.cancel();
        return 'not-modified';
      }
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new Error(`HTTP ${response.status} ${response.statusText}`.trimEnd());
      }
      // Refused before reading a byte when the server says it is too large; counted as it streams otherwise.
      const declared = Number(response.headers.get('content-length') ?? NaN);
      if (declared > this.#maxBytes) {
        await response.body?.cancel();
        throw new BodyTooLargeError(tooLargeMessage('the body', declared, this.#maxBytes));
      }
      const body = response.body === null ? await readListBody([], this.#maxBytes, 'the body') : await readListBody(response.body, this.#maxBytes, 'the body');
      const etag = response.headers.get('etag');
      const lastModified = response.headers.get('last-modified');
      return {
        body,
        validators: { ...(etag === null ? {} : { etag }), ...(lastModified === null ? {} : { lastModified }) },
      };
    } catch (err) {
      // Whatever is left of the download goes: an oversized body is not read to its end.
      deadline.abort(err);
      throw this.#error(`GET ${url}: ${describeError(err)}`, err);
    } finally {
      clearTimeout(timer);
      stopped.removeEventListener('abort', onStop);
    }
  }

  #scheduleRefresh(run: Running): void {
    const jitter = 1 - DEFAULTS.refreshJitter + 2 * DEFAULTS.refreshJitter * Math.random();
    run.timer = setTimeout(async () => {
      await this.#refreshAndNotify(run);
      if (this.#running === run) this.#scheduleRefresh(run);
    }, this.config.refreshMs * jitter).unref();
  }

  // -------------------------------------------------------------------------
  // Shared

  async #refreshAndNotify(run: Running): Promise<void> {
    let list: LoadedList | undefined;
    try {
      list = await this.refresh();
    } catch (err) {
      this.#logger.warn(`${(err as Error).message}; keeping the last good copy`, { list: this.config.name });
      return;
    }
    if (list === undefined || this.#running !== run) return;
    try {
      run.onUpdate(list);
    } catch (err) {
      this.#logger.error(`list ${this.config.name}: the update handler failed: ${(err as Error).message}`, { list: this.config.name });
    }
  }

  /**
   * Parses and compiles a copy (in a worker thread unless small) and makes it the good one if it
   * passes the sanity checks; throws (naming the list) otherwise. Gives the body back (its blocks
   * went to the worker thread and returned) for the cache.
   */
  async #accept(
    body: ListBody,
    from: { origin: string; parseOrigin: string; loadedAt: number; validators: Validators },
  ): Promise<{ list: LoadedList; body: readonly Uint8Array[] }> {
    const result = await compileListBody(
      { format: this.config.format, origin: from.parseOrigin, body: body.blocks, maxEntries: this.#maxEntries },
      this.#workerThresholdBytes === undefined ? {} : { workerThresholdBytes: this.#workerThresholdBytes },
    );
    return this.#adopt(result, body.digest, from);
  }

  /** Makes a parsed copy (of bytes with this digest) the good one if it passes the sanity checks; throws (naming the list) otherwise. */
  #adopt(
    result: ListJobResult,
    digest: string,
    from: { origin: string; parseOrigin: string; loadedAt: number; validators: Validators },
  ): { list: LoadedList; body: readonly Uint8Array[] } {
    if (!result.ok) throw this.#error(result.error);
    if (result.unchanged === true) throw this.#error(`${from.parseOrigin}: unchanged content given as new`);
    const entries = new PackedListEntries(result.entries);
    const count = entries.length;
    if (count < this.config.minEntries) {
      throw this.#error(`${from.parseOrigin}: ${count} entries, fewer than the ${this.config.minEntries} required (minEntries)`);
    }
    const last = this.#good?.list.entries.length;
    if (last !== undefined && count < last * (1 - this.config.maxShrink)) {
      throw this.#error(`${from.parseOrigin}: ${count} entries against ${last} in the last good copy, a shrink beyond maxShrink ${this.config.maxShrink}`);
    }
    const list: LoadedList = {
      name: this.config.name,
      entries,
      table: IntervalTable.fromFlattened(result.table),
      loadedAt: from.loadedAt,
      origin: from.origin,
      warnings: result.warnings,
      insideInternal: result.insideInternal,
    };
    this.#good = { list, digest, validators: from.validators };
    this.#logger.info(`list ${this.config.name}: ${count} entries loaded`, { list: this.config.name, origin: from.origin });
    if (result.warnings.length > 0) {
      this.#logger.warn(`list ${this.config.name}: invalid items skipped`, {
        list: this.config.name,
        warnings: result.warnings.length,
        first: result.warnings[0],
      });
    }
    return { list, body: result.body };
  }

  #serialize<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(task);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  #error(problem: string, cause?: unknown): Error {
    return new Error(`list ${this.config.name}: ${problem}`, cause === undefined ? undefined : { cause });
  }
}

/** The same error AbortSignal.timeout() aborts with, so describeError() reads both alike. */
function timeoutError(ms: number): Error {
  const err = new Error(`timed out after ${ms} ms`);
  err.name = 'TimeoutError';
  return err;
}

/** fetch() hides the useful part (ECONNREFUSED, a timeout) in the cause. */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError') return err.message.startsWith('timed out') ? err.message : 'timed out';
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return err.message + cause;
}
