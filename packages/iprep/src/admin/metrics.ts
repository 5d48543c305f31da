/**
 * Prometheus metrics and the live status of the agent.
 *
 * The per-message path (`observeVerdict`) only counts into plain numbers and
 * small maps; prom-client sees the counts when Prometheus scrapes (`collect`),
 * so scoring a message never hashes a label set. The same counts feed the
 * status page through `status()`.
 *
 * In a node:cluster worker (`setPeers`), `clusterMetrics()` and `clusterStatus()` add the other
 * workers' figures, asked for at scrape time; each metric says how (its `aggregator`).
 */
import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { AgentStats } from 'spop';
import type { DecisionAuditEvent } from '../decisions/audit.js';
import { RecentByIdentity } from '../engine/recent.js';
import type { ListStatus, StoreHealth, Verdict } from '../types.js';
import { NODE_VERSION, VERSION } from '../version.js';
import type { WorkerPeers } from './cluster.js';
import { FixedHistogram } from './histogram.js';
import {
  type AgentGauges,
  type BanRecord,
  type ClientCount,
  type GeoFigures,
  LATEST_BANS,
  TOP_CLIENTS,
  HANDLER_SECONDS_BOUNDS,
  HISTORY_SECONDS,
  type ReloadSummary,
  SCORE_BOUNDS,
  type StatusCounts,
  type StatusSnapshot,
  isStatusCounts,
  mergeStatus,
} from './status.js';

export type { AgentGauges, BanRecord, ClientCount, ListSnapshot, MessageSeries, NamedCount, ScoreBucket, StatusCounts, StatusSnapshot } from './status.js';

export interface ReputationMetricsOptions {
  /** Prefix of every metric name except prom-client's process metrics. Default `iprep_`. */
  prefix?: string;
  /** Add prom-client's default process metrics (CPU, memory, event loop, GC) to the registry. Default true. */
  defaultMetrics?: boolean;
  /** Clock in ms since the epoch. Default `Date.now`. */
  now?: () => number;
}

/** The SPOP library's counters (its `AgentStats`) published as metrics: what HAProxy and other peers did to the port. */
export type AgentCounters = Readonly<Pick<AgentStats, (typeof AGENT_COUNTERS)[number][0] | 'connectionsAdopted' | 'adoptionsRefused'>>;

/**
 * Field of `AgentStats`, metric name after the prefix, help, type. Counters end in `_total`; every one is
 * summed across workers (each worker counts its own connections).
 */
const AGENT_COUNTERS = [
  ['connectionsTotal', 'connections_total', 'Connections from HAProxy accepted (health checks included)', 'counter'],
  ['healthChecks', 'health_checks_total', 'SPOP health checks answered', 'counter'],
  ['notifies', 'notify_frames_total', 'NOTIFY frames received', 'counter'],
  ['acks', 'ack_frames_total', 'ACK frames sent', 'counter'],
  ['unknownMessages', 'unknown_messages_total', 'Messages with no handler, answered without actions', 'counter'],
  ['handlerErrors', 'handler_errors_total', 'Messages whose handler failed, answered without actions', 'counter'],
  ['handlerTimeouts', 'handler_timeouts_total', 'Messages whose handler did not answer within agent.handler-timeout', 'counter'],
  ['oversizedAcks', 'oversized_acks_total', 'ACKs whose actions did not fit the negotiated frame size, sent empty', 'counter'],
  ['protocolErrors', 'protocol_errors_total', 'Connections closed because the peer broke the protocol', 'counter'],
  ['haproxyDisconnects', 'haproxy_disconnects_total', 'Connections HAProxy ended with a HAPROXY-DISCONNECT', 'counter'],
  ['refusedConnections', 'connections_refused_total', 'Connections closed at accept: listen.max-connections reached', 'counter'],
  ['deniedConnections', 'connections_denied_total', 'Connections closed at accept: peer not in listen.allow-from', 'counter'],
  ['helloTimeouts', 'hello_timeouts_total', 'Connections cut for sending no HAPROXY-HELLO in time', 'counter'],
  ['idleTimeouts', 'idle_timeouts_total', 'Connections cut for sending no NOTIFY within listen.idle-timeout after the HELLO', 'counter'],
  ['partialFrameBytes', 'partial_frame_bytes', 'Bytes held now in frames not yet complete, across connections', 'gauge'],
  ['bufferLimitDisconnects', 'buffer_limit_disconnects_total', 'Connections cut because their partial frame would have exceeded the buffer budget', 'counter'],
  ['partialFrameTimeouts', 'partial_frame_timeouts_total', 'Connections cut for holding a partial frame too long', 'counter'],
] as const satisfies ReadonlyArray<readonly [keyof AgentStats, string, string, 'counter' | 'gauge']>;

