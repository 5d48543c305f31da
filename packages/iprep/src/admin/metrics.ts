/**
 * Prometheus metrics and the live status of the agent.
 *
 * The per-message path (`observeVerdict`) only counts into plain numbers and
 * small maps; prom-client sees the counts when Prometheus scrapes (`collect`),
 * so scoring a message never hashes a label set. The same counts feed the
 * status page through `status()`.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { IP_ACTIONS, type ListStatus, type StoreHealth, type Verdict } from '../types.js';
import { FixedHistogram } from './histogram.js';

/** Agent figures read at scrape time. */
export interface AgentGauges {
  connections: number;
  inFlight: number;
}

export interface ReputationMetricsOptions {
  /** Prefix of every metric name except prom-client's process metrics. Default `iprep_`. */
  prefix?: string;
  /** Add prom-client's default process metrics (CPU, memory, event loop, GC) to the registry. Default true. */
  defaultMetrics?: boolean;
  /** Clock in ms since the epoch. Default `Date.now`. */
  now?: () => number;
}

const DEFAULT_OPTIONS: Required<ReputationMetricsOptions> = { prefix: 'iprep_', defaultMetrics: true, now: Date.now };

/** Handler time bounds (seconds): a table lookup takes microseconds; HAProxy's processing timeout is tens of ms. */
const HANDLER_SECONDS_BOUNDS = [
  0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
  0.025, 0.05, 0.1,
];
/** Score bounds: integer scores 0-9, 10-19, ... 80-89, and 90-100 above the last bound. */
const SCORE_BOUNDS = [9, 19, 29, 39, 49, 59, 69, 79, 89];
/** Messages/s on the status page is the mean over this many complete seconds. */
const RATE_WINDOW_SECONDS = 10;
/** Complete seconds of per-second history on the status page. */
const HISTORY_SECONDS = 60;
/** Per-second slots: the history plus the second in progress. */
const RING_SLOTS = HISTORY_SECONDS + 1;
/**
 * Distinct (action, category, source) series kept. Beyond it a message is counted with category and
 * source `other`, so per-address sources (one decision per address) cannot grow the label set unbounded.
 */
const MAX_SERIES = 1000;
const OVERFLOW_LABEL = 'other';
/** Categories and sources listed on the status page. */
const TOP_COUNT = 10;

export interface NamedCount {
  readonly name: string;
  readonly count: number;
}

export interface ScoreBucket {
  /** Lowest and highest integer score of the bucket: 0-9, 10-19, ... 90-100. */
  readonly from: number;
  readonly to: number;
  readonly count: number;
}

export interface ListSnapshot extends ListStatus {
  /** Seconds since the list was loaded; null when it never was. */
  readonly ageSeconds: number | null;
}

/** What the status page shows, as `/status.json` serves it. */
export interface StatusSnapshot {
  /** When it was taken (ms since the epoch). */
  readonly time: number;
  readonly uptimeSeconds: number;
  readonly messages: {
    readonly total: number;
    /** Mean over the last 10 complete seconds. */
    readonly perSecond: number;
    /** Messages in each of the last 60 complete seconds, oldest first. */
    readonly history: readonly number[];
  };
  readonly handler: {
    /** Mean handler time since start, in seconds; null before the first message. */
    readonly meanSeconds: number | null;
    /** Upper bound of the histogram bucket holding the 99th percentile; null before the first message or above 100 ms. */
    readonly p99Seconds: number | null;
  };
  /** Ten buckets, 0-9 first. */
  readonly scores: readonly ScoreBucket[];
  /** Every action (mildest first), with the messages that got it. */
  readonly actions: readonly NamedCount[];
  /** The ten most frequent deciding categories and sources, most frequent first. */
  readonly topCategories: readonly NamedCount[];
  readonly topSources: readonly NamedCount[];
  readonly lists: readonly ListSnapshot[];
  /** Null when no provider was set. */
  readonly store: StoreHealth | null;
  readonly decisions: number | null;
  readonly agent: AgentGauges | null;
  readonly reloads: {
    readonly ok: number;
    readonly failed: number;
    readonly last: { readonly ok: boolean; readonly durationMs: number; readonly at: number } | null;
  };
}

/** Messages counted for one (action, category, source). */
class SeriesCount {
  count = 0;
  constructor(
    readonly action: string,
    readonly category: string,
    readonly source: string,
  ) {}
}

