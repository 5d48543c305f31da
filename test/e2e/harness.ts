/**
 * Helpers for the end-to-end tests against real HAProxy processes (2.6, 3.0 and
 * 3.2, unpacked from Debian's packages by scripts/fetch-haproxy.sh into .cache).
 *
 * Every process started here is tracked and killed (by pid) when the test file
 * ends or the Node process exits, so a failing test cannot leave HAProxy or an
 * agent running, nor keep the test runner waiting on their pipes.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve as resolvePath } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

/** Root of the repository (this file is test/e2e/harness.ts). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The `spoa` command the end-to-end tests run (packages/iprep, built by `tsc -b`). */
export const spoaBin = join(repoRoot, 'packages/iprep/bin/spoa.js');

export const haproxyVersions = ['2.6', '3.0', '3.2'] as const;
export type HaproxyVersion = (typeof haproxyVersions)[number];

const debianSuites: Record<HaproxyVersion, string> = { '2.6': 'bookworm', '3.0': 'trixie', '3.2': 'sid' };

/** Path of the wrapper that scripts/fetch-haproxy.sh writes for this version. */
export function haproxyPath(version: HaproxyVersion): string {
  return join(repoRoot, '.cache', 'haproxy', version, 'haproxy');
}

/**
 * The HAProxy binary for this version, or an Error telling how to get it. Tests
 * call this rather than skipping: a missing HAProxy must fail the e2e suite.
 */
export function requireHaproxy(version: HaproxyVersion): string {
  const path = haproxyPath(version);
  const howTo =
    `Fetch it with \`npm run haproxy:fetch\` (or \`bash scripts/fetch-haproxy.sh ${version}\`): it unpacks ` +
    `Debian ${debianSuites[version]}'s haproxy package into .cache/haproxy without changing the system.`;
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`HAProxy ${version} is missing: no executable ${path}. ${howTo}`);
  }
  const probe = spawnSync(path, ['-v'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.status !== 0) {
    const detail = `${probe.error?.message ?? ''}${probe.stdout ?? ''}${probe.stderr ?? ''}`.trim();
    throw new Error(`HAProxy ${version} at ${path} does not run (${detail}). Re-fetch it: bash scripts/fetch-haproxy.sh --force ${version}`);
  }
  return path;
}

/** A port that was free a moment ago on 127.0.0.1 (the OS picks it; it may be taken again, rarely). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves once a TCP connection to host:port succeeds; retries until timeoutMs or the signal aborts. */
export async function waitForPort(
  port: number,
  host = '127.0.0.1',
  timeoutMs = 5_000,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no attempt';
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    const error = await new Promise<string | undefined>((resolve) => {
      const socket = net.connect({ port, host });
      socket.setTimeout(Math.max(50, deadline - Date.now()), () => socket.destroy(new Error('connect timed out')));
      socket.once('connect', () => {
        socket.destroy();
        resolve(undefined);
      });
      socket.once('error', (err) => resolve(err.message));
    });
    if (error === undefined) return;
    lastError = error;
    await delay(25);
  }
  throw new Error(`${host}:${port} did not accept connections within ${timeoutMs} ms (${lastError})`);
}

// ---------------------------------------------------------------------------
// Child processes

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

