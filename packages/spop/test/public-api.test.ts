/**
 * What users of the library see of an Agent and its connections: the API to
 * register handlers, listen, serve sockets, read stats and close. The
 * plumbing between an agent and its connections (close notices, ACK
 * rerouting, shared budgets, ACK writing) is not part of it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, SpopConnection } from '../src/index.js';
import { startAgent } from './agent-helpers.js';

/** Own and inherited property names a user can reach, methods and accessors included. */
function reachable(value: object, prototype: object): string[] {
  const names = new Set([...Object.keys(value), ...Object.getOwnPropertyNames(prototype)]);
  names.delete('constructor');
  return [...names].sort();
}

test('an Agent exposes its user API and nothing of the connection plumbing', () => {
  const agent = new Agent();
  assert.deepEqual(reachable(agent, Agent.prototype), [
    'address',
    'adopt',
    'close',
    'connections',
    'handOver',
    'handle',
    'listen',
    'message',
    'options',
    'stats',
  ]);
});

test('a connection exposes its state and lifecycle, not the writing of ACKs', async (t) => {
  const h = await startAgent(t);
  await h.ready();
  const [connection] = h.agent.connections;
  assert.ok(connection instanceof SpopConnection);
  assert.deepEqual(reachable(connection, SpopConnection.prototype), ['closed', 'destroy', 'detach', 'inFlight', 'info', 'shutdown', 'state']);
});
