/**
 * The admin API of several node:cluster workers, in one process: merging status counts, Prometheus
 * metrics, health and reload results across workers, and the primary's relay (hub and links over
 * in-process channels), up to an admin server answering /health and POST /reload for every worker.
 */
import assert from 'node:assert/strict';
import { type TestContext, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Logger, silentLogger } from 'spop';
import {
  AdminServer,
  type ClusterHealth,
  ClusterMetricsHub,
  ClusterMetricsLink,
  type ClusterMetricsMessage,
  type ClusterReloadResult,
  type PeerRequestKind,
  type PeerFigures,
  ReputationMetrics,
  type StatusCounts,
  type WorkerPeers,
  mergeHealth,
  mergeReload,
  mergeStatus,
  workerHealth,
  workerReload,
} from '../../src/admin/index.js';
import { channelPair } from '../../src/cluster/index.js';
import type { IpAction, ListStatus, ReloadResult, Verdict } from '../../src/types.js';
import { FakeReputationService, NOW, request } from '../admin-fixtures.js';
import { waitFor } from 'test-support/wait';

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
    a.setStoreProvider(() => ({ kind: 'redis', up: true, pendingWrites: 0, droppedWrites: 1, syncAgeMs: 300, changeLagMs: 40 }));
    b.setStoreProvider(() => ({ kind: 'redis', up: false, detail: 'ECONNREFUSED', pendingWrites: 5, droppedWrites: 2, syncAgeMs: 9000, changeLagMs: 4 }));
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
    assert.deepEqual(
      status.store,
      { kind: 'redis', up: false, detail: 'ECONNREFUSED', pendingWrites: 5, droppedWrites: 3, syncAgeMs: 9000, changeLagMs: 40 },
      'sync age and change lag of the stalest worker',
    );
  });

  it('adds the per-second histories second by second when the workers took them in different seconds', () => {
    let t = Math.floor(NOW / 1000) * 1000 + 300;
    const now = (): number => t;
    const a = new ReputationMetrics({ defaultMetrics: false, now });
    const b = new ReputationMetrics({ defaultMetrics: false, now });
    for (const [count, metrics] of [
      [1, a],
      [10, b],
    ] as const) {
      for (let i = 0; i < count; i++) metrics.observeVerdict(verdict(100, 'allow', 'none', 'default'));
    }
    t += 1000; // second 1
    a.statusCounts();
    b.statusCounts();
    for (const [count, metrics] of [
      [2, a],
      [20, b],
    ] as const) {
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
    metrics.setStoreProvider(() => ({ kind: 'redis', up: storeUp, pendingWrites: 2, droppedWrites: 0, syncAgeMs: storeUp ? 500 : 7000, changeLagMs: entries }));
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
    assert.equal(sample(text, 'iprep_store_sync_age_seconds{kind="redis"}'), 7, 'the stalest worker');
    assert.equal(sample(text, 'iprep_store_change_lag_seconds{kind="redis"}'), 0.12);
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
    a.setPeers(
      peersOf([worker(1, 100, true)], { missing: 1, parts: [{ not: 'metrics' }, [{ name: 'x', help: 'x', type: 'gauge', aggregator: 'bogus', values: [] }]] }),
    );
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
      const { primaryEnd, workerEnd, exit } = channelPair<ClusterMetricsMessage>();
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
    const { workerEnd } = channelPair<ClusterMetricsMessage>(); // nobody at the primary's end
    const logger = recording();
    const link = new ClusterMetricsLink({ channel: workerEnd, collect: () => 'x', timeoutMs: 50, logger });
    link.start();
    assert.deepEqual(await link.gather('metrics'), { parts: [], missing: null, left: [] });
    assert.match(logger.warnings[0] ?? '', /unknown/);
    link.close();
  });

  it('a gather never rejects: a message the channel cannot take leaves the others out as unknown', async () => {
    const { workerEnd } = channelPair<ClusterMetricsMessage>();
    const throwing = {
      ...workerEnd,
      send: (): boolean => {
        throw new TypeError('Converting circular structure to JSON');
      },
    };
    const link = new ClusterMetricsLink({ channel: throwing, collect: () => 'x', timeoutMs: 5000, logger: quiet });
    link.start();
    const started = Date.now();
    assert.deepEqual(await link.gather('status'), { parts: [], missing: null, left: [] });
    assert.ok(Date.now() - started < 1000, 'at once, not after the timeout');
    link.close();
  });

  it('a worker that cannot be asked is left out at once, with the reason', async () => {
    const hub = new ClusterMetricsHub({ collectTimeoutMs: 5000 });
    const asker = channelPair<ClusterMetricsMessage>();
    const broken = channelPair<ClusterMetricsMessage>();
    hub.attach(asker.primaryEnd);
    hub.attach({
      ...broken.primaryEnd,
      send: (_message, callback) => {
        setImmediate(() => callback(new Error('write EPIPE')));
        return false;
      },
    });
    broken.workerEnd.send({ tag: 'iprep-cluster-metrics', type: 'join', pid: 9 }, () => {});
    const link = new ClusterMetricsLink({ channel: asker.workerEnd, pid: 7, collect: () => 'x', logger: quiet });
    link.start();
    await sleep(5);
    const started = Date.now();
    assert.deepEqual(await link.gather('health'), { parts: [], missing: 1, left: [{ pid: 9, error: 'could not be asked: write EPIPE' }] });
    assert.ok(Date.now() - started < 1000);
    hub.close();
    link.close();
  });

  it('a silent primary holds at most 1000 gathers of a worker: one more resolves without the others at once', async () => {
    const { workerEnd } = channelPair<ClusterMetricsMessage>(); // nobody at the primary's end
    const link = new ClusterMetricsLink({ channel: workerEnd, collect: () => 'x', timeoutMs: 10_000, logger: quiet });
    link.start();
    const waiting = Array.from({ length: 1000 }, () => link.gather('metrics'));
    const started = Date.now();
    assert.deepEqual(await link.gather('metrics'), { parts: [], missing: null, left: [] });
    assert.ok(Date.now() - started < 1000, 'at once, not after the timeout');
    link.close();
    assert.equal((await Promise.all(waiting)).filter((f) => f.missing === null).length, 1000, 'close resolves them all');
  });

  it('leaves other IPC messages alone and ignores malformed ones', async () => {
    const hub = new ClusterMetricsHub({ collectTimeoutMs: 100 });
    const { primaryEnd, workerEnd } = channelPair<ClusterMetricsMessage>();
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
    // Messages are handled in order: once the last one is answered, the others were dropped (or answered).
    await waitFor('the answer to gather 3', () => replies.length > 0);
    await sleep(20);
    assert.deepEqual(replies, [{ tag: 'iprep-cluster-metrics', type: 'gathered', id: 3, parts: [], missing: 0, left: [] }]);
    hub.close();
  });
});

