/**
 * End-to-end benchmark: wrk through a real HAProxy (2.6, 3.0 or 3.2 from
 * .cache/haproxy), one SPOE NOTIFY per HTTP request.
 *
 *   node --import tsx bench/e2e-haproxy.ts [--versions 2.6,3.2] [--duration 10] [--connections 50] [--config iprep.yaml] [--json]
 *
 * For each HAProxy version, in the same invocation and one after the other,
 * three configurations behind an identical frontend:
 *   baseline  no SPOE filter: what HAProxy and wrk cost on their own;
 *   ours      the filter, with `spoa -n 1` (packages/iprep) as the agent, in random mode, or
 *             in reputation mode with `--config` (bench/reputation.ts writes such a configuration);
 *   floor     the filter, with the floor agent (packages/spop-bench/dist/floor-agent.js),
 *             the least work a Node agent can do per NOTIFY.
 * Each gets a fresh HAProxy and a fresh agent, a warm-up, then a measured wrk
 * run; `--rounds N` repeats the three, in alternating order. Reported: requests/s, the share of responses carrying the score, CPU
 * of the agent's process tree and of HAProxy per (scored) request, and ours
 * over floor for agent CPU per scored request, the figure that survives a
 * noisy shared machine (target: <= 1.5 in random mode, <= 1.3 in reputation mode).
 *
 * Why the configuration differs from examples/:
 * - `nbthread 1`: on a 2-core machine HAProxy, the agent and wrk share two
 *   cores; one HAProxy thread keeps it from taking the agent's core, and
 *   makes HAProxy's CPU per request comparable between versions.
 * - agent server `maxconn 1000` instead of 5: with 5, 2.6 queues its SPOE
 *   connections under load and nearly every check times out; 3.x reads
 *   maxconn as a cap on in-flight checks, which 5 would make the bottleneck.
 * - message on `on-frontend-http-request` instead of `on-client-session`:
 *   the event that is per HTTP request by definition. (On 2.6 and 3.2,
 *   `on-client-session` also fired for every request of a keep-alive
 *   connection, each request being a stream of its own, but the bench should
 *   not depend on that.) And no reject rule: every request is answered 200,
 *   so "with score" + "without score" is every response.
 * - `timeout processing` 500 ms (not 15 ms): a check that times out is
 *   counted as unscored, and we want that to mean "the agent did not answer",
 *   not "a shared machine descheduled someone for 20 ms". `timeout hello`
 *   1 s for the same reason (2.6 opens SPOE connections while under load).
 *
 * Every process (HAProxy, agents, wrk) is started through test-support,
 * bound to 127.0.0.1 on free ports, stopped by pid, and killed if this
 * script is interrupted.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type TreeStats, readProcessStats, readTreeStats, treeCpuDelta } from 'spop-bench';
import { freePort } from 'spop/testkit';
import type { HaproxyHandle, HaproxyVersion, ManagedProcess } from 'test-support';

/** test-support, loaded at the end of this file (see why there); every process is started and tracked through it. */
let harness: typeof import('test-support');

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const oursBin = join(repoRoot, 'packages/iprep/bin/spoa.js');
const floorBin = join(repoRoot, 'packages/spop-bench/dist/floor-agent.js');

/** Agent CPU per scored request, ours / floor, to stay under: in random mode, and in reputation mode (`--config`). */
const TARGET_RATIO = 1.5;
const REPUTATION_TARGET_RATIO = 1.3;

const knownVersions: readonly HaproxyVersion[] = ['2.6', '3.0', '3.2'];

