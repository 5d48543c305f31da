/**
 * spop-bench: the load generator as a command. It can start the agent under
 * test itself (to measure its CPU time and memory), and run the same load
 * against the floor agent in the same invocation so that the agent is
 * reported as a ratio of the floor: on a shared machine absolute figures
 * drift from one minute to the next, ratios measured side by side do not.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from 'spop/testkit';
import { type SpawnedAgent, spawnAgent, splitCommand } from './agent-process.js';
import { type LatencySummary, LatencyHistogram } from './histogram.js';
import { type AddressFamily, type LoadResult, type LoadTarget, runLoad } from './load.js';
import { type TreeStats, clockTicksPerSecond, readTreeStats, treeCpuDelta, treeSystemDelta } from './process-stats.js';

export const USAGE: string = `Usage: spop-bench [--host H --port P | --path SOCKET | --agent "<command with {port}>"] [--floor]
                  [-c CONNECTIONS] [-d DEPTH] [--rate FRAMES_PER_S] [-t SECONDS] [--warmup SECONDS]
                  [--family ipv4|ipv6|mixed] [--clients N [--zipf S]] [--json]

Load generator for SPOP agents. Plays HAProxy 3.x: HELLO with pipelining, then check-client-ip
NOTIFY frames with random source addresses; keeps C connections x D frames in flight; validates
every ACK (ids, FIN, exactly one sess.ip_score integer 0..100); reports throughput and latency.

Target (one of them, or --floor alone):
      --agent <command>     start the agent, {port} and {host} replaced by a free port and the host;
                            its CPU time and RSS (whole process tree) are measured and it is
                            stopped by pid at the end, e.g. "node packages/iprep/bin/spoa.js -p {port} -n 1"
      --host <address>      where the agent is reached (default 127.0.0.1)
      --port <port>         an agent already running on this TCP port
      --path <socket>       an agent already running on this Unix socket
      --pid <pid>           with --port or --path: measure this process tree's CPU time and RSS
      --floor               also run the same load against the floor agent (the least work a Node
                            agent can do per NOTIFY), alternating with the agent, and print agent/floor

Load:
  -c, --connections <n>     connections (default 1)
  -d, --depth <n>           NOTIFY frames in flight per connection (default 1); with --rate, at most
      --rate <n>            open loop: offer n NOTIFY frames per second in all, dealt round-robin to the
                            connections every millisecond, instead of a new frame as soon as an ACK comes
                            back. Latency then runs from the moment a frame was due, so a frame waiting for
                            a busy slot counts its wait. Without it the load is a closed loop: it measures
                            the most the target does, and latency at saturation (Little's law: connections
                            x depth / throughput); with it, latency at a given load.
  -t, --duration <s>        measured seconds per run (default 5, at most 3600)
      --warmup <s>          seconds of load before measuring (default 1, at most 600)
      --rounds <n>          runs per target (default 1); with --floor the order is agent, floor,
                            then floor, agent, and so on, so that a steady drift cancels out
      --family <f>          ipv4, ipv6 or mixed source addresses (default ipv4)
      --clients <n>         source addresses drawn from n distinct clients (random addresses chosen
                            once per run), uniformly; default: a new random address per frame
      --zipf <s>            with --clients: client popularity follows a Zipf law of exponent s (the
                            k-th client sends in proportion to 1/k^s; 1 is the classic web mix)
      --message <name>      message name (default check-client-ip)
      --variable <name>     variable the ACK must set in sess scope (default ip_score)
      --max-frame-size <n>  announced in HAPROXY-HELLO (default 16380)
      --start-timeout <s>   time a started agent has to listen (default 15)

Output:
      --json                one JSON document instead of the table
  -h, --help                show this help

  Table columns: ACK/s = valid ACKs per measured second; latencies from NOTIFY sent to ACK read;
  max gap = the longest time in the window without any ACK (the target's longest pause, GC included);
  CPU ms, CPU µs/ACK, RSS = the target's process tree during the window (when its pid is known);
  sys µs/ACK = the kernel's share of CPU µs/ACK (the socket stack);
  gen CPU = this generator's own CPU, in % of one core (near 100%: the generator was the limit).

Exit status: 0; 1 if any ACK was invalid or missing or a connection was lost; 2 on bad usage.
`;

export interface BenchCliOptions {
  readonly agent: string | undefined;
  readonly host: string;
  readonly port: number | undefined;
  readonly path: string | undefined;
  readonly pid: number | undefined;
  readonly floor: boolean;
  readonly connections: number;
  readonly depth: number;
  readonly rate: number | undefined;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly rounds: number;
  readonly family: AddressFamily;
  readonly clients: number | undefined;
  readonly zipf: number | undefined;
  readonly messageName: string;
  readonly variable: string;
  readonly maxFrameSize: number;
  readonly startTimeoutMs: number;
  readonly json: boolean;
}

export class UsageError extends Error {}

function number(name: string, text: string | undefined, min: number, max: number, integer = true): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}: ${text}`);
  }
  return n;
}

const argSpec = {
  help: { type: 'boolean', short: 'h' },
  agent: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  path: { type: 'string' },
  pid: { type: 'string' },
  floor: { type: 'boolean' },
  connections: { type: 'string', short: 'c' },
  depth: { type: 'string', short: 'd' },
  rate: { type: 'string' },
  duration: { type: 'string', short: 't' },
  warmup: { type: 'string' },
  rounds: { type: 'string' },
  family: { type: 'string' },
  clients: { type: 'string' },
  zipf: { type: 'string' },
  message: { type: 'string' },
  variable: { type: 'string' },
  'max-frame-size': { type: 'string' },
  'start-timeout': { type: 'string' },
  json: { type: 'boolean' },
} as const;

function parseValues(argv: string[]): ReturnType<typeof parseArgs<{ options: typeof argSpec }>>['values'] {
  try {
    return parseArgs({ args: argv, strict: true, allowPositionals: false, options: argSpec }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function parseBenchArgs(argv: string[]): BenchCliOptions | 'help' {
  const values = parseValues(argv);
  if (values.help) return 'help';
  const family = values.family ?? 'ipv4';
  if (family !== 'ipv4' && family !== 'ipv6' && family !== 'mixed') throw new UsageError(`--family must be ipv4, ipv6 or mixed: ${family}`);
  const targets = [values.agent !== undefined, values.port !== undefined, values.path !== undefined].filter(Boolean).length;
  if (targets > 1) throw new UsageError('give only one of --agent, --port and --path');
  if (targets === 0 && !values.floor) throw new UsageError('nothing to measure: give --agent, --port, --path or --floor');
  if (values.agent !== undefined && !values.agent.includes('{port}')) throw new UsageError('the --agent command must contain {port}');
  if (values.pid !== undefined && targets === 0) throw new UsageError('--pid goes with --port or --path');
  if (values.pid !== undefined && values.agent !== undefined) throw new UsageError('--pid is implied by --agent');
  if (values.zipf !== undefined && values.clients === undefined) throw new UsageError('--zipf needs --clients: the Zipf law ranks a fixed set of clients');
  return {
    agent: values.agent,
    host: values.host ?? '127.0.0.1',
    port: number('port', values.port, 1, 65535),
    path: values.path,
    pid: number('pid', values.pid, 1, 2 ** 31),
    floor: values.floor ?? false,
    connections: number('connections', values.connections, 1, 10_000) ?? 1,
    depth: number('depth', values.depth, 1, 100_000) ?? 1,
    rate: number('rate', values.rate, 1, 10_000_000, false),
    durationMs: (number('duration', values.duration, 0.1, 3600, false) ?? 5) * 1000,
    warmupMs: (number('warmup', values.warmup, 0, 600, false) ?? 1) * 1000,
    rounds: number('rounds', values.rounds, 1, 100) ?? 1,
    family,
    clients: number('clients', values.clients, 1, 10_000_000),
    zipf: number('zipf', values.zipf, 0, 10, false),
    messageName: values.message ?? 'check-client-ip',
    variable: values.variable ?? 'ip_score',
    maxFrameSize: number('max-frame-size', values['max-frame-size'], 256, 0xffff_ffff) ?? 16380,
    startTimeoutMs: (number('start-timeout', values['start-timeout'], 1, 600, false) ?? 15) * 1000,
    json: values.json ?? false,
  };
}

type TargetName = 'agent' | 'floor';

interface Target {
  readonly name: TargetName;
  readonly connect: LoadTarget;
  /** Process tree measured during the window, if known. */
  readonly pid: number | undefined;
  readonly spawned: SpawnedAgent | undefined;
  readonly description: string;
}

