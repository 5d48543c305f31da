/**
 * What the status page shows (`/status.json`), and how the figures of several node:cluster workers
 * add up to it: each worker takes its StatusCounts, and the worker that answers merges them with
 * `mergeStatus`, its own first. One process is the case of one part.
 */
import { type GeoDatabaseStatus, IP_ACTIONS, type ListStatus, type StoreHealth } from '../types.js';
import { VERSION } from '../version.js';
import { isFiniteNumber, isRecord } from './guards.js';

/** Handler time bounds (seconds): a table lookup takes microseconds; HAProxy's processing timeout is tens of ms. */
export const HANDLER_SECONDS_BOUNDS: readonly number[] = [
  0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];
/** Score bounds: integer scores 0-9, 10-19, ... 80-89, and 90-100 above the last bound. */
export const SCORE_BOUNDS: readonly number[] = [9, 19, 29, 39, 49, 59, 69, 79, 89];
/** Complete seconds of per-second history on the status page. */
export const HISTORY_SECONDS = 60;
/** Messages/s on the status page is the mean over this many complete seconds. */
const RATE_WINDOW_SECONDS = 10;
/** Categories and sources listed on the status page. */
const TOP_COUNT = 10;

/** Clients listed as the top offenders, and bans kept for the status page, per worker and merged. */
export const TOP_CLIENTS = 10;
export const LATEST_BANS = 20;

/** A client (address or IPv6 prefix) and its messages in the behaviour window. */
export interface ClientCount {
  readonly client: string;
  readonly count: number;
}

/** A behaviour ban as the status page lists it; `at` and `until` in ms since the epoch. */
export interface BanRecord {
  readonly client: string;
  readonly action: string;
  readonly count: number;
  readonly offences: number;
  readonly at: number;
  readonly until: number;
}

/** Agent figures read at scrape time. */
export interface AgentGauges {
  connections: number;
  inFlight: number;
}

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

export interface ReloadSummary {
  readonly ok: number;
  readonly failed: number;
  readonly last: { readonly ok: boolean; readonly durationMs: number; readonly at: number } | null;
}

/** Messages of one country (`FR`) or AS (`AS64496`, with its organisation when known). */
export interface GeoCount {
  readonly value: string;
  readonly count: number;
  readonly name?: string;
}

/** The geo databases and the most seen countries and ASNs (at most `top` of each, most first). */
export interface GeoFigures {
  readonly top: number;
  readonly countries: readonly GeoCount[];
  readonly asns: readonly GeoCount[];
  readonly databases: readonly GeoDatabaseStatus[];
}

/** Most countries and ASNs a part may carry (geo.top is at most this). */
export const MAX_TOP_GEO = 1000;

/** What the status page shows, as `/status.json` serves it. */
export interface StatusSnapshot {
  /** The agent's version (package.json). */
  readonly version: string;
  /** When it was taken (ms since the epoch). */
  readonly time: number;
  /** Of the oldest worker. */
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
  /** The clients with the most messages in the behaviour window (largest count any worker has), most first. */
  readonly topClients: readonly ClientCount[];
  /** The latest behaviour bans of every worker, newest first. */
  readonly latestBans: readonly BanRecord[];
  /** Countries and ASNs summed over the workers, the databases as the answering worker loaded them; null without geo databases. */
  readonly geo: GeoFigures | null;
  /** As the answering worker loaded them (every worker loads the same lists). */
  readonly lists: readonly ListSnapshot[];
  /** Null when no provider was set. Down when any worker's store is; writes waiting and dropped are summed. */
  readonly store: StoreHealth | null;
  readonly decisions: number | null;
  /** Summed over the workers. */
  readonly agent: AgentGauges | null;
  /** Summed over the workers (a SIGHUP or POST /reload reloads each); `last` is the latest. */
  readonly reloads: ReloadSummary;
  /** Worker processes whose figures this covers: 1 without node:cluster workers. */
  readonly workers: number;
  /** Workers that did not answer in time, left out; null when the primary did not answer, so the number is unknown. */
  readonly workersMissing: number | null;
}

/** Messages counted for one (action, category, source). */
export interface MessageSeries {
  readonly action: string;
  readonly category: string;
  readonly source: string;
  readonly count: number;
}

