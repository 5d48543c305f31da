/**
 * `spoa check [--config iprep.yaml] [--haproxy haproxy.cfg] [--haproxy-bin <path>]`: validates the
 * agent's configuration without starting anything (the loading and merged validation the agent runs,
 * plus a dry load of its list files), and, given HAProxy's configuration, whether it fits the agent
 * (haproxy-checks.ts), running `haproxy -c` when a binary is given.
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolveConfig } from '../config/flags.js';
import { ConfigError } from '../config/index.js';
import { runGeoJob } from '../geo/geo-job.js';
import { loadFingerprintList } from '../ja4/index.js';
import { insideInternalWarning, runListJob } from '../sources/index.js';
import { readBoundedFile } from '../sources/list-cache.js';
import type { IprepConfig } from '../types.js';
import { MAX_CONFIG_BYTES } from './haproxy-config.js';
import { type RoundTrip, measureRoundTrip } from './machine.js';
import { type Finding, type HaproxyVersion, type Severity, checkHaproxySetup } from './haproxy-checks.js';

export const CHECK_USAGE = `Usage: spoa check [--config <file>] [--haproxy <haproxy.cfg>] [--haproxy-bin <path>] [--no-measure]

Checks the agent's configuration (and its list files) without starting the agent, and, with
--haproxy, that HAProxy's configuration and SPOE file fit it: messages and arguments, variable
names, groups never sent, the agent's backend, SPOE timeouts. \`timeout processing\` is also
checked against this machine: spoa check times 1,000 NOTIFY round trips to an agent it starts on a
loopback port (about a second at most). Run it from HAProxy's working directory: HAProxy resolves
the SPOE file's relative path there.

  -c, --config <file>        the agent's YAML configuration (default: the defaults, random mode)
      --haproxy <file>       HAProxy's configuration (haproxy.cfg)
      --haproxy-bin <path>   also run \`<path> -c -f <haproxy.cfg>\` (default: $HAPROXY_BIN)
      --no-measure           do not time round trips on this machine
  -h, --help                 show this help

Exit status: 0 fine (warnings and notes printed), 1 problems found, 2 usage.
`;

/** Longest wait for `haproxy -v` / `haproxy -c`. */
export const HAPROXY_CHECK_TIMEOUT_MS = 10_000;

/** Findings printed per list file; the count says how many more there were. */
const LIST_WARNINGS_SHOWN = 5;

interface Output {
  write(text: string): void;
}

/** Where the findings (out) and a usage error (err) are written. */
export interface CheckOutput {
  readonly out: Output;
  readonly err: Output;
}

const CHECK_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  config: { type: 'string', short: 'c' },
  haproxy: { type: 'string' },
  'haproxy-bin': { type: 'string' },
  'no-measure': { type: 'boolean' },
} as const;

/** Runs `spoa check` with `argv` (the words after `check`); resolves to the exit status. */
export async function runCheck(
  argv: string[],
  io: CheckOutput = { out: process.stdout, err: process.stderr },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof CHECK_OPTIONS; strict: true; allowPositionals: false }>>;
  try {
    parsed = parseArgs({ args: argv, options: CHECK_OPTIONS, strict: true, allowPositionals: false });
  } catch (e) {
    io.err.write(`spoa check: ${(e as Error).message}\n\n${CHECK_USAGE}`);
    return 2;
  }
  const { values } = parsed;
  if (values.help) {
    io.out.write(CHECK_USAGE);
    return 0;
  }
  const findings: Finding[] = [];
  const config = await checkAgentConfig(values.config, findings);
  if (config !== undefined) await checkLists(config, findings);
  if (config !== undefined) await checkFingerprintLists(config, findings);
  if (config !== undefined) checkGeoDatabases(config, findings);
  const haproxyBin = values['haproxy-bin'] ?? (env['HAPROXY_BIN'] || undefined);
  if (values.haproxy !== undefined) {
    const version = haproxyBin === undefined ? undefined : await haproxyVersion(haproxyBin, findings);
    if (config !== undefined) {
      const roundTrip = values['no-measure'] === true ? undefined : await measure(findings);
      findings.push(...checkHaproxySetup({ config, haproxyFile: values.haproxy, cwd: process.cwd(), version, readText: readSmallFile, roundTrip }));
    }
    // A binary that cannot tell its version cannot check either: one error, one timeout at most.
    if (haproxyBin !== undefined && version !== undefined) await haproxyCheck(haproxyBin, values.haproxy, findings);
  } else if (haproxyBin !== undefined) {
    findings.push({ severity: 'warning', where: haproxyBin, message: '--haproxy-bin without --haproxy: nothing for it to check' });
  }
  return report(findings, io.out);
}

