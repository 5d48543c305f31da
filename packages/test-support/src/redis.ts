/**
 * Real redis-server processes on free loopback ports (no persistence, temp dirs), a
 * 3-master Redis Cluster, and a TCP proxy whose connections a test can cut to simulate a network
 * failure between one agent and Redis. Every process is stopped by its pid.
 *
 * The binaries are the ones on PATH, else the ones scripts/fetch-redis.sh unpacks from Debian's
 * redis-tools into .cache/redis/bin (the test run does so on a machine without Redis).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from './paths.js';
import { freePort } from './ports.js';

const MISSING = 'neither on PATH nor in .cache/redis/bin: run `bash scripts/fetch-redis.sh` (what `npm test` does) or `apt-get install redis-server`';

export type RedisProgram = 'redis-server' | 'redis-cli';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Absolute path of redis-server or redis-cli: the first on `path` (default $PATH), else
 * `<cacheDir>/redis/bin/<program>` (default the repository's .cache), else undefined.
 */
export function redisBinary(program: RedisProgram, where: { readonly path?: string; readonly cacheDir?: string } = {}): string | undefined {
  for (const dir of (where.path ?? process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && isExecutable(join(dir, program))) return join(dir, program);
  }
  const cached = join(where.cacheDir ?? join(repoRoot, '.cache'), 'redis', 'bin', program);
  return isExecutable(cached) ? cached : undefined;
}

function requireBinary(program: RedisProgram): string {
  const path = redisBinary(program);
  if (path === undefined) throw new Error(`${program} not found, ${MISSING}`);
  return path;
}

/** Throws, naming how to get them, when the Redis binaries the tests run are missing. */
export function requireRedisBinaries(): void {
  requireBinary('redis-server');
  requireBinary('redis-cli');
}

/** Whether a server answers PING (any reply counts: a password-protected one says NOAUTH). */
async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(500, () => socket.destroy());
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'));
      }
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(false));
  });
}

/**
 * Servers still running: killed (by pid) if the test process ends without stopping them, e.g. when
 * the test runner stops a file that timed out (SIGTERM), which would leave a paused server behind.
 */
const running = new Set<ChildProcess>();
const killRunning = (): void => {
  for (const child of running) child.kill('SIGKILL');
};
process.once('exit', killRunning);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    killRunning();
    process.exit(128 + (signal === 'SIGTERM' ? 15 : 2));
  });
}

export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly #extraArgs: readonly string[];
  #process: ChildProcess | undefined;
  #paused = false;

  private constructor(port: number, dir: string, extraArgs: readonly string[]) {
    this.port = port;
    this.dir = dir;
    this.#extraArgs = extraArgs;
  }

  /** Starts redis-server on a free port; throws (failing the test) when it is not installed. */
  static async start(extraArgs: readonly string[] = []): Promise<RedisServer> {
    requireBinary('redis-server');
    const server = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'iprep-redis-')), extraArgs);
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#process !== undefined;
  }

  /** Starts the server again on the same port (after stop()); its data is gone (no persistence). */
  async restart(): Promise<void> {
    if (this.#process) throw new Error('redis-server already running');
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.#extraArgs];
    const child = spawn(requireBinary('redis-server'), args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    this.#process = child;
    running.add(child);
    child.once('exit', () => running.delete(child));
    for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(20)) {
      if (child.exitCode !== null) break;
      if (await answersPing(this.port)) return;
    }
    await this.stop();
    throw new Error(`redis-server on port ${this.port} did not start: ${stderr.trim() || 'no answer to PING'}`);
  }

  /** Freezes the server (SIGSTOP to its pid): connections stay open and nothing answers, as a hung Redis. */
  pause(): void {
    if (!this.#process?.pid) throw new Error('redis-server is not running');
    process.kill(this.#process.pid, 'SIGSTOP');
    this.#paused = true;
  }

  /** Lets a paused server go on (SIGCONT); does nothing when it is not paused. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#process?.pid) process.kill(this.#process.pid, 'SIGCONT');
  }

  async stop(): Promise<void> {
    this.resume();
    const child = this.#process;
    if (!child) return;
    this.#process = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Stops the server and removes its directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs redis-cli against a server (test set-up only). */
export function redisCli(port: number, args: readonly string[]): string {
  const result = spawnSync(requireBinary('redis-cli'), ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 20_000 });
  if (result.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${result.stderr || result.stdout}`);
  return result.stdout;
}

/** A 3-master Redis Cluster on free loopback ports. */
export class RedisClusterServers {
  readonly servers: readonly RedisServer[];

  private constructor(servers: readonly RedisServer[]) {
    this.servers = servers;
  }

  static async start(masters = 3): Promise<RedisClusterServers> {
    const servers: RedisServer[] = [];
    try {
      for (let i = 0; i < masters; i++) {
        servers.push(await RedisServer.start(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000']));
      }
      const addresses = servers.map((s) => `127.0.0.1:${s.port}`);
      redisCli(servers[0]!.port, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes']);
      for (const deadline = Date.now() + 10_000; ; await sleep(100)) {
        if (servers.every((s) => redisCli(s.port, ['CLUSTER', 'INFO']).includes('cluster_state:ok'))) break;
        if (Date.now() > deadline) throw new Error('redis cluster did not reach cluster_state:ok');
      }
      return new RedisClusterServers(servers);
    } catch (error) {
      await Promise.all(servers.map((s) => s.destroy()));
      throw error;
    }
  }

  get nodes(): string[] {
    return this.servers.map((s) => s.url);
  }

  async destroy(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.destroy()));
  }
}

/**
 * A loopback TCP proxy to a port. `cut()` drops every connection and refuses new ones until
 * `restore()`: the agent behind it sees Redis go away while other clients keep using it.
 */
export class CuttableProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #cut = false;
  port = 0;

  private constructor(targetPort: number) {
    this.#server = net.createServer((client) => {
      if (this.#cut) {
        client.destroy();
        return;
      }
      const upstream = net.connect(targetPort, '127.0.0.1');
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.#sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          this.#sockets.delete(a);
          b.destroy();
        });
        a.pipe(b);
      }
    });
  }

  static async start(targetPort: number): Promise<CuttableProxy> {
    const proxy = new CuttableProxy(targetPort);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    proxy.port = (proxy.#server.address() as net.AddressInfo).port;
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.#cut = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  restore(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