/** One worker's figures, in a form that adds up across workers. */
export interface StatusCounts {
  /** When they were taken (ms since the epoch). */
  readonly time: number;
  readonly startedAt: number;
  /** The calendar second in progress (it never goes back); `history` ends with the second before it. */
  readonly second: number;
  /** Messages in each of the HISTORY_SECONDS complete seconds before `second`, oldest first. */
  readonly history: readonly number[];
  /** Per bucket of HANDLER_SECONDS_BOUNDS, not cumulative; the last is above every bound. */
  readonly handler: { readonly counts: readonly number[]; readonly sum: number; readonly count: number };
  /** Per bucket of SCORE_BOUNDS, likewise. */
  readonly scores: readonly number[];
  readonly series: readonly MessageSeries[];
  readonly lists: readonly ListStatus[];
  readonly store: StoreHealth | null;
  readonly decisions: number | null;
  readonly agent: AgentGauges | null;
  readonly reloads: ReloadSummary;
  /** At most TOP_CLIENTS, most first. */
  readonly topClients: readonly ClientCount[];
  /** At most LATEST_BANS, newest first. */
  readonly bans: readonly BanRecord[];
  /** Absent without geo databases. */
  readonly geo?: GeoFigures;
}

/**
 * The status of the agent from the counts of its workers, the answering worker's first: counts and
 * gauges are summed, the per-second history is summed second by second (aligned on each worker's
 * own second), lists and decisions are the answering worker's. `missing`: workers left out.
 */
export function mergeStatus(parts: readonly [StatusCounts, ...StatusCounts[]], missing: number | null = 0): StatusSnapshot {
  const [first] = parts;
  const time = first.time;

  const history = new Array<number>(HISTORY_SECONDS).fill(0);
  const handlerCounts = new Array<number>(HANDLER_SECONDS_BOUNDS.length + 1).fill(0);
  const scoreCounts = new Array<number>(SCORE_BOUNDS.length + 1).fill(0);
  let handlerSum = 0;
  let handlerCount = 0;
  const byAction = new Map<string, number>(IP_ACTIONS.map((action) => [action, 0]));
  const byCategory = new Map<string, number>();
  const bySource = new Map<string, number>();
  let agent: AgentGauges | null = null;
  let startedAt = first.startedAt;
  let reloadsOk = 0;
  let reloadsFailed = 0;
  let lastReload: ReloadSummary['last'] = null;
  const clientCounts = new Map<string, number>();
  const bans: BanRecord[] = [];

  for (const part of parts) {
    // Counters are shared across workers (each estimates the whole count): the largest, not the sum.
    for (const { client, count } of part.topClients) clientCounts.set(client, Math.max(count, clientCounts.get(client) ?? 0));
    bans.push(...part.bans);
    // history[i] of a part is second `part.second - HISTORY_SECONDS + i`: put it where that second is in the first's.
    const shift = part.second - first.second;
    for (let i = 0; i < HISTORY_SECONDS; i++) {
      const at = i + shift;
      if (at >= 0 && at < HISTORY_SECONDS) history[at] = (history[at] as number) + (part.history[i] as number);
    }
    addInto(handlerCounts, part.handler.counts);
    handlerSum += part.handler.sum;
    handlerCount += part.handler.count;
    addInto(scoreCounts, part.scores);
    for (const s of part.series) {
      byAction.set(s.action, (byAction.get(s.action) ?? 0) + s.count);
      byCategory.set(s.category, (byCategory.get(s.category) ?? 0) + s.count);
      bySource.set(s.source, (bySource.get(s.source) ?? 0) + s.count);
    }
    if (part.agent !== null) {
      agent ??= { connections: 0, inFlight: 0 };
      agent.connections += part.agent.connections;
      agent.inFlight += part.agent.inFlight;
    }
    startedAt = Math.min(startedAt, part.startedAt);
    reloadsOk += part.reloads.ok;
    reloadsFailed += part.reloads.failed;
    const last = part.reloads.last;
    if (last !== null && (lastReload === null || last.at > lastReload.at)) lastReload = { ...last };
  }

  let recent = 0;
  for (let i = HISTORY_SECONDS - RATE_WINDOW_SECONDS; i < HISTORY_SECONDS; i++) recent += history[i] as number;
  const scores = scoreCounts.map((count, i) => ({ from: i * 10, to: i === SCORE_BOUNDS.length ? 100 : i * 10 + 9, count }));

  return {
    version: VERSION,
    time,
    uptimeSeconds: Math.max(0, (time - startedAt) / 1000),
    messages: { total: scoreCounts.reduce((sum, n) => sum + n, 0), perSecond: recent / RATE_WINDOW_SECONDS, history },
    handler: handlerSummary(handlerCounts, handlerSum, handlerCount),
    scores,
    actions: [...byAction].map(([name, count]) => ({ name, count })),
    topCategories: top(byCategory),
    topSources: top(bySource),
    topClients: [...clientCounts]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, TOP_CLIENTS)
      .map(([client, count]) => ({ client, count })),
    latestBans: bans.sort((a, b) => b.at - a.at).slice(0, LATEST_BANS),
    geo: mergeGeo(parts),
    lists: first.lists.map((list) => ({ ...list, ageSeconds: list.loadedAt === null ? null : Math.max(0, (time - list.loadedAt) / 1000) })),
    store: mergeStore(parts),
    decisions: first.decisions,
    agent,
    reloads: { ok: reloadsOk, failed: reloadsFailed, last: lastReload },
    workers: parts.length,
    workersMissing: missing,
  };
}

