/**
 * The running reputation service: loads the lists and the allowlist, keeps
 * them fresh, follows the shared decisions, counts behaviour, and exposes
 * what the admin API needs. The engine it feeds stays pure; everything with
 * I/O or timers lives here.
 */
import type { Logger } from 'spop';
import { BehaviourTracker } from './behaviour/index.js';
import { loadConfigFile } from './config/index.js';
import { type DecisionAuditEvent, DecisionAudit } from './decisions/audit.js';
import { DecisionIndex, banDecision, decisionKey, makeDecision } from './decisions/index.js';
import { type CompiledAllowlist, type CompiledList, ReputationEngine } from './engine/index.js';
import { FingerprintLists, TlsScorer, isFingerprint } from './ja4/index.js';
import { GeoDatabases, type PreparedGeo } from './geo/geo-databases.js';
import type { GeoStatus } from './geo/geo-source.js';
import { type IpRange, parseRange } from './net/address.js';
import { ListSource, insideInternalWarning } from './sources/index.js';
import { MemoryCounterStore, type Stores, createStores, hasClusterStoreHost, startCounterSync } from './store/index.js';
import { compileTable } from './table/index.js';
import type {
  AddedDecision,
  Decision,
  DecisionChange,
  DecisionInput,
  IprepConfig,
  ListConfig,
  ListStatus,
  LoadedList,
  ReloadResult,
  ReputationService,
  StoreHealth,
  Verdict,
} from './types.js';

export interface IprepServiceOptions {
  /** The file `config` came from: reloads read it again. */
  readonly configPath?: string | undefined;
  /**
   * What a reload reads instead of `configPath` alone: the file with the command line on top, checked
   * merged (cli.ts resolveConfig), so that a reload holds the configuration to the rules the start did.
   */
  readonly loadConfig?: (() => Promise<IprepConfig>) | undefined;
  readonly logger: Logger;
  /** Names this agent in the decisions it writes (`agent:<id>`). */
  readonly agentId?: string;
  readonly now?: () => number;
  /** Called after every successful reload or list update (metrics). */
  readonly onReload?: (ok: boolean, durationMs: number) => void;
  /** Every decision added, deleted or expired, and every ban, as the audit trail logs them (metrics). */
  readonly onDecisionAudit?: ((event: DecisionAuditEvent) => void) | undefined;
}

/** A list source and the list it last compiled. */
interface ListSlot {
  readonly source: ListSource;
  compiled: CompiledList | undefined;
}

export class IprepService implements ReputationService {
  #config: IprepConfig;
  readonly #options: IprepServiceOptions;
  readonly #now: () => number;
  readonly #index = new DecisionIndex();
  readonly behaviour: BehaviourTracker | undefined;
  readonly engine: ReputationEngine;
  /** Fingerprints and scores the ClientHello pieces of messages that carry them. */
  readonly tls: TlsScorer;
  readonly #fingerprintLists: FingerprintLists;
  readonly #stores: Stores;
  #lists: ListSlot[] = [];
  /** Copies of lists already warned about for entries that `special` shadows: one warning per copy. */
  readonly #warnedInsideInternal = new WeakSet<LoadedList>();
  #allowSources: ListSource[] = [];
  /** Country and ASN databases (geo section). */
  readonly #geo: GeoDatabases;
  #stopSync: (() => void) | undefined;
  #unsubscribe: (() => void) | undefined;
  readonly #audit: DecisionAudit;
  /** Keys this process is writing, and who asked: their store changes are ours, not another agent's. */
  readonly #ownWrites = new Map<string, string>();
  /** Whether other processes share the decisions (Redis, or the primary's store with workers). */
  readonly #sharedStore: boolean;
  #reloading: Promise<ReloadResult> | undefined;
  /** Why the last reload failed, until one succeeds: /health is degraded meanwhile. */
  #reloadError: string | null = null;