const running = new Set<ManagedProcess>();
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
    child.once('error', (err) => append(Buffer.from(`[harness] ${name}: ${err.message}\n`)));
    // 'close' comes after the last output, but never while a forked child still holds
    // the pipes: give the output a moment after 'exit', then settle anyway.
    const settle = (info: ExitInfo): void => {
      if (exit) return;
      exit = info;
      if (!processGroup) running.delete(handle); // a group is tracked until its pipes close
      for (const watch of watchers) watch();
      resolve(exit);
    };
    child.once('exit', (code, signal) => {
      reaped = true;
      setTimeout(() => {
        if (exit) return;
        if (!processGroup) {
          // Orphans hold the pipes: drop them so they cannot keep the test process alive.
          append(Buffer.from(`[harness] ${name} exited but a process it forked holds its output (use processGroup)\n`));
          child.stdout?.destroy();
          child.stderr?.destroy();
        }
        settle({ code, signal });
      }, 500).unref();
    });
    child.once('close', (code, signal) => {
      running.delete(handle);
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
      if (mark < dropped) throw new Error(`${name}: ${dropped - mark} characters of the output since mark ${mark} were dropped (maxOutputChars ${maxOutputChars})`);
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
  running.add(handle);
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

/** Stops every process still running and removes the temporary directories. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
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
  for (const p of running) {
    if (p.alive()) signalPid(p.processGroup ? -p.pid : p.pid, 'SIGKILL');
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------
// HAProxy

/** Name of the stats socket, relative to HAProxy's working directory (its temp dir). */
export const statsSocketName = 'stats.sock';

export interface StartHaproxyOptions {
  version: HaproxyVersion;
  /** Contents of haproxy.cfg. Without a `stats socket` line, one is added to `global`. */
  config: string;
  /** Extra files written beside haproxy.cfg, by bare name (e.g. the SPOE configuration). */
  files?: Readonly<Record<string, string>>;
  /** Port to wait for (on `host`, default 127.0.0.1); defaults to the first `bind` line's address. */
  port?: number;
  host?: string;
  startTimeoutMs?: number;
}

export interface HaproxyHandle {
  readonly version: HaproxyVersion;
  readonly pid: number;
  /** Temporary working directory holding the configuration files; removed by stop(). */
  readonly dir: string;
  /** Port the start-up waited for (the frontend). */
  readonly port: number;
  /** Absolute path of the stats socket (level admin). */
  readonly statsSocket: string;
  /** The configuration actually used (after adding the stats socket). */
  readonly config: string;
  /** Output of the `haproxy -c` check (warnings, if any). */
  readonly checkOutput: string;
  readonly process: ManagedProcess;
  output(): string;
  stop(graceMs?: number): Promise<ExitInfo>;
}

/**
 * Writes the configuration into a fresh temp dir, validates it with `haproxy -c`
 * (throwing with HAProxy's output on error), starts HAProxy in the foreground with
 * that dir as working directory and waits until the frontend accepts connections.
 */
export async function startHaproxy(options: StartHaproxyOptions): Promise<HaproxyHandle> {
  const { version } = options;
  const bin = requireHaproxy(version);
  const config = withStatsSocket(options.config);
  const port = options.port !== undefined ? { host: options.host ?? '127.0.0.1', port: options.port } : bindPort(config);
  const dir = makeTempDir(`haproxy-${version}-`);
  try {
    await writeFile(join(dir, 'haproxy.cfg'), config);
    for (const [name, contents] of Object.entries(options.files ?? {})) {
      if (!/^[\w.-]+$/.test(name)) throw new Error(`extra file name must be a bare file name: ${name}`);
      await writeFile(join(dir, name), contents);
    }

    const check = startProcess(bin, ['-c', '-f', 'haproxy.cfg'], { cwd: dir, name: `haproxy ${version} -c` });
    const checked = await check.exited;
    if (checked.code !== 0) {
      throw new Error(
        `HAProxy ${version} rejected the configuration (${describeExit(checked)}):\n${check.output()}\n` +
          `--- haproxy.cfg ---\n${numbered(config)}`,
      );
    }

    // -db: foreground, no daemon, no master process, so the pid is HAProxy's own.
    const proc = startProcess(bin, ['-db', '-f', 'haproxy.cfg'], { cwd: dir, name: `haproxy ${version}` });
    const handle: HaproxyHandle = {
      version,
      pid: proc.pid,
      dir,
      port: port.port,
      statsSocket: resolvePath(dir, statsSocketPath(config)),
      config,
      checkOutput: check.output(),
      process: proc,
      output: proc.output,
      async stop(graceMs) {
        const exit = await proc.stop(graceMs);
        removeTempDir(dir);
        return exit;
      },
    };

    // Whichever comes first: the frontend accepts connections, or HAProxy exits.
    const abort = new AbortController();
    const failure = await Promise.race([
      waitForPort(port.port, port.host, options.startTimeoutMs ?? 10_000, abort.signal).then(
        () => undefined,
        (err: Error) => err.message,
      ),
      proc.exited.then((exit) => `HAProxy ${version} exited during start-up (${describeExit(exit)})`),
    ]);
    abort.abort();
    if (failure !== undefined) {
      await handle.stop();
      throw new Error(`${failure}; HAProxy output:\n${proc.output()}`);
    }
    return handle;
  } catch (err) {
    removeTempDir(dir);
    throw err;
  }
}

function makeTempDir(prefix: string): string {
  // Unix socket paths are limited to ~107 bytes: fall back to /tmp if TMPDIR is deep.
  const base = join(tmpdir(), 'x'.repeat(30)).length < 80 ? tmpdir() : '/tmp';
  const dir = mkdtempSync(join(base, prefix));
  tempDirs.add(dir);
  return dir;
}

function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

function numbered(text: string): string {
  return text
    .split('\n')
    .map((line, i) => `${String(i + 1).padStart(3)}  ${line}`)
    .join('\n');
}

/** Adds `stats socket unix@stats.sock level admin` at the top of `global` (creating it if needed) unless present. */
function withStatsSocket(config: string): string {
  if (/^\s*stats\s+socket\s/m.test(config)) return config;
  const line = `    stats socket unix@${statsSocketName} level admin`;
  return /^global\b.*$/m.test(config) ? config.replace(/^global\b.*$/m, (g) => `${g}\n${line}`) : `global\n${line}\n\n${config}`;
}

/** Path of the stats socket declared in the configuration, relative to HAProxy's cwd or absolute. */
function statsSocketPath(config: string): string {
  const match = config.match(/^\s*stats\s+socket\s+(?:unix@)?(\S+)/m);
  if (!match?.[1]) throw new Error('no stats socket in the configuration');
  return match[1];
}

/** Host and port to probe for the first `bind` line; wildcard addresses are probed on loopback. */
function bindPort(config: string): { host: string; port: number } {
  const match = config.match(/^\s*bind\s+(\S*):(\d+)\b/m);
  if (!match?.[2]) throw new Error('no `bind <addr>:<port>` line in the configuration: pass `port`');
  const address = (match[1] ?? '').replace(/^ipv[46]@/, '').replace(/^\[(.*)\]$/, '$1');
  const host = address === '' || address === '*' || address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
  return { host, port: Number(match[2]) };
}

// ---------------------------------------------------------------------------
// Stats socket

/** Sends one command on the stats socket (non-interactive mode) and returns the full answer. */
export function haproxyCommand(target: HaproxyHandle | string, command: string, timeoutMs = 5_000): Promise<string> {
  const path = typeof target === 'string' ? target : target.statsSocket;
  if (!isAbsolute(path)) throw new Error(`stats socket path must be absolute: ${path}`);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ path });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer to "${command}" within ${timeoutMs} ms`)));
    socket.on('connect', () => socket.end(`${command}\n`));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', (hadError) => {
      if (!hadError) resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

/** One line of `show stat`, keyed by the CSV header (pxname, svname, status, check_status, ...). */
export type StatRow = Readonly<Record<string, string>>;

export async function showStat(handle: HaproxyHandle): Promise<StatRow[]> {
  const lines = (await haproxyCommand(handle, 'show stat')).split('\n').filter((l) => l.trim() !== '');
  const header = lines.shift();
  if (!header?.startsWith('# ')) throw new Error(`unexpected "show stat" answer: ${header}`);
  const names = parseCsvLine(header.slice(2));
  return lines.map((line) => {
    const values = parseCsvLine(line);
    return Object.fromEntries(names.map((name, i) => [name, values[i] ?? '']));
  });
}

/** HAProxy quotes fields containing commas or quotes, doubling inner quotes. */
function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  fields.push(field);
  return fields;
}

/**
 * Polls `show stat` until backend/server has exactly this status ('UP', 'DOWN',
 * 'MAINT'...) and returns its row. A checked server starts as "UP 1/3" (check_status
 * INI) and only becomes "UP" after a passing health check, so 'UP' proves the check.
 */
export async function waitServerStatus(
  handle: HaproxyHandle,
  backend: string,
  server: string,
  status: string,
  timeoutMs = 5_000,
): Promise<StatRow> {
  const deadline = Date.now() + timeoutMs;
  let row: StatRow | undefined;
  for (;;) {
    let rows: StatRow[];
    try {
      rows = await showStat(handle);
    } catch (err) {
      // HAProxy may accept on its frontend a moment before its stats socket exists (ENOENT), or
      // accepts on it (ECONNREFUSED: seen on a loaded machine).
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() >= deadline) throw err;
      await delay(50);
      continue;
    }
    row = rows.find((r) => r.pxname === backend && r.svname === server);
    if (!row) throw new Error(`no server ${backend}/${server} in "show stat" of HAProxy ${handle.version}`);
    if (row.status === status) return row;
    if (Date.now() >= deadline) break;
    await delay(50);
  }
  throw new Error(
    `${backend}/${server} is "${row.status}" (check ${row.check_status} ${row.check_desc ?? ''}, ` +
      `last_chk "${row.last_chk ?? ''}"), not "${status}" after ${timeoutMs} ms on HAProxy ${handle.version}; ` +
      `HAProxy output:\n${handle.output()}`,
  );
}

// ---------------------------------------------------------------------------
// HTTP client

export interface HttpGetOptions {
  /** Address to connect to (default 127.0.0.1). */
  host?: string;
  /** Source address, e.g. another 127.0.0.x to appear as a different client. */
  localAddress?: string;
  family?: 4 | 6;
  headers?: Readonly<Record<string, string>>;
  timeoutMs?: number;
}

export type HttpResult =
  | { rejected: false; status: number; headers: http.IncomingHttpHeaders; body: string }
  /** The server closed or reset the connection without a (complete) response. */
  | { rejected: true; error: string };

const closedByPeer = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * One GET on a fresh connection (no agent, `Connection: close`). A connection the
 * server closes or resets (`tcp-request content reject`) is a result, not an error;
 * refused connections and timeouts still reject.
 */
export function httpGet(port: number, path = '/', opts: HttpGetOptions = {}): Promise<HttpResult> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  return new Promise((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException): void => {
      if (err.code !== undefined && closedByPeer.has(err.code)) resolve({ rejected: true, error: err.message });
      else reject(err);
    };
    const req = http.request({
      host: opts.host ?? '127.0.0.1',
      port,
      path,
      method: 'GET',
      family: opts.family,
      localAddress: opts.localAddress,
      agent: false,
      headers: { connection: 'close', ...opts.headers },
      timeout: timeoutMs,
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} on port ${port}: no response within ${timeoutMs} ms`)));
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', fail);
      res.on('end', () => {
        if (res.complete) {
          resolve({ rejected: false, status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        } else resolve({ rejected: true, error: 'connection closed in the middle of the response' });
      });
    });
    req.end();
  });
}