export class ReputationMetrics {
  readonly registry: Registry;
  private readonly now: () => number;
  private readonly startedAt: number;

  private readonly handlerSeconds: FixedHistogram;
  private readonly scores: FixedHistogram;
  private readonly messagesCounter: Counter<'action' | 'category' | 'source'>;
  private readonly reloadsCounter: Counter<'result'>;

  /** Series by source, then a short list of (action, category) pairs: sources are the most specific label. */
  private readonly seriesBySource = new Map<string, SeriesCount[]>();
  private seriesCount = 0;
  /** The series of the previous message: consecutive messages often share one. */
  private lastSeries: SeriesCount | undefined;

  /** Messages per second, a ring indexed by `slot` (the second in progress, `currentSecond`). */
  private readonly perSecond = new Float64Array(RING_SLOTS);
  private slot = 0;
  private currentSecond: number;
  /** Whether a timer moves the ring at each second; off while no message comes. */
  private ticking = false;

  private readAgent: (() => AgentGauges) | undefined;
  private readLists: (() => readonly ListStatus[]) | undefined;
  private readDecisions: (() => number) | undefined;
  private readStore: (() => StoreHealth) | undefined;
  private readonly reloadCounts = { ok: 0, failed: 0 };
  private lastReload: StatusSnapshot['reloads']['last'] = null;

  constructor(options: ReputationMetricsOptions = {}) {
    const { prefix, defaultMetrics, now } = { ...DEFAULT_OPTIONS, ...options };
    this.now = now;
    this.startedAt = now();
    this.currentSecond = Math.floor(this.startedAt / 1000);
    const registry = new Registry();
    this.registry = registry;
    const registers = [registry];

    this.messagesCounter = new Counter({
      name: `${prefix}messages_total`,
      help: 'Messages scored, by action, category and source of the deciding match',
      labelNames: ['action', 'category', 'source'],
      registers,
      collect: () => this.publishMessages(),
    });
    this.handlerSeconds = new FixedHistogram({
      name: `${prefix}handler_seconds`,
      help: 'Time to score one message, in seconds',
      bounds: HANDLER_SECONDS_BOUNDS,
      registry,
    });
    this.scores = new FixedHistogram({
      name: `${prefix}score`,
      help: 'Scores given (0 certainly bad .. 100 trusted)',
      bounds: SCORE_BOUNDS,
      registry,
    });

    const connections: Gauge = new Gauge({
      name: `${prefix}connections`,
      help: 'Open connections from HAProxy',
      registers,
      collect: () => connections.set(this.readAgent?.().connections ?? 0),
    });
    const inFlight: Gauge = new Gauge({
      name: `${prefix}frames_in_flight`,
      help: 'Frames received and not yet answered',
      registers,
      collect: () => inFlight.set(this.readAgent?.().inFlight ?? 0),
    });

    const listEntries = new Gauge({
      name: `${prefix}list_entries`,
      help: 'Entries in each loaded list',
      labelNames: ['list'],
      registers,
      collect: () => {
        listEntries.reset();
        for (const list of this.lists()) listEntries.set({ list: list.name }, list.entries);
      },
    });
    const listAge = new Gauge({
      name: `${prefix}list_age_seconds`,
      help: 'Seconds since each list was last loaded (lists never loaded are absent)',
      labelNames: ['list'],
      registers,
      collect: () => {
        listAge.reset();
        const now = this.now();
        for (const list of this.lists()) {
          if (list.loadedAt !== null) listAge.set({ list: list.name }, Math.max(0, (now - list.loadedAt) / 1000));
        }
      },
    });
    const listError = new Gauge({
      name: `${prefix}list_error`,
      help: 'Whether the last load or refresh of each list failed (1); the list keeps its last good copy',
      labelNames: ['list'],
      registers,
      collect: () => {
        listError.reset();
        for (const list of this.lists()) listError.set({ list: list.name }, list.lastError === null ? 0 : 1);
      },
    });

    this.reloadsCounter = new Counter({
      name: `${prefix}reloads_total`,
      help: 'Reloads of the lists and configuration, by result',
      labelNames: ['result'],
      registers,
    });
    this.reloadsCounter.inc({ result: 'ok' }, 0);
    this.reloadsCounter.inc({ result: 'error' }, 0);
    const reloadSeconds: Gauge = new Gauge({
      name: `${prefix}last_reload_duration_seconds`,
      help: 'Duration of the last reload, in seconds',
      registers,
      collect: () => reloadSeconds.set((this.lastReload?.durationMs ?? 0) / 1000),
    });

    const decisions: Gauge = new Gauge({
      name: `${prefix}decisions`,
      help: 'Decisions in force (manual and behaviour bans)',
      registers,
      collect: () => decisions.set(this.readDecisions?.() ?? 0),
    });
    const storeUp = new Gauge({
      name: `${prefix}store_up`,
      help: 'Whether the decision store is reachable (1), by kind',
      labelNames: ['kind'],
      registers,
      collect: () => {
        storeUp.reset();
        const store = this.readStore?.();
        if (store) storeUp.set({ kind: store.kind }, store.up ? 1 : 0);
      },
    });
    const pendingWrites: Gauge = new Gauge({
      name: `${prefix}store_pending_writes`,
      help: 'Decision writes waiting for the shared store (the replay queue while Redis is unreachable)',
      registers,
      collect: () => pendingWrites.set(this.readStore?.().pendingWrites ?? 0),
    });
    const droppedWrites: Gauge = new Gauge({
      name: `${prefix}store_dropped_writes`,
      help: 'Decision writes dropped since start because the replay queue was full',
      registers,
      collect: () => droppedWrites.set(this.readStore?.().droppedWrites ?? 0),
    });

    if (defaultMetrics) collectDefaultMetrics({ register: registry });
  }

