/**
 * Child processes for the tests and benchmarks. Every process started here is tracked and killed
 * (by pid, or by process group) when the test file ends or the Node process exits, so a failing
 * test cannot leave HAProxy or an agent running, nor keep the test runner waiting on their pipes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { delay } from './wait.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** Signals go to the process group -pid rather than to pid alone. */
  readonly processGroup: boolean;
  readonly child: ChildProcess;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** Exit status once exited, undefined while running. */
  exitInfo(): ExitInfo | undefined;
  /** True until the process (with processGroup: every process of its group) is gone. */
  alive(): boolean;
  /** Everything written on stdout and stderr so far, interleaved as received (the last `maxOutputChars` of it). */
  output(): string;
  /** Characters received so far, those dropped from `output()` included: a mark for `outputSince`. */
  outputLength(): number;
  /**
   * What was received after `mark` (an `outputLength()`). Throws if part of it was dropped: a count
   * over a shifted window would be wrong without saying so.
   */
  outputSince(mark: number): string;
  /** Waits until the output matches; rejects at the deadline (default 30 s) or if the process exits first. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL if still alive (or, for a group, any member) after graceMs; resolves once exited. Idempotent. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

export interface StartProcessOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Used in error messages; defaults to the command. */
  name?: string;
  /**
   * Run in a process group of its own and signal the whole group, so that the
   * processes it forks (e.g. the agent's cluster workers) are stopped with it.
   */
  processGroup?: boolean;
  /** Output kept (`output()`), the latest; default 1 MiB. */
  maxOutputChars?: number;
}

/** Output kept per process by default: enough for any diagnosis, bounded for chatty agents under load. */
const defaultMaxOutputChars = 1 << 20;

const tracked = new Set<ManagedProcess>();
/** Processes not started here (e.g. an agent's cluster workers), killed by pid at the end all the same. */
const pidsToKill = new Set<number>();
const tempDirs = new Set<string>();

export function startProcess(cmd: string, args: readonly string[], opts: StartProcessOptions = {}): ManagedProcess {
  const name = opts.name ?? cmd;
  const processGroup = opts.processGroup ?? false;
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: processGroup, // detached = setsid(): the child leads a new process group
  });
  if (child.pid === undefined) {
    // spawn reports ENOENT & co. asynchronously; the pid is missing synchronously in that case.
    child.on('error', () => {});
    throw new Error(`could not start ${name} (${cmd}): is it installed and executable?`);
  }
  const pid = child.pid;
  const target = processGroup ? -pid : pid;
  const maxOutputChars = opts.maxOutputChars ?? defaultMaxOutputChars;
  let out = '';
  let dropped = 0; // characters received and no longer in `out`
  let exit: ExitInfo | undefined;
  let reaped = false; // set on 'exit', before the output is complete
  const watchers = new Set<() => void>();
  const append = (chunk: Buffer): void => {
    out += chunk.toString('utf8');
    if (out.length > maxOutputChars) {
      dropped += out.length - maxOutputChars;
      out = out.slice(-maxOutputChars);
    }
    for (const watch of watchers) watch();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('error', (err) => append(Buffer.from(`[test-support] ${name}: ${err.message}\n`)));
    // 'close' comes after the last output, but never while a forked child still holds
    // the pipes: give the output a moment after 'exit', then settle anyway.
    const settle = (info: ExitInfo): void => {
      if (exit) return;
      exit = info;
      if (!processGroup) tracked.delete(handle); // a group is tracked until its pipes close
      for (const watch of watchers) watch();
      resolve(exit);
    };
    child.once('exit', (code, signal) => {
      reaped = true;
      setTimeout(() => {
        if (exit) return;
        if (!processGroup) {
          // Orphans hold the pipes: drop them so they cannot keep the test process alive.
          append(Buffer.from(`[test-support] ${name} exited but a process it forked holds its output (use processGroup)\n`));
          child.stdout?.destroy();
          child.stderr?.destroy();
        }
        settle({ code, signal });
      }, 500).unref();
    });
    child.once('close', (code, signal) => {
      tracked.delete(handle);
      settle({ code, signal });
    });
  });

  let stopping: Promise<ExitInfo> | undefined;
  const handle: ManagedProcess = {
    name,
    pid,
    processGroup,
    child,
    exited,
    exitInfo: () => exit,
    // A group outlives its leader while any member remains; a lone process is never
    // signalled once reaped, since its pid may have been reused.
    alive: () => (processGroup ? pidAlive(-pid) : !reaped),
    output: () => out,
    outputLength: () => dropped + out.length,
    outputSince(mark) {
      if (mark < dropped)
        throw new Error(`${name}: ${dropped - mark} characters of the output since mark ${mark} were dropped (maxOutputChars ${maxOutputChars})`);
      return out.slice(mark - dropped);
    },
    // Generous: on a loaded 2-core machine the agent alone takes over a second to start, and the
    // deadline only bounds a wait for something that must come (an exit ends the wait at once).
    waitForOutput(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`${name}: no output matching ${pattern} within ${timeoutMs} ms; output:\n${out}`)), timeoutMs);
        const finish = (result: RegExpMatchArray | Error): void => {
          clearTimeout(timer);
          watchers.delete(check);
          if (result instanceof Error) reject(result);
          else resolve(result);
        };
        const check = (): void => {
          const match = out.match(pattern);
          if (match) finish(match);
          else if (exit) finish(new Error(`${name} exited (${describeExit(exit)}) before printing ${pattern}; output:\n${out}`));
        };
        watchers.add(check);
        check();
      });
    },
    stop(graceMs = 3_000) {
      stopping ??= (async () => {
        const deadline = Date.now() + graceMs;
        if (handle.alive()) signalPid(target, 'SIGTERM');
        while (handle.alive() && Date.now() < deadline) await delay(20);
        if (handle.alive()) signalPid(target, 'SIGKILL');
        // SIGKILL is not instantaneous either; a group may have no member we can wait on.
        const killDeadline = Date.now() + 2_000;
        while (handle.alive() && Date.now() < killDeadline) await delay(20);
        return exited;
      })();
      return stopping;
    },
  };
  tracked.add(handle);
  return handle;
}