const DEFAULT_OPTIONS: Required<ReputationMetricsOptions> = { prefix: 'iprep_', defaultMetrics: true, now: Date.now };

/** Per-second slots: the history plus the second in progress. */
const RING_SLOTS = HISTORY_SECONDS + 1;
/**
 * Distinct (action, category, source) series kept. Beyond it a message is counted with category and
 * source `other`, so per-address sources (one decision per address) cannot grow the label set unbounded.
 */
const MAX_SERIES = 1000;
const OVERFLOW_LABEL = 'other';
/** Values of the origin label of decisions_changes_total. */
const KNOWN_ORIGINS: ReadonlySet<string> = new Set(['api', 'cli', 'behaviour']);

/** Messages counted for one (action, category, source). */
class SeriesCount {
  count = 0;
  constructor(
    readonly action: string,
    readonly category: string,
    readonly source: string,
  ) {}
}

/** The behaviour tracker's figures for /metrics. */
export interface BehaviourFigures {
  /** Clients tracked now. */
  readonly clients: number;
  /** Messages since start whose client the doorkeeper remembered instead of tracking it. */
  readonly turnedAway: number;
}

export class ReputationMetrics {
  readonly registry: Registry;
  readonly #now: () => number;
  readonly #startedAt: number;

  readonly #handlerSeconds: FixedHistogram;
  readonly #scores: FixedHistogram;
  readonly #messagesCounter: Counter<'action' | 'category' | 'source'>;
  readonly #reloadsCounter: Counter<'result'>;
  readonly #decisionChanges: Counter<'origin' | 'action' | 'op'>;
  readonly #bans: Counter<'action'>;
  #lastReloadSuccessAt: number | null = null;
  /** The latest behaviour bans, newest first (at most LATEST_BANS). */
  readonly #latestBans: BanRecord[] = [];
  #readTopClients: (() => readonly ClientCount[]) | undefined;
  #readBehaviour: (() => BehaviourFigures) | undefined;
  #readGeo: (() => GeoFigures | undefined) | undefined;

  /** Series by source, then a short list of (action, category) pairs: sources are the most specific label. */
  readonly #seriesBySource = new Map<string, SeriesCount[]>();
  #seriesCount = 0;
  /** The series of the last verdicts counted, by verdict: verdicts are few and reused (the engine keeps them). */
  readonly #recentSeries = new RecentByIdentity<Verdict, SeriesCount>();

  /** Messages per second, a ring indexed by `slot` (the second in progress, `currentSecond`). */
  readonly #perSecond = new Float64Array(RING_SLOTS);
  #slot = 0;
  #currentSecond: number;
  /** Whether a timer moves the ring at each second; off while no message comes. */
  #ticking = false;

  #readAgent: (() => AgentGauges) | undefined;
  #readAgentCounters: (() => AgentCounters) | undefined;
  #readLists: (() => readonly ListStatus[]) | undefined;
  #readDecisions: (() => number) | undefined;
  #readStore: (() => StoreHealth) | undefined;
  readonly #reloadCounts = { ok: 0, failed: 0 };
  #lastReload: ReloadSummary['last'] = null;
  readonly #prefix: string;
  #peers: WorkerPeers | undefined;

