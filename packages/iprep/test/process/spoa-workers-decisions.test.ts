/**
 * End to end: `spoa -n 2` in reputation mode with the memory store; a decision added through one
 * worker's admin API reaches every worker through the primary, and is kept in the decisions file.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AckFrame } from 'spop';
import { FakeHaproxy, freePort } from 'spop/testkit';
import { ownerOf, running } from 'test-support/processes';
import { spawnSpoaWorkers, writeReputationConfig } from './spoa-workers.js';
import type { Decision } from '../../src/types.js';

/** Variables of an ACK by name. */
function variables(ack: AckFrame): Map<string, unknown> {
  const vars = new Map<string, unknown>();
  for (const action of ack.actions) if (action.type === 'set-var') vars.set(action.name, 'value' in action.value ? action.value.value : null);
  return vars;
}

describe('spoa -n 2 in reputation mode with the memory store', () => {
  it('every worker applies a decision added through any of them; SIGTERM writes the file and ends every process', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'spoa-cluster-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const [port, adminPort] = [await freePort(), await freePort()];
    const decisionsFile = join(dir, 'decisions.jsonl');
    const config = writeReputationConfig(dir, adminPort, ['behaviour: { enabled: false }', `decisions: { file: ${JSON.stringify(decisionsFile)} }`]);

    const { child, pids, log } = await spawnSpoaWorkers(['--config', config, '-p', String(port), '-n', '2', '--host', '127.0.0.1']);

    const response = await fetch(`http://127.0.0.1:${adminPort}/decisions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ value: '192.0.2.7', action: 'deny' }),
    });
    assert.equal(response.status, 201, await response.clone().text());
    const added = (await response.json()) as Decision;
    assert.equal(added.key, 'ip:192.0.2.7');

    // Ten connections at once: node:cluster hands them to the workers in turn; /proc tells which took each.
    const clients = await Promise.all(Array.from({ length: 10 }, () => FakeHaproxy.connect({ port })));
    t.after(() => {
      for (const c of clients) c.close();
    });
    await Promise.all(clients.map((c) => c.hello()));
    const owners = clients.map((c) => ownerOf(c.socket.localPort ?? -1, pids));
    assert.deepEqual(new Set(owners), new Set(pids), `connections by worker: ${owners.join(',')}`);

    // Within a second of the admin call, every worker answers with the decision.
    const deadline = Date.now() + 1000;
    const pending = new Set(clients);
    for (let sid = 1; pending.size > 0; sid++) {
      for (const client of [...pending]) {
        const ack = await client.notify(sid, 1, [{ name: 'check-client-ip', args: [{ name: '', value: { type: 'ipv4', value: '192.0.2.7' } }] }]);
        const vars = variables(ack);
        if (vars.get('ip_action') === 'deny') {
          assert.equal(vars.get('ip_score'), 0);
          pending.delete(client);
        }
      }
      assert.ok(pending.size === 0 || Date.now() < deadline, `${pending.size} connections still without the decision after 1 s`);
      if (pending.size > 0) await sleep(20);
    }
    for (const c of clients) c.close();

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, log());
    for (const pid of [child.pid!, ...pids]) assert.equal(running(pid), false, `process ${pid} still running`);
    assert.ok(existsSync(decisionsFile), 'the primary wrote the decisions file');
    const kept = readFileSync(decisionsFile, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Decision);
    assert.deepEqual(kept, [added]);
  });
});
