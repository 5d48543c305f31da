/**
 * The admin figures of several node:cluster workers, in one process: merging status counts and
 * Prometheus metrics across workers, and the primary's relay (hub and links over in-process channels).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'spop';
import {
  ClusterMetricsHub,
  ClusterMetricsLink,
  type ClusterMetricsMessage,
  type PeerRequestKind,
  type PeerFigures,
  ReputationMetrics,
  type StatusCounts,
  type WorkerPeers,
  mergeStatus,
} from '../src/admin/index.js';
import type { IpcChannel } from '../src/ipc.js';
import type { IpAction, Verdict } from '../src/types.js';
import { NOW } from './admin-fixtures.js';

function verdict(score: number, action: IpAction, category: string, source: string): Verdict {
  return { score, action, category, source, matches: [] };
}

/** The value of one series line (`name{labels} value`) of the exposition text. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

/** What crosses the IPC channel: a JSON copy. */
function overIpc<T>(value: T): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

/** Peers answering with the given workers' parts, as the primary would relay them. */
function peersOf(others: readonly ReputationMetrics[], extra: Partial<PeerFigures> = {}): WorkerPeers & { asked: PeerRequestKind[] } {
  const asked: PeerRequestKind[] = [];
  return {
    asked,
    async gather(what) {
      asked.push(what);
      const parts = await Promise.all(others.map(async (m) => overIpc(what === 'metrics' ? await m.registry.getMetricsAsJSON() : m.statusCounts())));
      return { parts: [...parts, ...(extra.parts ?? [])], missing: extra.missing === undefined ? 0 : extra.missing };
    },
  };
}