describe('the relay for health and reload', () => {
  it('health and reload go to every other worker; a reload gets the longer wait, its own timeout bounding it still', async () => {
    const hub = new ClusterMetricsHub({ collectTimeoutMs: 50, reloadTimeoutMs: 400 });
    const links: ClusterMetricsLink[] = [];
    const reloaded: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { primaryEnd, workerEnd } = channelPair<ClusterMetricsMessage>();
      hub.attach(primaryEnd);
      const pid = 1000 + i;
      const collect = async (what: PeerRequestKind): Promise<unknown> => {
        if (what !== 'reload') return `${what}-${i}`;
        // Slower than a figure may take, within the reload's wait; worker 2 never gets there.
        await sleep(i === 2 ? 1000 : 150);
        reloaded.push(pid);
        return { pid, ok: true, errors: [], durationMs: 150 };
      };
      links.push(new ClusterMetricsLink({ channel: workerEnd, pid, collect, logger: quiet }));
    }
    for (const link of links) link.start();
    await sleep(5);

    assert.deepEqual(await links[0]!.gather('health'), { parts: ['health-1', 'health-2'], missing: 0, left: [] });
    const started = Date.now();
    const figures = await links[0]!.gather('reload');
    const waited = Date.now() - started;
    assert.deepEqual(figures, {
      parts: [{ pid: 1001, ok: true, errors: [], durationMs: 150 }],
      missing: 1,
      left: [{ pid: 1002, error: 'no answer within 400 ms' }],
    });
    assert.deepEqual(reloaded, [1001], 'the asking worker is not asked: it reloads itself');
    assert.ok(waited >= 380 && waited < 900, `waited ${waited} ms`);
    hub.close();
    for (const link of links) link.close();
  });

  it('a link waits for a reload no longer than its own reload timeout when the primary is silent', async () => {
    const { workerEnd } = channelPair<ClusterMetricsMessage>(); // nobody at the primary's end
    const link = new ClusterMetricsLink({ channel: workerEnd, collect: () => 'x', timeoutMs: 20, reloadTimeoutMs: 120, logger: quiet });
    link.start();
    const started = Date.now();
    assert.deepEqual(await link.gather('reload'), { parts: [], missing: null, left: [] });
    const waited = Date.now() - started;
    assert.ok(waited >= 110 && waited < 600, `waited ${waited} ms (not the 20 ms of a figure)`);
    link.close();
  });

  it('a worker that joined without a pid is left out as pid null; malformed left-out entries are dropped', async () => {
    const hub = new ClusterMetricsHub({ collectTimeoutMs: 50 });
    const asker = channelPair<ClusterMetricsMessage>();
    const silent = channelPair<ClusterMetricsMessage>();
    hub.attach(asker.primaryEnd);
    hub.attach(silent.primaryEnd);
    silent.workerEnd.send({ tag: 'iprep-cluster-metrics', type: 'join' }, () => {}); // never answers
    const link = new ClusterMetricsLink({ channel: asker.workerEnd, pid: 7, collect: () => 'x', logger: quiet });
    link.start();
    await sleep(5);
    assert.deepEqual(await link.gather('health'), { parts: [], missing: 1, left: [{ pid: null, error: 'no answer within 50 ms' }] });
    hub.close();
    link.close();

    // A gathered message from a confused primary: only well-formed entries are kept.
    const lone = channelPair<ClusterMetricsMessage>();
    const replying = new ClusterMetricsLink({ channel: lone.workerEnd, pid: 8, collect: () => 'x', timeoutMs: 500, logger: quiet });
    lone.primaryEnd.on('message', (message) => {
      const { id } = message as { id?: number };
      if (id === undefined) return;
      const left = [{ pid: 5, error: 'gone' }, { pid: 'five', error: 'x' }, { pid: -1, error: 'x' }, { pid: 6 }, null];
      lone.primaryEnd.send({ tag: 'iprep-cluster-metrics', type: 'gathered', id, parts: [], missing: 5, left } as unknown as ClusterMetricsMessage, () => {});
    });
    replying.start();
    assert.deepEqual(await replying.gather('health'), { parts: [], missing: 5, left: [{ pid: 5, error: 'gone' }] });
    replying.close();
  });
});

