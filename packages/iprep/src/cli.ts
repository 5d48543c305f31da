/**
 * spoa [-h] [-d] [-p <port>] [-n <num-workers>]: HAProxy's reference
 * "random IP reputation" agent, built on the spop library, with a real
 * reputation mode (`--config <file>`), and subcommands (`spoa <command> ...`).
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { Agent, LOG_FORMATS, LOG_LEVELS, type Logger, MAX_MAX_FRAME_SIZE, closeOnSignals, consoleLogger, formatFrame } from 'spop';
import { type CliFlags, resolveConfig } from './config/flags.js';
import { ConfigError } from './config/index.js';
import { MAX_CONNECTIONS } from './config/sections.js';
import { parseRange } from './net/address.js';
import { LISTEN_FDS_START, SUCCESSOR_ENV, SYSTEMD_SOCKET_ENV, takeListenFd } from './net/systemd.js';
import { allowFromFilter, isLoopbackHost } from './net/peer-filter.js';
import { CHECK_CLIENT_IP, randomScoreHandler } from './random-score.js';
import type { ClusterMetricsHub } from './admin/cluster.js';
import { hasWorkerFlag, sendMessage, setWorkerFlag } from './cluster/index.js';
import { serveHandOvers } from './cluster/handover.js';
import { DEFAULT_RETIRE_DELAY_MS, type RestartResult, SUPERVISOR_ENV, WorkerSupervisor, leaveCluster, reportReady } from './cluster/supervisor.js';
import { ADMIN_PORT_WAIT_ENV, PrimaryReplacement, serveAsSuccessor } from './cluster/succession.js';
import type { ClusterStoreHost } from './store/cluster.js';
import type { OperatorCommandName } from './ctl/index.js';
import type { IprepConfig } from './types.js';
import { versionLine } from './version.js';

export const USAGE = `Usage: spoa [-h] [-d] [-p <port>] [-n <num-workers>] [options]

HAProxy SPOE agent answering check-client-ip with sess.<prefix>.ip_score (0..100).
Without a configuration file the score is random, as in HAProxy's reference agent.

  -h, --help                 show this help and exit
      --version              print the version (and Node's) and exit
  -d, --debug                debug mode: log every frame decoded and every score
  -p, --port <port>          TCP port to listen on (default 12345)
  -n, --num-workers <n>      worker processes sharing the port (default 5); dead workers are restarted
      --supervise            with -n 1 too, run the agent in a supervised worker (SIGUSR2 restarts without a gap)
  -c, --config <file>        YAML configuration (reputation mode: lists, allowlist, behaviour, admin API)
      --mode <mode>          random or reputation (default: reputation with --config, else random)
      --host <address>       address to listen on (default 127.0.0.1; elsewhere, give --allow-from)
      --allow-from <list>    addresses/CIDRs of the peers (HAProxy) served, comma-separated (default: all)
      --max-connections <n>  SPOP connections served at once, per process (default 1000)
      --socket <path>        listen on a Unix socket instead of TCP
      --max-frame-size <n>   largest frame accepted, 256..268435436 (default 65532; HAProxy's smaller value wins)
      --shutdown-timeout <ms> time in-flight requests get on SIGTERM/SIGINT (default 5000)
      --admin-host <address> admin API address (default 127.0.0.1)
      --admin-port <port>    admin API port (default 9090; 0 disables it)
      --wait-for-lists       listen only once every list loaded (default: at once, URL lists load in the background)
      --log-level <level>    debug, info, warn or error (default info; -d means debug)
      --log-format <format>  text (logfmt) or json (one object per line) (default text)

Commands (spoa help <command>, or spoa <command> -h, for each one's options):
  spoa check [--config <file>] [--haproxy <haproxy.cfg>] [--haproxy-bin <path>] [--no-measure]
                                          check the configuration, and that HAProxy's fits it, without starting
  spoa decisions list|add|delete|import   the decisions in force; add, delete, import a file of them
  spoa explain <address>                  the verdict for an address, and why
  spoa lists                              the loaded lists
  spoa reload                             reload the configuration and lists in every worker
  spoa restart [--primary]                restart the workers without closing the port (as SIGUSR2);
                                          --primary: the primary too (socket activation), for an upgrade
  spoa status                             a summary: throughput, verdicts, lists, store, workers
All but check talk to a running agent's admin API: --admin <host:port>, --token-file <file> (or
SPOA_ADMIN, SPOA_TOKEN, or -c <config>). Exit codes: 0 ok, 1 the agent said no (check: problems
found), 2 usage, 3 agent unreachable.
`;

/** A subcommand: its usage text, and a run that returns the exit code. Loaded only when used. */
interface Subcommand {
  usage(): Promise<string>;
  run(argv: readonly string[]): Promise<number>;
}