/** One load run against one target. */
export interface RunReport {
  readonly target: TargetName;
  readonly round: number;
  readonly result: Omit<LoadResult, 'histogram'>;
  /** The target's CPU time during the window (whole process tree), when its pid is known. */
  readonly agentCpuMs: number | undefined;
  readonly agentCpuUsPerAck: number | undefined;
  /** The kernel's share of agentCpuUsPerAck (system time): the socket stack's part of the cost. */
  readonly agentSystemUsPerAck: number | undefined;
  /** RSS summed over the target's process tree at the end of the window. */
  readonly agentRssBytes: number | undefined;
  readonly agentProcesses: number | undefined;
  /** Generator CPU as a percentage of one core over the window: near 100 means the generator was the limit. */
  readonly generatorCpuPercent: number;
  /** Generator CPU per valid ACK, to compare with the target's. */
  readonly generatorCpuUsPerAck: number | undefined;
}

/** All the runs of one target combined: ACKs and times summed, latency histograms merged. */
export interface TargetSummary {
  readonly runs: number;
  readonly acks: number;
  readonly durationMs: number;
  readonly throughput: number;
  readonly latency: LatencySummary;
  /** The longest gap without an ACK over the runs, in ms. */
  readonly maxAckGapMs: number;
  readonly errors: number;
  readonly agentCpuMs: number | undefined;
  readonly agentCpuUsPerAck: number | undefined;
  /** The kernel's share of agentCpuUsPerAck. */
  readonly agentSystemUsPerAck: number | undefined;
  readonly agentRssBytes: number | undefined;
  readonly generatorCpuPercent: number;
}

