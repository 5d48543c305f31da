/**
 * Stores shared through Redis (a single server or a Cluster), local-first: reads come from memory,
 * Redis carries the changes between agents, and an agent keeps serving when Redis is away.
 *
 * Decisions: a hash `{prefix}:dec` (field = decision key, value = JSON) and a change log, the stream
 * `{prefix}:decstream`, both written by one Lua script per change. An agent takes the log position,
 * reads the hash in pages, then follows the log with XREAD BLOCK on its own connection; after a
 * disconnect it resumes from the last entry it read, or takes a new snapshot if the log was trimmed
 * past it. Writes that fail while Redis is down are applied locally and queued for replay.
 *
 * Counters: one key per client and time bucket, `<prefix>:c:{<client>}:<bucket>`, added to by a script
 * that returns the sliding-window count across agents.
 */
import { randomUUID } from 'node:crypto';
import { setImmediate as yieldToEventLoop, setTimeout as sleep } from 'node:timers/promises';
import { ClientClosedError, ClientOfflineError } from 'redis';
import type { Logger } from 'spop';
import type { CounterStore, Decision, DecisionChange, DecisionStore, StoreHealth } from '../types.js';
import { parseDecisionTarget } from '../decisions/decision.js';
import { decodeDecision, encodeDecision } from './codec.js';
import { MemoryCounterStore } from './memory.js';
import { backoffMs, RedisLink, RedisTimeoutError } from './redis-link.js';
import { COUNT_IN_WINDOW, DELETE_DECISION, JANITOR_ROUND, PUT_DECISION, RELEASE_JANITOR, SNAPSHOT_POSITION } from './scripts.js';
import { DecisionView } from './view.js';

export interface RedisStoreOptions {
  /** `redis://host:port` of a single server (default `redis://localhost:6379`)... */
  url?: string;
  /** ...or the seed nodes of a Redis Cluster. */
  nodes?: readonly string[];
  /** Prefix of every key, used as the hash tag of the decision keys. Default `iprep`. */
  prefix?: string;
  /** Names this agent in the log and the janitor lock. Default: a random id. */
  agentId?: string;
  logger?: Logger;
  /**
   * Longest wait for one command before it counts as failed: a write then applies locally and waits in
   * the replay queue. Default 1000 ms.
   */
  commandTimeoutMs?: number;
  /** Health says down when the decisions were last known current longer ago than this. Default 5000 ms; more than blockMs. */
  maxSyncAgeMs?: number;
  /** How long one XREAD waits for changes. Default 1000 ms. */
  blockMs?: number;
  /** Approximate length the change log is trimmed to (XADD MAXLEN ~). Default 100000. */
  maxStreamLength?: number;
  /** Clock for expiry; for counters, given means buckets follow the `now` passed to flush, not Redis' clock. */
  now?: () => number;
  /** Local expiry and janitor period. Default 1000 ms. */
  pruneIntervalMs?: number;
  /** Most writes kept for replay while Redis is down; the oldest are dropped beyond. Default 10000. */
  maxReplayQueue?: number;
  /** Longest time start() waits for Redis before going on without it. Default 2000 ms. */
  startTimeoutMs?: number;
  /** Most decisions held: a snapshot loads that many, the log adds no new key beyond. Default 200000. */
  maxDecisions?: number;
}

const DEFAULTS = {
  url: 'redis://localhost:6379',
  prefix: 'iprep',
  commandTimeoutMs: 1000,
  maxSyncAgeMs: 5000,
  blockMs: 1000,
  maxStreamLength: 100_000,
  pruneIntervalMs: 1000,
  maxReplayQueue: 10_000,
  startTimeoutMs: 2000,
  maxDecisions: 200_000,
} as const;