function operatorCommand(name: OperatorCommandName): Subcommand {
  return {
    usage: async () => (await import('./ctl/index.js')).commandUsage(name),
    run: async (argv) => (await import('./ctl/index.js')).runOperatorCommand(name, argv),
  };
}

/** `spoa <word> ...`: the first word names a subcommand; without one, spoa runs the agent. */
const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  check: {
    usage: async () => (await import('./check/run.js')).CHECK_USAGE,
    run: async (argv) => (await import('./check/run.js')).runCheck([...argv]),
  },
  decisions: operatorCommand('decisions'),
  explain: operatorCommand('explain'),
  lists: operatorCommand('lists'),
  reload: operatorCommand('reload'),
  restart: operatorCommand('restart'),
  status: operatorCommand('status'),
};

function subcommand(word: string | undefined): Subcommand | undefined {
  return word !== undefined && Object.hasOwn(SUBCOMMANDS, word) ? SUBCOMMANDS[word] : undefined;
}

/** Runs `spoa <subcommand> ...`, `spoa help` or `spoa help <subcommand>`; undefined when argv names none. */
async function runSubcommand(argv: readonly string[]): Promise<number | undefined> {
  const [first, ...rest] = argv;
  if (first === 'help') {
    if (rest.length === 0) {
      process.stdout.write(USAGE);
      return 0;
    }
    const named = subcommand(rest[0]);
    if (rest.length === 1 && named !== undefined) {
      process.stdout.write(await named.usage());
      return 0;
    }
    process.stderr.write(`spoa help: name one of ${Object.keys(SUBCOMMANDS).join(', ')}\n`);
    return 2;
  }
  return subcommand(first)?.run(rest);
}

// Where the command line meets the configuration file: exported here too, next to parseCli.
export { type CliFlags, resolveConfig } from './config/flags.js';

export class UsageError extends Error {}

function integer(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) throw new UsageError(`${name} must be an integer from ${min} to ${max}: ${text}`);
  return n;
}

/** `--allow-from a,b --allow-from c`: every entry an address, a CIDR prefix or a range. */
function addressList(name: string, texts: readonly string[] | undefined): string[] | undefined {
  if (texts === undefined) return undefined;
  const entries = texts
    .flatMap((t) => t.split(','))
    .map((e) => e.trim())
    .filter((e) => e !== '');
  for (const entry of entries) {
    try {
      parseRange(entry);
    } catch (e) {
      throw new UsageError(`${name}: ${(e as Error).message}`);
    }
  }
  return entries;
}

/** `--name value` where value must be one of `allowed`. */
function choice<T extends string>(name: string, text: string | undefined, allowed: readonly T[]): T | undefined {
  if (text === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(text)) throw new UsageError(`${name} must be one of ${allowed.join(', ')}: ${text}`);
  return text as T;
}

export function parseCli(argv: string[]): CliFlags | 'help' | 'version' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      help: { type: 'boolean', short: 'h' },
      debug: { type: 'boolean', short: 'd' },
      port: { type: 'string', short: 'p' },
      'num-workers': { type: 'string', short: 'n' },
      supervise: { type: 'boolean' },
      config: { type: 'string', short: 'c' },
      mode: { type: 'string' },
      host: { type: 'string' },
      socket: { type: 'string' },
      'max-frame-size': { type: 'string' },
      'allow-from': { type: 'string', multiple: true },
      'max-connections': { type: 'string' },
      'shutdown-timeout': { type: 'string' },
      'admin-host': { type: 'string' },
      'admin-port': { type: 'string' },
      'wait-for-lists': { type: 'boolean' },
      version: { type: 'boolean' },
      'log-level': { type: 'string' },
      'log-format': { type: 'string' },
    },
  });
  if (values.help) return 'help';
  if (values.version) return 'version';
  const mode = values.mode;
  if (mode !== undefined && mode !== 'random' && mode !== 'reputation') {
    throw new UsageError(`mode must be random or reputation: ${mode}`);
  }
  return {
    debug: values.debug ?? false,
    config: values.config,
    mode,
    port: integer('port', values.port, 0, 65535),
    host: values.host,
    socket: values.socket,
    workers: integer('num-workers', values['num-workers'], 1, 256),
    supervise: values.supervise,
    maxFrameSize: integer('max-frame-size', values['max-frame-size'], 256, MAX_MAX_FRAME_SIZE),
    allowFrom: addressList('allow-from', values['allow-from']),
    maxConnections: integer('max-connections', values['max-connections'], 1, MAX_CONNECTIONS),
    shutdownTimeout: integer('shutdown-timeout', values['shutdown-timeout'], 0, 3_600_000),
    adminHost: values['admin-host'],
    adminPort: integer('admin-port', values['admin-port'], 0, 65535),
    waitForLists: values['wait-for-lists'],
    logLevel: choice('log-level', values['log-level'], LOG_LEVELS),
    logFormat: choice('log-format', values['log-format'], LOG_FORMATS),
  };
}