describe('mergeHealth and mergeReload', () => {
  const store = { kind: 'memory', up: true } as const;
  const own = { pid: 10, status: 'ok', lists: 2, store, uptimeSeconds: 30, listErrors: [] } as const;

  it('health: degraded by any worker, by one missing, by an unreadable part, or when the primary is silent', () => {
    const peer = { ...own, pid: 11, uptimeSeconds: 90 };
    const ok = mergeHealth(own, { parts: [overIpc(peer)], missing: 0, left: [] });
    assert.deepEqual(ok, { status: 'ok', lists: 2, store, uptimeSeconds: 90, workers: 2, workersMissing: 0, perWorker: [own, peer] });

    const down = { kind: 'redis', up: false, detail: 'ECONNREFUSED' } as const;
    const sick = { ...peer, status: 'degraded', store: down } as const;
    const degraded = mergeHealth(own, { parts: [sick], missing: 0, left: [] });
    assert.equal(degraded.status, 'degraded');
    assert.deepEqual(degraded.store, down, 'the store of the worker that cannot reach it');

    const missing = mergeHealth(own, { parts: [{ pid: 12, status: 'fine' }], missing: 1, left: [{ pid: 13, error: 'no answer within 1000 ms' }] });
    assert.equal(missing.status, 'degraded');
    assert.equal(missing.workers, 1);
    assert.equal(missing.workersMissing, 2);
    assert.deepEqual(missing.perWorker.slice(1), [
      { pid: 13, status: 'missing', error: 'no answer within 1000 ms' },
      { pid: null, status: 'missing', error: 'unreadable answer' },
    ]);

    const silent = mergeHealth(own, { parts: [], missing: null });
    assert.equal(silent.status, 'degraded');
    assert.equal(silent.workersMissing, null);
  });

  it('reload: ok only when every worker reloaded, errors named by worker, unknown when the primary is silent', () => {
    const lists = [{ name: 'drop', format: 'netset', origin: '/d', entries: 3, loadedAt: NOW, lastError: null }] as const;
    const result = { ok: true, lists, errors: [], durationMs: 5 };
    const peer = { pid: 11, ok: true, errors: [], durationMs: 7 };
    assert.deepEqual(mergeReload(result, 10, { parts: [peer], missing: 0, left: [] }, 9), {
      ok: true,
      lists,
      errors: [],
      durationMs: 9,
      workers: 2,
      workersMissing: 0,
      perWorker: [{ pid: 10, ok: true, errors: [], durationMs: 5 }, peer],
    });

    const failed = mergeReload(
      result,
      10,
      { parts: [{ ...peer, ok: false, errors: ['drop.json:1: not JSON'] }], missing: 1, left: [{ pid: 12, error: 'exited before answering' }] },
      9,
    );
    assert.equal(failed.ok, false);
    assert.deepEqual(failed.errors, ['worker 11: drop.json:1: not JSON', 'worker 12: exited before answering']);
    assert.deepEqual(failed.perWorker[2], { pid: 12, ok: false, errors: ['exited before answering'], durationMs: null });

    const silent = mergeReload(result, 10, { parts: [], missing: null }, 9);
    assert.equal(silent.ok, false);
    assert.match(silent.errors.join(), /primary process did not answer/);
    assert.equal(silent.workers, 1);
  });
});