/** Countries and ASNs summed over the workers (each counts its own messages), the first's databases. */
function mergeGeo(parts: readonly [StatusCounts, ...StatusCounts[]]): GeoFigures | null {
  const first = parts[0].geo;
  if (first === undefined) return null;
  const sum = (pick: (geo: GeoFigures) => readonly GeoCount[]): GeoCount[] => {
    const totals = new Map<string, { count: number; name?: string }>();
    for (const part of parts) {
      if (part.geo === undefined) continue;
      for (const { value, count, name } of pick(part.geo)) {
        const known = totals.get(value);
        totals.set(value, { count: (known?.count ?? 0) + count, ...(name === undefined ? {} : { name }) });
      }
    }
    return [...totals]
      .sort((a, b) => b[1].count - a[1].count || (a[0] < b[0] ? -1 : 1))
      .slice(0, first.top)
      .map(([value, { count, name }]) => (name === undefined ? { value, count } : { value, count, name }));
  };
  return { top: first.top, countries: sum((geo) => geo.countries), asns: sum((geo) => geo.asns), databases: first.databases };
}

function addInto(total: number[], counts: readonly number[]): void {
  for (let i = 0; i < total.length; i++) total[i] = (total[i] as number) + (counts[i] as number);
}

/**
 * The answering worker's store, or the first worker's that is down; writes waiting and dropped summed;
 * sync age and change lag of the stalest worker.
 */
function mergeStore(parts: readonly StatusCounts[]): StoreHealth | null {
  const stores = parts.map((part) => part.store).filter((store) => store !== null);
  const shown = stores.find((store) => !store.up) ?? stores[0];
  if (shown === undefined) return null;
  const merged: { -readonly [K in keyof StoreHealth]: StoreHealth[K] } = { ...shown };
  if (stores.some((store) => store.pendingWrites !== undefined)) merged.pendingWrites = stores.reduce((sum, s) => sum + (s.pendingWrites ?? 0), 0);
  if (stores.some((store) => store.droppedWrites !== undefined)) merged.droppedWrites = stores.reduce((sum, s) => sum + (s.droppedWrites ?? 0), 0);
  const largest = (values: readonly (number | undefined)[]): number | undefined => {
    const known = values.filter((v): v is number => v !== undefined);
    return known.length === 0 ? undefined : Math.max(...known);
  };
  const syncAgeMs = largest(stores.map((s) => s.syncAgeMs));
  if (syncAgeMs !== undefined) merged.syncAgeMs = syncAgeMs;
  const changeLagMs = largest(stores.map((s) => s.changeLagMs));
  if (changeLagMs !== undefined) merged.changeLagMs = changeLagMs;
  return merged;
}

function handlerSummary(counts: readonly number[], sum: number, count: number): StatusSnapshot['handler'] {
  if (count === 0) return { meanSeconds: null, p99Seconds: null };
  const rank = Math.ceil(count * 0.99);
  let seen = 0;
  for (let i = 0; i < HANDLER_SECONDS_BOUNDS.length; i++) {
    seen += counts[i] as number;
    if (seen >= rank) return { meanSeconds: sum / count, p99Seconds: HANDLER_SECONDS_BOUNDS[i] as number };
  }
  return { meanSeconds: sum / count, p99Seconds: null };
}

