/**
 * The test kit beyond FakeHaproxy: a free port for the agent under test,
 * so that tests of the library, of agents built on it and load generators
 * share one way of finding one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, silentLogger } from '../src/index.js';
import { FakeHaproxy, freePort } from '../src/testkit/index.js';

test('freePort: a port an agent can listen on at once, never the usual SPOE port 12345', async (t) => {
  const ports = new Set<number>();
  for (let i = 0; i < 5; i++) {
    const port = await freePort();
    assert.ok(Number.isInteger(port) && port > 0 && port < 65536, `port ${port}`);
    assert.notEqual(port, 12345);
    ports.add(port);
  }
  const port = [...ports][0] as number;
  const agent = new Agent({ logger: silentLogger });
  t.after(() => agent.close({ timeout: 0 }));
  await agent.listen({ port, host: '127.0.0.1' });
  const fake = await FakeHaproxy.connect({ port });
  t.after(() => fake.close());
  assert.equal((await fake.hello()).type, 'agent-hello');
});
