/**
 * The real `spoa` command with node:cluster workers, and admin requests that say which worker
 * answered. Every process it starts is killed by pid when the test file ends (test-support's
 * killAtEnd).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spoaBin } from 'test-support/paths';
import { killAtEnd, ownerOf } from 'test-support/processes';

/**
 * Writes `dir`/iprep.yaml: reputation mode, its cache in `dir`, no special ranges, the admin API on
 * 127.0.0.1:`adminPort`, then `lines` (the settings a test is about). Returns the file's path.
 */
export function writeReputationConfig(dir: string, adminPort: number, lines: readonly string[] = []): string {
  const file = join(dir, 'iprep.yaml');
  const base = [
    'mode: reputation',
    `cache-dir: ${JSON.stringify(join(dir, 'cache'))}`,
    'special: { enabled: false }',
    `admin: { enabled: true, host: 127.0.0.1, port: ${adminPort} }`,
  ];
  writeFileSync(file, [...base, ...lines, ''].join('\n'));
  return file;
}

export interface SpoaWorkers {
  /** The primary process. */
  readonly child: ChildProcess;
  /** The workers' pids, from their "agent listening" lines. */
  readonly pids: number[];
  /** Everything the primary and its workers printed so far. */
  log(): string;
}

/** Starts `spoa <args>` and waits until `workers` workers listen. */
export async function spawnSpoaWorkers(args: readonly string[], workers = 2): Promise<SpoaWorkers> {
  const child = spawn(process.execPath, [spoaBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  killAtEnd(child.pid!);
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const workerPids = (): number[] => [...log.matchAll(/agent listening\b.*?\bpid"?[=:](\d+)/g)].map((m) => Number(m[1]));
  for (const deadline = Date.now() + 20_000; workerPids().length < workers; await sleep(20)) {
    assert.equal(child.exitCode, null, `spoa exited: ${log}`);
    assert.ok(Date.now() < deadline, `${workers} workers did not start: ${log}`);
  }
  const pids = workerPids();
  for (const pid of pids) killAtEnd(pid);
  assert.equal(new Set(pids).size, workers, log);
  return { child, pids, log: () => log };
}

export interface WorkerAnswer {
  readonly status: number;
  readonly body: string;
  /** The worker that answered. */
  readonly pid: number | undefined;
}

/** One request on a new connection of its own: node:cluster hands each connection to a worker in turn. */
export function adminCall(port: number, method: 'GET' | 'POST', path: string, workerPids: readonly number[]): Promise<WorkerAnswer> {
  return new Promise((resolve, reject) => {
    // Keep-alive so the worker keeps its end open until /proc was read; the connection is closed after.
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers: { connection: 'keep-alive' } }, (response) => {
      const pid = ownerOf(req.socket?.localPort ?? -1, workerPids);
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        req.destroy();
        resolve({ status: response.statusCode ?? 0, body, pid });
      });
    });
    req.on('error', reject);
    req.end();
  });
}