function top(counts: Map<string, number>): NamedCount[] {
  return [...counts]
    .filter(([, count]) => count > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, TOP_COUNT)
    .map(([name, count]) => ({ name, count }));
}

// ---------------------------------------------------------------------------
// Checking another worker's counts (they crossed a process boundary)

function isCounts(value: unknown, length: number): boolean {
  return Array.isArray(value) && value.length === length && value.every(isFiniteNumber);
}

function isSeries(value: unknown): value is MessageSeries {
  return (
    isRecord(value) && typeof value.action === 'string' && typeof value.category === 'string' && typeof value.source === 'string' && isFiniteNumber(value.count)
  );
}

function isStore(value: unknown): value is StoreHealth | null {
  if (value === null) return true;
  return (
    isRecord(value) &&
    (value.kind === 'memory' || value.kind === 'redis') &&
    typeof value.up === 'boolean' &&
    (value.pendingWrites === undefined || isFiniteNumber(value.pendingWrites)) &&
    (value.droppedWrites === undefined || isFiniteNumber(value.droppedWrites)) &&
    (value.syncAgeMs === undefined || isFiniteNumber(value.syncAgeMs)) &&
    (value.changeLagMs === undefined || isFiniteNumber(value.changeLagMs))
  );
}

function isReloads(value: unknown): value is ReloadSummary {
  if (!isRecord(value) || !isFiniteNumber(value.ok) || !isFiniteNumber(value.failed)) return false;
  const last = value.last;
  return last === null || (isRecord(last) && typeof last.ok === 'boolean' && isFiniteNumber(last.durationMs) && isFiniteNumber(last.at));
}

function isClientCount(value: unknown): value is ClientCount {
  return isRecord(value) && typeof value.client === 'string' && value.client.length <= 64 && isFiniteNumber(value.count);
}

function isBanRecord(value: unknown): value is BanRecord {
  return (
    isRecord(value) &&
    typeof value.client === 'string' &&
    value.client.length <= 64 &&
    typeof value.action === 'string' &&
    value.action.length <= 16 &&
    isFiniteNumber(value.count) &&
    isFiniteNumber(value.offences) &&
    isFiniteNumber(value.at) &&
    isFiniteNumber(value.until)
  );
}

/** Whether `value` is a StatusCounts as this code takes them (the fields another worker's part contributes). */
export function isStatusCounts(value: unknown): value is StatusCounts {
  if (!isRecord(value)) return false;
  const { handler, agent } = value;
  return (
    isFiniteNumber(value.time) &&
    isFiniteNumber(value.startedAt) &&
    isFiniteNumber(value.second) &&
    isCounts(value.history, HISTORY_SECONDS) &&
    isRecord(handler) &&
    isCounts(handler.counts, HANDLER_SECONDS_BOUNDS.length + 1) &&
    isFiniteNumber(handler.sum) &&
    isFiniteNumber(handler.count) &&
    isCounts(value.scores, SCORE_BOUNDS.length + 1) &&
    Array.isArray(value.series) &&
    value.series.every(isSeries) &&
    Array.isArray(value.lists) &&
    isStore(value.store) &&
    (value.decisions === null || isFiniteNumber(value.decisions)) &&
    (agent === null || (isRecord(agent) && isFiniteNumber(agent.connections) && isFiniteNumber(agent.inFlight))) &&
    isReloads(value.reloads) &&
    Array.isArray(value.topClients) &&
    value.topClients.length <= TOP_CLIENTS &&
    value.topClients.every(isClientCount) &&
    Array.isArray(value.bans) &&
    value.bans.length <= LATEST_BANS &&
    value.bans.every(isBanRecord) &&
    (value.geo === undefined || isGeoFigures(value.geo))
  );
}

function isGeoFigures(value: unknown): value is GeoFigures {
  const isCount = (c: unknown): boolean =>
    isRecord(c) &&
    typeof c.value === 'string' &&
    c.value.length <= 16 &&
    isFiniteNumber(c.count) &&
    (c.name === undefined || (typeof c.name === 'string' && c.name.length <= 200));
  const isCounts = (list: unknown): boolean => Array.isArray(list) && list.length <= MAX_TOP_GEO && list.every(isCount);
  return (
    isRecord(value) &&
    isFiniteNumber(value.top) &&
    value.top <= MAX_TOP_GEO &&
    isCounts(value.countries) &&
    isCounts(value.asns) &&
    Array.isArray(value.databases) &&
    value.databases.length <= 2
  );
}