function newAgent(config: IprepConfig, logger: Logger, debug: boolean): Agent {
  return new Agent({
    logger,
    maxFrameSize: config.agent.maxFrameSize,
    maxInFlight: config.agent.maxInFlight,
    handlerTimeout: config.agent.handlerTimeoutMs,
    maxConnections: config.listen.maxConnections,
    idleTimeout: config.listen.idleTimeoutMs,
    allowConnection: config.listen.allowFrom.length > 0 ? allowFromFilter(config.listen.allowFrom) : undefined,
    onFrame: debug ? (direction, frame, connection) => logger.debug(`${direction === 'in' ? '<-' : '->'} ${formatFrame(frame)}`, { connection }) : undefined,
  });
}

/** The socket systemd passed to the primary (socket activation), which a worker's listen reaches through it. */
function inheritedSocket(primaryFd: number | undefined): number | undefined {
  return cluster.isPrimary ? primaryFd : hasWorkerFlag(SYSTEMD_SOCKET_ENV) ? LISTEN_FDS_START : undefined;
}

async function listen(agent: Agent, config: IprepConfig, logger: Logger, fd: number | undefined): Promise<void> {
  const { socket, port, host } = config.listen;
  const address = await agent.listen(fd !== undefined ? { fd } : socket !== undefined ? { path: socket } : { port, host });
  const where = typeof address === 'string' ? address : `${address.address}:${address.port}`;
  logger.info('agent listening', { address: where, pid: process.pid, mode: config.mode, ...(fd === undefined ? {} : { socket: 'systemd' }) });
  if (typeof address !== 'string' && !isLoopbackHost(address.address) && config.listen.allowFrom.length === 0) {
    logger.warn('SPOP port reachable from other machines without listen.allow-from: whoever reaches it gets verdicts and feeds the behaviour counters', {
      address: where,
    });
  }
}

async function runRandomAgent(config: IprepConfig, logger: Logger, fd: number | undefined): Promise<void> {
  const agent = newAgent(config, logger, config.log.level === 'debug');
  const handler = randomScoreHandler({
    variable: config.variables.score,
    onScore: config.log.level === 'debug' ? (ip, score) => logger.debug('scored', { ip, score }) : undefined,
  });
  for (const name of config.messages.length > 0 ? config.messages : [CHECK_CLIENT_IP]) agent.message(name, handler);
  await listen(agent, config, logger, fd);
  const leave = (): void => void leaveCluster().finally(() => process.exit(0));
  serveHandOvers(agent, { timeoutMs: config.agent.shutdownTimeoutMs, logger, onHandedOver: leave });
  reportReady();
  closeOnSignals(agent, { timeout: config.agent.shutdownTimeoutMs, onClosed: leave });
  // SIGHUP would end the process by default; random mode has nothing to reload.
  process.on('SIGHUP', () => logger.info('SIGHUP: nothing to reload in random mode'));
}

async function runAgent(config: IprepConfig, flags: CliFlags, logger: Logger, fd: number | undefined): Promise<void> {
  if (config.mode === 'random') return runRandomAgent(config, logger, fd);
  // Loaded only in reputation mode: the random agent stays as light as the seed.
  const { runReputationAgent } = await import('./reputation-agent.js');
  const agent = newAgent(config, logger, config.log.level === 'debug');
  // A reload reads the file again with the flags on top, checked as at the start.
  const loadConfig = flags.config === undefined ? undefined : () => resolveConfig(flags);
  await runReputationAgent(agent, config, { configPath: flags.config, loadConfig, logger, debug: config.log.level === 'debug' });
  await listen(agent, config, logger, fd);
  reportReady();
}

/**
 * The primary process: starts the workers and restarts any that dies, until told to stop. In reputation
 * mode with the memory store it also holds the decisions and counters every worker shares; with the
 * admin API it relays the figures of every worker to the one answering an admin request, and a
 * `POST /reload` to every worker. SIGUSR2 restarts the workers without a gap (cluster/supervisor.ts).
 */