  constructor(options: ReputationMetricsOptions = {}) {
    const { prefix, defaultMetrics, now } = { ...DEFAULT_OPTIONS, ...options };
    this.#now = now;
    this.#prefix = prefix;
    this.#startedAt = now();
    this.#currentSecond = Math.floor(this.#startedAt / 1000);
    const registry = new Registry();
    this.registry = registry;
    const registers = [registry];

    this.#messagesCounter = new Counter({
      name: `${prefix}messages_total`,
      help: 'Messages scored, by action, category and source of the deciding match',
      labelNames: ['action', 'category', 'source'],
      registers,
      collect: () => this.#publishMessages(),
    });
    this.#handlerSeconds = new FixedHistogram({
      name: `${prefix}handler_seconds`,
      help: 'Time to score one message, in seconds',
      bounds: HANDLER_SECONDS_BOUNDS,
      registry,
    });
    this.#scores = new FixedHistogram({
      name: `${prefix}score`,
      help: 'Scores given (0 certainly bad .. 100 trusted)',
      bounds: SCORE_BOUNDS,
      registry,
    });

    const connections: Gauge = new Gauge({
      name: `${prefix}connections`,
      help: 'Open connections from HAProxy',
      registers,
      aggregator: 'sum',
      collect: () => connections.set(this.#readAgent?.().connections ?? 0),
    });
    const inFlight: Gauge = new Gauge({
      name: `${prefix}frames_in_flight`,
      help: 'Frames received and not yet answered',
      registers,
      aggregator: 'sum',
      collect: () => inFlight.set(this.#readAgent?.().inFlight ?? 0),
    });
    for (const [field, name, help, type] of AGENT_COUNTERS) {
      const read = (): number => this.#readAgentCounters?.()[field] ?? 0;
      if (type === 'counter') {
        // The library keeps the totals: each scrape publishes them as they are.
        const counter: Counter = new Counter({
          name: `${prefix}${name}`,
          help,
          registers,
          aggregator: 'sum',
          collect: () => {
            counter.reset();
            counter.inc(read());
          },
        });
      } else {
        const gauge: Gauge = new Gauge({ name: `${prefix}${name}`, help, registers, aggregator: 'sum', collect: () => gauge.set(read()) });
      }
    }

    // Counted where the connections arrive: the worker that handed them over is gone by the next scrape.
    const handedOver: Counter = new Counter({
      name: `${prefix}connections_handed_over_total`,
      help: 'Connections handed to this worker by a rolling restart, by result: adopted, or refused (closed with a DISCONNECT)',
      labelNames: ['result'],
      registers,
      aggregator: 'sum',
      collect: () => {
        handedOver.reset();
        const counters = this.#readAgentCounters?.();
        handedOver.inc({ result: 'adopted' }, counters?.connectionsAdopted ?? 0);
        handedOver.inc({ result: 'refused' }, counters?.adoptionsRefused ?? 0);
      },
    });

    const behaviourClients: Gauge = new Gauge({
      name: `${prefix}behaviour_clients`,
      help: 'Clients the behaviour tracker keeps counts for',
      registers,
      aggregator: 'sum',
      collect: () => behaviourClients.set(this.#readBehaviour?.().clients ?? 0),
    });
    // The tracker keeps the total: each scrape publishes it as it is.
    const turnedAway: Counter = new Counter({
      name: `${prefix}behaviour_turned_away_total`,
      help: "Messages whose client the behaviour doorkeeper remembered instead of tracking it (a client's first in a window)",
      registers,
      aggregator: 'sum',
      collect: () => {
        turnedAway.reset();
        turnedAway.inc(this.#readBehaviour?.().turnedAway ?? 0);
      },
    });

    const listEntries = new Gauge({
      name: `${prefix}list_entries`,
      help: 'Entries in each loaded list',
      labelNames: ['list'],
      registers,
      // Every worker loads the same lists: their copies are not added up.
      aggregator: 'max',
      collect: () => {
        listEntries.reset();
        for (const list of this.#lists()) listEntries.set({ list: list.name }, list.entries);
      },
    });
    const listAge = new Gauge({
      name: `${prefix}list_age_seconds`,
      help: 'Seconds since each list was last loaded (lists never loaded are absent)',
      labelNames: ['list'],
      registers,
      aggregator: 'max', // the stalest worker's copy
      collect: () => {
        listAge.reset();
        const now = this.#now();
        for (const list of this.#lists()) {
          if (list.loadedAt !== null) listAge.set({ list: list.name }, Math.max(0, (now - list.loadedAt) / 1000));
        }
      },
    });
    const listError = new Gauge({
      name: `${prefix}list_error`,
      help: 'Whether the last load or refresh of each list failed (1); the list keeps its last good copy',
      labelNames: ['list'],
      registers,
      aggregator: 'max', // 1 when any worker's copy failed
      collect: () => {
        listError.reset();
        for (const list of this.#lists()) listError.set({ list: list.name }, list.lastError === null ? 0 : 1);
      },
    });

    const listUpdated = new Gauge({
      name: `${prefix}list_last_update_timestamp_seconds`,
      help: 'When each list was last loaded or refreshed successfully, seconds since the epoch (lists never loaded are absent)',
      labelNames: ['list'],
      registers,
      aggregator: 'min', // the stalest worker's copy
      collect: () => {
        listUpdated.reset();
        for (const list of this.#lists()) if (list.loadedAt !== null) listUpdated.set({ list: list.name }, list.loadedAt / 1000);
      },
    });

    new Gauge({
      name: `${prefix}build_info`,
      help: 'The agent version and the Node.js running it (always 1)',
      labelNames: ['version', 'node'],
      registers,
      aggregator: 'max',
    }).set({ version: VERSION, node: NODE_VERSION }, 1);
    this.#decisionChanges = new Counter({
      name: `${prefix}decisions_changes_total`,
      help: 'Decisions added, deleted or expired, by who made them (api, cli, behaviour; other) and action; counted by the process that made the change',
      labelNames: ['origin', 'action', 'op'],
      registers,
      aggregator: 'sum',
    });
    this.#bans = new Counter({
      name: `${prefix}bans_total`,
      help: 'Clients banned for their behaviour, by the action of the ban',
      labelNames: ['action'],
      registers,
      aggregator: 'sum',
    });

    const geoMessages: Gauge<'kind' | 'value'> = new Gauge({
      name: `${prefix}geo_messages`,
      help: 'Messages since start from the most seen countries (kind country, value FR) and ASNs (kind asn, value AS64496): geo.top of each',
      labelNames: ['kind', 'value'],
      registers,
      aggregator: 'sum',
      collect: () => {
        geoMessages.reset();
        const geo = this.#readGeo?.();
        if (geo === undefined) return;
        for (const { value, count } of geo.countries) geoMessages.set({ kind: 'country', value }, count);
        for (const { value, count } of geo.asns) geoMessages.set({ kind: 'asn', value }, count);
      },
    });
    const geoNetworks: Gauge<'kind'> = new Gauge({
      name: `${prefix}geo_database_networks`,
      help: 'Networks of the geo database in service (kind country or asn)',
      labelNames: ['kind'],
      registers,
      aggregator: 'max',
      collect: () => {
        geoNetworks.reset();
        for (const db of this.#readGeo?.()?.databases ?? []) geoNetworks.set({ kind: db.kind }, db.networks);
      },
    });
    const geoError: Gauge<'kind'> = new Gauge({
      name: `${prefix}geo_database_error`,
      help: 'Whether the last load of the geo database failed (1: its last good copy is in service)',
      labelNames: ['kind'],
      registers,
      aggregator: 'max',
      collect: () => {
        geoError.reset();
        for (const db of this.#readGeo?.()?.databases ?? []) geoError.set({ kind: db.kind }, db.lastError === null ? 0 : 1);
      },
    });

    this.#reloadsCounter = new Counter({
      name: `${prefix}reloads_total`,
      help: 'Reloads of the lists and configuration, by result',
      labelNames: ['result'],
      registers,
    });
    this.#reloadsCounter.inc({ result: 'ok' }, 0);
    this.#reloadsCounter.inc({ result: 'error' }, 0);
    const lastReloadSuccess: Gauge = new Gauge({
      name: `${prefix}last_reload_success_timestamp_seconds`,
      help: 'When the lists and configuration last loaded without error (the start counts), seconds since the epoch',
      registers,
      aggregator: 'min', // the worker that went longest without one
      collect: () => {
        lastReloadSuccess.reset();
        if (this.#lastReloadSuccessAt !== null) lastReloadSuccess.set(this.#lastReloadSuccessAt / 1000);
      },
    });
    const reloadSeconds: Gauge = new Gauge({
      name: `${prefix}last_reload_duration_seconds`,
      help: 'Duration of the last reload, in seconds',
      registers,
      aggregator: 'max',
      collect: () => reloadSeconds.set((this.#lastReload?.durationMs ?? 0) / 1000),
    });

    const decisions: Gauge = new Gauge({
      name: `${prefix}decisions`,
      help: 'Decisions in force (manual and behaviour bans)',
      registers,
      aggregator: 'max', // every worker sees the same decisions
      collect: () => decisions.set(this.#readDecisions?.() ?? 0),
    });
    // The store's state, labelled by its kind; a store without the figure (memory: no sync age) shows no sample.
    const storeGauge = (name: string, help: string, aggregator: 'min' | 'max', read: (store: StoreHealth) => number | undefined): void => {
      const gauge: Gauge<'kind'> = new Gauge({
        name: `${prefix}${name}`,
        help,
        labelNames: ['kind'],
        registers,
        aggregator,
        collect: () => {
          gauge.reset();
          const store = this.#readStore?.();
          const value = store === undefined ? undefined : read(store);
          if (store !== undefined && value !== undefined) gauge.set({ kind: store.kind }, value);
        },
      });
    };
    // min: 0 when any worker cannot reach it.
    storeGauge('store_up', 'Whether the decision store is reachable (1), by kind', 'min', (store) => (store.up ? 1 : 0));
    const pendingWrites: Gauge = new Gauge({
      name: `${prefix}store_pending_writes`,
      help: 'Decision writes waiting for the shared store (the replay queue while Redis is unreachable)',
      registers,
      aggregator: 'sum', // each worker has its own queue
      collect: () => pendingWrites.set(this.#readStore?.().pendingWrites ?? 0),
    });
    // The store keeps the total: each scrape publishes it as it is.
    const droppedWrites: Counter = new Counter({
      name: `${prefix}store_dropped_writes_total`,
      help: 'Decision writes dropped since start because the replay queue was full',
      registers,
      aggregator: 'sum',
      collect: () => {
        droppedWrites.reset();
        droppedWrites.inc(this.#readStore?.().droppedWrites ?? 0);
      },
    });
    // max: the stalest worker.
    storeGauge(
      'store_sync_age_seconds',
      'Time since the decisions were last known current with the shared store; about the log read interval when healthy, growing while it is unreachable',
      'max',
      (store) => (store.syncAgeMs === undefined ? undefined : store.syncAgeMs / 1000),
    );
    storeGauge(
      'store_change_lag_seconds',
      "How long after its write in the shared store the last change was applied here (from Redis' clock to this host's)",
      'max',
      (store) => (store.changeLagMs === undefined ? undefined : store.changeLagMs / 1000),
    );

    if (defaultMetrics) collectDefaultMetrics({ register: registry });
  }

  /**
   * Hot path, once per scored message: counts into numbers only (no allocation once a series exists,
   * no clock read: a timer moves the per-second ring while messages flow).
   */
  observeVerdict(verdict: Verdict, handlerSeconds?: number): void {
    if (!this.#ticking) this.#startTicking();
    this.#perSecond[this.#slot] = (this.#perSecond[this.#slot] as number) + 1;
    // Callers time a sample of their messages: reading the clock costs more than the rest.
    if (handlerSeconds !== undefined) this.#handlerSeconds.observe(handlerSeconds);
    this.#scores.observe(verdict.score);
    // The series of the last verdicts counted: messages alternate between a few verdicts (unknown, a list's, RFC 6890's).
    let series = this.#recentSeries.get(verdict);
    if (series === undefined) {
      series = this.#seriesFor(verdict.action, verdict.category, verdict.source);
      this.#recentSeries.set(verdict, series);
    }
    series.count++;
  }

  setAgentGauges(read: () => AgentGauges): void {
    this.#readAgent = read;
  }

  /** Where the SPOP connection counters come from: the agent's `stats`, read at scrape time. */
  setAgentCounters(read: () => AgentCounters): void {
    this.#readAgentCounters = read;
  }

  setListsProvider(read: () => readonly ListStatus[]): void {
    this.#readLists = read;
  }

  setDecisionsProvider(read: () => number): void {
    this.#readDecisions = read;
  }

  setStoreProvider(read: () => StoreHealth): void {
    this.#readStore = read;
  }

  /** Where the status page's top clients come from (the behaviour tracker), read when asked. */
  setTopClientsProvider(read: () => readonly ClientCount[]): void {
    this.#readTopClients = read;
  }

  /** Where the behaviour tracker's figures come from, read at scrape time. */
  setBehaviourProvider(read: () => BehaviourFigures): void {
    this.#readBehaviour = read;
  }

  /** Where the most seen countries and ASNs and the geo databases' state come from, read when asked (undefined: no geo databases). */
  setGeoProvider(read: () => GeoFigures | undefined): void {
    this.#readGeo = read;
  }

  /** Records a reload (SIGHUP, file change, `POST /reload`): whoever runs one reports it here. */
  reloaded(ok: boolean, durationMs: number): void {
    if (ok) this.#reloadCounts.ok++;
    else this.#reloadCounts.failed++;
    this.#reloadsCounter.inc({ result: ok ? 'ok' : 'error' });
    this.#lastReload = { ok, durationMs, at: this.#now() };
    if (ok) this.#lastReloadSuccessAt = this.#lastReload.at;
  }

  /** Counts a change of the audit trail (service `onDecisionAudit`); changes seen through the store are their writer's to count. */
  decisionAudited(event: DecisionAuditEvent): void {
    if (event.received) return;
    if (event.op === 'ban') {
      this.#bans.inc({ action: event.action });
      if (event.ban !== undefined) {
        this.#latestBans.unshift({ ...event.ban, action: event.action, at: this.#now() });
        if (this.#latestBans.length > LATEST_BANS) this.#latestBans.pop();
      }
      return;
    }
    // Origins come from stored decisions too (a decisions file, another agent): a few known ones, else other.
    const origin = KNOWN_ORIGINS.has(event.origin) ? event.origin : OVERFLOW_LABEL;
    this.#decisionChanges.inc({ origin, action: event.action, op: event.op });
  }

  uptimeSeconds(): number {
    return Math.max(0, (this.#now() - this.#startedAt) / 1000);
  }

  /**
   * In a node:cluster worker: where the other workers' figures come from. `clusterMetrics()` and
   * `clusterStatus()` then cover every worker; without peers they are this process's.
   */
  setPeers(peers: WorkerPeers): void {
    this.#peers = peers;
  }

  /** This process's status. */
  status(): StatusSnapshot {
    return mergeStatus([this.statusCounts()]);
  }

  /** This process's figures, in the form that adds up across workers (what another worker merges). */
  statusCounts(): StatusCounts {
    const time = this.#now();
    this.#advanceTo(Math.floor(time / 1000));
    const history: number[] = [];
    for (let age = HISTORY_SECONDS; age >= 1; age--) {
      history.push(this.#perSecond[(this.#slot - age + RING_SLOTS) % RING_SLOTS] as number);
    }
    const series = [];
    for (const list of this.#seriesBySource.values()) {
      for (const s of list) series.push({ action: s.action, category: s.category, source: s.source, count: s.count });
    }
    const store = this.#readStore?.() ?? null;
    const agent = this.#readAgent?.();
    return {
      time,
      startedAt: this.#startedAt,
      second: this.#currentSecond,
      history,
      handler: { counts: [...this.#handlerSeconds.counts], sum: this.#handlerSeconds.sum, count: this.#handlerSeconds.count },
      scores: [...this.#scores.counts],
      series,
      lists: this.#lists(),
      store: store && { ...store },
      decisions: this.#readDecisions?.() ?? null,
      agent: agent === undefined ? null : { connections: agent.connections, inFlight: agent.inFlight },
      reloads: { ...this.#reloadCounts, last: this.#lastReload },
      topClients: (this.#readTopClients?.() ?? []).slice(0, TOP_CLIENTS).map(({ client, count }) => ({ client, count })),
      bans: [...this.#latestBans],
      ...geoPart(this.#readGeo?.()),
    };
  }

  /** The status of every worker (this one's lists and decisions), or of this process without peers. */
  async clusterStatus(): Promise<StatusSnapshot> {
    if (this.#peers === undefined) return this.status();
    const own = this.statusCounts();
    const { parts, missing } = await this.#peers.gather('status');
    const valid = parts.filter(isStatusCounts);
    // A part this code cannot read is a worker left out too.
    return mergeStatus([own, ...valid], missing === null ? null : missing + parts.length - valid.length);
  }

  /**
   * The Prometheus text of every worker, each metric merged by its aggregator (prom-client's cluster
   * semantics), plus how many workers it covers; of this process alone, unchanged, without peers.
   */
  async clusterMetrics(): Promise<string> {
    if (this.#peers === undefined) return this.registry.metrics();
    const [own, { parts, missing }] = await Promise.all([this.registry.getMetricsAsJSON(), this.#peers.gather('metrics')]);
    const valid = parts.map(metricsJson).filter((part) => part !== undefined);
    const merged = AggregatorRegistry.aggregate([own, ...valid]);
    const workers = new Gauge({
      name: `${this.#prefix}workers`,
      help: 'Worker processes whose figures this answer covers',
      registers: [merged],
    });
    workers.set(1 + valid.length);
    const missingWorkers = new Gauge({
      name: `${this.#prefix}workers_missing`,
      help: 'Worker processes left out of this answer: they did not answer in time (NaN: the primary did not answer)',
      registers: [merged],
    });
    missingWorkers.set(missing === null ? Number.NaN : missing + parts.length - valid.length);
    return merged.metrics();
  }

  #lists(): readonly ListStatus[] {
    return this.#readLists?.() ?? [];
  }

  #seriesFor(action: string, category: string, source: string): SeriesCount {
    let list = this.#seriesBySource.get(source);
    if (list !== undefined) {
      for (const s of list) if (s.action === action && s.category === category) return s;
    }
    if (this.#seriesCount >= MAX_SERIES && source !== OVERFLOW_LABEL) {
      return this.#seriesFor(action, OVERFLOW_LABEL, OVERFLOW_LABEL);
    }
    const series = new SeriesCount(action, category, source);
    if (list === undefined) {
      list = [];
      this.#seriesBySource.set(source, list);
    }
    list.push(series);
    this.#seriesCount++;
    return series;
  }

  /**
   * Moves the ring to the current second, then again at the start of every second while messages
   * flow. Reading the clock per message would cost more than all the counting (over 100 ns on some
   * virtual machines); a second without messages stops the timer, and the next message starts it.
   */
  #startTicking(): void {
    this.#ticking = true;
    this.#advanceTo(Math.floor(this.#now() / 1000));
    this.#armTick();
  }

  #armTick(): void {
    // Just past the next second boundary, so each slot holds one calendar second.
    setTimeout(this.#onTick, 1001 - (this.#now() % 1000)).unref();
  }

  readonly #onTick = (): void => {
    this.#advanceTo(Math.floor(this.#now() / 1000));
    const previous = (this.#slot - 1 + RING_SLOTS) % RING_SLOTS;
    if (this.#perSecond[previous] === 0 && this.#perSecond[this.#slot] === 0) this.#ticking = false;
    else this.#armTick();
  };

  /** Moves the ring to `second`, clearing the seconds skipped. A clock going back keeps the current slot. */
  #advanceTo(second: number): void {
    if (second <= this.#currentSecond) return;
    const steps = Math.min(second - this.#currentSecond, RING_SLOTS);
    for (let i = 0; i < steps; i++) {
      this.#slot = (this.#slot + 1) % RING_SLOTS;
      this.#perSecond[this.#slot] = 0;
    }
    this.#currentSecond = second;
  }

  #publishMessages(): void {
    const counter = this.#messagesCounter;
    counter.reset();
    for (const list of this.#seriesBySource.values()) {
      for (const s of list) counter.inc({ action: s.action, category: s.category, source: s.source }, s.count);
    }
  }
}

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

const AGGREGATORS: ReadonlySet<unknown> = new Set(['omit', 'sum', 'first', 'min', 'max', 'average']);

/**
 * Another worker's getMetricsAsJSON(), checked (it crossed a process boundary: AggregatorRegistry
 * throws on an unknown aggregator); undefined when it is not one. JSON turned NaN and infinities into
 * null: they come back as NaN rather than print as `+Inf`.
 */
function metricsJson(part: unknown): MetricsJson | undefined {
  if (!Array.isArray(part)) return undefined;
  const metrics: MetricsJson = [];
  for (const metric of part as unknown[]) {
    if (typeof metric !== 'object' || metric === null) return undefined;
    const { name, help, type, aggregator, values } = metric as Record<string, unknown>;
    if (typeof name !== 'string' || typeof help !== 'string' || typeof type !== 'string' || !AGGREGATORS.has(aggregator) || !Array.isArray(values)) {
      return undefined;
    }
    const checked: MetricValue<string>[] = [];
    for (const value of values as unknown[]) {
      if (typeof value !== 'object' || value === null) return undefined;
      const v = value as Record<string, unknown>;
      if (typeof v.labels !== 'object' || v.labels === null || (v.metricName !== undefined && typeof v.metricName !== 'string')) return undefined;
      checked.push({ ...v, labels: v.labels as MetricValue<string>['labels'], value: typeof v.value === 'number' ? v.value : Number.NaN });
    }
    metrics.push({ ...(metric as MetricsJson[number]), values: checked });
  }
  return metrics;
}

function geoPart(geo: GeoFigures | undefined): { geo?: GeoFigures } {
  return geo === undefined ? {} : { geo };
}