/** The configuration as the agent would run it, or undefined with its problems added. */
async function checkAgentConfig(path: string | undefined, findings: Finding[]): Promise<IprepConfig | undefined> {
  try {
    return await resolveConfig({ debug: false, config: path });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const line of err.message.split('\n')) {
      const colon = line.indexOf(': ');
      findings.push({ severity: 'error', where: colon < 0 ? err.file : line.slice(0, colon), message: colon < 0 ? line : line.slice(colon + 2) });
    }
    return undefined;
  }
}

/** Parses every list and allowlist file as the agent would, counting entries; URL lists are fetched at start, not here. */
async function checkLists(config: IprepConfig, findings: Finding[]): Promise<void> {
  if (config.mode !== 'reputation') return;
  const { maxBytes, maxEntries } = config.listDefaults;
  const files = [
    ...config.lists.map((list) => ({
      name: list.name,
      format: list.format,
      path: list.path,
      minEntries: list.minEntries,
      maxBytes: list.maxBytes ?? maxBytes,
      maxEntries: list.maxEntries ?? maxEntries,
      scored: true,
    })),
    ...config.allowlist.files.map((path) => ({
      name: `allowlist:${path}`,
      format: 'netset' as const,
      path,
      minEntries: 0,
      maxBytes,
      maxEntries,
      scored: false,
    })),
  ];
  for (const file of files) {
    if (file.path === undefined) continue;
    // Read and parsed as the agent does: within the list's byte and entry bounds.
    let body: readonly Uint8Array[];
    try {
      body = (await readBoundedFile(file.path, file.maxBytes)).blocks;
    } catch (e) {
      findings.push({ severity: 'error', where: file.path, message: `list ${file.name}: cannot read it: ${(e as Error).message}` });
      continue;
    }
    const result = runListJob({ format: file.format, origin: file.path, body, maxEntries: file.maxEntries });
    if (!result.ok || result.unchanged === true) {
      findings.push({ severity: 'error', where: file.path, message: `list ${file.name}: ${result.ok ? 'not parsed' : result.error}` });
      continue;
    }
    const { warnings, insideInternal } = result;
    const count = result.entries.count;
    for (const warning of warnings.slice(0, LIST_WARNINGS_SHOWN))
      findings.push({ severity: 'warning', where: file.path, message: `list ${file.name}: skipped ${warning}` });
    if (warnings.length > LIST_WARNINGS_SHOWN)
      findings.push({ severity: 'warning', where: file.path, message: `list ${file.name}: ${warnings.length - LIST_WARNINGS_SHOWN} more bad lines` });
    if (file.scored && config.special.enabled && insideInternal.count > 0) {
      findings.push({ severity: 'warning', where: file.path, message: insideInternalWarning(file.name, insideInternal) });
    }
    const severity: Severity = count < file.minEntries ? 'error' : 'note';
    findings.push({
      severity,
      where: file.path,
      message: `list ${file.name}: ${count} entries${severity === 'error' ? `, fewer than min-entries ${file.minEntries}` : ''}`,
    });
  }
}

/** This machine's round trips, or undefined with a warning when they cannot be timed. */
async function measure(findings: Finding[]): Promise<RoundTrip | undefined> {
  try {
    return await measureRoundTrip();
  } catch (e) {
    findings.push({ severity: 'warning', where: 'this machine', message: `cannot time NOTIFY round trips: ${(e as Error).message}` });
    return undefined;
  }
}

