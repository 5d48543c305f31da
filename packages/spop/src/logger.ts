/** The logging interface the library writes to; pass your own (pino fits it) or use the default. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** A logger printing one line per event to stderr: `time level message key=value...`. */
export function consoleLogger(level: LogLevel = 'info', write: (line: string) => void = defaultWrite): Logger {
  const min = rank[level];
  const emit = (lvl: Exclude<LogLevel, 'silent'>, message: string, fields?: Record<string, unknown>): void => {
    if (rank[lvl] < min) return;
    let line = `${new Date().toISOString()} ${lvl} ${message}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        line += ` ${k}=${typeof v === 'string' ? v : stringify(v)}`;
      }
    }
    write(line);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

function stringify(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v);
}

function defaultWrite(line: string): void {
  process.stderr.write(line + '\n');
}

export const silentLogger: Logger = consoleLogger('silent');

/** At most `lines` lines of one kind per `intervalMs`. */
export interface LogRateLimit {
  readonly lines: number;
  readonly intervalMs: number;
}

interface LogWindow {
  readonly start: number;
  readonly level: Exclude<LogLevel, 'silent'>;
  logged: number;
  suppressed: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Logs events a peer can provoke at will (garbage connections, refused
 * peers) without letting it flood the log: per message, the first `lines`
 * within each interval, then, when the interval ends, one line
 * "suppressed K similar" with the message. Keyed by message, which the
 * library writes as constants, so the map stays small.
 */
export class RateLimitedLog {
  readonly #logger: Logger;
  readonly #limit: LogRateLimit;
  readonly #windows = new Map<string, LogWindow>();

  constructor(logger: Logger, limit: LogRateLimit) {
    this.#logger = logger;
    this.#limit = limit;
  }

  info(message: string, fields?: Record<string, unknown>): void {
    this.#log('info', message, fields);
  }

  warn(message: string, fields?: Record<string, unknown>): void {
    this.#log('warn', message, fields);
  }

  #log(level: Exclude<LogLevel, 'silent'>, message: string, fields: Record<string, unknown> | undefined): void {
    const now = Date.now();
    let w = this.#windows.get(message);
    if (w !== undefined && now - w.start >= this.#limit.intervalMs) {
      this.#summarise(message, w);
      w = undefined;
    }
    if (w === undefined) {
      w = { start: now, level, logged: 0, suppressed: 0, timer: undefined };
      this.#windows.set(message, w);
    }
    if (w.logged < this.#limit.lines) {
      w.logged++;
      this.#logger[level](message, fields);
      return;
    }
    w.suppressed++;
    if (w.timer === undefined) {
      const window = w;
      // The summary comes when the interval ends, even if nothing else happens; it keeps no process alive.
      w.timer = setTimeout(() => this.#summarise(message, window), w.start + this.#limit.intervalMs - now);
      w.timer.unref();
    }
  }

  #summarise(message: string, w: LogWindow): void {
    clearTimeout(w.timer);
    if (this.#windows.get(message) === w) this.#windows.delete(message);
    if (w.suppressed > 0) {
      this.#logger[w.level](`suppressed ${w.suppressed} similar`, { message, intervalMs: this.#limit.intervalMs });
    }
  }
}
