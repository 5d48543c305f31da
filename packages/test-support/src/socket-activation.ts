/** spoa started with systemd socket activation, as a socket unit would (fd 3, LISTEN_FDS, LISTEN_PID). */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { type Server, createServer } from 'node:net';
import { freePort } from 'spop/testkit';
import { spoaBin } from './paths.js';
import { killAtEnd } from './processes.js';
import { waitFor } from './wait.js';

/** A listening socket on a free loopback port, not accepting here: only its descriptor is passed on. */
export async function listeningSocket(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { server, port: address.port };
}

/** The server's descriptor, to pass as the child's descriptor 3 (what systemd's socket unit does). */
function listeningFd(server: Server): number {
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  assert.ok(typeof fd === 'number' && fd >= 0, 'the listening socket has a descriptor');
  return fd;
}

/**
 * Starts `spoa <args>` as systemd does with a socket unit: a listening socket on a free loopback port
 * passed as descriptor 3, LISTEN_FDS=1, LISTEN_PID its pid (a shell sets it, then exec's spoa), `env`
 * added; waits until `workers` workers listen. `pids()`: every process that said "agent listening".
 */
export async function startActivated(args: readonly string[], workers: number, env: Record<string, string> = {}) {
  const { server, port } = await listeningSocket();
  const otherPort = await freePort(); // -p given and not used: the passed socket wins
  const child = spawn(
    '/bin/sh',
    ['-c', 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"', process.execPath, spoaBin, '-p', String(otherPort), '--host', '127.0.0.1', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe', listeningFd(server)],
      env: { ...process.env, ...env },
    },
  );
  killAtEnd(child.pid!);
  server.close(); // the agent alone holds it now
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const pids = (): number[] => [...log.matchAll(/agent listening\b.*pid=(\d+)/g)].map((m) => Number(m[1]));
  await waitFor(
    () => `spoa did not listen: ${log}`,
    () => pids().length >= workers,
    20_000,
  );
  for (const pid of pids()) killAtEnd(pid);
  return { child, port, otherPort, log: () => log, pids };
}