/** agent / floor. Above 1 is better for throughput, worse for latency and CPU. */
export interface Ratios {
  readonly throughput: number;
  readonly p50: number;
  readonly p99: number;
  readonly cpuPerAck: number | undefined;
}

export interface BenchReport {
  readonly options: Omit<BenchCliOptions, 'json'>;
  readonly targets: Readonly<Partial<Record<TargetName, string>>>;
  readonly runs: readonly RunReport[];
  readonly summary: Readonly<Partial<Record<TargetName, TargetSummary>>>;
  readonly ratio: Ratios | undefined;
}

const floorAgentScript = fileURLToPath(new URL('./floor-agent.js', import.meta.url));

async function startTarget(name: TargetName, argv: string[], options: BenchCliOptions): Promise<Target> {
  const port = await freePort(options.host);
  const resolved = argv.map((a) => a.replaceAll('{port}', String(port)).replaceAll('{host}', options.host));
  const spawned = await spawnAgent(resolved, { host: options.host, port, startTimeoutMs: options.startTimeoutMs });
  return {
    name,
    connect: { host: options.host, port },
    pid: spawned.pid,
    spawned,
    description: `${resolved.join(' ')} (pid ${spawned.pid})`,
  };
}

async function measure(target: Target, round: number, options: BenchCliOptions): Promise<{ report: RunReport; histogram: LatencyHistogram }> {
  let before: TreeStats | undefined;
  let after: TreeStats | undefined;
  const { pid } = target;
  const { histogram, ...result } = await runLoad({
    target: target.connect,
    connections: options.connections,
    depth: options.depth,
    ...(options.rate === undefined ? {} : { rate: options.rate }),
    durationMs: options.durationMs,
    warmupMs: options.warmupMs,
    family: options.family,
    ...(options.clients === undefined ? {} : { clients: options.clients }),
    ...(options.zipf === undefined ? {} : { zipf: options.zipf }),
    messageName: options.messageName,
    variable: options.variable,
    maxFrameSize: options.maxFrameSize,
    // Sampled exactly at the window boundaries, so warm-up and drain are not charged to the agent.
    onPhase: (phase) => {
      if (pid === undefined) return;
      if (phase === 'measure') before = readTreeStats(pid);
      else after = readTreeStats(pid);
    },
  });
  const agentCpuMs = before !== undefined && after !== undefined ? treeCpuDelta(before, after) : undefined;
  const agentSystemMs = before !== undefined && after !== undefined ? treeSystemDelta(before, after) : undefined;
  return {
    histogram,
    report: {
      target: target.name,
      round,
      result,
      agentCpuMs,
      agentCpuUsPerAck: agentCpuMs !== undefined && result.acks > 0 ? (agentCpuMs * 1000) / result.acks : undefined,
      agentSystemUsPerAck: agentSystemMs !== undefined && result.acks > 0 ? (agentSystemMs * 1000) / result.acks : undefined,
      agentRssBytes: after?.rssBytes,
      agentProcesses: after?.processes.length,
      generatorCpuPercent: result.durationMs > 0 ? (100 * result.generatorCpuMs) / result.durationMs : 0,
      generatorCpuUsPerAck: result.acks > 0 ? (result.generatorCpuMs * 1000) / result.acks : undefined,
    },
  };
}