// ---------------------------------------------------------------------------
// The example configuration

export const examplesDir = join(repoRoot, 'examples');

export function readExample(name: 'haproxy.cfg' | 'spoe-iprep.conf'): string {
  return readFileSync(join(examplesDir, name), 'utf8');
}

export interface SeedConfigOptions {
  frontendPort: number;
  agentPort: number;
  /** Stats socket path, relative to HAProxy's working directory or absolute; default `stats.sock`. */
  statsSocket?: string;
  /** Lines added at the end of `global` / of the frontend, and text appended to the file. */
  extra?: { global?: readonly string[]; frontend?: readonly string[]; tail?: string };
}

/**
 * examples/haproxy.cfg with only the ports rewritten (agent `server` 127.0.0.1:12345,
 * frontend bind 8080) and a stats socket added to `global`, so the tests exercise the example as
 * shipped. Throws if the example no longer has what is being replaced.
 */
export function seedConfig(opts: SeedConfigOptions): string {
  let config = readExample('haproxy.cfg');
  config = replaceOnce(config, /^(\s*server\s+\S+\s+127\.0\.0\.1:)12345\b/m, `$1${opts.agentPort}`, 'agent `server ... 127.0.0.1:12345`');
  config = replaceOnce(config, /^(\s*bind\s+\S*:)8080\b/m, `$1${opts.frontendPort}`, 'frontend `bind ...:8080`');
  const globalLines = [`stats socket unix@${opts.statsSocket ?? statsSocketName} level admin`, ...(opts.extra?.global ?? [])];
  config = appendToSection(config, 'global', globalLines);
  if (opts.extra?.frontend?.length) config = appendToSection(config, 'frontend', opts.extra.frontend);
  if (opts.extra?.tail) config = `${config.trimEnd()}\n\n${opts.extra.tail}\n`;
  return config;
}

