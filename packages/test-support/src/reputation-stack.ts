/**
 * The end-to-end set-up of reputation mode: `spoa --config` with its admin API, and a HAProxy in
 * front of it that echoes the agent's variables in response headers (`ip_action` as `x-ip-action`),
 * each on a free port, in a temporary folder holding the configuration and its data files.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type HaproxyHandle, type HaproxyVersion, seedConfig, seedSpoeConfig, startHaproxy, waitServerStatus } from './haproxy.js';
import { spoaBin } from './paths.js';
import { freePort } from './ports.js';
import { type ManagedProcess, startProcess } from './processes.js';

export interface ReputationStack {
  /** The folder of the configuration and data files (removed by stopReputationStack). */
  readonly dir: string;
  readonly agent: ManagedProcess;
  readonly haproxy: HaproxyHandle;
  /** HAProxy's HTTP port. */
  readonly frontend: number;
  /** The admin API's base URL. */
  readonly admin: string;
}

export interface ReputationStackOptions {
  readonly version: HaproxyVersion;
  /** Data files written into the folder before the agent starts. */
  readonly files: Readonly<Record<string, string | Uint8Array>>;
  /** The agent's YAML, given the folder and the admin API's port. */
  readonly config: (dir: string, adminPort: number) => string;
  /** Variables (in `sess.iprep`) HAProxy echoes as `x-<name with dashes>` response headers. */
  readonly echo: readonly string[];
}

export async function startReputationStack(options: ReputationStackOptions): Promise<ReputationStack> {
  const dir = mkdtempSync(join(tmpdir(), 'iprep-e2e-'));
  for (const [name, content] of Object.entries(options.files)) writeFileSync(join(dir, name), content);
  const [agentPort, adminPort, frontend] = await Promise.all([freePort(), freePort(), freePort()]);
  writeFileSync(join(dir, 'iprep.yaml'), options.config(dir, adminPort));
  const agent = startProcess(process.execPath, [spoaBin, '--config', join(dir, 'iprep.yaml'), '-p', String(agentPort), '-n', '1', '--host', '127.0.0.1'], {
    name: 'spoa',
  });
  await agent.waitForOutput(/agent listening/);
  const haproxy = await startHaproxy({
    version: options.version,
    config: seedConfig({
      frontendPort: frontend,
      agentPort,
      extra: { frontend: options.echo.map((name) => `http-after-response set-header x-${name.replaceAll('_', '-')} %[var(sess.iprep.${name})]`) },
    }),
    // A loaded CI machine may stall beyond the seed's 15 ms: these tests check verdicts, not timing.
    files: { 'spoe-iprep.conf': seedSpoeConfig({ processingTimeout: '500ms' }) },
  });
  await waitServerStatus(haproxy, 'iprep-backend', 'iprep-srv', 'UP');
  return { dir, agent, haproxy, frontend, admin: `http://127.0.0.1:${adminPort}` };
}

export async function stopReputationStack(stack: ReputationStack | undefined): Promise<void> {
  await stack?.haproxy.stop();
  await stack?.agent.stop();
  if (stack) rmSync(stack.dir, { recursive: true, force: true });
}