function summarize(runs: readonly RunReport[], histograms: readonly LatencyHistogram[]): TargetSummary {
  const merged = new LatencyHistogram((histograms[0] as LatencyHistogram).limitUs);
  for (const h of histograms) merged.merge(h);
  const acks = runs.reduce((n, r) => n + r.result.acks, 0);
  const durationMs = runs.reduce((n, r) => n + r.result.durationMs, 0);
  const measured = runs.every((r) => r.agentCpuMs !== undefined);
  const agentCpuMs = measured ? runs.reduce((n, r) => n + (r.agentCpuMs as number), 0) : undefined;
  // Each run's system time, back from its per-ACK figure: summed like the CPU time.
  const agentSystemMs = measured ? runs.reduce((n, r) => n + ((r.agentSystemUsPerAck ?? 0) * r.result.acks) / 1000, 0) : undefined;
  return {
    runs: runs.length,
    acks,
    durationMs,
    throughput: durationMs > 0 ? (acks * 1000) / durationMs : 0,
    latency: merged.summary(),
    maxAckGapMs: Math.max(...runs.map((r) => r.result.maxAckGapMs)),
    errors: runs.reduce((n, r) => n + r.result.errors, 0),
    agentCpuMs,
    agentCpuUsPerAck: agentCpuMs !== undefined && acks > 0 ? (agentCpuMs * 1000) / acks : undefined,
    agentSystemUsPerAck: agentSystemMs !== undefined && acks > 0 ? (agentSystemMs * 1000) / acks : undefined,
    agentRssBytes: measured ? Math.max(...runs.map((r) => r.agentRssBytes ?? 0)) : undefined,
    generatorCpuPercent: durationMs > 0 ? (100 * runs.reduce((n, r) => n + r.result.generatorCpuMs, 0)) / durationMs : 0,
  };
}

function ratios(agent: TargetSummary, floor: TargetSummary): Ratios {
  const div = (a: number, b: number): number => (b > 0 ? a / b : NaN);
  return {
    throughput: div(agent.throughput, floor.throughput),
    p50: div(agent.latency.p50Us, floor.latency.p50Us),
    p99: div(agent.latency.p99Us, floor.latency.p99Us),
    cpuPerAck: agent.agentCpuUsPerAck !== undefined && floor.agentCpuUsPerAck !== undefined ? div(agent.agentCpuUsPerAck, floor.agentCpuUsPerAck) : undefined,
  };
}

export interface BenchHooks {
  /** Once the targets are up (and started, when the bench starts them): name -> description. */
  readonly onTargets?: (targets: Readonly<Partial<Record<TargetName, string>>>) => void;
  /** After each run, for progressive output. */
  readonly onRun?: (run: RunReport) => void;
}