describe('mergeStatus: the status of several workers', () => {
  /** Two workers whose clocks read the same second; the second one is older and saw other traffic. */
  function twoWorkers(): { a: ReputationMetrics; b: ReputationMetrics; setTime: (t: number) => void } {
    let t = NOW;
    const now = (): number => t;
    const b = new ReputationMetrics({ defaultMetrics: false, now });
    t += 5000;
    const a = new ReputationMetrics({ defaultMetrics: false, now });
    return { a, b, setTime: (next) => (t = next) };
  }

  it('adds up counts, scores, actions, categories, gauges and reloads; lists and decisions are the answering worker’s', () => {
    const { a, b, setTime } = twoWorkers();
    const second = Math.floor(NOW / 1000) * 1000 + 10_000;
    setTime(second + 100);
    for (let i = 0; i < 3; i++) a.observeVerdict(verdict(0, 'deny', 'hijacked', 'spamhaus-drop'), 0.00002);
    for (let i = 0; i < 2; i++) b.observeVerdict(verdict(0, 'deny', 'hijacked', 'spamhaus-drop'), 0.00002);
    // Each worker's own top category loses to one that only wins when summed.
    for (let i = 0; i < 4; i++) a.observeVerdict(verdict(35, 'captcha', 'anonymizer:tor', 'tor-exits'), 0.002);
    for (let i = 0; i < 4; i++) b.observeVerdict(verdict(72, 'log', 'hosting:aws', 'aws'), 0.00001);
    a.setAgentGauges(() => ({ connections: 3, inFlight: 1 }));
    b.setAgentGauges(() => ({ connections: 2, inFlight: 4 }));
    a.setListsProvider(() => [{ name: 'drop', format: 'netset', origin: '/a', entries: 10, loadedAt: second - 2000, lastError: null }]);
    b.setListsProvider(() => [{ name: 'drop', format: 'netset', origin: '/b', entries: 99, loadedAt: second - 9000, lastError: 'stale' }]);
    a.setDecisionsProvider(() => 7);
    b.setDecisionsProvider(() => 8);
    a.setStoreProvider(() => ({ kind: 'redis', up: true, pendingWrites: 0, droppedWrites: 1 }));
    b.setStoreProvider(() => ({ kind: 'redis', up: false, detail: 'ECONNREFUSED', pendingWrites: 5, droppedWrites: 2 }));
    a.reloaded(true, 30);
    setTime(second + 200);
    b.reloaded(false, 40);
    b.reloaded(true, 50);

    setTime(second + 1500);
    const status = mergeStatus([a.statusCounts(), overIpc(b.statusCounts()) as StatusCounts], 0);

    assert.equal(status.workers, 2);
    assert.equal(status.workersMissing, 0);
    assert.equal(status.time, second + 1500);
    assert.equal(status.uptimeSeconds, (second + 1500 - NOW) / 1000, 'the oldest worker’s uptime');
    assert.equal(status.messages.total, 13);
    assert.deepEqual(status.messages.history.slice(-2), [0, 13]);
    assert.equal(status.messages.perSecond, 1.3);
    assert.deepEqual(
      status.scores.map((bucket) => bucket.count),
      [5, 0, 0, 4, 0, 0, 0, 4, 0, 0],
    );
    assert.deepEqual(status.actions, [
      { name: 'allow', count: 0 },
      { name: 'log', count: 4 },
      { name: 'captcha', count: 4 },
      { name: 'tarpit', count: 0 },
      { name: 'deny', count: 5 },
    ]);
    assert.deepEqual(status.topCategories[0], { name: 'hijacked', count: 5 });
    assert.deepEqual(status.topSources[0], { name: 'spamhaus-drop', count: 5 });
    assert.equal(status.handler.p99Seconds, 0.0025, 'the slow worker’s handler times count');
    assert.ok(Math.abs(status.handler.meanSeconds! - (5 * 0.00002 + 4 * 0.002 + 4 * 0.00001) / 13) < 1e-12);
    assert.deepEqual(status.agent, { connections: 5, inFlight: 5 });
    assert.deepEqual(status.reloads, { ok: 2, failed: 1, last: { ok: true, durationMs: 50, at: second + 200 } });
    assert.equal(status.decisions, 7);
    assert.deepEqual(
      status.lists.map((l) => [l.origin, l.entries, l.ageSeconds]),
      [['/a', 10, 3.5]],
    );
    assert.deepEqual(status.store, { kind: 'redis', up: false, detail: 'ECONNREFUSED', pendingWrites: 5, droppedWrites: 3 });
  });

  it('adds the per-second histories second by second when the workers took them in different seconds', () => {
    let t = Math.floor(NOW / 1000) * 1000 + 300;
    const now = (): number => t;
    const a = new ReputationMetrics({ defaultMetrics: false, now });
    const b = new ReputationMetrics({ defaultMetrics: false, now });
    for (const [count, metrics] of [[1, a], [10, b]] as const) {
      for (let i = 0; i < count; i++) metrics.observeVerdict(verdict(100, 'allow', 'none', 'default'));
    }
    t += 1000; // second 1
    a.statusCounts();
    b.statusCounts();
    for (const [count, metrics] of [[2, a], [20, b]] as const) {
      for (let i = 0; i < count; i++) metrics.observeVerdict(verdict(100, 'allow', 'none', 'default'));
    }
    t += 1000; // second 2: b's counts are taken here, a's a second later
    const fromB = b.statusCounts();
    a.statusCounts(); // moves a's ring to second 2, as its timer would
    for (let i = 0; i < 4; i++) a.observeVerdict(verdict(100, 'allow', 'none', 'default'));
    t += 1000;
    const status = mergeStatus([a.statusCounts(), fromB]);
    // Seconds 0, 1 and 2 (complete for a; b's second 2 was still running when it answered).
    assert.deepEqual(status.messages.history.slice(-3), [11, 22, 4]);
    assert.equal(status.messages.total, 37);
  });

  it('one worker: the same as status(), with workers 1', () => {
    const metrics = new ReputationMetrics({ defaultMetrics: false, now: () => NOW });
    metrics.observeVerdict(verdict(0, 'deny', 'hijacked', 'spamhaus-drop'), 0.00002);
    metrics.setStoreProvider(() => ({ kind: 'memory', up: true }));
    const status = metrics.status();
    assert.deepEqual(mergeStatus([metrics.statusCounts()]), status);
    assert.equal(status.workers, 1);
    assert.equal(status.workersMissing, 0);
    assert.deepEqual(status.store, { kind: 'memory', up: true }, 'no write counts appear from nowhere');
  });
});