/** Parses every fingerprint list (tls.lists) as the agent would, within its byte and entry bounds. */
async function checkFingerprintLists(config: IprepConfig, findings: Finding[]): Promise<void> {
  if (config.mode !== 'reputation') return;
  for (const list of config.tls.lists) {
    const where = list.path;
    try {
      const { entries, warnings } = await loadFingerprintList(list);
      for (const warning of warnings.slice(0, LIST_WARNINGS_SHOWN))
        findings.push({ severity: 'warning', where, message: `fingerprint list ${list.name}: skipped ${warning}` });
      findings.push({ severity: 'note', where, message: `fingerprint list ${list.name}: ${entries.size} fingerprints` });
    } catch (e) {
      findings.push({ severity: 'error', where, message: (e as Error).message });
    }
  }
}

/** Compiles the geo databases as the agent would (here on this thread: nothing else waits on it). */
function checkGeoDatabases(config: IprepConfig, findings: Finding[]): void {
  if (config.mode !== 'reputation') return;
  const { geo } = config;
  for (const [kind, path] of [
    ['country', geo.countryDb],
    ['asn', geo.asnDb],
  ] as const) {
    if (path === undefined) continue;
    const result = runGeoJob({ path, kind, maxBytes: geo.maxBytes, maxNetworks: geo.maxEntries });
    if (!result.ok) findings.push({ severity: 'error', where: path, message: `geo ${kind}-db: ${result.error}` });
    else if (!result.unchanged) {
      const { data } = result;
      const networks = data.table.intervals;
      findings.push({
        severity: 'note',
        where: path,
        message: `geo ${kind}-db: ${networks} networks, ${data.labels.length} ${kind === 'country' ? 'countries' : 'ASNs'} (${data.databaseType})`,
      });
    }
  }
}

/** A configuration file's text, or undefined when it cannot be read or is too large to be one. */
function readSmallFile(path: string): string | undefined {
  try {
    if (statSync(path).size > MAX_CONFIG_BYTES) return undefined;
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function run(bin: string, args: readonly string[]): Promise<{ code: number | null; output: string; error?: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: HAPROXY_CHECK_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trim();
      if (err === null) return resolve({ code: 0, output });
      const code = typeof err.code === 'number' ? err.code : null;
      resolve({ code, output, error: code === null ? (err.killed ? `no answer in ${HAPROXY_CHECK_TIMEOUT_MS}ms` : err.message) : undefined });
    });
  });
}

/** `haproxy -v`: `HAProxy version 3.2.26-1 ...`. */
async function haproxyVersion(bin: string, findings: Finding[]): Promise<HaproxyVersion | undefined> {
  const { output, error } = await run(bin, ['-v']);
  const match = /version (\d+)\.(\d+)/.exec(output);
  if (match === null) {
    findings.push({ severity: 'error', where: bin, message: `cannot run \`${bin} -v\`: ${error ?? output.split('\n')[0] ?? ''}` });
    return undefined;
  }
  findings.push({ severity: 'note', where: bin, message: `HAProxy ${match[1]}.${match[2]}` });
  return { major: Number(match[1]), minor: Number(match[2]) };
}

/** `haproxy -c -f haproxy.cfg`, from this working directory (HAProxy resolves the SPOE file there). */
async function haproxyCheck(bin: string, haproxyFile: string, findings: Finding[]): Promise<void> {
  const { code, output, error } = await run(bin, ['-c', '-f', haproxyFile]);
  const lines = output.split('\n').filter((l) => /\[(ALERT|WARNING)\]/.test(l));
  if (code === 0) {
    for (const line of lines) findings.push({ severity: 'warning', where: `${bin} -c`, message: line.trim() });
  } else {
    const detail = error ?? (lines.length > 0 ? lines.map((l) => l.trim()).join('\n  ') : output);
    findings.push({ severity: 'error', where: `${bin} -c`, message: `HAProxy rejects the configuration (exit ${code ?? 'none'}):\n  ${detail}` });
  }
}

function report(findings: readonly Finding[], out: Output): number {
  for (const f of findings) out.write(`${f.severity}: ${f.where}: ${f.message}\n`);
  const count = (severity: Severity): number => findings.filter((f) => f.severity === severity).length;
  const errors = count('error');
  out.write(`${errors === 0 ? 'ok' : 'problems found'}: ${errors} error(s), ${count('warning')} warning(s)\n`);
  return errors === 0 ? 0 : 1;
}