/** Runs the benchmark described by `options`; every process it starts is stopped before it returns. */
export async function runBench(options: BenchCliOptions, hooks: BenchHooks = {}): Promise<BenchReport> {
  clockTicksPerSecond(); // asks getconf now rather than inside the first window
  const targets: Target[] = [];
  const stopAll = (): Promise<unknown> => Promise.all(targets.map((t) => t.spawned?.stop()));
  // Ctrl-C or a kill in the middle of a run: the agents are in their own process groups, stop them first.
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`spop-bench: ${signal}, stopping the agents\n`);
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (options.agent !== undefined) {
      targets.push(await startTarget('agent', splitCommand(options.agent), options));
    } else if (options.port !== undefined || options.path !== undefined) {
      const connect: LoadTarget = options.path !== undefined ? { path: options.path } : { host: options.host, port: options.port as number };
      const where = options.path ?? `${options.host}:${options.port}`;
      targets.push({
        name: 'agent',
        connect,
        pid: options.pid,
        spawned: undefined,
        description: options.pid !== undefined ? `${where} (pid ${options.pid})` : where,
      });
    }
    if (options.floor) {
      targets.push(await startTarget('floor', [process.execPath, floorAgentScript, '--port', '{port}', '--host', '{host}'], options));
    }

    const descriptions = Object.fromEntries(targets.map((t) => [t.name, t.description]));
    hooks.onTargets?.(descriptions);

    const runs: RunReport[] = [];
    const histograms = new Map<TargetName, LatencyHistogram[]>();
    for (let round = 1; round <= options.rounds; round++) {
      // ABBA order: agent, floor, floor, agent... a drift in between hits both alike.
      const order = round % 2 === 1 ? targets : [...targets].reverse();
      for (const target of order) {
        if (target.spawned?.exited) throw new Error(`the ${target.name} exited:\n${target.spawned.output()}`);
        const { report, histogram } = await measure(target, round, options);
        runs.push(report);
        hooks.onRun?.(report);
        const list = histograms.get(target.name) ?? [];
        list.push(histogram);
        histograms.set(target.name, list);
      }
    }

    const summary: Partial<Record<TargetName, TargetSummary>> = {};
    for (const target of targets) {
      summary[target.name] = summarize(
        runs.filter((r) => r.target === target.name),
        histograms.get(target.name) ?? [],
      );
    }
    const { json: _json, ...shown } = options;
    return {
      options: shown,
      targets: descriptions,
      runs,
      summary,
      ratio: summary.agent !== undefined && summary.floor !== undefined ? ratios(summary.agent, summary.floor) : undefined,
    };
  } finally {
    await stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

// ---- human-readable output ----

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const fixed = (n: number | undefined, digits: number): string => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits));
const mib = (bytes: number | undefined): string => (bytes === undefined ? '-' : (bytes / 1048576).toFixed(1));

const COLUMNS = [
  'target',
  'round',
  'ACK/s',
  'p50 µs',
  'p90 µs',
  'p99 µs',
  'max µs',
  'max gap ms',
  'errors',
  'CPU ms',
  'CPU µs/ACK',
  'sys µs/ACK',
  'RSS MiB',
  'gen CPU',
];

function row(cells: string[]): string {
  return cells.map((c, i) => (i < 2 ? c.padEnd(i === 0 ? 6 : 5) : c.padStart((COLUMNS[i] as string).length + 2))).join(' ');
}

function runRow(r: RunReport): string {
  const l = r.result.latency;
  return row([
    r.target,
    String(r.round),
    int(r.result.throughput),
    int(l.p50Us),
    int(l.p90Us),
    int(l.p99Us),
    int(l.maxUs),
    fixed(r.result.maxAckGapMs, 1),
    int(r.result.errors),
    r.agentCpuMs === undefined ? '-' : int(r.agentCpuMs),
    fixed(r.agentCpuUsPerAck, 1),
    fixed(r.agentSystemUsPerAck, 1),
    mib(r.agentRssBytes),
    `${r.generatorCpuPercent.toFixed(0)}%`,
  ]);
}