  constructor(config: IprepConfig, options: IprepServiceOptions) {
    this.#config = config;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const agentId = options.agentId ?? `${process.pid}`;
    this.#stores = createStores(config.store, { logger: options.logger, agentId, now: this.#now, decisionsFile: config.decisions.file });
    this.#sharedStore = config.store.type === 'redis' || hasClusterStoreHost();
    this.#audit = new DecisionAudit(options.logger, { onEvent: options.onDecisionAudit });
    this.behaviour = config.behaviour.enabled
      ? new BehaviourTracker(config.behaviour, {
          now: this.#now,
          onBan: (ban) => {
            const action = this.#config.behaviour.banAction;
            this.#audit.ban(ban, action);
            const decision = banDecision(ban, action, 'behaviour', this.#now());
            this.#write(decision.key, 'behaviour', () => this.#stores.decisions.put(decision)).catch((err: unknown) =>
              options.logger.warn('could not write a ban decision', { key: decision.key, error: String(err) }),
            );
          },
        })
      : undefined;
    this.engine = new ReputationEngine(config, { decisions: this.#index, behaviour: this.behaviour, logger: options.logger });
    this.tls = new TlsScorer(config.tls, config.variables.scope, { now: this.#now });
    this.#fingerprintLists = new FingerprintLists((lists) => this.tls.setLists(lists), options.logger);
    this.#geo = new GeoDatabases(this.engine.geo, { logger: options.logger, now: this.#now });
  }

  get config(): IprepConfig {
    return this.#config;
  }

  /**
   * Loads what is at hand (list files, the allowlist, decisions, the last good copies of URL lists)
   * and throws when a list file or the allowlist cannot be loaded at all. URL lists are fetched in
   * the background and swapped in as they come, unless `waitForLists` asks to wait for them.
   */
  async start(): Promise<void> {
    const decisions = this.#stores.decisions;
    await decisions.start();
    this.#unsubscribe = decisions.onChange((change) => this.#onStoreChange(change));
    this.#index.replaceAll(decisions.snapshot());
    await this.#stores.counters.start();
    // A memory counter store in this process is this process's alone: its totals would be the tracker's
    // own counts back, after formatting and parsing the key of every busy client each second on the
    // thread that answers HAProxy (tens of ms with 100,000 clients). Workers of a cluster share the
    // primary's store through IPC, and Redis is shared: those sync.
    if (this.behaviour !== undefined && !(this.#stores.counters instanceof MemoryCounterStore)) {
      this.#stopSync = startCounterSync(this.behaviour, this.#stores.counters, {
        windowMs: this.#config.behaviour.windowMs,
        logger: this.#options.logger,
        now: this.#now,
      });
    }
    const started = this.#now();
    await this.#apply(this.#config);
    this.#options.onReload?.(true, this.#now() - started);
  }

  async close(): Promise<void> {
    this.#stopSync?.();
    this.#unsubscribe?.();
    for (const slot of this.#lists) slot.source.stop();
    for (const source of this.#allowSources) source.stop();
    this.#fingerprintLists.stop();
    this.#geo.close();
    await this.#stores.close();
  }

  // -------------------------------------------------------------------------
  // ReputationService

  explain(address: string, client: { fingerprint?: string | undefined } = {}): Verdict {
    const now = this.#now();
    const fingerprint = client.fingerprint?.trim().toLowerCase();
    if (fingerprint === undefined || fingerprint === '') return this.engine.explain(address, now);
    if (!isFingerprint(fingerprint)) throw new TypeError(`not a JA4 or JA3 fingerprint: ${JSON.stringify(fingerprint.slice(0, 80))}`);
    return this.engine.explain(address, now, this.tls.explain(fingerprint, now));
  }

  /** `origin`: who asks, `api` (any admin API client) or `cli` (spoa decisions, which says so). */
  async addDecision(input: DecisionInput, origin: 'api' | 'cli' = 'api'): Promise<AddedDecision> {
    const { decisions } = this.#config;
    const decision = makeDecision(
      input,
      {
        action: decisions.defaultAction,
        durationMs: decisions.defaultDurationMs,
        origin,
        minPrefixV4: decisions.minPrefixV4,
        minPrefixV6: decisions.minPrefixV6,
      },
      this.#now(),
    );
    // Answers within the store's command timeout: a shared store that does not answer leaves it pending.
    const outcome = await this.#write(decision.key, origin, () => this.#stores.decisions.put(decision));
    // The store's change event updates the index; apply now too so the next request sees it.
    this.#index.apply({ op: 'put', decision });
    return outcome === 'pending' ? { ...decision, stored: 'pending' } : decision;
  }

  listDecisions(): readonly Decision[] {
    return this.#index.list(this.#now());
  }

  async removeDecision(keyOrValue: string, origin: 'api' | 'cli' = 'api'): Promise<boolean> {
    const key = /^(ip|range):/.test(keyOrValue) ? keyOrValue : decisionKey(keyOrValue);
    const removed = await this.#write(key, origin, () => this.#stores.decisions.delete(key));
    this.#index.apply({ op: 'delete', key });
    return removed;
  }

  /** Runs a store write of `key` on behalf of `origin`: the changes it causes are logged as this process's. */
  async #write<T>(key: string, origin: string, write: () => Promise<T>): Promise<T> {
    this.#ownWrites.set(key, origin);
    try {
      return await write();
    } finally {
      this.#ownWrites.delete(key);
    }
  }

  /** The one place a decision change, ours or another agent's, reaches the index and the audit trail. */
  #onStoreChange(change: DecisionChange): void {
    const key = change.op === 'put' ? change.decision.key : change.key;
    const before = this.#index.get(key);
    this.#index.apply(change);
    const own = this.#ownWrites.get(key);
    if (change.op === 'put') {
      this.#audit.added(change.decision, own === undefined ? { origin: change.decision.origin, received: true } : { origin: own });
    } else if (before !== undefined) {
      if (own === undefined && before.expiresAt !== null && before.expiresAt <= this.#now()) this.#audit.expired(before, this.#sharedStore);
      else this.#audit.deleted(before, own ?? 'store', own === undefined);
    }
  }

  /** Reads the configuration file again (when there is one) and reloads every list; the old state stays on failure. */
  reload(): Promise<ReloadResult> {
    // Reloads asked for while one runs share its result.
    this.#reloading ??= this.#reload().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  reloadError(): string | null {
    return this.#reloadError;
  }

  lists(): readonly ListStatus[] {
    return this.#lists.map((slot) => slot.source.status());
  }

  store(): StoreHealth {
    return this.#stores.health();
  }

  geoDatabases(): readonly GeoStatus[] {
    return this.#geo.status();
  }

  decisionCount(): number {
    return this.#index.size;
  }

  // -------------------------------------------------------------------------

  async #reload(): Promise<ReloadResult> {
    const started = this.#now();
    const errors: string[] = [];
    try {
      const { configPath, loadConfig } = this.#options;
      const config = loadConfig !== undefined ? await loadConfig() : configPath === undefined ? this.#config : await loadConfigFile(configPath);
      const needRestart: string[] = RESTART_SECTIONS.filter((key) => JSON.stringify(config[key]) !== JSON.stringify(this.#config[key]));
      // tls.lists reload; the rest of tls shapes the fingerprint scorer, made once.
      if (JSON.stringify({ ...config.tls, lists: [] }) !== JSON.stringify({ ...this.#config.tls, lists: [] })) needRestart.push('tls');
      if (needRestart.length > 0) {
        this.#options.logger.warn('changed settings apply at the next restart', { sections: needRestart.join(',') });
      }
      await this.#apply(config);
    } catch (err) {
      errors.push(err instanceof Error ? err.message : String(err));
    }
    const durationMs = this.#now() - started;
    const ok = errors.length === 0;
    // Bounded: it travels to other workers and into every /health answer.
    this.#reloadError = ok ? null : truncate(errors.join('; '), MAX_RELOAD_ERROR_LENGTH);
    if (ok) this.#options.logger.info('reloaded', { lists: this.#lists.length, durationMs });
    else this.#options.logger.error('reload failed: keeping the previous state', { error: errors.join('; ') });
    this.#options.onReload?.(ok, durationMs);
    return { ok, lists: this.lists(), errors, durationMs };
  }

  /**
   * Loads and compiles everything `config` names, then swaps it in. Nothing
   * changes unless every list file and the allowlist loaded. Sources whose
   * configuration is unchanged are kept (files are re-read if they changed,
   * URLs keep their copy and schedule); a URL list that cannot be had at all
   * is left out, reported in its status, until its next refresh succeeds.
   * New URL lists start with their last good copy on disk, if any, and are
   * fetched in the background (unless `waitForLists`): a slow feed never
   * holds up the answers.
   */
  async #apply(config: IprepConfig): Promise<void> {
    const logger = this.#options.logger;
    const sourceOptions = { cacheDir: config.cacheDir, logger, now: this.#now };
    const previous = new Map(this.#lists.map((slot) => [sourceKey(slot.source.config), slot]));
    const kept = new Set<ListSlot>();
    const fresh: ListSource[] = [];
    const background = new Set<ListSource>();
    const allowSources = config.allowlist.files.map((path) => new ListSource(allowlistFileConfig(path, config.listDefaults), sourceOptions));
    let geo: PreparedGeo | undefined;
    try {
      // Each slot with what it will hold: kept slots are only changed once everything loaded.
      const loaded = await Promise.all(
        config.lists.map(async (listConfig): Promise<[ListSlot, CompiledList | undefined]> => {
          const old = previous.get(sourceKey(listConfig));
          if (old !== undefined) {
            kept.add(old);
            return [old, await recompile(old, await refreshKept(old.source, logger))];
          }
          const source = new ListSource(listConfig, sourceOptions);
          fresh.push(source);
          if (listConfig.url !== undefined && !config.waitForLists) background.add(source);
          const list = background.has(source) ? await source.loadCached() : await loadNew(source, logger);
          return [{ source, compiled: undefined }, list === undefined ? undefined : await compileList(listConfig, list)];
        }),
      );
      const allowLoaded = await Promise.all(allowSources.map((source) => source.load()));
      const fingerprintLists = await this.#fingerprintLists.load(config.tls.lists);
      const allow = await compileAllowlist(config.allowlist.entries, allowLoaded);
      geo = await this.#geo.prepare(config.geo);
      // Everything loaded: swap it in, then stop the sources no longer used.
      for (const slot of this.#lists) if (!kept.has(slot)) slot.source.stop();
      for (const source of this.#allowSources) source.stop();
      this.#config = config;
      for (const [slot, compiled] of loaded) slot.compiled = compiled;
      this.#lists = loaded.map(([slot]) => slot);
      this.#allowSources = allowSources;
      this.engine.configure(config);
      this.engine.setAllowlist(allow);
      this.#fingerprintLists.apply(fingerprintLists);
      geo.commit();
      this.#publishLists();
    } catch (err) {
      for (const source of [...fresh, ...allowSources]) source.stop();
      geo?.discard();
      throw err;
    }
    for (const slot of this.#lists) {
      if (fresh.includes(slot.source)) slot.source.start((list) => void this.#listUpdated(slot, list));
      if (background.has(slot.source)) void this.#loadInBackground(slot);
    }
    for (const source of this.#allowSources) source.start(() => void this.#allowlistUpdated());
  }

  async #listUpdated(slot: ListSlot, list: LoadedList): Promise<void> {
    const started = this.#now();
    try {
      const compiled = await compileList(slot.source.config, list);
      if (!this.#lists.includes(slot)) return; // replaced by a reload meanwhile
      slot.compiled = compiled;
      this.#publishLists();
      this.#options.logger.info('list updated', { list: list.name, entries: list.entries.length, origin: list.origin });
      this.#options.onReload?.(true, this.#now() - started);
    } catch (err) {
      this.#options.logger.error('list update failed: keeping the previous copy', { list: list.name, error: String(err) });
      this.#options.onReload?.(false, this.#now() - started);
    }
  }

  /** A URL list's first fetch, after the service answers with what it had: swapped in when it brings something new. */
  async #loadInBackground(slot: ListSlot): Promise<void> {
    const cached = slot.source.current();
    let list: LoadedList;
    try {
      list = await slot.source.load();
    } catch (err) {
      this.#options.logger.error('list unavailable: answering without it until a refresh succeeds', {
        list: slot.source.config.name,
        error: String(err),
      });
      return;
    }
    if (list !== cached) await this.#listUpdated(slot, list);
  }

  async #allowlistUpdated(): Promise<void> {
    const sources = this.#allowSources;
    const loaded = sources.map((s) => s.current()).filter((l): l is LoadedList => l !== undefined);
    const allow = await compileAllowlist(this.#config.allowlist.entries, loaded);
    if (sources === this.#allowSources) this.engine.setAllowlist(allow);
  }

  #publishLists(): void {
    const compiled = this.#lists.flatMap((slot) => (slot.compiled === undefined ? [] : [slot.compiled]));
    this.engine.setLists(compiled);
    if (this.#config.special.enabled) for (const { list } of compiled) this.#warnInsideInternal(list);
  }

  /** Internal addresses decide before any list: an operator who lists one would otherwise never learn why it is not blocked. */
  #warnInsideInternal(list: LoadedList): void {
    const inside = list.insideInternal;
    if (inside === undefined || inside.count === 0 || this.#warnedInsideInternal.has(list)) return;
    this.#warnedInsideInternal.add(list);
    this.#options.logger.warn(insideInternalWarning(list.name, inside), { list: list.name, entries: inside.count });
  }
}

/**
 * Sections a reload does not apply: they shape the sockets, the handler, the
 * tracker or the stores, which live as long as the process. Lists, the
 * allowlist, thresholds, special ranges and decisions' defaults do reload.
 */
const RESTART_SECTIONS = ['mode', 'listen', 'agent', 'messages', 'variables', 'behaviour', 'store', 'admin', 'cacheDir'] as const;

/** Longest reload error kept for /health; the log has the whole of it. */
const MAX_RELOAD_ERROR_LENGTH = 2000;

function truncate(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length - 1)}…`;
}

/** Identifies a list source: the same configuration keeps the same source across reloads. */
function sourceKey(config: ListConfig): string {
  return JSON.stringify(config);
}

/** First load of a list: a file must load; a URL with neither network nor last good copy is left out for now. */
async function loadNew(source: ListSource, logger: Logger): Promise<LoadedList | undefined> {
  try {
    return await source.load();
  } catch (err) {
    if (source.config.url === undefined) throw err;
    logger.error('list unavailable: starting without it until a refresh succeeds', { list: source.config.name, error: String(err) });
    return undefined;
  }
}

/** A kept source on reload: files are re-read when they changed; URLs keep their copy (their timer refreshes them). */
async function refreshKept(source: ListSource, logger: Logger): Promise<LoadedList | undefined> {
  if (source.config.url !== undefined) return source.current();
  try {
    return (await source.refresh()) ?? source.current();
  } catch (err) {
    logger.error('list file unreadable on reload', { list: source.config.name, error: String(err) });
    throw err;
  }
}

/** The slot's compiled list when its content is the same, else a new compilation. */
async function recompile(slot: ListSlot, list: LoadedList | undefined): Promise<CompiledList | undefined> {
  if (list === undefined) return slot.compiled;
  if (slot.compiled?.list === list) return slot.compiled;
  return compileList(slot.source.config, list);
}

/** The list's table was compiled with its entries (off the main thread when big): nothing left to do but pair them. */
async function compileList(config: ListConfig, list: LoadedList): Promise<CompiledList> {
  return { config, list, table: list.table };
}

/** The configured entries compiled here (a configuration file holds few); each file keeps the table it was loaded with. */
async function compileAllowlist(entries: readonly string[], files: readonly LoadedList[]): Promise<CompiledAllowlist> {
  const ranges: IpRange[] = entries.map((text) => parseRange(text));
  const table = await compileTable(ranges.map((range, value) => ({ range, value })));
  return { ranges, table, files };
}

/** An allowlist file is read like a netset list, watched for changes like any list file. */
function allowlistFileConfig(path: string, limits: IprepConfig['listDefaults']): ListConfig {
  return { name: `allowlist:${path}`, format: 'netset', path, refreshMs: 3_600_000, category: 'allowlisted', minEntries: 0, maxShrink: 1, ...limits };
}
