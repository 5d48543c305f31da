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
