/**
 * spoa [-h] [-d] [-p <port>] [-n <num-workers>]: HAProxy's reference
 * "random IP reputation" agent, built on the spop library.
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { Agent, type Logger, closeOnSignals, consoleLogger, formatFrame } from 'spop';
import { CHECK_CLIENT_IP, randomScoreHandler } from './random-score.js';

export const USAGE = `Usage: spoa [-h] [-d] [-p <port>] [-n <num-workers>] [options]

HAProxy SPOE agent answering check-client-ip with sess.<prefix>.ip_score (0..100).

  -h, --help                 show this help and exit
  -d, --debug                debug mode: log every frame decoded and every score
  -p, --port <port>          TCP port to listen on (default 12345)
  -n, --num-workers <n>      worker processes sharing the port (default 5); dead workers are restarted
      --host <address>       address to listen on (default: all addresses)
      --socket <path>        listen on a Unix socket instead of TCP
      --max-frame-size <n>   largest frame accepted (default 65532; HAProxy's smaller value wins)
      --shutdown-timeout <ms> time in-flight requests get on SIGTERM/SIGINT (default 5000)
`;

interface CliOptions {
  debug: boolean;
  port: number;
  host: string | undefined;
  socket: string | undefined;
  workers: number;
  maxFrameSize: number | undefined;
  shutdownTimeout: number;
}

class UsageError extends Error {}

function integer(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) throw new UsageError(`${name} must be an integer from ${min} to ${max}: ${text}`);
  return n;
}

export function parseCli(argv: string[]): CliOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      help: { type: 'boolean', short: 'h' },
      debug: { type: 'boolean', short: 'd' },
      port: { type: 'string', short: 'p' },
      'num-workers': { type: 'string', short: 'n' },
      host: { type: 'string' },
      socket: { type: 'string' },
      'max-frame-size': { type: 'string' },
      'shutdown-timeout': { type: 'string' },
    },
  });
  if (values.help) return 'help';
  return {
    debug: values.debug ?? false,
    port: integer('port', values.port, 0, 65535) ?? 12345,
    host: values.host,
    socket: values.socket,
    workers: integer('num-workers', values['num-workers'], 1, 256) ?? 5,
    maxFrameSize: integer('max-frame-size', values['max-frame-size'], 256, 0xffffffff),
    shutdownTimeout: integer('shutdown-timeout', values['shutdown-timeout'], 0, 3_600_000) ?? 5000,
  };
}

async function runAgent(options: CliOptions, logger: Logger): Promise<void> {
  const agent = new Agent({
    logger,
    maxFrameSize: options.maxFrameSize,
    onFrame: options.debug
      ? (direction, frame, connection) => logger.debug(`${direction === 'in' ? '<-' : '->'} ${formatFrame(frame)}`, { connection })
      : undefined,
  });
  agent.message(
    CHECK_CLIENT_IP,
    randomScoreHandler({ onScore: options.debug ? (ip, score) => logger.debug('scored', { ip, score }) : undefined }),
  );
  const address = await agent.listen(
    options.socket !== undefined ? { path: options.socket } : { port: options.port, host: options.host },
  );
  const where = typeof address === 'string' ? address : `${address.address}:${address.port}`;
  logger.info('agent listening', { address: where, pid: process.pid });
  closeOnSignals(agent, { timeout: options.shutdownTimeout });
}

/** The primary process: starts the workers and restarts any that dies, until told to stop. */
function superviseWorkers(options: CliOptions, logger: Logger): void {
  let stopping = false;
  const fork = (): void => {
    cluster.fork();
  };
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    logger.warn('worker died: restarting it', { pid: worker.process.pid, code, signal });
    setTimeout(fork, 100);
  });
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info('stopping workers', { signal });
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    setTimeout(() => process.exit(1), options.shutdownTimeout + 3000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  logger.info('starting workers', { workers: options.workers, port: options.socket ?? options.port });
  for (let i = 0; i < options.workers; i++) fork();
}

export async function main(argv: string[]): Promise<void> {
  let options: CliOptions | 'help';
  try {
    options = parseCli(argv);
  } catch (err) {
    process.stderr.write(`spoa: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const logger = consoleLogger(options.debug ? 'debug' : 'info');
  // A single worker runs in this process; more are node:cluster workers sharing the listening socket.
  if (options.workers === 1 || !cluster.isPrimary) return runAgent(options, logger);
  superviseWorkers(options, logger);
}
