/**
 * What the package exports: what embedding the reputation engine in another
 * program takes (configuration, service, handlers, reputation mode around an
 * Agent, admin API and metrics, the shared types), and nothing of the command
 * line or of the node:cluster plumbing between processes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Agent, silentLogger } from 'spop';
import * as api from '../../src/index.js';

test('the package exports the embedding API, and not the CLI parser nor the cluster hubs', () => {
  assert.deepEqual(Object.keys(api).sort(), [
    'ASN_LIST_FORMATS',
    'AdminServer',
    'CHECK_CLIENT_IP',
    'CoarseClock',
    'ConfigError',
    'IP_ACTIONS',
    'IprepService',
    'LIST_FORMATS',
    'ReputationMetrics',
    'VerdictActions',
    'defaultConfig',
    'loadConfigFile',
    'parseConfig',
    'randomScoreHandler',
    'readConfigFile',
    'reputationHandler',
    'runReputationAgent',
    'validateConfig',
  ]);
});

test('a program embeds the engine with the package entry point alone', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'iprep-embed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'deny.netset'), '198.51.100.0/24\n');
  writeFileSync(
    join(dir, 'iprep.yaml'),
    `special: { enabled: false }\nadmin: { enabled: false }\nlists:\n  - { name: deny, path: ${join(dir, 'deny.netset')}, score: 0, category: attacker, action: deny }\n`,
  );
  const config = await api.loadConfigFile(join(dir, 'iprep.yaml'));
  const service = new api.IprepService(config, { logger: silentLogger });
  await service.start();
  t.after(() => service.close());
  const verdict: api.Verdict = service.explain('198.51.100.7');
  assert.equal(verdict.action, 'deny');
  const clock = new api.CoarseClock();
  t.after(() => clock.stop());
  const agent = new Agent({ logger: silentLogger });
  agent.message(api.CHECK_CLIENT_IP, api.reputationHandler({ engine: service.engine, now: clock.now, variables: config.variables }));
  assert.ok(agent.options.maxConnections > 0);
});