const USAGE = `Usage: node --import tsx bench/e2e-haproxy.ts [options]

wrk -> HAProxy (one SPOE NOTIFY per HTTP request) -> agent, for each HAProxy version:
baseline (no SPOE filter), ours (spoa -n 1), floor (the floor agent).

  --versions <list>          HAProxy versions, comma-separated, among ${knownVersions.join(', ')} (default 2.6,3.2)
  --duration <s>             measured seconds per configuration (default 10, at most 600)
  --warmup <s>               seconds of load before measuring (default 2, at most 60)
  --connections <n>          wrk keep-alive connections (default 50)
  --rounds <n>               runs per configuration (default 1), alternating the order (baseline, ours,
                             floor, then floor, ours, baseline...); ours/floor is then computed over all
                             rounds, with the per-round figures beside it
  --threads <n>              wrk threads (default 1: the machine has few cores to share)
  --processing-timeout <ms>  SPOE "timeout processing" (default 500)
  --config <file>            run ours with this spoa configuration (e.g. reputation mode); default: random mode
  --json                     print one JSON document instead of the tables
  -h, --help                 show this help
`;

interface Options {
  readonly versions: readonly HaproxyVersion[];
  readonly durationS: number;
  readonly warmupS: number;
  readonly connections: number;
  readonly rounds: number;
  readonly threads: number;
  readonly processingTimeoutMs: number;
  readonly configFile: string | undefined;
  readonly json: boolean;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      options: {
        versions: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string' },
        rounds: { type: 'string' },
        threads: { type: 'string' },
        'processing-timeout': { type: 'string' },
        config: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const int = (name: string, text: string | undefined, fallback: number, min: number, max: number): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in [${min}, ${max}], not ${text}`);
    return n;
  };
  const versions = (v.versions ?? '2.6,3.2').split(',').map((s) => s.trim());
  for (const version of versions) {
    if (!(knownVersions as readonly string[]).includes(version)) {
      throw new UsageError(`unknown HAProxy version ${version}: use ${knownVersions.join(', ')}`);
    }
  }
  const options: Options = {
    versions: versions as HaproxyVersion[],
    durationS: int('duration', v.duration, 10, 1, 600),
    warmupS: int('warmup', v.warmup, 2, 0, 60),
    connections: int('connections', v.connections, 50, 1, 10_000),
    rounds: int('rounds', v.rounds, 1, 1, 20),
    threads: int('threads', v.threads, 1, 1, 64),
    processingTimeoutMs: int('processing-timeout', v['processing-timeout'], 500, 1, 60_000),
    configFile: v.config,
    json: v.json ?? false,
  };
  if (options.threads > options.connections) {
    throw new UsageError('--threads cannot exceed --connections (wrk needs a connection per thread)');
  }
  return options;
}

// ---------------------------------------------------------------------------
// Configurations

type ConfigName = 'baseline' | 'ours' | 'floor';
const configNames: readonly ConfigName[] = ['baseline', 'ours', 'floor'];

/**
 * haproxy.cfg. The baseline differs only by the missing filter line (and the
 * unused agent backend): it runs the same http-request rules, which then find
 * no variable, so the difference in cost is the SPOE's alone.
 */
function haproxyConfig(frontendPort: number, agentPort: number | undefined): string {
  const spoe = agentPort !== undefined;
  return `global
    nbthread 1

defaults
    mode http
    timeout connect 5s
    timeout client  30s
    timeout server  30s

frontend bench
    bind 127.0.0.1:${frontendPort}
${spoe ? '    filter spoe engine ip-reputation config spoe-iprep.conf\n' : ''}
    # The agent sets the score in *session* scope, which outlives the request on a
    # keep-alive connection: were it read directly, a request whose check failed
    # would still show the previous request's score. So it is moved to txn scope
    # and cleared from the session, request by request (http-request rules run
    # after the SPOE filter's on-frontend-http-request event).
    http-request set-var(txn.score) var(sess.iprep.ip_score) if { var(sess.iprep.ip_score) -m found }
    http-request unset-var(sess.iprep.ip_score)

    # "return" responses skip http-response rules but not http-after-response ones.
    http-after-response set-header x-ip-score %[var(txn.score)] if { var(txn.score) -m found }
    http-request return status 200 content-type text/plain string "hello\\n"
${
  spoe
    ? `
backend iprep-backend
    mode tcp
    timeout server 1m
    option spop-check
    server iprep-srv 127.0.0.1:${agentPort} check maxconn 1000
`
    : ''
}`;
}

/** spoe-iprep.conf: the seed's engine, agent and message names, with one NOTIFY per HTTP request. */
function spoeConfig(processingTimeoutMs: number, randomSources: boolean): string {
  return `[ip-reputation]

spoe-agent iprep-agent
    messages check-client-ip

    option var-prefix iprep
    option pipelining

    timeout hello      1s
    timeout idle       30s
    timeout processing ${processingTimeoutMs}ms

    use-backend iprep-backend

spoe-message check-client-ip
    args ${randomSources ? 'ip=req.hdr_ip(x-forwarded-for,-1)' : 'src'}
    event on-frontend-http-request
`;
}

// ---------------------------------------------------------------------------
// wrk

/**
 * Counts responses with and without the score header. wrk gives each thread
 * its own Lua state, so each thread counts in its own globals; done() runs in
 * yet another state and sums them through thread:get() on the threads that
 * setup() collected. The result is one line of JSON, found by its prefix.
 */
const WRK_SCRIPT_NAME = 'count-scores.lua';
/**
 * With --config (reputation mode), each request comes from a random IPv4 client (X-Forwarded-For, which
 * the SPOE message then sends): from 127.0.0.1 alone, every check would stop at the RFC 6890 table.
 */
const WRK_RANDOM_SOURCES = `
request = function()
  wrk.headers["X-Forwarded-For"] = string.format("%d.%d.%d.%d", math.random(1, 223), math.random(0, 255), math.random(0, 255), math.random(1, 254))
  return wrk.format()
end
`;

const WRK_SCRIPT = `local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  scored, unscored, non200 = 0, 0, 0
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  else
    local score = headers["x-ip-score"]
    if score ~= nil and score ~= "" then
      scored = scored + 1
    else
      unscored = unscored + 1
    end
  end
end

function done(summary, latency, requests)
  local s, u, n = 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("scored")
    u = u + t:get("unscored")
    n = n + t:get("non200")
  end
  local e = summary.errors
  io.write(string.format(
    'e2e-bench {"requests":%d,"durationUs":%d,"scored":%d,"unscored":%d,"non200":%d,' ..
    '"errors":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d}\\n',
    summary.requests, summary.duration, s, u, n,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`;

interface WrkResult {
  /** Responses received in the run, as wrk counts them. */
  readonly requests: number;
  readonly durationUs: number;
  /** 200 responses with a non-empty x-ip-score header. */
  readonly scored: number;
  /** 200 responses without it. */
  readonly unscored: number;
  readonly non200: number;
  /** Socket errors: connect, read, write, timeout. */
  readonly errors: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
}

function parseWrkOutput(output: string): WrkResult {
  const line = output.split('\n').find((l) => l.startsWith('e2e-bench '));
  if (line === undefined) throw new Error(`wrk printed no result line; its output:\n${output}`);
  const data: unknown = JSON.parse(line.slice('e2e-bench '.length));
  if (typeof data !== 'object' || data === null) throw new Error(`bad wrk result line: ${line}`);
  const field = (name: keyof WrkResult): number => {
    const value: unknown = (data as Record<string, unknown>)[name];
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`bad or missing ${name} in wrk result line: ${line}`);
    return value;
  };
  return {
    requests: field('requests'),
    durationUs: field('durationUs'),
    scored: field('scored'),
    unscored: field('unscored'),
    non200: field('non200'),
    errors: field('errors'),
    p50Us: field('p50Us'),
    p99Us: field('p99Us'),
    maxUs: field('maxUs'),
  };
}

/** Fails with the way to install wrk when it is not on PATH. */
function requireWrk(): string {
  // wrk has no --version that exits 0: only "could not be started" means it is missing.
  const probe = spawnSync('wrk', ['--version'], { encoding: 'utf8', timeout: 5_000 });
  if (probe.error !== undefined) {
    throw new Error(
      `wrk is not installed (${probe.error.message}). On Debian: apt-get install -y wrk ` + '(run apt-get update first if the package is not found).',
    );
  }
  return `${probe.stdout}${probe.stderr}`.split('\n')[0]?.trim() ?? 'wrk';
}

async function runWrk(port: number, seconds: number, scriptPath: string, options: Options): Promise<WrkResult> {
  const args = ['-t', String(options.threads), '-c', String(options.connections), '-d', `${seconds}s`, '--timeout', '2s'];
  const wrk = harness.startProcess('wrk', [...args, '-s', scriptPath, `http://127.0.0.1:${port}/`], { name: 'wrk' });
  // wrk stops by itself after -d; the margin covers start-up and a loaded machine.
  const deadline = setTimeout(() => void wrk.stop(), (seconds + 20) * 1000);
  try {
    const exit = await wrk.exited;
    if (exit.code !== 0) throw new Error(`wrk failed (${harness.describeExit(exit)}):\n${wrk.output()}`);
    return parseWrkOutput(wrk.output());
  } finally {
    clearTimeout(deadline);
    await wrk.stop();
  }
}

// ---------------------------------------------------------------------------
// Measurement

/**
 * Jiffies of the whole machine from /proc/stat's first line. Steal is apart:
 * on a virtual machine it is time our vCPUs were runnable but the hypervisor
 * ran someone else, which slows every process here without showing as busy.
 */
function hostCpu(): { busy: number; steal: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  return { busy: user + nice + system + irq + softirq, steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

export interface RunResult {
  readonly config: ConfigName;
  /** 1, 2...: the runs of a round ran one after the other. */
  readonly round: number;
  readonly requests: number;
  readonly durationS: number;
  readonly requestsPerSecond: number;
  readonly scored: number;
  readonly unscored: number;
  readonly non200: number;
  readonly socketErrors: number;
  /** scored / requests. */
  readonly scoredShare: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly latencyMaxMs: number;
  /** CPU time of the agent's process tree during the measured run; null for the baseline. */
  readonly agentCpuMs: number | null;
  readonly agentCpuUsPerScored: number | null;
  readonly agentRssMb: number | null;
  readonly haproxyCpuMs: number;
  readonly haproxyCpuUsPerRequest: number;
  /** Whole machine busy during the run (every process, not only ours), in % of all its cores. */
  readonly hostBusyPercent: number;
  /** Time the hypervisor took from the machine's vCPUs during the run, in % of all cores: high, the figures are unreliable. */
  readonly hostStealPercent: number;
}

export interface VersionReport {
  readonly version: HaproxyVersion;
  /** First line of `haproxy -v`. */
  readonly haproxy: string;
  readonly runs: readonly RunResult[];
  /** Agent CPU per scored request, ours / floor, over all rounds (null if either scored nothing). */
  readonly oursOverFloor: number | null;
  /** The same, round by round. */
  readonly oursOverFloorByRound: readonly (number | null)[];
}

export interface Report {
  readonly date: string;
  readonly machine: { readonly cores: number; readonly kernel: string; readonly node: string; readonly wrk: string };
  readonly settings: {
    readonly durationS: number;
    readonly warmupS: number;
    readonly connections: number;
    readonly rounds: number;
    readonly wrkThreads: number;
    readonly haproxyThreads: 1;
    readonly agentMaxconn: 1000;
    readonly processingTimeoutMs: number;
    readonly targetRatio: number;
  };
  readonly versions: readonly VersionReport[];
}

function agentCommand(config: ConfigName, port: number, configFile: string | undefined): string[] {
  const p = String(port);
  if (config === 'ours') return [oursBin, '-p', p, '-n', '1', '--host', '127.0.0.1', ...(configFile === undefined ? [] : ['--config', configFile])];
  return [floorBin, '--port', p, '--host', '127.0.0.1'];
}

async function measure(version: HaproxyVersion, config: ConfigName, round: number, options: Options): Promise<RunResult> {
  let agent: ManagedProcess | undefined;
  let haproxy: HaproxyHandle | undefined;
  try {
    let agentPort: number | undefined;
    if (config !== 'baseline') {
      agentPort = await freePort();
      // Own process group: a stop reaches anything the agent forks.
      agent = harness.startProcess(process.execPath, agentCommand(config, agentPort, options.configFile), { name: `agent ${config}`, processGroup: true });
      await harness.waitForPort(agentPort, '127.0.0.1', 15_000);
    }
    const frontendPort = await freePort();
    haproxy = await harness.startHaproxy({
      version,
      config: haproxyConfig(frontendPort, agentPort),
      // wrk's script rides along in HAProxy's temp dir, which the harness removes whatever happens.
      files: {
        [WRK_SCRIPT_NAME]: options.configFile === undefined ? WRK_SCRIPT : WRK_SCRIPT + WRK_RANDOM_SOURCES,
        ...(agentPort !== undefined ? { 'spoe-iprep.conf': spoeConfig(options.processingTimeoutMs, options.configFile !== undefined) } : {}),
      },
    });
    const scriptPath = join(haproxy.dir, WRK_SCRIPT_NAME);
    // Measure only once the health check passed: before, HAProxy would not use the agent.
    if (agent !== undefined) await harness.waitServerStatus(haproxy, 'iprep-backend', 'iprep-srv', 'UP', 10_000);

    if (options.warmupS > 0) await runWrk(frontendPort, options.warmupS, scriptPath, options);

    const agentBefore: TreeStats | undefined = agent !== undefined ? readTreeStats(agent.pid) : undefined;
    const haproxyBefore = readProcessStats(haproxy.pid);
    const hostBefore = hostCpu();
    const wrk = await runWrk(frontendPort, options.durationS, scriptPath, options);
    const hostAfter = hostCpu();
    const haproxyAfter = readProcessStats(haproxy.pid);
    const agentAfter: TreeStats | undefined = agent !== undefined ? readTreeStats(agent.pid) : undefined;

    if (haproxyBefore === undefined || haproxyAfter === undefined) {
      throw new Error(`HAProxy ${version} exited during the run:\n${haproxy.output()}`);
    }
    if (agent !== undefined && !agent.alive()) throw new Error(`the ${config} agent exited during the run:\n${agent.output()}`);

    const counted = wrk.scored + wrk.unscored + wrk.non200;
    if (counted !== wrk.requests) {
      // Both are counted per response; a difference would mean the script missed some.
      process.stderr.write(`warning: ${config}: the script counted ${counted} responses, wrk ${wrk.requests}\n`);
    }
    const agentCpuMs = agentBefore !== undefined && agentAfter !== undefined ? treeCpuDelta(agentBefore, agentAfter) : null;
    const haproxyCpuMs = haproxyAfter.cpuMs - haproxyBefore.cpuMs;
    const durationS = wrk.durationUs / 1e6;
    const hostTotal = Math.max(1, hostAfter.total - hostBefore.total);
    return {
      config,
      round,
      requests: wrk.requests,
      durationS,
      requestsPerSecond: wrk.requests / durationS,
      scored: wrk.scored,
      unscored: wrk.unscored,
      non200: wrk.non200,
      socketErrors: wrk.errors,
      scoredShare: wrk.requests > 0 ? wrk.scored / wrk.requests : 0,
      latencyP50Ms: wrk.p50Us / 1000,
      latencyP99Ms: wrk.p99Us / 1000,
      latencyMaxMs: wrk.maxUs / 1000,
      agentCpuMs,
      agentCpuUsPerScored: agentCpuMs !== null && wrk.scored > 0 ? (agentCpuMs * 1000) / wrk.scored : null,
      agentRssMb: agentAfter !== undefined ? agentAfter.rssBytes / 2 ** 20 : null,
      haproxyCpuMs,
      haproxyCpuUsPerRequest: wrk.requests > 0 ? (haproxyCpuMs * 1000) / wrk.requests : 0,
      hostBusyPercent: (100 * (hostAfter.busy - hostBefore.busy)) / hostTotal,
      hostStealPercent: (100 * (hostAfter.steal - hostBefore.steal)) / hostTotal,
    };
  } finally {
    // HAProxy first, so the agent sees its connections close rather than a stop mid-request.
    await haproxy?.stop();
    await agent?.stop();
  }
}

/** Agent CPU per scored request, ours / floor, from the sums over `runs` (so a long run weighs more than a short one). */
function oursOverFloor(runs: readonly RunResult[]): number | null {
  const perScored = (config: ConfigName): number | null => {
    const of = runs.filter((r) => r.config === config);
    const scored = of.reduce((n, r) => n + r.scored, 0);
    return scored > 0 ? of.reduce((n, r) => n + (r.agentCpuMs ?? 0), 0) / scored : null;
  };
  const ours = perScored('ours');
  const floor = perScored('floor');
  return ours !== null && floor !== null && floor > 0 ? ours / floor : null;
}

function medianOf(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function haproxyVersionLine(version: HaproxyVersion): string {
  const out = spawnSync(harness.requireHaproxy(version), ['-v'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
  return out.split('\n')[0]?.trim() ?? version;
}

async function runBenchmark(options: Options): Promise<Report> {
  const wrkVersion = requireWrk();
  for (const [what, path] of [
    ['our agent', oursBin],
    ['the floor agent', floorBin],
    ['our agent (compiled)', join(repoRoot, 'packages/iprep/dist/main.js')],
  ] as const) {
    if (!existsSync(path)) throw new Error(`${what} is missing: no ${path}. Build the repository first: npm run build`);
  }
  for (const version of options.versions) harness.requireHaproxy(version); // fail before any measurement

  const versions: VersionReport[] = [];
  for (const version of options.versions) {
    const haproxy = haproxyVersionLine(version);
    const runs: RunResult[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      // Every other round backwards: a machine slowing down steadily then weighs on every configuration alike.
      const order = round % 2 === 1 ? configNames : [...configNames].reverse();
      for (const config of order) {
        const what = `HAProxy ${version}, ${config}${options.rounds > 1 ? `, round ${round}` : ''}`;
        process.stderr.write(`${what}: ${options.warmupS} s warm-up, ${options.durationS} s measured...\n`);
        runs.push(await measure(version, config, round, options));
      }
    }
    const byRound = Array.from({ length: options.rounds }, (_, i) => oursOverFloor(runs.filter((r) => r.round === i + 1)));
    versions.push({ version, haproxy, runs, oursOverFloor: oursOverFloor(runs), oursOverFloorByRound: byRound });
  }
  return {
    date: new Date().toISOString(),
    machine: { cores: availableParallelism(), kernel: release(), node: process.version, wrk: wrkVersion },
    settings: {
      durationS: options.durationS,
      warmupS: options.warmupS,
      connections: options.connections,
      rounds: options.rounds,
      wrkThreads: options.threads,
      haproxyThreads: 1,
      agentMaxconn: 1000,
      processingTimeoutMs: options.processingTimeoutMs,
      targetRatio: options.configFile === undefined ? TARGET_RATIO : REPUTATION_TARGET_RATIO,
    },
    versions,
  };
}

// ---------------------------------------------------------------------------
// Output

const COLUMNS = [
  'config',
  'req/s',
  'vs base',
  'scored',
  'with',
  'without',
  'p50 ms',
  'p99 ms',
  'agent CPU ms',
  'agent µs/scored',
  'HAProxy µs/req',
  'host busy',
  'steal',
];

function fmt(n: number | null, digits = 0): string {
  if (n === null) return '-';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function formatTables(report: Report): string {
  const s = report.settings;
  const lines = [
    `wrk ${s.wrkThreads} thread(s) x ${s.connections} keep-alive connections, ${s.durationS} s measured after ${s.warmupS} s warm-up` +
      `${s.rounds > 1 ? `, ${s.rounds} rounds` : ''}; ` +
      `HAProxy nbthread 1, agent server maxconn 1000, timeout processing ${s.processingTimeoutMs} ms`,
    `${report.machine.cores} cores, Linux ${report.machine.kernel}, Node ${report.machine.node}, ${report.machine.wrk}`,
  ];
  const columns = s.rounds > 1 ? ['round', ...COLUMNS] : COLUMNS;
  for (const v of report.versions) {
    const runs = [...v.runs].sort((a, b) => configNames.indexOf(a.config) - configNames.indexOf(b.config) || a.round - b.round);
    const rows = runs.map((r) => {
      const base = v.runs.find((b) => b.config === 'baseline' && b.round === r.round)?.requestsPerSecond;
      const cells = [
        r.config,
        fmt(r.requestsPerSecond),
        base ? `${fmt((100 * r.requestsPerSecond) / base)}%` : '-',
        `${fmt(100 * r.scoredShare, 2)}%`,
        fmt(r.scored),
        fmt(r.unscored + r.non200),
        fmt(r.latencyP50Ms, 2),
        fmt(r.latencyP99Ms, 2),
        fmt(r.agentCpuMs),
        fmt(r.agentCpuUsPerScored, 1),
        fmt(r.haproxyCpuUsPerRequest, 1),
        `${fmt(r.hostBusyPercent)}%`,
        `${fmt(r.hostStealPercent)}%`,
      ];
      return s.rounds > 1 ? [String(r.round), ...cells] : cells;
    });
    const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((row) => (row[i] ?? '').length)));
    const firstText = s.rounds > 1 ? 1 : 0; // the config name is the only left-aligned column
    const line = (cells: readonly string[]): string =>
      cells.map((c, i) => (i === firstText ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
    lines.push('', v.haproxy, line(columns), ...rows.map(line));
    for (const r of runs) {
      if (r.non200 > 0 || r.socketErrors > 0) lines.push(`  ${r.config}: ${r.non200} non-200 responses, ${r.socketErrors} socket errors`);
    }
    const ratio = v.oursOverFloor;
    const verdict = ratio === null ? '(a run scored nothing)' : `(target <= ${s.targetRatio}: ${ratio <= s.targetRatio ? 'met' : 'NOT met'})`;
    // The per-round median: one run where HAProxy batched differently cannot move it alone.
    const median = medianOf(v.oursOverFloorByRound.filter((x): x is number => x !== null));
    const perRound =
      s.rounds > 1
        ? `; by round: ${v.oursOverFloorByRound.map((x) => (x === null ? '-' : x.toFixed(2))).join(', ')}` +
          (median === undefined ? '' : `; median of rounds: ${median.toFixed(2)}`)
        : '';
    lines.push(`ours/floor agent CPU per scored request: ${ratio === null ? '-' : ratio.toFixed(2)} ${verdict}${perRound}`);
  }
  lines.push(
    '',
    'scored = share of responses with x-ip-score (with = count, without = the others); agent µs/scored = CPU of the',
    "agent's process tree during the run / scored responses; HAProxy µs/req = HAProxy's CPU / responses;",
    'host busy = whole machine (other work included), steal = time the hypervisor took, both in % of all cores.',
  );
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------

function writeOut(text: string): Promise<void> {
  return new Promise((resolve) => process.stdout.write(text, () => resolve()));
}

async function main(): Promise<number> {
  let options: Options | 'help';
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`e2e-haproxy: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    await writeOut(USAGE);
    return 0;
  }
  const report = await runBenchmark(options);
  await writeOut(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatTables(report));
  return 0;
}

async function run(): Promise<void> {
  const code = await main().catch((err: unknown) => {
    process.stderr.write(`e2e-haproxy: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  });
  await harness.stopAll();
  process.exit(code);
}

/*
 * Importing test-support registers a node:test `after` hook, which starts
 * node:test's reporter on stdout: "TAP version 13" would precede the tables or
 * the JSON. So this script runs itself again with that reporter sent to
 * /dev/null, and loads test-support only in that second run. (Here, at the end,
 * because the run needs every declaration above to be initialized.)
 */

const SILENT_REPORTER = '--test-reporter-destination=/dev/null';
if (!process.execArgv.includes(SILENT_REPORTER)) {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...process.execArgv, '--test-reporter=tap', SILENT_REPORTER, script, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  // Passed on so that the child, which owns every process, stops them all.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal !== null ? 1 : 0)));
} else {
  harness = await import('test-support');
  await run();
}