function summaryRow(name: TargetName, s: TargetSummary): string {
  const l = s.latency;
  return row([
    name,
    'all',
    int(s.throughput),
    int(l.p50Us),
    int(l.p90Us),
    int(l.p99Us),
    int(l.maxUs),
    fixed(s.maxAckGapMs, 1),
    int(s.errors),
    s.agentCpuMs === undefined ? '-' : int(s.agentCpuMs),
    fixed(s.agentCpuUsPerAck, 1),
    fixed(s.agentSystemUsPerAck, 1),
    mib(s.agentRssBytes),
    `${s.generatorCpuPercent.toFixed(0)}%`,
  ]);
}

function header(options: BenchCliOptions): string {
  const s = (n: number): string => `${+(n / 1000).toFixed(3)} s`;
  return (
    `spop-bench: ${options.connections} connection${options.connections > 1 ? 's' : ''} x ${options.depth} in flight, ` +
    (options.rate === undefined ? '' : `${int(options.rate)} frames/s offered, `) +
    `${options.family}${options.clients === undefined ? '' : `, ${int(options.clients)} clients${options.zipf ? ` (Zipf ${options.zipf})` : ''}`}, ${s(options.durationMs)} measured after ${s(options.warmupMs)} of warm-up, ` +
    `${options.rounds} round${options.rounds > 1 ? 's' : ''}`
  );
}

function formatReport(report: BenchReport): string {
  const lines: string[] = [];
  for (const name of ['agent', 'floor'] as const) {
    const s = report.summary[name];
    if (s !== undefined && report.options.rounds > 1) lines.push(summaryRow(name, s));
  }
  const r = report.ratio;
  if (r !== undefined) {
    if (lines.length > 0) lines.unshift('');
    lines.push(
      '',
      `agent / floor: throughput ${fixed(r.throughput, 2)}x, p50 latency ${fixed(r.p50, 2)}x, ` +
        `p99 latency ${fixed(r.p99, 2)}x, CPU per ACK ${fixed(r.cpuPerAck, 2)}x`,
    );
  }
  const busy = report.runs.filter((run) => run.generatorCpuPercent >= 90);
  if (busy.length > 0) {
    lines.push(
      '',
      `note: the generator itself used >= 90% of a core in ${busy.map((b) => `${b.target} round ${b.round}`).join(', ')}: ` +
        'those figures are a lower bound set by the generator, not by the target.',
    );
  }
  const rate = report.options.rate;
  // 2% short: a window's edges cut a few frames either way.
  const behind = rate === undefined ? [] : report.runs.filter((run) => run.result.unsent > 0 || run.result.throughput < 0.98 * rate);
  if (behind.length > 0) {
    lines.push(
      '',
      `note: the target did not keep up with ${int(rate ?? 0)} frames/s in ` +
        `${behind.map((b) => `${b.target} round ${b.round} (${int(b.result.throughput)}/s, ${int(b.result.unsent)} dropped)`).join(', ')}: ` +
        'its latencies include the queue that built up.',
    );
  }
  const samples = report.runs.flatMap((run) => run.result.errorSamples.map((e) => `  ${run.target} round ${run.round}: ${e}`));
  if (samples.length > 0) lines.push('', 'errors:', ...samples.slice(0, 20));
  return lines.join('\n');
}

/** The command. Returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  let options: BenchCliOptions | 'help';
  try {
    options = parseBenchArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`spop-bench: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const human = !options.json;
  if (human) process.stdout.write(`${header(options)}\n`);
  let headed = false;
  let report: BenchReport;
  try {
    report = await runBench(options, {
      onTargets: (targets) => {
        if (!human) return;
        for (const [name, description] of Object.entries(targets)) process.stdout.write(`  ${name}: ${description}\n`);
      },
      onRun: (run) => {
        if (!human) return;
        if (!headed) {
          process.stdout.write(`\n${row(COLUMNS)}\n`);
          headed = true;
        }
        process.stdout.write(`${runRow(run)}\n`);
      },
    });
  } catch (err) {
    process.stderr.write(`spop-bench: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  if (human) {
    const tail = formatReport(report);
    if (tail !== '') process.stdout.write(`${tail}\n`);
  } else {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  }
  return report.runs.some((r) => r.result.errors > 0) ? 1 : 0;
}
