/** An in-process agent to load in tests, on 127.0.0.1 port 0, closed when the test ends. */
import type { TestContext } from 'node:test';
import { Agent, silentLogger } from 'spop';

export interface AgentUnderLoad {
  readonly agent: Agent;
  readonly target: { readonly host: string; readonly port: number };
}

export async function startAgent(t: TestContext, register: (agent: Agent) => void): Promise<AgentUnderLoad> {
  const agent = new Agent({ logger: silentLogger });
  register(agent);
  t.after(() => agent.close({ timeout: 0 }));
  const address = await agent.listen({ port: 0, host: '127.0.0.1' });
  if (typeof address === 'string') throw new Error(`expected a TCP address, got ${address}`);
  return { agent, target: { host: '127.0.0.1', port: address.port } };
}