/**
 * examples/spoe-iprep.conf, optionally with other SPOE timeouts or extra `spoe-agent`
 * lines (e.g. `option set-on-error error`). `timeout processing 15ms` is tight for a
 * loaded test machine: tests that do not measure it may want more.
 */
export function seedSpoeConfig(opts: { processingTimeout?: string; agentLines?: readonly string[] } = {}): string {
  let spoe = readExample('spoe-iprep.conf');
  if (opts.processingTimeout) {
    spoe = replaceOnce(spoe, /^(\s*timeout\s+processing\s+)\S+/m, `$1${opts.processingTimeout}`, '`timeout processing`');
  }
  if (opts.agentLines?.length) spoe = appendToSection(spoe, 'spoe-agent', opts.agentLines);
  return spoe;
}

function replaceOnce(text: string, pattern: RegExp, replacement: string, what: string): string {
  if (!pattern.test(text)) throw new Error(`the example no longer contains the ${what} the tests rewrite`);
  return text.replace(pattern, replacement);
}

/** Inserts indented lines after the last non-comment line of the first section starting with `keyword`. */
function appendToSection(config: string, keyword: string, lines: readonly string[]): string {
  const all = config.split('\n');
  const start = all.findIndex((l) => l.startsWith(keyword));
  if (start < 0) throw new Error(`no "${keyword}" section in the configuration`);
  let last = start;
  for (let i = start + 1; i < all.length; i++) {
    const line = all[i] ?? '';
    if (/^\S/.test(line) && !line.startsWith('#')) break; // next section
    if (line.trim() !== '' && !line.trim().startsWith('#')) last = i;
  }
  all.splice(last + 1, 0, ...lines.map((l) => `    ${l}`));
  return all.join('\n');
}