/** Counter keys per flush batch: what one flush may leave unanswered (a connection refuses more than MAX_UNANSWERED). */
const FLUSH_BATCH = 1000;
/** A flush (every second) that has not finished within this (or the command timeout) leaves the rest to local counts. */
const FLUSH_MAX_MS = 5000;
/** Log entries read per XREAD (decoded in one go: a few ms). */
const READ_BATCH = 1000;
/** Hash fields asked for per HSCAN of a snapshot, and view changes applied between two yields to the event loop. */
const SNAPSHOT_PAGE = 500;
/** Hash fields the janitor examines per round. */
const JANITOR_BATCH = 1000;
const JANITOR_LOCK_MS = 60_000;

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * The widest ranges a decision shared through Redis may cover. Redis is trusted only as much as every
 * agent that can write to it: one `0.0.0.0/0 deny` there would turn every agent against all its users,
 * and nothing legitimate needs such a decision (wide ranges belong in lists, which each agent loads).
 */
export const WIDEST_SHARED_PREFIX = { ipv4: 8, ipv6: 16 } as const;

/** Why a decision is too broad to share, or undefined. Its value is canonical (decodeDecision checked it). */
function tooBroad(decision: Decision): string | undefined {
  const { address, prefixLength } = parseDecisionTarget(decision.value);
  const widest = address.length === 4 ? WIDEST_SHARED_PREFIX.ipv4 : WIDEST_SHARED_PREFIX.ipv6;
  if (prefixLength >= widest) return undefined;
  return `${decision.value} is too broad to share: a shared decision covers at most a /${widest} (${address.length === 4 ? 'IPv4' : 'IPv6'})`;
}

interface ResolvedOptions {
  readonly url: string;
  readonly nodes: readonly string[] | undefined;
  readonly prefix: string;
  readonly agentId: string;
  readonly logger: Logger;
  readonly commandTimeoutMs: number;
  readonly maxSyncAgeMs: number;
  readonly blockMs: number;
  readonly maxStreamLength: number;
  readonly now: (() => number) | undefined;
  readonly pruneIntervalMs: number;
  readonly maxReplayQueue: number;
  readonly startTimeoutMs: number;
  readonly maxDecisions: number;
}

function resolveOptions(options: RedisStoreOptions): ResolvedOptions {
  const prefix = options.prefix ?? DEFAULTS.prefix;
  if (prefix === '' || /[{}]/.test(prefix)) throw new Error(`redis store: prefix must be non-empty without braces, got ${JSON.stringify(prefix)}`);
  if (options.nodes !== undefined && options.nodes.length === 0) throw new Error('redis store: nodes must name at least one cluster node');
  for (const name of [
    'commandTimeoutMs',
    'maxSyncAgeMs',
    'blockMs',
    'maxStreamLength',
    'pruneIntervalMs',
    'maxReplayQueue',
    'startTimeoutMs',
    'maxDecisions',
  ] as const) {
    const value = options[name];
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) throw new Error(`redis store: ${name} must be a positive integer, got ${value}`);
  }
  const blockMs = options.blockMs ?? DEFAULTS.blockMs;
  const maxSyncAgeMs = options.maxSyncAgeMs ?? DEFAULTS.maxSyncAgeMs;
  // A healthy agent confirms its view about every blockMs: a smaller limit would report it down.
  if (maxSyncAgeMs <= blockMs) throw new Error(`redis store: maxSyncAgeMs (${maxSyncAgeMs}) must be more than blockMs (${blockMs})`);
  return {
    url: options.url ?? DEFAULTS.url,
    nodes: options.nodes,
    prefix,
    agentId: options.agentId ?? randomUUID(),
    logger: options.logger ?? silentLogger,
    commandTimeoutMs: options.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs,
    maxSyncAgeMs,
    blockMs,
    maxStreamLength: options.maxStreamLength ?? DEFAULTS.maxStreamLength,
    now: options.now,
    pruneIntervalMs: options.pruneIntervalMs ?? DEFAULTS.pruneIntervalMs,
    maxReplayQueue: options.maxReplayQueue ?? DEFAULTS.maxReplayQueue,
    startTimeoutMs: options.startTimeoutMs ?? DEFAULTS.startTimeoutMs,
    maxDecisions: options.maxDecisions ?? DEFAULTS.maxDecisions,
  };
}