describe('ReputationMetrics with peers', () => {
  function worker(connections: number, entries: number, storeUp: boolean): ReputationMetrics {
    const metrics = new ReputationMetrics({ now: () => NOW });
    metrics.setAgentGauges(() => ({ connections, inFlight: 1 }));
    metrics.setListsProvider(() => [{ name: 'drop', format: 'netset', origin: '/d', entries, loadedAt: NOW - entries * 1000, lastError: null }]);
    metrics.setDecisionsProvider(() => 4);
    metrics.setStoreProvider(() => ({ kind: 'redis', up: storeUp, pendingWrites: 2, droppedWrites: 0 }));
    return metrics;
  }

  it('/metrics: counters and histograms summed, gauges by their aggregator, and how many workers answered', async () => {
    const a = worker(3, 100, true);
    const b = worker(2, 120, false);
    const c = worker(1, 110, true);
    for (let i = 0; i < 5; i++) a.observeVerdict(verdict(0, 'deny', 'hijacked', 'spamhaus-drop'), 0.00002);
    for (let i = 0; i < 7; i++) b.observeVerdict(verdict(0, 'deny', 'hijacked', 'spamhaus-drop'), 0.00002);
    c.observeVerdict(verdict(100, 'allow', 'none', 'default'), 0.00002);
    a.reloaded(true, 10);
    b.reloaded(true, 900);
    const peers = peersOf([b, c]);
    a.setPeers(peers);

    const text = await a.clusterMetrics();
    assert.deepEqual(peers.asked, ['metrics']);
    assert.equal(sample(text, 'iprep_messages_total{action="deny",category="hijacked",source="spamhaus-drop"}'), 12);
    assert.equal(sample(text, 'iprep_messages_total{action="allow",category="none",source="default"}'), 1);
    assert.equal(sample(text, 'iprep_handler_seconds_count'), 13);
    assert.equal(sample(text, 'iprep_score_bucket{le="9"}'), 12);
    assert.equal(sample(text, 'iprep_score_bucket{le="+Inf"}'), 13);
    assert.equal(sample(text, 'iprep_connections'), 6);
    assert.equal(sample(text, 'iprep_frames_in_flight'), 3);
    assert.equal(sample(text, 'iprep_list_entries{list="drop"}'), 120, 'the same list in every worker: not summed');
    assert.equal(sample(text, 'iprep_list_age_seconds{list="drop"}'), 120, 'the stalest copy');
    assert.equal(sample(text, 'iprep_decisions'), 4);
    assert.equal(sample(text, 'iprep_store_up{kind="redis"}'), 0, 'down when one worker cannot reach it');
    assert.equal(sample(text, 'iprep_store_pending_writes'), 6);
    assert.equal(sample(text, 'iprep_reloads_total{result="ok"}'), 2);
    assert.equal(sample(text, 'iprep_last_reload_duration_seconds'), 0.9);
    assert.equal(sample(text, 'iprep_workers'), 3);
    assert.equal(sample(text, 'iprep_workers_missing'), 0);
    // prom-client's own aggregators for its process metrics.
    const ownMemory = sample(await a.registry.metrics(), 'process_resident_memory_bytes')!;
    assert.ok(sample(text, 'process_resident_memory_bytes')! > 2 * ownMemory, 'memory of the three summed');
    assert.match(text, /^nodejs_version_info\{.*\} 1$/m);
    assert.doesNotMatch(text, /^process_start_time_seconds /m, 'omitted: the workers started at different times');
    assert.equal(text.match(/^# TYPE iprep_messages_total counter$/gm)?.length, 1);
  });

  it('/metrics says which workers are missing: unanswered, unreadable, or unknown when the primary is silent', async () => {
    const a = worker(3, 100, true);
    a.observeVerdict(verdict(0, 'deny', 'hijacked', 'spamhaus-drop'), 0.00002);
    a.setPeers(peersOf([worker(1, 100, true)], { missing: 1, parts: [{ not: 'metrics' }, [{ name: 'x', help: 'x', type: 'gauge', aggregator: 'bogus', values: [] }]] }));
    let text = await a.clusterMetrics();
    assert.equal(sample(text, 'iprep_workers'), 2);
    assert.equal(sample(text, 'iprep_workers_missing'), 3);
    assert.equal(sample(text, 'iprep_connections'), 4);

    a.setPeers({ gather: async () => ({ parts: [], missing: null }) });
    text = await a.clusterMetrics();
    assert.equal(sample(text, 'iprep_workers'), 1);
    assert.match(text, /^iprep_workers_missing Nan$/m);
    assert.equal(sample(text, 'iprep_messages_total{action="deny",category="hijacked",source="spamhaus-drop"}'), 1);
  });

  it('/status.json: every worker’s counts, unreadable parts counted as missing', async () => {
    const a = worker(3, 100, true);
    const b = worker(2, 100, true);
    for (let i = 0; i < 5; i++) a.observeVerdict(verdict(0, 'deny', 'hijacked', 'spamhaus-drop'), 0.00002);
    for (let i = 0; i < 7; i++) b.observeVerdict(verdict(0, 'deny', 'hijacked', 'spamhaus-drop'), 0.00002);
    a.setPeers(peersOf([b], { parts: [{ time: 'yesterday' }] }));
    const status = await a.clusterStatus();
    assert.equal(status.messages.total, 12);
    assert.deepEqual(status.agent, { connections: 5, inFlight: 2 });
    assert.equal(status.workers, 2);
    assert.equal(status.workersMissing, 1);
    assert.equal(a.status().messages.total, 5, 'status() stays this process’s');
  });

  it('without peers: this process alone, the text unchanged and no worker count', async () => {
    const metrics = worker(3, 100, true);
    metrics.observeVerdict(verdict(0, 'deny', 'hijacked', 'spamhaus-drop'), 0.00002);
    const text = await metrics.clusterMetrics();
    assert.doesNotMatch(text, /^iprep_workers/m);
    assert.equal(sample(text, 'iprep_connections'), 3);
    assert.deepEqual(await metrics.clusterStatus(), metrics.status());
  });
});

// ---------------------------------------------------------------------------
// The relay through the primary

type Channel = IpcChannel<ClusterMetricsMessage>;

/** Two ends of an in-process channel: JSON copies, delivered in order on a later turn, like IPC. */
function channelPair(): { primaryEnd: Channel; workerEnd: Channel; exit: () => void } {
  const primary = new EventEmitter();
  const worker = new EventEmitter();
  const end = (self: EventEmitter, other: EventEmitter): Channel => ({
    send: (message, callback) => {
      const copy = overIpc(message);
      setImmediate(() => {
        other.emit('message', copy);
        callback(null);
      });
      return true;
    },
    on: (event, listener) => self.on(event, listener),
    off: (event, listener) => self.off(event, listener),
  });
  return { primaryEnd: end(primary, worker), workerEnd: end(worker, primary), exit: () => primary.emit('exit') };
}

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A logger keeping its warnings. */
function recording(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { ...quiet, warnings, warn: (message, fields) => warnings.push(`${message} ${JSON.stringify(fields)}`) };
}

describe('ClusterMetricsHub and ClusterMetricsLink', () => {
  /** A hub and workers; worker i (pid 1000 + i) answers `<what>-i` (or what `collect` says). */
  function cluster(
    count: number,
    options: { collectTimeoutMs?: number; collect?: (i: number, what: PeerRequestKind) => unknown } = {},
  ): { hub: ClusterMetricsHub; links: ClusterMetricsLink[]; exits: (() => void)[]; logger: ReturnType<typeof recording> } {
    const hub = new ClusterMetricsHub({ collectTimeoutMs: options.collectTimeoutMs ?? 200 });
    const logger = recording();
    const links: ClusterMetricsLink[] = [];
    const exits: (() => void)[] = [];
    for (let i = 0; i < count; i++) {
      const { primaryEnd, workerEnd, exit } = channelPair();
      hub.attach(primaryEnd);
      exits.push(exit);
      links.push(
        new ClusterMetricsLink({ channel: workerEnd, pid: 1000 + i, collect: (what) => (options.collect ? options.collect(i, what) : `${what}-${i}`), logger }),
      );
    }
    return { hub, links, exits, logger };
  }

  it('a worker gets every other worker’s part, not its own', async () => {
    const { hub, links, logger } = cluster(3);
    for (const link of links) link.start();
    await sleep(5); // the joins arrive
    const figures = await links[1]!.gather('status');
    assert.deepEqual([...figures.parts].sort(), ['status-0', 'status-2']);
    assert.equal(figures.missing, 0);
    const again = await links[0]!.gather('metrics');
    assert.deepEqual([...again.parts].sort(), ['metrics-1', 'metrics-2']);
    assert.deepEqual(logger.warnings, []);
    hub.close();
    for (const link of links) link.close();
  });

  it('asks only the workers that joined: one still starting is not waited for', async () => {
    const { hub, links } = cluster(2);
    links[0]!.start();
    await sleep(5);
    const started = Date.now();
    assert.deepEqual(await links[0]!.gather('status'), { parts: [], missing: 0, left: [] });
    assert.ok(Date.now() - started < 150, 'answered at once');
    hub.close();
    links[0]!.close();
  });

  it('a worker that does not answer in time is left out and counted; a late answer is ignored', async () => {
    const { hub, links, logger } = cluster(3, {
      collectTimeoutMs: 100,
      collect: (i, what) => (i === 2 ? sleep(300).then(() => `late-${i}`) : `${what}-${i}`),
    });
    for (const link of links) link.start();
    await sleep(5);
    const started = Date.now();
    const figures = await links[0]!.gather('metrics');
    const waited = Date.now() - started;
    assert.deepEqual(figures, { parts: ['metrics-1'], missing: 1, left: [{ pid: 1002, error: 'no answer within 100 ms' }] });
    assert.ok(waited >= 90 && waited < 280, `waited ${waited} ms`);
    assert.equal(logger.warnings.length, 1);
    assert.match(logger.warnings[0]!, /did not answer in time .*"workers":1,"left":"1002: no answer within 100 ms"/);
    await sleep(350); // the late answer arrives and changes nothing
    assert.deepEqual(await links[1]!.gather('metrics'), { parts: ['metrics-0'], missing: 1, left: [{ pid: 1002, error: 'no answer within 100 ms' }] });
    hub.close();
    for (const link of links) link.close();
  });

  it('a worker whose part fails, or which exits while asked, is counted at once', async () => {
    const { hub, links, exits } = cluster(4, {
      collectTimeoutMs: 5000,
      collect: (i, what) => {
        if (i === 2) throw new Error('registry failed');
        if (i === 3) return new Promise(() => {}); // never answers: it exits instead
        return `${what}-${i}`;
      },
    });
    for (const link of links) link.start();
    await sleep(5);
    const pending = links[0]!.gather('status');
    await sleep(20);
    exits[3]!();
    const started = Date.now();
    assert.deepEqual(await pending, {
      parts: ['status-1'],
      missing: 2,
      left: [
        { pid: 1002, error: 'registry failed' },
        { pid: 1003, error: 'exited before answering' },
      ],
    });
    assert.ok(Date.now() - started < 1000, 'no wait for the timeout');
    // The exited worker is no longer asked.
    assert.deepEqual(await links[1]!.gather('status'), { parts: ['status-0'], missing: 1, left: [{ pid: 1002, error: 'registry failed' }] });
    hub.close();
    for (const link of links) link.close();
  });

  it('without an answer from the primary, a gather resolves with no parts and an unknown number missing', async () => {
    const { workerEnd } = channelPair(); // nobody at the primary's end
    const logger = recording();
    const link = new ClusterMetricsLink({ channel: workerEnd, collect: () => 'x', timeoutMs: 50, logger });
    link.start();
    assert.deepEqual(await link.gather('metrics'), { parts: [], missing: null, left: [] });
    assert.match(logger.warnings[0] ?? '', /unknown/);
    link.close();
  });

  it('leaves other IPC messages alone and ignores malformed ones', async () => {
    const hub = new ClusterMetricsHub({ collectTimeoutMs: 100 });
    const { primaryEnd, workerEnd } = channelPair();
    hub.attach(primaryEnd);
    const replies: unknown[] = [];
    workerEnd.on('message', (message) => replies.push(message));
    const raw = (message: object): void => {
      workerEnd.send(message as ClusterMetricsMessage, () => {});
    };
    raw({ tag: 'iprep-cluster-store', type: 'gather', id: 1, what: 'metrics' });
    raw({ tag: 'iprep-cluster-metrics', type: 'gather', id: 'one', what: 'metrics' });
    raw({ tag: 'iprep-cluster-metrics', type: 'gather', id: 2, what: 'secrets' });
    raw({ tag: 'iprep-cluster-metrics', type: 'collected', id: 99, part: 'stray' });
    raw({ tag: 'iprep-cluster-metrics', type: 'gather', id: 3, what: 'status' });
    await sleep(20);
    assert.deepEqual(replies, [{ tag: 'iprep-cluster-metrics', type: 'gathered', id: 3, parts: [], missing: 0, left: [] }]);
    hub.close();
  });
});