/** A service whose reloads are counted and can be made slow. */
class CountingService extends FakeReputationService {
  reloads = 0;
  reloadDelayMs = 0;
  override async reload(): Promise<ReloadResult> {
    this.reloads++;
    await sleep(this.reloadDelayMs);
    return super.reload();
  }
}

describe('GET /health and POST /reload of a worker, over the relay', () => {
  /**
   * An admin server in "worker 0" and more workers (pid 1000 + i), each with its own fake service,
   * joined through a hub as reputation-agent.ts joins them. `silent` workers never answer.
   */
  async function workers(
    t: TestContext,
    count: number,
    options: { collectTimeoutMs?: number; reloadTimeoutMs?: number; silent?: readonly number[] } = {},
  ): Promise<{ port: number; services: CountingService[] }> {
    const hub = new ClusterMetricsHub({ collectTimeoutMs: options.collectTimeoutMs ?? 200, reloadTimeoutMs: options.reloadTimeoutMs ?? 1000 });
    const services: CountingService[] = [];
    const links: ClusterMetricsLink[] = [];
    let server: AdminServer | undefined;
    for (let i = 0; i < count; i++) {
      const service = new CountingService();
      const metrics = new ReputationMetrics({ defaultMetrics: false, now: () => NOW });
      const pid = i === 0 ? process.pid : 1000 + i;
      const { primaryEnd, workerEnd } = channelPair<ClusterMetricsMessage>();
      hub.attach(primaryEnd);
      const link = new ClusterMetricsLink({
        channel: workerEnd,
        pid,
        logger: quiet,
        collect: (what) => {
          if (options.silent?.includes(i)) return new Promise(() => {});
          if (what === 'health') return workerHealth(service, metrics.uptimeSeconds(), pid);
          if (what === 'reload') return workerReload(service, pid);
          return what === 'metrics' ? metrics.registry.getMetricsAsJSON() : metrics.statusCounts();
        },
      });
      link.start();
      services.push(service);
      links.push(link);
      if (i === 0) server = new AdminServer({ service, metrics, logger: silentLogger, peers: link });
    }
    t.after(async () => {
      await server!.close();
      hub.close();
      for (const link of links) link.close();
    });
    const { port } = await server!.listen({ host: '127.0.0.1', port: 0 });
    await sleep(5); // the joins arrive
    return { port, services };
  }

  it('GET /health: every worker, degraded when another worker’s store is down or a list of it failed', async (t) => {
    const { port, services } = await workers(t, 3);
    const ok = await request(port, '/health');
    assert.equal(ok.status, 200);
    const body = ok.json as ClusterHealth;
    assert.equal(body.status, 'ok');
    assert.equal(body.workers, 3);
    assert.equal(body.workersMissing, 0);
    assert.deepEqual(
      body.perWorker.map((w) => [w.pid, w.status]),
      [
        [process.pid, 'ok'],
        [1001, 'ok'],
        [1002, 'ok'],
      ],
    );
    assert.deepEqual(body.perWorker[0], { pid: process.pid, status: 'ok', lists: 2, store: { kind: 'memory', up: true }, uptimeSeconds: 0, listErrors: [] });

    services[2]!.storeHealth = { kind: 'redis', up: false, detail: 'connection refused' };
    const storeDown = await request(port, '/health');
    assert.equal(storeDown.status, 200, 'degraded is still 200');
    assert.equal((storeDown.json as ClusterHealth).status, 'degraded');
    assert.deepEqual((storeDown.json as ClusterHealth).store, { kind: 'redis', up: false, detail: 'connection refused' });
    assert.equal((storeDown.json as ClusterHealth).perWorker[2]?.status, 'degraded');
    services[2]!.storeHealth = { kind: 'memory', up: true };

    services[1]!.listStatus = [{ ...services[1]!.listStatus[0]!, lastError: 'drop.json:3: not JSON' }];
    const listFailed = (await request(port, '/health')).json as ClusterHealth;
    assert.equal(listFailed.status, 'degraded');
    assert.deepEqual(listFailed.perWorker[1], {
      pid: 1001,
      status: 'degraded',
      lists: 1,
      store: { kind: 'memory', up: true },
      uptimeSeconds: 0,
      listErrors: [{ list: 'spamhaus-drop', error: 'drop.json:3: not JSON' }],
    });
    assert.equal(listFailed.lists, 2, 'the answering worker’s lists');

    // The answering worker's own service failing is still a 500.
    services[0]!.listStatus = null as unknown as ListStatus[];
    assert.equal((await request(port, '/health')).status, 500);
  });

  it('GET /health: a worker that does not answer makes it degraded, after the primary’s wait, not a hang', async (t) => {
    const { port } = await workers(t, 3, { collectTimeoutMs: 100, silent: [2] });
    const started = Date.now();
    const reply = await request(port, '/health');
    const waited = Date.now() - started;
    assert.equal(reply.status, 200);
    const body = reply.json as ClusterHealth;
    assert.equal(body.status, 'degraded');
    assert.equal(body.workers, 2);
    assert.equal(body.workersMissing, 1);
    assert.deepEqual(body.perWorker[2], { pid: 1002, status: 'missing', error: 'no answer within 100 ms' });
    assert.ok(waited >= 90 && waited < 1000, `waited ${waited} ms`);
  });

  it('POST /reload: every worker reloads; 500 when one fails or does not answer in time, with who and why', async (t) => {
    const { port, services } = await workers(t, 3, { reloadTimeoutMs: 300 });
    const ok = await request(port, '/reload', { method: 'POST' });
    assert.equal(ok.status, 200, ok.text);
    const body = ok.json as ClusterReloadResult;
    assert.deepEqual(
      services.map((s) => s.reloads),
      [1, 1, 1],
    );
    assert.equal(body.ok, true);
    assert.deepEqual(body.errors, []);
    assert.deepEqual(body.lists, [], 'the answering worker’s ReloadResult fields');
    assert.equal(body.workers, 3);
    assert.equal(body.workersMissing, 0);
    assert.deepEqual(
      body.perWorker.map((w) => [w.pid, w.ok, w.errors, w.durationMs]),
      [
        [process.pid, true, [], 42],
        [1001, true, [], 42],
        [1002, true, [], 42],
      ],
    );

    services[1]!.reloadResult = { ok: false, lists: [], errors: ['drop.json:1: not JSON'], durationMs: 3 };
    services[2]!.reloadResult = new Error('config.yaml:4: lists[0].format: unknown format "xml"');
    const failed = await request(port, '/reload', { method: 'POST' });
    assert.equal(failed.status, 500);
    assert.equal((failed.json as ClusterReloadResult).ok, false);
    assert.deepEqual((failed.json as ClusterReloadResult).errors, [
      'worker 1001: drop.json:1: not JSON',
      'worker 1002: config.yaml:4: lists[0].format: unknown format "xml"',
    ]);
    services[1]!.reloadResult = { ok: true, lists: [], errors: [], durationMs: 1 };
    services[2]!.reloadResult = { ok: true, lists: [], errors: [], durationMs: 1 };

    services[2]!.reloadDelayMs = 2000;
    const started = Date.now();
    const slow = await request(port, '/reload', { method: 'POST' });
    const waited = Date.now() - started;
    assert.equal(slow.status, 500);
    const slowBody = slow.json as ClusterReloadResult;
    assert.equal(slowBody.workersMissing, 1);
    assert.deepEqual(slowBody.perWorker[2], { pid: 1002, ok: false, errors: ['no answer within 300 ms'], durationMs: null });
    assert.deepEqual(
      slowBody.perWorker.slice(0, 2).map((w) => w.ok),
      [true, true],
    );
    assert.ok(waited >= 280 && waited < 1500, `waited ${waited} ms`);
  });

  it('POST /reload: requests that come while one runs share the next reload, which starts after it', async (t) => {
    const { port, services } = await workers(t, 2);
    for (const service of services) service.reloadDelayMs = 100;
    const first = request(port, '/reload', { method: 'POST' });
    await sleep(30);
    const later = await Promise.all(Array.from({ length: 5 }, () => request(port, '/reload', { method: 'POST' })));
    assert.equal((await first).status, 200);
    for (const reply of later) assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(
      services.map((s) => s.reloads),
      [2, 2],
      'one reload for the first request, one shared by the five that came while it ran',
    );
    assert.equal(new Set(later.map((reply) => reply.text)).size, 1, 'the five got the same answer');
  });
});
