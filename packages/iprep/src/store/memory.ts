/**
 * The default stores: everything in this process, no runtime dependency. Also the fallback the Redis
 * stores keep for when Redis is unreachable.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'spop';
import type { CounterStore, Decision, DecisionChange, DecisionStore } from '../types.js';
import { decodeDecision, encodeDecision } from './codec.js';
import { DecisionView, isExpired } from './view.js';

export interface MemoryDecisionStoreOptions {
  now?: () => number;
  /** How often expired decisions are deleted (each with a delete change). Default 1000 ms. */
  pruneIntervalMs?: number;
  /** Where a throwing onChange listener is reported. Default: a process warning. */
  logger?: Logger;
  /**
   * File the decisions are kept in across restarts: read by start(), rewritten (whole, atomically)
   * shortly after each change and by close(). One JSON decision a line. Default: none.
   */
  file?: string | null;
}

/** Changes are written together when they come in bursts. */
const SAVE_DELAY_MS = 100;

const DEFAULT_PRUNE_INTERVAL_MS = 1000;

export class MemoryDecisionStore implements DecisionStore {
  readonly #view: DecisionView;
  readonly #now: () => number;
  readonly #pruneIntervalMs: number;
  #pruneTimer: NodeJS.Timeout | undefined;
  readonly #file: string | null;
  readonly #logger: Logger | undefined;
  #saveTimer: NodeJS.Timeout | undefined;
  #saving: Promise<void> = Promise.resolve();
  #unsubscribe: (() => void) | undefined;

  constructor(options: MemoryDecisionStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#pruneIntervalMs = options.pruneIntervalMs ?? DEFAULT_PRUNE_INTERVAL_MS;
    this.#file = options.file ?? null;
    const logger = options.logger;
    this.#logger = logger;
    this.#view = new DecisionView(this.#now, (error) => {
      if (logger) logger.error('decision listener failed', { error: String(error) });
      else process.emitWarning(`decision listener failed: ${String(error)}`);
    });
  }

  async start(): Promise<void> {
    if (this.#pruneTimer) return;
    if (this.#file !== null) {
      await this.#load(this.#file);
      this.#unsubscribe = this.#view.onChange(() => this.#scheduleSave());
    }
    this.#pruneTimer = setInterval(() => this.prune(), this.#pruneIntervalMs);
    this.#pruneTimer.unref();
  }

  async put(decision: Decision): Promise<void> {
    this.#view.put(decision, encodeDecision(decision));
  }

  async delete(key: string): Promise<boolean> {
    return this.#view.delete(key);
  }

  snapshot(): readonly Decision[] {
    return this.#view.snapshot();
  }

  onChange(listener: (change: DecisionChange) => void): () => void {
    return this.#view.onChange(listener);
  }

  /** Deletes the expired decisions now (the periodic prune calls this). */
  prune(): void {
    for (const key of this.#view.expiredKeys(this.#now())) this.#view.delete(key);
  }

  async close(): Promise<void> {
    clearInterval(this.#pruneTimer);
    this.#pruneTimer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.#saveTimer !== undefined) {
      clearTimeout(this.#saveTimer);
      this.#saveTimer = undefined;
      this.#save();
    }
    await this.#saving;
  }

  /** Reads the decisions kept in `file`; a missing file is an empty one, a bad line is skipped with a warning. */
  async #load(file: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new Error(`cannot read the decisions file ${file}: ${(err as Error).message}`);
    }
    const now = this.#now();
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        const decision = decodeDecision(line);
        if (!isExpired(decision, now)) this.#view.put(decision, encodeDecision(decision));
      } catch (err) {
        this.#logger?.warn(`${file}:${i + 1}: skipped: ${(err as Error).message}`);
      }
    });
  }

  #scheduleSave(): void {
    if (this.#saveTimer !== undefined) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      this.#save();
    }, SAVE_DELAY_MS).unref();
  }

  /** Writes the current decisions after any write in progress: a temporary file, then a rename. */
  #save(): void {
    const file = this.#file as string;
    const text = this.#view
      .snapshot()
      .map((d) => `${encodeDecision(d)}\n`)
      .join('');
    this.#saving = this.#saving.then(async () => {
      try {
        await mkdir(dirname(file), { recursive: true });
        await writeFile(`${file}.tmp`, text);
        await rename(`${file}.tmp`, file);
      } catch (err) {
        this.#logger?.error('cannot write the decisions file', { file, error: (err as Error).message });
      }
    });
  }
}

/** One key's two buckets of the sliding window. */
interface Buckets {
  bucket: number;
  current: number;
  previous: number;
}

/**
 * Sliding-window counts with two fixed buckets per key, the usual approximation (and the one the Redis
 * script computes): the current bucket plus the previous one weighted by how much of it the window
 * still covers.
 */
export class MemoryCounterStore implements CounterStore {
  readonly #counts = new Map<string, Buckets>();
  /** Bucket index at the last sweep of idle keys. */
  #sweptBucket = -Infinity;

  async start(): Promise<void> {}

  async flush(deltas: ReadonlyMap<string, number>, windowMs: number, now: number): Promise<Map<string, number>> {
    return this.add(deltas, windowMs, now);
  }

  /** `flush` without the promise, for the Redis store's fallback. */
  add(deltas: ReadonlyMap<string, number>, windowMs: number, now: number): Map<string, number> {
    if (!(windowMs > 0)) throw new RangeError(`counter window must be a positive number of ms, got ${windowMs}`);
    const bucket = Math.floor(now / windowMs);
    if (bucket > this.#sweptBucket + 1) this.#sweep(bucket);
    const weight = 1 - (now - bucket * windowMs) / windowMs;
    const totals = new Map<string, number>();
    for (const [key, delta] of deltas) {
      let b = this.#counts.get(key);
      if (b === undefined) {
        b = { bucket, current: 0, previous: 0 };
        this.#counts.set(key, b);
      } else if (b.bucket !== bucket) {
        b.previous = b.bucket === bucket - 1 ? b.current : 0;
        b.current = 0;
        b.bucket = bucket;
      }
      b.current += delta;
      totals.set(key, b.current + Math.floor(b.previous * weight));
    }
    return totals;
  }

  async close(): Promise<void> {
    this.#counts.clear();
  }

  /** Forgets keys with nothing left in the window, so idle clients do not pile up. */
  #sweep(bucket: number): void {
    for (const [key, b] of this.#counts) if (b.bucket < bucket - 1) this.#counts.delete(key);
    this.#sweptBucket = bucket;
  }
}
