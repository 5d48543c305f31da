/**
 * Real HAProxy processes (2.6, 3.0 and 3.2, unpacked from Debian's packages by
 * scripts/fetch-haproxy.sh into .cache/haproxy/<version>/haproxy, or named by HAPROXY_BIN_2_6,
 * HAPROXY_BIN_3_0, HAPROXY_BIN_3_2): start, stop, stats socket commands, and the example
 * configuration with its ports rewritten.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { isAbsolute, join, resolve as resolvePath } from 'node:path';
import { examplesDir, repoRoot } from './paths.js';
import { waitForPort } from './ports.js';
import { type ExitInfo, type ManagedProcess, describeExit, makeTempDir, removeTempDir, startProcess } from './processes.js';
import { delay } from './wait.js';

export const haproxyVersions = ['2.6', '3.0', '3.2'] as const;
export type HaproxyVersion = (typeof haproxyVersions)[number];

const debianSuites: Record<HaproxyVersion, string> = { '2.6': 'bookworm', '3.0': 'trixie', '3.2': 'sid' };
/**
 * Path of the HAProxy binary for this version: $HAPROXY_BIN_<major>_<minor> if set, else the
 * wrapper that scripts/fetch-haproxy.sh writes.
 */
export function haproxyPath(version: HaproxyVersion): string {
  const override = process.env[`HAPROXY_BIN_${version.replace('.', '_')}`];
  return override ? resolvePath(override) : join(repoRoot, '.cache', 'haproxy', version, 'haproxy');
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
        `HAProxy ${version} rejected the configuration (${describeExit(checked)}):\n${check.output()}\n` + `--- haproxy.cfg ---\n${numbered(config)}`,
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
export async function waitServerStatus(handle: HaproxyHandle, backend: string, server: string, status: string, timeoutMs = 5_000): Promise<StatRow> {
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
// The example configuration

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
