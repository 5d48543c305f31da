import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { register as globalRegistry } from 'prom-client';
import { AgentStats } from 'spop';
import { ReputationMetrics } from '../../src/admin/index.js';
import type { IpAction, Verdict } from '../../src/types.js';
import { isStatusCounts, mergeStatus } from '../../src/admin/status.js';
import { VERSION } from '../../src/version.js';
import { NOW } from '../admin-fixtures.js';

function verdict(score: number, action: IpAction, category: string, source: string): Verdict {
  return { score, action, category, source, matches: [] };
}

/** A clock the test moves by hand. */
function manualClock(start = NOW): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

/** Moves the per-second ring to the clock's second, as the agent's timer does at each second while messages flow. */
function tick(metrics: ReputationMetrics): void {
  metrics.status();
}

/** The value of one series line (`name{labels} value`) of the exposition text. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('ReputationMetrics: build, decisions and bans', () => {
  it('iprep_build_info carries the version and node', async () => {
    const metrics = new ReputationMetrics({ defaultMetrics: false });
    const text = await metrics.registry.metrics();
    assert.equal(sample(text, `iprep_build_info{version="${VERSION}",node="${process.version}"}`), 1);
  });

  it("counts decision changes by origin, action and op, and bans by action; received changes are the writer's to count", async () => {
    const metrics = new ReputationMetrics({ defaultMetrics: false });
    metrics.decisionAudited({ op: 'added', origin: 'api', action: 'deny', received: false });
    metrics.decisionAudited({ op: 'added', origin: 'api', action: 'deny', received: false });
    metrics.decisionAudited({ op: 'added', origin: 'cli', action: 'tarpit', received: false });
    metrics.decisionAudited({ op: 'deleted', origin: 'cli', action: 'tarpit', received: false });
    metrics.decisionAudited({ op: 'expired', origin: 'behaviour', action: 'deny', received: false });
    metrics.decisionAudited({ op: 'added', origin: 'api', action: 'deny', received: true });
    metrics.decisionAudited({ op: 'expired', origin: 'agent:x"y', action: 'log', received: false });
    metrics.decisionAudited({ op: 'ban', origin: 'behaviour', action: 'deny', received: false });
    const text = await metrics.registry.metrics();
    assert.equal(sample(text, 'iprep_decisions_changes_total{origin="api",action="deny",op="added"}'), 2);
    assert.equal(sample(text, 'iprep_decisions_changes_total{origin="cli",action="tarpit",op="added"}'), 1);
    assert.equal(sample(text, 'iprep_decisions_changes_total{origin="cli",action="tarpit",op="deleted"}'), 1);
    assert.equal(sample(text, 'iprep_decisions_changes_total{origin="behaviour",action="deny",op="expired"}'), 1);
    assert.equal(sample(text, 'iprep_decisions_changes_total{origin="other",action="log",op="expired"}'), 1, 'origins outside the known few: other');
    assert.equal(sample(text, 'iprep_bans_total{action="deny"}'), 1);
    assert.match(text, /^# TYPE iprep_decisions_changes_total counter$/m);
  });
});

describe('ReputationMetrics: behaviour clients', () => {
  it('publishes the clients tracked and the messages the doorkeeper turned away, read at scrape time', async () => {
    const metrics = new ReputationMetrics({ defaultMetrics: false });
    assert.equal(sample(await metrics.registry.metrics(), 'iprep_behaviour_clients'), 0, 'no behaviour: nothing');
    const figures = { clients: 12, turnedAway: 3400 };
    metrics.setBehaviourProvider(() => figures);
    let text = await metrics.registry.metrics();
    assert.equal(sample(text, 'iprep_behaviour_clients'), 12);
    assert.equal(sample(text, 'iprep_behaviour_turned_away_total'), 3400);
    assert.match(text, /^# TYPE iprep_behaviour_turned_away_total counter$/m);
    figures.turnedAway = 3500;
    text = await metrics.registry.metrics();
    assert.equal(sample(text, 'iprep_behaviour_turned_away_total'), 3500);
  });
});

describe('ReputationMetrics: status page version, top clients and latest bans', () => {
  it('shows the version, the top clients from the provider and the last 20 bans, newest first', () => {
    const clock = manualClock();
    const metrics = new ReputationMetrics({ defaultMetrics: false, now: clock.now });
    metrics.setTopClientsProvider(() => [
      { client: '192.0.2.1', count: 900 },
      { client: '192.0.2.2', count: 40 },
    ]);
    for (let i = 0; i < 25; i++) {
      clock.advance(1000);
      metrics.decisionAudited({
        op: 'ban',
        origin: 'behaviour',
        action: 'deny',
        received: false,
        ban: { client: `198.51.100.${i}`, count: 600 + i, offences: 1, until: clock.now() + 600_000 },
      });
    }
    const status = metrics.status();
    assert.equal(status.version, VERSION);
    assert.deepEqual(status.topClients, [
      { client: '192.0.2.1', count: 900 },
      { client: '192.0.2.2', count: 40 },
    ]);
    assert.equal(status.latestBans.length, 20);
    assert.deepEqual(status.latestBans[0], { client: '198.51.100.24', action: 'deny', count: 624, offences: 1, at: clock.now(), until: clock.now() + 600_000 });
    assert.equal(status.latestBans[19]?.client, '198.51.100.5');
  });

  it('merges workers: the largest count of each client, bans of all newest first, a malformed part left out', () => {
    const a = new ReputationMetrics({ defaultMetrics: false, now: () => NOW });
    const b = new ReputationMetrics({ defaultMetrics: false, now: () => NOW + 5 });
    a.setTopClientsProvider(() => [{ client: '192.0.2.1', count: 10 }]);
    b.setTopClientsProvider(() => [
      { client: '192.0.2.1', count: 12 },
      { client: '192.0.2.3', count: 11 },
    ]);
    a.decisionAudited({
      op: 'ban',
      origin: 'behaviour',
      action: 'deny',
      received: false,
      ban: { client: '192.0.2.1', count: 700, offences: 1, until: NOW + 1 },
    });
    b.decisionAudited({
      op: 'ban',
      origin: 'behaviour',
      action: 'tarpit',
      received: false,
      ban: { client: '192.0.2.3', count: 800, offences: 2, until: NOW + 2 },
    });
    const merged = mergeStatus([a.statusCounts(), b.statusCounts()]);
    assert.deepEqual(merged.topClients, [
      { client: '192.0.2.1', count: 12 },
      { client: '192.0.2.3', count: 11 },
    ]);
    assert.deepEqual(
      merged.latestBans.map((ban) => ban.client),
      ['192.0.2.3', '192.0.2.1'],
    );
    assert.equal(isStatusCounts({ ...b.statusCounts(), topClients: [{ client: 7, count: 1 }] }), false);
    assert.equal(isStatusCounts({ ...b.statusCounts(), bans: new Array(1000).fill(b.statusCounts().bans[0]) }), false, 'more bans than a part holds');
  });
});

describe('ReputationMetrics: Prometheus text', () => {
  it('counts each series right when verdicts alternate between a few of them', async () => {
    const metrics = new ReputationMetrics({ defaultMetrics: false });
    const kinds = [verdict(100, 'allow', 'none', 'default'), verdict(0, 'deny', 'hijacked', 'drop'), verdict(35, 'captcha', 'tor', 'tor-exits')];
    const order = [0, 1, 0, 1, 2, 0, 2, 2, 1, 0, 0, 1, 2, 1];
    for (const i of order) metrics.observeVerdict(kinds[i]!);
    const text = await metrics.registry.metrics();
    assert.equal(sample(text, 'iprep_messages_total{action="allow",category="none",source="default"}'), 5);
    assert.equal(sample(text, 'iprep_messages_total{action="deny",category="hijacked",source="drop"}'), 5);
    assert.equal(sample(text, 'iprep_messages_total{action="captcha",category="tor",source="tor-exits"}'), 4);
  });

  it('counts each series right among many verdicts, kept or fresh, some with the same labels', async () => {
    const metrics = new ReputationMetrics({ defaultMetrics: false });
    // Seven series; kept (frozen, reused) verdicts and fresh copies of the same labels.
    const labels = Array.from({ length: 7 }, (_, i) => [i * 10, i % 2 === 0 ? 'deny' : 'allow', `c${i}`, `s${i}`] as const);
    const kept = labels.map(([score, action, category, source]) => Object.freeze(verdict(score, action, category, source)));
    const expected = new Array<number>(labels.length).fill(0);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: labels.length - 1 }), fc.boolean()), { maxLength: 60 }), (picks) => {
        for (const [i, fresh] of picks) {
          const [score, action, category, source] = labels[i]!;
          metrics.observeVerdict(fresh ? verdict(score, action, category, source) : kept[i]!);
          expected[i]!++;
        }
      }),
    );
    const text = await metrics.registry.metrics();
    labels.forEach(([, action, category, source], i) => {
      assert.equal(sample(text, `iprep_messages_total{action="${action}",category="${category}",source="${source}"}`) ?? 0, expected[i], source);
    });
  });

  it('exposes messages, handler time and score histograms after observeVerdict', async () => {
    const metrics = new ReputationMetrics({ defaultMetrics: false });
    metrics.observeVerdict(verdict(0, 'deny', 'hijacked', 'spamhaus-drop'), 0.000003);
    metrics.observeVerdict(verdict(0, 'deny', 'hijacked', 'spamhaus-drop'), 0.00004);
    metrics.observeVerdict(verdict(35, 'captcha', 'anonymizer:tor', 'tor-exits'), 0.002);
    metrics.observeVerdict(verdict(100, 'allow', 'none', 'default'), 0.5);
    const text = await metrics.registry.metrics();

    assert.equal(sample(text, 'iprep_messages_total{action="deny",category="hijacked",source="spamhaus-drop"}'), 2);
    assert.equal(sample(text, 'iprep_messages_total{action="captcha",category="anonymizer:tor",source="tor-exits"}'), 1);
    assert.equal(sample(text, 'iprep_messages_total{action="allow",category="none",source="default"}'), 1);
    assert.match(text, /^# TYPE iprep_messages_total counter$/m);

    assert.match(text, /^# TYPE iprep_handler_seconds histogram$/m);
    assert.equal(sample(text, 'iprep_handler_seconds_bucket{le="0.000001"}'), 0);
    assert.equal(sample(text, 'iprep_handler_seconds_bucket{le="0.000005"}'), 1);
    assert.equal(sample(text, 'iprep_handler_seconds_bucket{le="0.00005"}'), 2);
    assert.equal(sample(text, 'iprep_handler_seconds_bucket{le="0.0025"}'), 3);
    assert.equal(sample(text, 'iprep_handler_seconds_bucket{le="0.1"}'), 3);
    assert.equal(sample(text, 'iprep_handler_seconds_bucket{le="+Inf"}'), 4);
    assert.equal(sample(text, 'iprep_handler_seconds_count'), 4);
    assert.ok(Math.abs(sample(text, 'iprep_handler_seconds_sum')! - 0.502043) < 1e-9);

    assert.match(text, /^# TYPE iprep_score histogram$/m);
    assert.equal(sample(text, 'iprep_score_bucket{le="9"}'), 2);
    assert.equal(sample(text, 'iprep_score_bucket{le="29"}'), 2);
    assert.equal(sample(text, 'iprep_score_bucket{le="39"}'), 3);
    assert.equal(sample(text, 'iprep_score_bucket{le="89"}'), 3);
    assert.equal(sample(text, 'iprep_score_bucket{le="+Inf"}'), 4);
    assert.equal(sample(text, 'iprep_score_sum'), 135);
  });

  it('counts every score, whole or not, in the first bucket whose bound it does not exceed', async () => {
    const metrics = new ReputationMetrics({ defaultMetrics: false });
    const scores = [...Array.from({ length: 101 }, (_, score) => score), 9.5, 89.25, 0.5, 100, 9, 90];
    for (const score of scores) metrics.observeVerdict(verdict(score, 'allow', 'none', 'default'));
    const text = await metrics.registry.metrics();
    for (const bound of [9, 19, 29, 39, 49, 59, 69, 79, 89]) {
      assert.equal(sample(text, `iprep_score_bucket{le="${bound}"}`), scores.filter((score) => score <= bound).length, `le ${bound}`);
    }
    assert.equal(sample(text, 'iprep_score_bucket{le="+Inf"}'), scores.length);
    assert.equal(
      sample(text, 'iprep_score_sum'),
      scores.reduce((sum, score) => sum + score, 0),
    );
    // Ten scores a bucket, eleven in the last (90-100), and the extra ones: 0.5 and 9 (first), 9.5 (second), 89.25, 90 and 100 (last).
    assert.deepEqual(
      metrics.status().scores.map((bucket) => bucket.count),
      [12, 11, 10, 10, 10, 10, 10, 10, 10, 14],
    );
  });

  it('reads gauges from the providers at scrape time', async () => {
    const clock = manualClock();
    const metrics = new ReputationMetrics({ defaultMetrics: false, now: clock.now });
    let agent = { connections: 3, inFlight: 17 };
    metrics.setAgentGauges(() => agent);
    metrics.setDecisionsProvider(() => 5);
    metrics.setStoreProvider(() => ({
      kind: 'redis',
      up: false,
      detail: 'ECONNREFUSED',
      pendingWrites: 4,
      droppedWrites: 1,
      syncAgeMs: 12_500,
      changeLagMs: 7,
    }));
    metrics.setListsProvider(() => [
      { name: 'spamhaus-drop', format: 'spamhaus-json', origin: '/d.json', entries: 1200, loadedAt: NOW - 90_000, lastError: null },
      { name: 'tor-exits', format: 'tor-exits', origin: 'https://x.test/t', entries: 0, loadedAt: null, lastError: 'fetch failed: 503' },
    ]);
    metrics.reloaded(true, 250);
    metrics.reloaded(false, 20);
    metrics.reloaded(true, 1500);

    let text = await metrics.registry.metrics();
    assert.equal(sample(text, 'iprep_connections'), 3);
    assert.equal(sample(text, 'iprep_frames_in_flight'), 17);
    assert.equal(sample(text, 'iprep_decisions'), 5);
    assert.equal(sample(text, 'iprep_store_up{kind="redis"}'), 0);
    assert.equal(sample(text, 'iprep_store_pending_writes'), 4);
    assert.equal(sample(text, 'iprep_store_dropped_writes_total'), 1);
    assert.match(text, /^# TYPE iprep_store_dropped_writes_total counter$/m);
    assert.equal(sample(text, 'iprep_list_last_update_timestamp_seconds{list="spamhaus-drop"}'), (NOW - 90_000) / 1000);
    assert.equal(sample(text, 'iprep_list_last_update_timestamp_seconds{list="tor-exits"}'), undefined, 'never loaded: no sample');
    assert.equal(sample(text, 'iprep_last_reload_success_timestamp_seconds'), NOW / 1000);
    assert.equal(sample(text, 'iprep_store_sync_age_seconds{kind="redis"}'), 12.5);
    assert.equal(sample(text, 'iprep_store_change_lag_seconds{kind="redis"}'), 0.007);
    assert.equal(sample(text, 'iprep_list_entries{list="spamhaus-drop"}'), 1200);
    assert.equal(sample(text, 'iprep_list_entries{list="tor-exits"}'), 0);
    assert.equal(sample(text, 'iprep_list_age_seconds{list="spamhaus-drop"}'), 90);
    assert.equal(sample(text, 'iprep_list_age_seconds{list="tor-exits"}'), undefined, 'never loaded: no age');
    assert.equal(sample(text, 'iprep_list_error{list="spamhaus-drop"}'), 0);
    assert.equal(sample(text, 'iprep_list_error{list="tor-exits"}'), 1);
    assert.equal(sample(text, 'iprep_reloads_total{result="ok"}'), 2);
    assert.equal(sample(text, 'iprep_reloads_total{result="error"}'), 1);
    assert.equal(sample(text, 'iprep_last_reload_duration_seconds'), 1.5);

    agent = { connections: 1, inFlight: 0 };
    clock.advance(10_000);
    text = await metrics.registry.metrics();
    assert.equal(sample(text, 'iprep_connections'), 1);
    assert.equal(sample(text, 'iprep_frames_in_flight'), 0);
    assert.equal(sample(text, 'iprep_list_age_seconds{list="spamhaus-drop"}'), 100);
  });

  it("exposes the SPOP library's connection counters, read at scrape time", async () => {
    const metrics = new ReputationMetrics({ defaultMetrics: false });
    const stats = new AgentStats();
    metrics.setAgentCounters(() => stats);
    Object.assign(stats, {
      connectionsTotal: 9,
      healthChecks: 2,
      notifies: 40,
      acks: 39,
      unknownMessages: 1,
      handlerErrors: 3,
      handlerTimeouts: 4,
      oversizedAcks: 5,
      protocolErrors: 6,
      haproxyDisconnects: 7,
      refusedConnections: 8,
      deniedConnections: 10,
      helloTimeouts: 11,
      idleTimeouts: 12,
      partialFrameBytes: 4096,
      bufferLimitDisconnects: 13,
      partialFrameTimeouts: 14,
    });
    let text = await metrics.registry.metrics();
    const expected: Array<[string, number, 'counter' | 'gauge']> = [
      ['iprep_connections_total', 9, 'counter'],
      ['iprep_health_checks_total', 2, 'counter'],
      ['iprep_notify_frames_total', 40, 'counter'],
      ['iprep_ack_frames_total', 39, 'counter'],
      ['iprep_unknown_messages_total', 1, 'counter'],
      ['iprep_handler_errors_total', 3, 'counter'],
      ['iprep_handler_timeouts_total', 4, 'counter'],
      ['iprep_oversized_acks_total', 5, 'counter'],
      ['iprep_protocol_errors_total', 6, 'counter'],
      ['iprep_haproxy_disconnects_total', 7, 'counter'],
      ['iprep_connections_refused_total', 8, 'counter'],
      ['iprep_connections_denied_total', 10, 'counter'],
      ['iprep_hello_timeouts_total', 11, 'counter'],
      ['iprep_idle_timeouts_total', 12, 'counter'],
      ['iprep_partial_frame_bytes', 4096, 'gauge'],
      ['iprep_buffer_limit_disconnects_total', 13, 'counter'],
      ['iprep_partial_frame_timeouts_total', 14, 'counter'],
    ];
    for (const [name, value, type] of expected) {
      assert.equal(sample(text, name), value, name);
      assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'));
    }
    stats.refusedConnections++;
    stats.partialFrameBytes = 0;
    text = await metrics.registry.metrics();
    assert.equal(sample(text, 'iprep_connections_refused_total'), 9, 'counted since the last scrape');
    assert.equal(sample(text, 'iprep_partial_frame_bytes'), 0);
    // Without the provider, every series is there at zero.
    const bare = await new ReputationMetrics({ defaultMetrics: false }).registry.metrics();
    for (const [name] of expected) assert.equal(sample(bare, name), 0, name);
  });

  it('counts the connections handed over to this worker by a rolling restart, adopted or refused', async () => {
    const metrics = new ReputationMetrics({ defaultMetrics: false });
    const bare = await metrics.registry.metrics();
    assert.equal(sample(bare, 'iprep_connections_handed_over_total{result="adopted"}'), 0);
    assert.equal(sample(bare, 'iprep_connections_handed_over_total{result="refused"}'), 0);
    const stats = new AgentStats();
    metrics.setAgentCounters(() => stats);
    Object.assign(stats, { connectionsAdopted: 5, adoptionsRefused: 1 });
    const text = await metrics.registry.metrics();
    assert.match(text, /^# TYPE iprep_connections_handed_over_total counter$/m);
    assert.equal(sample(text, 'iprep_connections_handed_over_total{result="adopted"}'), 5);
    assert.equal(sample(text, 'iprep_connections_handed_over_total{result="refused"}'), 1);
  });

  it('starts every series at zero without providers, and has no process metrics when asked not to', async () => {
    const text = await new ReputationMetrics({ defaultMetrics: false }).registry.metrics();
    assert.equal(sample(text, 'iprep_connections'), 0);
    assert.equal(sample(text, 'iprep_reloads_total{result="ok"}'), 0);
    assert.equal(sample(text, 'iprep_handler_seconds_count'), 0);
    assert.doesNotMatch(text, /^iprep_messages_total/m);
    assert.doesNotMatch(text, /^process_/m);
  });

  it('adds the process metrics by default, uses its own registry and the prefix asked for', async () => {
    const metrics = new ReputationMetrics({ prefix: 'edge_' });
    metrics.observeVerdict(verdict(100, 'allow', 'none', 'default'), 0.00001);
    const text = await metrics.registry.metrics();
    assert.match(text, /^process_cpu_user_seconds_total /m);
    assert.match(text, /^process_resident_memory_bytes /m);
    assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    assert.equal(sample(text, 'edge_messages_total{action="allow",category="none",source="default"}'), 1);
    assert.doesNotMatch(text, /^iprep_/m);
    assert.doesNotMatch(await globalRegistry.metrics(), /edge_|iprep_/, 'the global registry is left alone');
    assert.equal(metrics.registry.contentType, 'text/plain; version=0.0.4; charset=utf-8');
  });

  it('folds sources beyond 1000 distinct series into "other"', async () => {
    const metrics = new ReputationMetrics({ defaultMetrics: false });
    for (let i = 0; i < 1500; i++) metrics.observeVerdict(verdict(0, 'deny', 'manual', `manual:ip:10.0.${i >> 8}.${i & 255}`), 0.00001);
    metrics.observeVerdict(verdict(0, 'deny', 'manual', 'manual:ip:10.0.0.0'), 0.00001); // an early series still counts
    const text = await metrics.registry.metrics();
    const lines = text.split('\n').filter((line) => line.startsWith('iprep_messages_total{'));
    assert.equal(lines.length, 1001);
    assert.equal(sample(text, 'iprep_messages_total{action="deny",category="other",source="other"}'), 500);
    assert.equal(sample(text, 'iprep_messages_total{action="deny",category="manual",source="manual:ip:10.0.0.0"}'), 2);
  });
});

describe('ReputationMetrics: status()', () => {
  it('summarises throughput, scores, actions, top categories and sources, lists, store and reloads', () => {
    const clock = manualClock(NOW + 400);
    const metrics = new ReputationMetrics({ defaultMetrics: false, now: clock.now });
    metrics.setListsProvider(() => [{ name: 'firehol-l1', format: 'netset', origin: '/l1.netset', entries: 4500, loadedAt: NOW - 30_000, lastError: null }]);
    metrics.setStoreProvider(() => ({ kind: 'memory', up: true }));
    metrics.setDecisionsProvider(() => 2);
    metrics.setAgentGauges(() => ({ connections: 4, inFlight: 1 }));

    // 12 categories seen 1..12 times each, one second apart.
    for (let c = 1; c <= 12; c++) {
      for (let n = 0; n < c; n++) metrics.observeVerdict(verdict(c * 8, c % 2 ? 'deny' : 'log', `cat-${c}`, `src-${c}`), 0.00002);
      clock.advance(1000);
      tick(metrics);
    }
    metrics.reloaded(false, 80);
    const status = metrics.status();

    assert.equal(status.time, clock.now());
    assert.equal(status.uptimeSeconds, 12);
    assert.equal(status.messages.total, 78);
    assert.equal(status.messages.history.length, 60);
    assert.deepEqual(status.messages.history.slice(-12), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.deepEqual(status.messages.history.slice(0, 48), new Array(48).fill(0));
    assert.equal(status.messages.perSecond, (3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12) / 10);

    assert.equal(status.scores.length, 10);
    // Category c scored c * 8: 8 once in 0-9, 40 (5 times) and 48 (6 times) in 40-49, 96 (12 times) in 90-100.
    assert.deepEqual(status.scores[0], { from: 0, to: 9, count: 1 });
    assert.deepEqual(status.scores[4], { from: 40, to: 49, count: 11 });
    assert.deepEqual(status.scores[9], { from: 90, to: 100, count: 12 });
    assert.equal(
      status.scores.reduce((sum, b) => sum + b.count, 0),
      78,
    );

    assert.deepEqual(
      status.actions.map((a) => a.name),
      ['allow', 'log', 'captcha', 'tarpit', 'deny'],
    );
    assert.equal(status.actions.find((a) => a.name === 'deny')!.count, 1 + 3 + 5 + 7 + 9 + 11);
    assert.equal(status.actions.find((a) => a.name === 'log')!.count, 2 + 4 + 6 + 8 + 10 + 12);

    assert.equal(status.topCategories.length, 10);
    assert.deepEqual(status.topCategories[0], { name: 'cat-12', count: 12 });
    assert.deepEqual(status.topCategories[9], { name: 'cat-3', count: 3 });
    assert.deepEqual(status.topSources[0], { name: 'src-12', count: 12 });

    assert.deepEqual(status.lists, [
      { name: 'firehol-l1', format: 'netset', origin: '/l1.netset', entries: 4500, loadedAt: NOW - 30_000, lastError: null, ageSeconds: 42.4 },
    ]);
    assert.deepEqual(status.store, { kind: 'memory', up: true });
    assert.equal(status.decisions, 2);
    assert.deepEqual(status.agent, { connections: 4, inFlight: 1 });
    assert.deepEqual(status.reloads, { ok: 0, failed: 1, last: { ok: false, durationMs: 80, at: clock.now() } });
    assert.equal(status.handler.meanSeconds !== null && Math.abs(status.handler.meanSeconds - 0.00002) < 1e-12, true);
    assert.equal(status.handler.p99Seconds, 0.000025);
    assert.doesNotThrow(() => JSON.stringify(status));
  });

  it('moves the per-second history on its own, in real time', async () => {
    const metrics = new ReputationMetrics({ defaultMetrics: false });
    const untilNextSecond = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1050 - (Date.now() % 1000)));
    await untilNextSecond();
    for (let i = 0; i < 3; i++) metrics.observeVerdict(verdict(100, 'allow', 'none', 'default'), 0.00001);
    await untilNextSecond();
    for (let i = 0; i < 2; i++) metrics.observeVerdict(verdict(100, 'allow', 'none', 'default'), 0.00001);
    await untilNextSecond();
    assert.deepEqual(metrics.status().messages.history.slice(-3), [0, 3, 2]);
  });

  it('is empty before any message and without providers', () => {
    const status = new ReputationMetrics({ defaultMetrics: false, now: () => NOW }).status();
    assert.equal(status.messages.total, 0);
    assert.equal(status.messages.perSecond, 0);
    assert.deepEqual(status.handler, { meanSeconds: null, p99Seconds: null });
    assert.deepEqual(status.topCategories, []);
    assert.deepEqual(status.lists, []);
    assert.equal(status.store, null);
    assert.equal(status.agent, null);
    assert.equal(status.decisions, null);
    assert.equal(status.reloads.last, null);
  });

  it('per-second history matches a naive count for any timing (idle gaps, clock steps back)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ advanceMs: fc.oneof(fc.integer({ min: 0, max: 1500 }), fc.integer({ min: -2000, max: 120_000 })), messages: fc.nat(5) }), {
          maxLength: 80,
        }),
        (steps) => {
          let t = NOW;
          const metrics = new ReputationMetrics({ defaultMetrics: false, now: () => t });
          /** Second each message was counted in: a clock going back keeps counting into the latest second seen. */
          const counted: number[] = [];
          let latestSecond = Math.floor(NOW / 1000);
          for (const step of steps) {
            t += step.advanceMs;
            tick(metrics);
            latestSecond = Math.max(latestSecond, Math.floor(t / 1000));
            for (let i = 0; i < step.messages; i++) {
              metrics.observeVerdict(verdict(50, 'log', 'c', 's'), 0.00001);
              counted.push(latestSecond);
            }
          }
          const status = metrics.status();
          const nowSecond = Math.max(latestSecond, Math.floor(t / 1000));
          const expected = new Array<number>(60).fill(0);
          for (const second of counted) {
            const age = nowSecond - second;
            if (age >= 1 && age <= 60) expected[60 - age]!++;
          }
          assert.deepEqual(status.messages.history, expected);
          assert.equal(status.messages.total, counted.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