  /**
   * Hot path, once per scored message: counts into numbers only (no allocation once a series exists,
   * no clock read: a timer moves the per-second ring while messages flow).
   */
  observeVerdict(verdict: Verdict, handlerSeconds?: number): void {
    if (!this.ticking) this.startTicking();
    this.perSecond[this.slot] = (this.perSecond[this.slot] as number) + 1;
    // Callers time a sample of their messages: reading the clock costs more than the rest.
    if (handlerSeconds !== undefined) this.handlerSeconds.observe(handlerSeconds);
    this.scores.observe(verdict.score);
    let series = this.lastSeries;
    if (
      series === undefined ||
      series.source !== verdict.source ||
      series.category !== verdict.category ||
      series.action !== verdict.action
    ) {
      series = this.seriesFor(verdict.action, verdict.category, verdict.source);
      this.lastSeries = series;
    }
    series.count++;
  }

  setAgentGauges(read: () => AgentGauges): void {
    this.readAgent = read;
  }

  setListsProvider(read: () => readonly ListStatus[]): void {
    this.readLists = read;
  }

  setDecisionsProvider(read: () => number): void {
    this.readDecisions = read;
  }

  setStoreProvider(read: () => StoreHealth): void {
    this.readStore = read;
  }

  /** Records a reload (SIGHUP, file change, `POST /reload`): whoever runs one reports it here. */
  reloaded(ok: boolean, durationMs: number): void {
    if (ok) this.reloadCounts.ok++;
    else this.reloadCounts.failed++;
    this.reloadsCounter.inc({ result: ok ? 'ok' : 'error' });
    this.lastReload = { ok, durationMs, at: this.now() };
  }

  uptimeSeconds(): number {
    return Math.max(0, (this.now() - this.startedAt) / 1000);
  }

