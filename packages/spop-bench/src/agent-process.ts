/**
 * Starting an agent under test as a child process, watching its CPU and
 * memory, and stopping it, by pid, with everything it started.
 *
 * The child gets its own process group (detached), so one signal to the
 * group reaches cluster workers too; descendants that left the group are
 * found through /proc and signalled one by one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { type ProcessStats, type TreeStats, processTree, readProcessStats, readTreeStats } from './process-stats.js';

/**
 * Splits a command line into argv like a POSIX shell would for simple
 * commands: whitespace separates words, quotes group, backslash escapes.
 * No variables, globs or redirections: the command is run without a shell,
 * so the pid we hold is the agent's own.
 */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < command.length; i++) {
    const c = command[i] as string;
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < command.length && '"\\$`'.includes(command[i + 1] as string)) word += command[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < command.length) {
      word += command[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote !== null) throw new Error(`unterminated ${quote} quote in command: ${command}`);
  if (inWord) words.push(word);
  return words;
}

export interface SpawnAgentOptions {
  /** Address the agent is reached at (the readiness probe connects there). Default 127.0.0.1. */
  readonly host?: string;
  /** Port the agent was told to listen on. */
  readonly port: number;
  /** Time allowed for the port to accept connections. Default 15000 ms. */
  readonly startTimeoutMs?: number;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface SpawnedAgent {
  readonly pid: number;
  readonly host: string;
  readonly port: number;
  readonly argv: readonly string[];
  /** CPU time and RSS summed over the agent and its descendants. */
  stats(): TreeStats;
  /** The last few KB of the agent's stdout and stderr, for diagnostics. */
  output(): string;
  /** True once the agent process exited. */
  readonly exited: boolean;
  /** SIGTERM to the process group, SIGKILL after `graceMs` (default 5000), then any straggler by pid. */
  stop(graceMs?: number): Promise<void>;
}

const OUTPUT_KEEP = 8192;
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Last resort if the caller never stops an agent (uncaught exception, process.exit): no orphan left listening. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) signalGroup(child.pid, 'SIGKILL');
  });
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when a TCP connection to host:port succeeds; rejects when `alive()` turns false or time is up. */
async function waitForPort(host: string, port: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, host);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error('the agent exited before listening');
    if (Date.now() >= deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
    await delay(50);
  }
}

/** Spawns `argv` (no shell) and resolves once it accepts TCP connections on `port`. */
export async function spawnAgent(argv: readonly string[], options: SpawnAgentOptions): Promise<SpawnedAgent> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('empty agent command');
  const host = options.host ?? '127.0.0.1';
  const child = spawn(file, args, {
    detached: true, // own process group: one signal reaches cluster workers too
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_KEEP);
  };
  // Always drained: a child blocked on a full pipe would look like a slow agent.
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      keep(Buffer.from(`spawn error: ${err.message}\n`));
      exited = true;
      running.delete(child);
      resolve();
    });
  });
  running.add(child);
  installExitHook();
  const pid = child.pid;

  const stop = async (graceMs = 5000): Promise<void> => {
    if (pid === undefined) return;
    // Remember the tree (with start times, against pid reuse) before signals make it fall apart.
    const tree = processTree(pid)
      .map(readProcessStats)
      .filter((s): s is ProcessStats => s !== undefined);
    if (!exited) {
      signalGroup(pid, 'SIGTERM');
      await Promise.race([exit, delay(graceMs)]);
      if (!exited) {
        signalGroup(pid, 'SIGKILL');
        await Promise.race([exit, delay(2000)]);
      }
    }
    for (const p of tree) {
      const now = readProcessStats(p.pid);
      if (now !== undefined && now.startTicks === p.startTicks) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
  };

  try {
    if (pid === undefined) {
      await exit;
      throw new Error('could not start');
    }
    await waitForPort(host, options.port, options.startTimeoutMs ?? 15_000, () => !exited);
  } catch (err) {
    await stop(1000);
    throw new Error(`agent ${argv.join(' ')}: ${(err as Error).message}\n${output}`);
  }

  return {
    pid,
    host,
    port: options.port,
    argv,
    stats: () => readTreeStats(pid),
    output: () => output,
    get exited() {
      return exited;
    },
    stop,
  };
}