/** `iprep:<agent>:<role>`; CLIENT SETNAME takes no spaces nor control characters. */
function connectionName(agentId: string, role: string): string {
  return `iprep:${agentId.replace(/[^\x21-\x7e]/g, '_')}:${role}`;
}

/** Up/down bookkeeping shared by both stores: logs transitions once, not every failed command. */
class LinkHealth {
  #up = false;
  #detail = 'not connected yet';
  readonly #logger: Logger;
  readonly #what: string;

  constructor(logger: Logger, what: string) {
    this.#logger = logger;
    this.#what = what;
  }

  get up(): boolean {
    return this.#up;
  }

  report(): StoreHealth {
    return this.#up ? { kind: 'redis', up: true } : { kind: 'redis', up: false, detail: this.#detail };
  }

  ok(): void {
    if (this.#up) return;
    this.#up = true;
    this.#logger.info(`${this.#what}: redis up`);
  }

  failed(error: unknown): void {
    const detail = error instanceof Error ? error.message || error.name : String(error);
    if (this.#up) this.#logger.warn(`${this.#what}: redis down, serving from memory`, { error: detail });
    // Commands refused while disconnected say only that: keep the connection error that says why.
    const consequence = error instanceof ClientOfflineError || error instanceof ClientClosedError;
    if (this.#up || !consequence) this.#detail = detail;
    this.#up = false;
  }
}

/** A stream entry id `<ms>-<seq>` compared as the pair of numbers it is. */
function compareIds(a: string, b: string): number {
  const [aMs = 0, aSeq = 0] = a.split('-').map(Number);
  const [bMs = 0, bSeq = 0] = b.split('-').map(Number);
  return aMs - bMs || aSeq - bSeq;
}

type PendingWrite = { readonly op: 'put'; readonly decision: Decision; readonly encoded: string } | { readonly op: 'delete'; readonly key: string };

const keyOf = (write: PendingWrite | DecisionChange): string => (write.op === 'put' ? write.decision.key : write.key);

/** XREAD's reply (RESP2): [[stream, [[id, [field, value, ...]], ...]]] or null. */
type StreamEntry = [id: string, fields: string[]];
type XReadReply = [string, StreamEntry[]][] | null;

export class RedisDecisionStore implements DecisionStore {
  readonly #options: ResolvedOptions;
  readonly #keys: { readonly hash: string; readonly stream: string; readonly lock: string };
  readonly #now: () => number;
  readonly #view: DecisionView;
  readonly #health: LinkHealth;
  #main: RedisLink | undefined;
  #reader: RedisLink | undefined;
  /** Log id of each decision in the view, when known (local writes made while Redis was down have none). */
  readonly #versions = new Map<string, string>();
  /** Log id of each delete this agent made that the reader has not passed yet: older puts are stale. */
  readonly #tombstones = new Map<string, string>();
  /** Last log entry applied; null until the first snapshot. */
  #lastId: string | null = null;
  /** When the view was last known current: a snapshot taken, or a read of the log answered. */
  #syncedAt: number | null = null;
  /** From the last change's write in Redis (its log id's time) to its application here. */
  #changeLagMs: number | undefined;
  /** Writes to replay once Redis answers, one per key, oldest first. */
  readonly #pending = new Map<string, PendingWrite>();
  #droppedWrites = 0;
  /** Decisions from the log not held because the view was full (maxDecisions). */
  #skippedForSize = 0;
  #janitorCursor = '0';
  /** A janitor round in flight: the next waits for it (a frozen Redis must not pile rounds up). */
  #janitorRunning = false;
  #pruneTimer: NodeJS.Timeout | undefined;
  #loop: Promise<void> | undefined;
  #closed = false;
  /** Cuts the sync loop's backoff waits short on close. */
  readonly #closing = new AbortController();
  #firstSync: () => void = () => {};

  constructor(options: RedisStoreOptions) {
    this.#options = resolveOptions(options);
    const tag = `{${this.#options.prefix}}`;
    this.#keys = { hash: `${tag}:dec`, stream: `${tag}:decstream`, lock: `${tag}:janitor` };
    this.#now = this.#options.now ?? Date.now;
    const { logger } = this.#options;
    this.#view = new DecisionView(this.#now, (error) => logger.error('decision listener failed', { error: String(error) }));
    this.#health = new LinkHealth(logger, 'decisions');
  }

  /** Connects and loads the shared decisions; if Redis does not answer within startTimeoutMs, goes on without it. */
  async start(): Promise<void> {
    if (this.#main) return;
    const onError = (error: Error): void => {
      this.#health.failed(error);
      this.#options.logger.debug('redis connection error', { error: error.message });
    };
    const linkOptions = { ...(this.#options.nodes ? { nodes: this.#options.nodes } : { url: this.#options.url }), onError };
    this.#main = new RedisLink({ ...linkOptions, name: connectionName(this.#options.agentId, 'decisions') });
    this.#reader = this.#main.duplicate(connectionName(this.#options.agentId, 'log'));
    for (const link of [this.#main, this.#reader]) void link.connect();
    const synced = new Promise<void>((resolve) => (this.#firstSync = resolve));
    this.#loop = this.#follow();
    this.#pruneTimer = setInterval(() => this.#prune(), this.#options.pruneIntervalMs);
    this.#pruneTimer.unref();
    const timeout = sleep(this.#options.startTimeoutMs, undefined, { ref: false });
    await Promise.race([synced, timeout]);
    if (!this.#health.up) this.#options.logger.warn('decisions: starting without redis', { error: this.#health.report().detail });
  }

  /**
   * Writes through to Redis. When Redis is down or does not answer within commandTimeoutMs, applies the
   * decision locally, queues it for replay and resolves to `'pending'`.
   */
  async put(decision: Decision): Promise<void | 'pending'> {
    this.#started();
    const broad = tooBroad(decision);
    if (broad !== undefined) throw new TypeError(broad);
    const write: PendingWrite = { op: 'put', decision, encoded: encodeDecision(decision) };
    try {
      const { id } = await this.#writeThrough(write);
      this.#apply(write, id);
    } catch (error) {
      this.#health.failed(error);
      this.#enqueue(write);
      this.#apply(write, null);
      return 'pending';
    }
  }

  /** Deletes through to Redis (or locally, queued, while Redis is down); false when there was nothing to delete. */
  async delete(key: string): Promise<boolean> {
    this.#started();
    const write: PendingWrite = { op: 'delete', key };
    try {
      const { changed, id } = await this.#writeThrough(write);
      return this.#apply(write, id) || changed;
    } catch (error) {
      this.#health.failed(error);
      this.#enqueue(write);
      return this.#apply(write, null);
    }
  }

  snapshot(): readonly Decision[] {
    return this.#view.snapshot();
  }

  onChange(listener: (change: DecisionChange) => void): () => void {
    return this.#view.onChange(listener);
  }

  health(): StoreHealth {
    const synced = this.#syncedAt;
    const syncAgeMs = synced === null ? undefined : Math.max(0, Date.now() - synced);
    const { maxSyncAgeMs } = this.#options;
    // Connected is not enough: a frozen server keeps its connections open and answers nothing.
    const stale = this.#health.up && syncAgeMs !== undefined && syncAgeMs > maxSyncAgeMs;
    const report = stale
      ? { kind: 'redis' as const, up: false, detail: `decisions not confirmed by redis for ${syncAgeMs} ms (more than ${maxSyncAgeMs} ms)` }
      : this.#health.report();
    return {
      ...report,
      ...(syncAgeMs === undefined ? {} : { syncAgeMs }),
      ...(this.#changeLagMs === undefined ? {} : { changeLagMs: this.#changeLagMs }),
    };
  }

  /** Writes waiting for Redis, and writes dropped because the queue was full (for metrics). */
  get pendingWrites(): number {
    return this.#pending.size;
  }

  get droppedWrites(): number {
    return this.#droppedWrites;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    clearInterval(this.#pruneTimer);
    const main = this.#main;
    if (main?.ready) {
      await main
        .eval(RELEASE_JANITOR, [this.#keys.lock], [this.#options.agentId], this.#options.commandTimeoutMs)
        .catch((error: unknown) => this.#options.logger.debug('janitor lock release failed', { error: String(error) }));
    }
    main?.close();
    this.#reader?.close();
    await this.#loop;
  }

  #started(): RedisLink {
    if (this.#closed) throw new Error('redis decision store is closed');
    if (!this.#main) throw new Error('redis decision store is not started');
    return this.#main;
  }

  /**
   * Runs one write in Redis. Resolves to its log id when it changed something; else to the log's last
   * id, the position at which Redis already was in the state the write asked for.
   */
  async #write(write: PendingWrite): Promise<{ changed: boolean; id: string }> {
    const main = this.#started();
    const { hash, stream } = this.#keys;
    const { agentId, maxStreamLength, commandTimeoutMs } = this.#options;
    const reply =
      write.op === 'put'
        ? await main.eval(PUT_DECISION, [hash, stream], [write.decision.key, write.encoded, String(maxStreamLength), agentId], commandTimeoutMs)
        : await main.eval(DELETE_DECISION, [hash, stream], [write.key, String(maxStreamLength), agentId], commandTimeoutMs);
    this.#health.ok();
    const [changed, id] = reply as [number, string];
    return { changed: changed === 1, id };
  }

  /** A write made now: it supersedes any older write of the key still queued for replay. */
  async #writeThrough(write: PendingWrite): Promise<{ changed: boolean; id: string }> {
    const key = keyOf(write);
    const queued = this.#pending.get(key);
    const result = await this.#write(write);
    if (queued !== undefined && this.#pending.get(key) === queued) this.#pending.delete(key);
    return result;
  }

  /** The sync loop: replay queued writes, check the log position (or resnapshot), read the log. */
  async #follow(): Promise<void> {
    for (let failures = 0; !this.#closed; ) {
      try {
        await this.#replay();
        if (this.#lastId === null || !(await this.#positionStillLogged(this.#lastId))) await this.#resnapshot();
        this.#syncedAt = Date.now();
        this.#health.ok();
        this.#firstSync();
        failures = 0;
        await this.#readLog();
      } catch (error) {
        if (this.#closed) return;
        this.#health.failed(error);
        await sleep(backoffMs(failures++), undefined, { ref: false, signal: this.#closing.signal }).catch(() => {});
      }
    }
  }

  async #replay(): Promise<void> {
    if (this.#pending.size === 0) return;
    const replayed = this.#pending.size;
    for (const [key, write] of this.#pending) {
      // A failure throws, leaving this write and the ones after it queued.
      const { id } = await this.#write(write);
      // A newer write of the key queued meanwhile stays queued and wins.
      if (this.#pending.get(key) !== write) continue;
      this.#pending.delete(key);
      this.#apply(write, id);
    }
    this.#options.logger.info('decisions: replayed writes made while redis was down', { replayed });
  }

  /** Whether the log still holds `id`: trimming removes the oldest entries, so then it holds all later ones too. */
  async #positionStillLogged(id: string): Promise<boolean> {
    const found = await this.#main!.send(this.#keys.stream, ['XRANGE', this.#keys.stream, id, id], this.#options.commandTimeoutMs);
    return Array.isArray(found) && found.length > 0;
  }

  /**
   * Reads the whole hash in pages after taking the log position (see SNAPSHOT_POSITION), then makes the
   * view match it, yielding to the event loop between pages: 100,000 decisions in one piece stalled
   * the agent's answers to HAProxy for most of a second.
   */
  async #resnapshot(): Promise<void> {
    const main = this.#main!;
    const { hash, stream } = this.#keys;
    const { agentId, commandTimeoutMs, maxDecisions, logger } = this.#options;
    const [id, held] = (await main.eval(SNAPSHOT_POSITION, [hash, stream], [agentId], commandTimeoutMs)) as [string, number];
    const next = new Map<string, { decision: Decision; encoded: string }>();
    let truncated = false;
    let cursor = '0';
    do {
      const [nextCursor, flat] = (await main.send(hash, ['HSCAN', hash, cursor, 'COUNT', String(SNAPSHOT_PAGE)], commandTimeoutMs)) as [string, string[]];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const key = flat[i]!;
        if (next.size >= maxDecisions && !next.has(key)) {
          truncated = true;
          break;
        }
        const decision = this.#decode(key, flat[i + 1]!);
        if (decision) next.set(key, { decision, encoded: encodeDecision(decision) });
      }
      cursor = String(nextCursor);
      await yieldToEventLoop();
      if (this.#closed) return;
    } while (cursor !== '0' && !truncated);
    if (truncated) logger.warn('decisions: redis holds more decisions than max-decisions, loaded only that many', { held, maxDecisions });
    if (this.#lastId !== null) logger.warn('decisions: change log position lost, resynchronised from a snapshot', { decisions: next.size });
    this.#versions.clear();
    this.#tombstones.clear();
    for (const key of next.keys()) if (!this.#pending.has(key)) this.#versions.set(key, id);
    this.#lastId = id;
    await this.#replaceView(next, id);
  }

  /**
   * Makes the view match a snapshot taken at log position `id`, a page at a time. A key written
   * meanwhile (its version is no longer `id`, or it waits for replay) keeps the newer state.
   */
  async #replaceView(next: ReadonlyMap<string, { decision: Decision; encoded: string }>, id: string): Promise<void> {
    let done = 0;
    const pause = async (): Promise<void> => {
      if (++done % SNAPSHOT_PAGE === 0) await yieldToEventLoop();
    };
    for (const key of [...this.#view.keys()]) {
      if (!next.has(key) && !this.#versions.has(key) && !this.#pending.has(key)) this.#view.delete(key);
      await pause();
    }
    for (const [key, { decision, encoded }] of next) {
      if (this.#closed) return;
      if (this.#versions.get(key) === id && !this.#pending.has(key)) this.#view.put(decision, encoded);
      await pause();
    }
  }

  async #readLog(): Promise<void> {
    const { stream } = this.#keys;
    const args = ['XREAD', 'COUNT', String(READ_BATCH), 'BLOCK', String(this.#options.blockMs), 'STREAMS', stream, this.#lastId!];
    const reply = (await this.#reader!.send(stream, args, this.#options.blockMs + this.#options.commandTimeoutMs)) as XReadReply;
    if (this.#closed) return;
    // Wall clocks on purpose (not the injectable `now`): lag and age are about real time.
    const readAt = Date.now();
    this.#syncedAt = readAt;
    for (const [, entries] of reply ?? []) {
      for (const [id, fields] of entries) {
        this.#applyEntry(id, fields);
        this.#lastId = id;
      }
      const last = entries[entries.length - 1];
      if (last !== undefined) this.#changeLagMs = Math.max(0, readAt - Number.parseInt(last[0], 10));
    }
    for (const [key, id] of this.#tombstones) if (compareIds(id, this.#lastId!) <= 0) this.#tombstones.delete(key);
  }

  #applyEntry(id: string, fields: readonly string[]): void {
    let op: string | undefined;
    let key: string | undefined;
    let encoded: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'op') op = fields[i + 1];
      else if (fields[i] === 'key') key = fields[i + 1];
      else if (fields[i] === 'd') encoded = fields[i + 1];
    }
    if (op === 'mark') return;
    if (key === undefined || (op === 'put' && encoded === undefined) || (op !== 'put' && op !== 'del')) {
      this.#options.logger.warn('decisions: skipped a malformed change log entry', { id });
      return;
    }
    if (op === 'del') {
      this.#applyLogged(id, { op: 'delete', key });
      return;
    }
    const decision = this.#decode(key, encoded!);
    if (decision) this.#applyLogged(id, { op: 'put', decision }, encodeDecision(decision));
  }

  #decode(key: string, encoded: string): Decision | undefined {
    try {
      const decision = decodeDecision(encoded);
      if (decision.key !== key) throw new Error(`its key is ${JSON.stringify(decision.key)}`);
      const broad = tooBroad(decision);
      if (broad !== undefined) throw new Error(broad);
      return decision;
    } catch (error) {
      this.#options.logger.warn('decisions: skipped an invalid decision in redis', { key, error: (error as Error).message });
      return undefined;
    }
  }

  /**
   * Applies a write to the view: as of log position `id` (see #write), or (null) as not logged yet.
   * Returns whether the view changed.
   */
  #apply(write: PendingWrite, id: string | null): boolean {
    const change: DecisionChange = write.op === 'put' ? { op: 'put', decision: write.decision } : write;
    const encoded = write.op === 'put' ? write.encoded : undefined;
    return id === null ? this.#applyUnlogged(change, encoded) : this.#applyLogged(id, change, encoded);
  }

  /**
   * Applies a change that holds as of log position `id`, unless the view already reflects that position
   * or a later one for the key (an echo of our own write, or an entry older than what we know).
   */
  #applyLogged(id: string, change: DecisionChange, encoded?: string): boolean {
    const key = keyOf(change);
    const known = this.#versions.get(key) ?? this.#tombstones.get(key);
    if (known !== undefined && compareIds(id, known) <= 0) return false;
    if (change.op === 'put' && this.#view.size >= this.#options.maxDecisions && this.#view.encoded(key) === undefined) {
      if (this.#skippedForSize++ % 1000 === 0) {
        this.#options.logger.warn('decisions: more decisions than max-decisions, new ones from redis skipped', {
          maxDecisions: this.#options.maxDecisions,
          skipped: this.#skippedForSize,
        });
      }
      return false;
    }
    if (change.op === 'put') {
      this.#tombstones.delete(key);
      this.#versions.set(key, id);
      return this.#view.put(change.decision, encoded!);
    }
    this.#versions.delete(key);
    this.#tombstones.set(key, id);
    return this.#view.delete(key);
  }

  /** Applies a change the log does not (yet) hold: any later log entry for the key supersedes it. */
  #applyUnlogged(change: DecisionChange, encoded?: string): boolean {
    const key = keyOf(change);
    this.#versions.delete(key);
    this.#tombstones.delete(key);
    return change.op === 'put' ? this.#view.put(change.decision, encoded!) : this.#view.delete(key);
  }

  #enqueue(write: PendingWrite): void {
    const key = keyOf(write);
    this.#pending.delete(key); // re-inserted last: the newest write of a key is the one replayed
    this.#pending.set(key, write);
    if (this.#pending.size <= this.#options.maxReplayQueue) return;
    const oldest = this.#pending.keys().next().value as string;
    this.#pending.delete(oldest);
    if (this.#droppedWrites++ === 0)
      this.#options.logger.warn('decisions: replay queue full, dropping the oldest writes', { limit: this.#options.maxReplayQueue });
  }

  /** Forgets expired decisions locally (emitting deletes) and, if this agent is the janitor, in Redis. */
  #prune(): void {
    for (const key of this.#view.expiredKeys(this.#now())) this.#applyUnlogged({ op: 'delete', key });
    if (!this.#main?.ready || this.#janitorRunning) return;
    this.#janitorRunning = true;
    const { hash, stream, lock } = this.#keys;
    const { agentId, maxStreamLength, commandTimeoutMs } = this.#options;
    const args = [agentId, String(JANITOR_LOCK_MS), this.#janitorCursor, String(JANITOR_BATCH), String(this.#now()), String(maxStreamLength)];
    this.#main
      .eval(JANITOR_ROUND, [hash, stream, lock], args, commandTimeoutMs * 10)
      .then((reply) => {
        if (Array.isArray(reply)) this.#janitorCursor = String(reply[0]);
      })
      .catch((error: unknown) => this.#options.logger.debug('janitor round failed', { error: String(error) }))
      .finally(() => {
        this.#janitorRunning = false;
      });
  }
}

export class RedisCounterStore implements CounterStore {
  readonly #options: ResolvedOptions;
  readonly #health: LinkHealth;
  /** Local counts: the answer while Redis is down. */
  readonly #local = new MemoryCounterStore();
  #link: RedisLink | undefined;
  #partialWarnedAt = -Infinity;

  constructor(options: RedisStoreOptions) {
    this.#options = resolveOptions(options);
    this.#health = new LinkHealth(this.#options.logger, 'counters');
  }

  async start(): Promise<void> {
    if (this.#link) return;
    const onError = (error: Error): void => {
      this.#health.failed(error);
      this.#options.logger.debug('redis connection error', { error: error.message });
    };
    const target = this.#options.nodes ? { nodes: this.#options.nodes } : { url: this.#options.url };
    // Counters reach Redis only when a client is worth flushing: a reconnection alone must also say "up".
    const onReady = (): void => this.#health.ok();
    this.#link = new RedisLink({ ...target, name: connectionName(this.#options.agentId, 'counters'), onError, onReady });
    const connected = this.#link.connect().then(() => this.#health.ok());
    await Promise.race([connected, sleep(this.#options.startTimeoutMs, undefined, { ref: false })]);
  }

  /** Cluster-wide sliding-window counts of the flushed keys; local counts for any key Redis did not answer. */
  async flush(deltas: ReadonlyMap<string, number>, windowMs: number, now: number): Promise<Map<string, number>> {
    const totals = this.#local.add(deltas, windowMs, now);
    const link = this.#link;
    if (!link?.ready || deltas.size === 0) return totals;
    if (link.unanswered > 0) {
      // The last flush's commands outlived their timeout: Redis is stuck; sending more would pile them up.
      this.#health.failed(new RedisTimeoutError(`redis has not answered ${link.unanswered} counter commands`));
      return totals;
    }
    const clock = this.#options.now ? String(Math.floor(now)) : '';
    const window = String(windowMs);
    const keys = [...deltas.keys()];
    const { commandTimeoutMs, prefix } = this.#options;
    const deadline = Date.now() + Math.max(FLUSH_MAX_MS, commandTimeoutMs);
    let failure: unknown;
    let answered = 0;
    let failed = 0;
    for (let start = 0; start < keys.length; start += FLUSH_BATCH) {
      if (start > 0 && Date.now() > deadline) {
        failed += keys.length - start;
        failure ??= new RedisTimeoutError(`counter flush not done within ${Math.max(FLUSH_MAX_MS, commandTimeoutMs)} ms`);
        break;
      }
      const batch = keys.slice(start, start + FLUSH_BATCH);
      // One script call per key, a batch sent together: the client pipelines them (per node on a Cluster).
      const replies = await Promise.allSettled(
        batch.map((key) => link.eval(COUNT_IN_WINDOW, [`${prefix}:c:{${key}}`], [String(deltas.get(key)), window, clock], commandTimeoutMs)),
      );
      const answeredBefore = answered;
      replies.forEach((reply, i) => {
        const total = reply.status === 'fulfilled' ? Number(reply.value) : NaN;
        // Anything but a count keeps the local one: a reply from Redis never becomes NaN in a verdict.
        if (Number.isFinite(total) && total >= 0) {
          totals.set(batch[i]!, total);
          answered++;
          return;
        }
        failed++;
        failure ??= reply.status === 'rejected' ? reply.reason : new Error(`redis answered ${JSON.stringify(String(reply.value).slice(0, 40))}, not a count`);
      });
      if (answered === answeredBefore) {
        // Not one answer in this batch: Redis is away or stuck; the rest keep their local counts.
        failed += keys.length - start - batch.length;
        break;
      }
    }
    // One client's bad key says nothing about Redis: down only when no key got an answer.
    if (answered > 0 || failure === undefined) this.#health.ok();
    else this.#health.failed(failure);
    if (answered > 0 && failed > 0 && Date.now() - this.#partialWarnedAt >= 60_000) {
      this.#partialWarnedAt = Date.now(); // at most once a minute: a flush runs every second
      this.#options.logger.warn('counters: some clients kept their local counts', {
        failed,
        error: failure instanceof Error ? failure.message : String(failure),
      });
    }
    return totals;
  }

  health(): StoreHealth {
    return this.#health.report();
  }

  async close(): Promise<void> {
    this.#link?.close();
    await this.#local.close();
  }
}