  status(): StatusSnapshot {
    const time = this.now();
    this.advanceTo(Math.floor(time / 1000));

    const history: number[] = [];
    for (let age = HISTORY_SECONDS; age >= 1; age--) {
      history.push(this.perSecond[(this.slot - age + RING_SLOTS) % RING_SLOTS] as number);
    }
    let recent = 0;
    for (let i = history.length - RATE_WINDOW_SECONDS; i < history.length; i++) recent += history[i] as number;

    const scores: ScoreBucket[] = [];
    for (let i = 0; i <= SCORE_BOUNDS.length; i++) {
      scores.push({ from: i * 10, to: i === SCORE_BOUNDS.length ? 100 : i * 10 + 9, count: this.scores.counts[i] as number });
    }

    const byAction = new Map<string, number>(IP_ACTIONS.map((action) => [action, 0]));
    const byCategory = new Map<string, number>();
    const bySource = new Map<string, number>();
    for (const list of this.seriesBySource.values()) {
      for (const s of list) {
        byAction.set(s.action, (byAction.get(s.action) ?? 0) + s.count);
        byCategory.set(s.category, (byCategory.get(s.category) ?? 0) + s.count);
        bySource.set(s.source, (bySource.get(s.source) ?? 0) + s.count);
      }
    }

    const store = this.readStore?.() ?? null;
    return {
      time,
      uptimeSeconds: this.uptimeSeconds(),
      messages: { total: this.scores.count, perSecond: recent / RATE_WINDOW_SECONDS, history },
      handler: this.handlerSummary(),
      scores,
      actions: [...byAction].map(([name, count]) => ({ name, count })),
      topCategories: top(byCategory),
      topSources: top(bySource),
      lists: this.lists().map((list) => ({
        ...list,
        ageSeconds: list.loadedAt === null ? null : Math.max(0, (time - list.loadedAt) / 1000),
      })),
      store: store && { ...store },
      decisions: this.readDecisions?.() ?? null,
      agent: this.readAgent ? { ...this.readAgent() } : null,
      reloads: { ...this.reloadCounts, last: this.lastReload },
    };
  }

  private lists(): readonly ListStatus[] {
    return this.readLists?.() ?? [];
  }

  private seriesFor(action: string, category: string, source: string): SeriesCount {
    let list = this.seriesBySource.get(source);
    if (list !== undefined) {
      for (const s of list) if (s.action === action && s.category === category) return s;
    }
    if (this.seriesCount >= MAX_SERIES && source !== OVERFLOW_LABEL) {
      return this.seriesFor(action, OVERFLOW_LABEL, OVERFLOW_LABEL);
    }
    const series = new SeriesCount(action, category, source);
    if (list === undefined) {
      list = [];
      this.seriesBySource.set(source, list);
    }
    list.push(series);
    this.seriesCount++;
    return series;
  }

  /**
   * Moves the ring to the current second, then again at the start of every second while messages
   * flow. Reading the clock per message would cost more than all the counting (over 100 ns on some
   * virtual machines); a second without messages stops the timer, and the next message starts it.
   */
  private startTicking(): void {
    this.ticking = true;
    this.advanceTo(Math.floor(this.now() / 1000));
    this.armTick();
  }

  private armTick(): void {
    // Just past the next second boundary, so each slot holds one calendar second.
    setTimeout(this.onTick, 1001 - (this.now() % 1000)).unref();
  }

  private readonly onTick = (): void => {
    this.advanceTo(Math.floor(this.now() / 1000));
    const previous = (this.slot - 1 + RING_SLOTS) % RING_SLOTS;
    if (this.perSecond[previous] === 0 && this.perSecond[this.slot] === 0) this.ticking = false;
    else this.armTick();
  };

  /** Moves the ring to `second`, clearing the seconds skipped. A clock going back keeps the current slot. */
  private advanceTo(second: number): void {
    if (second <= this.currentSecond) return;
    const steps = Math.min(second - this.currentSecond, RING_SLOTS);
    for (let i = 0; i < steps; i++) {
      this.slot = (this.slot + 1) % RING_SLOTS;
      this.perSecond[this.slot] = 0;
    }
    this.currentSecond = second;
  }

  private publishMessages(): void {
    const counter = this.messagesCounter;
    counter.reset();
    for (const list of this.seriesBySource.values()) {
      for (const s of list) counter.inc({ action: s.action, category: s.category, source: s.source }, s.count);
    }
  }

  private handlerSummary(): StatusSnapshot['handler'] {
    const h = this.handlerSeconds;
    if (h.count === 0) return { meanSeconds: null, p99Seconds: null };
    const rank = Math.ceil(h.count * 0.99);
    let seen = 0;
    let p99Seconds: number | null = null;
    for (let i = 0; i < h.bounds.length; i++) {
      seen += h.counts[i] as number;
      if (seen >= rank) {
        p99Seconds = h.bounds[i] as number;
        break;
      }
    }
    return { meanSeconds: h.sum / h.count, p99Seconds };
  }
}

function top(counts: Map<string, number>): NamedCount[] {
  return [...counts]
    .filter(([, count]) => count > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, TOP_COUNT)
    .map(([name, count]) => ({ name, count }));
}