async function superviseWorkers(config: IprepConfig, logger: Logger, fd: number | undefined, successor: boolean): Promise<void> {
  let host: ClusterStoreHost | undefined;
  let metricsHub: ClusterMetricsHub | undefined;
  const env: Record<string, string> = {};
  setWorkerFlag(env, SUPERVISOR_ENV);
  // The workers listen on it through the primary, which keeps it open across rolling restarts.
  if (fd !== undefined) setWorkerFlag(env, SYSTEMD_SOCKET_ENV);
  // Started by the previous primary, whose workers hold the admin port until they leave.
  if (successor) setWorkerFlag(env, ADMIN_PORT_WAIT_ENV);
  if (config.mode === 'reputation' && config.store.type === 'memory') {
    const { CLUSTER_STORE_ENV, ClusterStoreHost } = await import('./store/cluster.js');
    host = new ClusterStoreHost({ decisionsFile: config.decisions.file, logger });
    await host.start(); // before any worker asks for its snapshot
    setWorkerFlag(env, CLUSTER_STORE_ENV);
  }
  if (config.mode === 'reputation' && config.admin.enabled) {
    const { CLUSTER_METRICS_ENV, ClusterMetricsHub } = await import('./admin/cluster.js');
    metricsHub = new ClusterMetricsHub();
    setWorkerFlag(env, CLUSTER_METRICS_ENV);
  }
  const supervisor: WorkerSupervisor = new WorkerSupervisor({
    workers: config.listen.workers,
    logger,
    // A rolling restart moves the live connections to the new workers: HAProxy loses none of its NOTIFY.
    handOver: true,
    replacePrimary: (): Promise<RestartResult> => replacement.replace(),
    stopTimeoutMs: config.agent.shutdownTimeoutMs + 3000,
    // A crash loop ends the primary (exit 1): a service manager starts it afresh (systemd: with its socket).
    onCrashLoop: () => {
      process.exitCode = 1;
      stop('SIGTERM');
    },
    fork: () => {
      const worker = cluster.fork(env);
      host?.attach(worker);
      metricsHub?.attach(worker);
      return {
        pid: worker.process.pid,
        onMessage: (listener) => worker.on('message', listener),
        onExit: (listener) => worker.on('exit', listener),
        kill: (signal) => worker.process.kill(signal),
        send: (message) => sendMessage(worker, message),
        // A bare handle: sent as it is, nothing in the primary reads it (cluster/handover.ts).
        sendHandle: (message, handle, callback) => worker.send(message, handle as never, {}, callback),
      };
    },
  });
  // `spoa restart --primary`: a successor from the code on disk takes the socket, connections and decisions.
  const replacement: PrimaryReplacement = new PrimaryReplacement({
    fd,
    supervisor,
    logger,
    retireDelayMs: DEFAULT_RETIRE_DELAY_MS,
    decisions: host === undefined ? undefined : () => host.encodedSnapshot(),
    exit: (code) => process.exit(code),
  });
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1);
    stopping = true;
    replacement.abort();
    logger.info('stopping workers', { signal });
    setTimeout(() => process.exit(1), config.agent.shutdownTimeoutMs + 3000).unref();
    // Every worker is gone: write the decisions file, then leave.
    void supervisor
      .stop()
      .then(() => host?.close())
      .catch((err: unknown) => logger.error('cannot close the shared store', { error: String(err) }))
      .finally(() => process.exit(process.exitCode ?? 0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // SIGHUP reloads every worker's lists and configuration.
  process.on('SIGHUP', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
  });
  // SIGUSR2: a rolling restart, new workers from the code on disk (its outcome is logged).
  process.on('SIGUSR2', () => void supervisor.restart());
  logger.info('starting workers', { workers: config.listen.workers, port: config.listen.socket ?? config.listen.port });
  supervisor.start();
  if (successor) serveAsSuccessor({ supervisor, logger, mergeDecisions: host === undefined ? undefined : (decisions) => host.merge(decisions) });
}

export async function main(argv: string[]): Promise<void> {
  const exitCode = await runSubcommand(argv);
  if (exitCode !== undefined) {
    process.exitCode = exitCode;
    return;
  }
  let flags: CliFlags | 'help' | 'version';
  let config: IprepConfig;
  let systemdFd: number | undefined;
  // Started by a primary that hands everything over to this one (cluster/succession.ts).
  const successor = cluster.isPrimary && process.send !== undefined && process.env[SUCCESSOR_ENV] === String(process.ppid);
  try {
    if (cluster.isPrimary) systemdFd = takeListenFd();
    flags = parseCli(argv);
    if (flags === 'help') {
      process.stdout.write(USAGE);
      return;
    }
    if (flags === 'version') {
      process.stdout.write(`${versionLine()}\n`);
      return;
    }
    config = await resolveConfig(flags);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`spoa: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`spoa: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  const logger = consoleLogger(config.log.level, undefined, config.log.format);
  // A single worker runs in this process unless supervised; more are node:cluster workers sharing the
  // listening socket, which the primary holds (a rolling restart, SIGUSR2, never leaves the port closed).
  const fd = inheritedSocket(systemdFd);
  if ((config.listen.workers === 1 && !config.listen.supervise) || !cluster.isPrimary) return runAgent(config, flags, logger, fd);
  await superviseWorkers(config, logger, fd, successor);
}