export function describeExit(exit: ExitInfo): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/**
 * True while a process with this pid (or, if negative, any member of that process
 * group) is running. Zombies do not count: a killed process whose parent died waits
 * for init to reap it, which may take a while and is not our concern.
 */
export function pidAlive(pid: number): boolean {
  if (existsSync('/proc/self/stat')) {
    if (pid > 0) return isRunning(procStat(pid));
    return readdirSync('/proc').some((entry) => {
      const stat = /^\d+$/.test(entry) ? procStat(Number(entry)) : undefined;
      return stat?.pgrp === -pid && isRunning(stat);
    });
  }
  try {
    process.kill(pid, 0); // no /proc: zombies count, there is no portable way to tell them apart
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function procStat(pid: number): { state: string; pgrp: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
    const [state = '', , pgrp = ''] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state, pgrp: Number(pgrp) };
  } catch {
    return undefined;
  }
}

function isRunning(stat: { state: string } | undefined): boolean {
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Kills `pid` (SIGKILL) when the test file ends or the Node process exits, if it still runs then:
 * for processes started some other way, such as the workers an agent forks.
 */
export function killAtEnd(pid: number): void {
  pidsToKill.add(pid);
}

/** Stops every process still running and removes the temporary directories. */
export async function stopAll(): Promise<void> {
  for (const pid of pidsToKill) signalPid(pid, 'SIGKILL');
  pidsToKill.clear();
  await Promise.all([...tracked].map((p) => p.stop()));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

// The safety net. `after` at module level runs once the test file's tests are
// done; 'exit' covers process.exit() and uncaught errors (synchronous: SIGKILL);
// the signal handlers cover an interrupted run, then re-raise the signal.
after(stopAll);
process.once('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAllNow();
    process.kill(process.pid, signal);
  });
}

function killAllNow(): void {
  for (const pid of pidsToKill) signalPid(pid, 'SIGKILL');
  for (const p of tracked) {
    if (p.alive()) signalPid(p.processGroup ? -p.pid : p.pid, 'SIGKILL');
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}

/**
 * A fresh temporary directory, removed with the processes by stopAll() (or at exit). Unix socket
 * paths are limited to ~107 bytes: it falls back to /tmp if TMPDIR is deep.
 */
export function makeTempDir(prefix: string): string {
  const base = join(tmpdir(), 'x'.repeat(30)).length < 80 ? tmpdir() : '/tmp';
  const dir = mkdtempSync(join(base, prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/**
 * Which of `pids` holds the agent end of the TCP connection whose client port is `clientPort`: its
 * socket inode appears in /proc/net/tcp with that remote port, and among the process' descriptors.
 */
export function ownerOf(clientPort: number, pids: readonly number[]): number | undefined {
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const remote = fields[2];
    if (remote !== undefined && parseInt(remote.split(':')[1] ?? '', 16) === clientPort) inodes.add(fields[9] ?? '');
  }
  return pids.find((pid) =>
    readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? '');
      } catch {
        return false; // closed meanwhile
      }
    }),
  );
}

/** Whether a process with this pid exists (signal 0; a zombie counts). */
export function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
