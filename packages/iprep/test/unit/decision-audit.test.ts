/**
 * The audit trail: every decision added, deleted or expired, and every ban, one info line each with
 * who and why, rate-limited per kind; and the counts the metrics take from it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'spop';
import { loadConfigFile } from '../../src/config/index.js';
import { type DecisionAuditEvent, DecisionAudit } from '../../src/decisions/audit.js';
import { makeDecision } from '../../src/decisions/index.js';
import { IprepService } from '../../src/service.js';

interface Line {
  readonly level: string;
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

function recordingLogger(): { lines: Line[]; logger: Logger } {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}): void => {
      lines.push({ level, msg, fields });
    };
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

const decision = (value: string, expiresInMs: number | null = 60_000) =>
  makeDecision(
    { value, action: 'deny', reason: 'scanner', durationMs: expiresInMs },
    { action: 'deny', durationMs: 60_000, origin: 'api', minPrefixV4: 8, minPrefixV6: 32 },
    Date.now(),
  );

describe('DecisionAudit', () => {
  it('writes one info line per change with key, action, score, origin, reason and expiry', () => {
    const { lines, logger } = recordingLogger();
    const events: DecisionAuditEvent[] = [];
    const audit = new DecisionAudit(logger, { onEvent: (e) => events.push(e) });
    const d = decision('192.0.2.7');
    audit.added(d, { origin: 'cli' });
    audit.added({ ...d, origin: 'api' }, { origin: 'api', received: true });
    audit.deleted(d, 'api');
    audit.expired(d);
    audit.ban({ key: '192.0.2.9', value: '192.0.2.9', until: Date.now() + 600_000, count: 700, offences: 2 }, 'deny');
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.fields.key ?? l.fields.client, l.fields.origin]),
      [
        ['info', 'decision added', 'ip:192.0.2.7', 'cli'],
        ['info', 'decision added', 'ip:192.0.2.7', 'api'],
        ['info', 'decision deleted', 'ip:192.0.2.7', 'api'],
        ['info', 'decision expired', 'ip:192.0.2.7', 'api'],
        ['info', 'ban', '192.0.2.9', 'behaviour'],
      ],
    );
    assert.deepEqual(Object.keys(lines[0]?.fields ?? {}), ['key', 'action', 'score', 'origin', 'reason', 'expiresAt']);
    assert.equal(lines[0]?.fields.reason, 'scanner');
    assert.equal(lines[0]?.fields.expiresAt, new Date(d.expiresAt ?? 0).toISOString());
    assert.equal(lines[1]?.fields.received, 'store', 'a change another agent made says so');
    assert.deepEqual([lines[4]?.fields.count, lines[4]?.fields.offences, lines[4]?.fields.action], [700, 2, 'deny']);
    assert.ok(Math.abs(Number(lines[4]?.fields.durationS) - 600) <= 1);
    assert.deepEqual(
      events.map((e) => [e.op, e.origin, e.action]),
      [
        ['added', 'cli', 'deny'],
        ['added', 'api', 'deny'],
        ['deleted', 'api', 'deny'],
        ['expired', 'api', 'deny'],
        ['ban', 'behaviour', 'deny'],
      ],
    );
  });

  it('a flood of one kind is cut to the limit and summed up, without muting the other kinds', async () => {
    const { lines, logger } = recordingLogger();
    const events: DecisionAuditEvent[] = [];
    const audit = new DecisionAudit(logger, { limit: { lines: 5, intervalMs: 100 }, onEvent: (e) => events.push(e) });
    for (let i = 0; i < 1000; i++) audit.expired(decision(`10.0.${i >> 8}.${i & 255}`));
    audit.added(decision('192.0.2.1'), { origin: 'api' });
    assert.equal(lines.filter((l) => l.msg === 'decision expired').length, 5);
    assert.equal(lines.filter((l) => l.msg === 'decision added').length, 1);
    assert.equal(events.length, 1001, 'the counts still see every change');
    await sleep(150);
    assert.ok(lines.some((l) => l.msg === 'suppressed 995 similar' && l.fields.message === 'decision expired'));
  });
});

describe('IprepService audit trail', () => {
  it('logs decisions added and deleted through the API, expired by time, and behaviour bans', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iprep-audit-'));
    const { lines, logger } = recordingLogger();
    const events: DecisionAuditEvent[] = [];
    writeFileSync(join(dir, 'iprep.yaml'), 'special: { enabled: false }\nadmin: { enabled: false }\nbehaviour: { ban-threshold: 5, ban-time: 10m }\n');
    const service = new IprepService(await loadConfigFile(join(dir, 'iprep.yaml')), { logger, onDecisionAudit: (e) => events.push(e) });
    try {
      await service.start();
      await service.addDecision({ value: '203.0.113.7', action: 'tarpit', reason: 'by hand' }, 'cli');
      await service.removeDecision('203.0.113.7');
      await service.addDecision({ value: '203.0.113.8', durationMs: 20 });
      for (let i = 0; i < 6; i++) service.behaviour?.hit(Uint8Array.of(198, 51, 100, 77), 1, Date.now());
      for (const deadline = Date.now() + 5000; !lines.some((l) => l.msg === 'decision expired') && Date.now() < deadline; ) await sleep(50);
      const audit = lines.filter((l) => l.msg.startsWith('decision ') || l.msg === 'ban').map((l) => [l.msg, l.fields.key ?? l.fields.client, l.fields.origin]);
      assert.deepEqual(audit, [
        ['decision added', 'ip:203.0.113.7', 'cli'],
        ['decision deleted', 'ip:203.0.113.7', 'api'],
        ['decision added', 'ip:203.0.113.8', 'api'],
        ['ban', '198.51.100.77', 'behaviour'],
        ['decision added', 'ip:198.51.100.77', 'behaviour'],
        ['decision expired', 'ip:203.0.113.8', 'api'],
      ]);
      assert.ok(
        lines.every((l) => l.fields.received === undefined),
        'nothing came from another agent',
      );
      assert.deepEqual(
        events.map((e) => `${e.op}/${e.origin}/${e.action}`),
        ['added/cli/tarpit', 'deleted/api/tarpit', 'added/api/deny', 'ban/behaviour/deny', 'added/behaviour/deny', 'expired/api/deny'],
      );
    } finally {
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
