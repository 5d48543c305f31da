/**
 * The logging interface the library writes to: a message, then its fields. Use
 * {@link consoleLogger}, {@link pinoLogger} for a pino instance (whose methods take the
 * fields first), or your own.
 */
export interface Logger {
  /** A detail for debugging. */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** Something normal worth telling. */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Something wrong that the library handled. */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** A failure: a handler, a server, a bug. */
  error(message: string, fields?: Record<string, unknown>): void;
}

/** The least severe level a logger writes (`silent`: none). */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** `text`: logfmt (`time=... level=info msg="..." key=value`); `json`: one object per line. */
export type LogFormat = 'text' | 'json';
/** The formats of {@link consoleLogger}. */
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];
/** The levels a line may have, least severe first. */
export const LOG_LEVELS: readonly Exclude<LogLevel, 'silent'>[] = ['debug', 'info', 'warn', 'error'];

/**
 * A logger printing one line per event to stderr, in logfmt (`text`) or JSON. Every string is
 * quoted and escaped as needed, so a peer-provided value can never start a line of its own.
 */
export function consoleLogger(level: LogLevel = 'info', write: (line: string) => void = defaultWrite, format: LogFormat = 'text'): Logger {
  const min = rank[level];
  const render = format === 'json' ? jsonLine : logfmtLine;
  const emit = (lvl: Exclude<LogLevel, 'silent'>, message: string, fields?: Record<string, unknown>): void => {
    if (rank[lvl] < min) return;
    write(render(new Date().toISOString(), lvl, message, fields));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

function logfmtLine(time: string, level: string, message: string, fields: Record<string, unknown> | undefined): string {
  let line = `time=${time} level=${level} msg=${logfmtValue(message)}`;
  if (fields) {
    for (const [k, v] of Object.entries(fields)) line += ` ${logfmtKey(k)}=${logfmtValue(typeof v === 'string' ? v : stringify(v))}`;
  }
  return line;
}

/** Bare when it holds nothing but printable characters other than space, `"` and `=`; else JSON-quoted. */
function logfmtValue(text: string): string {
  return text !== '' && /^[\x21\x23-\x3c\x3e-\x7e\u00a0-\u2027\u202a-\uffff]+$/.test(text) ? text : quote(text);
}

/** JSON quoting, plus the line breaks JSON leaves raw (NEL, U+2028, U+2029) and other C1 controls. */
function quote(text: string): string {
  return escapeBreaks(JSON.stringify(text));
}

function escapeBreaks(json: string): string {
  return json.replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function logfmtKey(key: string): string {
  const clean = key.replace(/[^A-Za-z0-9_.:-]/g, '_');
  return clean === '' ? '_' : clean;
}

function jsonLine(time: string, level: string, message: string, fields: Record<string, unknown> | undefined): string {
  // The line's own keys first; a field of the same name cannot overwrite them (it is kept as _time ...).
  const record: Record<string, unknown> = { time, level, msg: message };
  if (fields) for (const [k, v] of Object.entries(fields)) record[Object.hasOwn(record, k) ? `_${k}` : k] = v;
  try {
    return escapeBreaks(JSON.stringify(record, jsonReplacer));
  } catch {
    // A circular field: the line still goes out, without the fields.
    return JSON.stringify({ time, level, msg: message, fields: '[unserialisable]' });
  }
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

function stringify(v: unknown): string {
  if (v instanceof Error) return v.message;
  if (v === undefined || typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v);
  } catch {
    return '[unserialisable]';
  }
}

function defaultWrite(line: string): void {
  process.stderr.write(line + '\n');
}

/** A logger that writes nothing. */
export const silentLogger: Logger = consoleLogger('silent');

/** One level method of a pino logger, as {@link pinoLogger} calls it: fields first, then the message. */
export type PinoLogMethod = (fields: Record<string, unknown>, message: string) => void;

/** The part of a pino logger (or child logger) {@link pinoLogger} uses; typed by shape, so spop does not depend on pino. */
export interface PinoLike {
  debug: PinoLogMethod;
  info: PinoLogMethod;
  warn: PinoLogMethod;
  error: PinoLogMethod;
}

/**
 * Adapts a pino logger to spop's {@link Logger}: `logger.warn(message, fields)` becomes
 * `pino.warn(fields, message)`, at the same level; pino's own level decides what is written.
 * Error values among the fields become `{ type, message }` (pino serialises only `err`).
 */
export function pinoLogger(pino: PinoLike): Logger {
  const at =
    (level: Exclude<LogLevel, 'silent'>) =>
    (message: string, fields?: Record<string, unknown>): void =>
      pino[level](fields === undefined ? {} : pinoFields(fields), message);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function pinoFields(fields: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key in fields) {
    const value = fields[key];
    if (value instanceof Error) (copy ??= { ...fields })[key] = { type: value.name, message: value.message };
  }
  return copy ?? fields;
}

/** At most `lines` lines of one kind per `intervalMs`. */
export interface LogRateLimit {
  readonly lines: number;
  readonly intervalMs: number;
}

/** A line's fields, or a function making them (called only when the line is written). */
export type LogFields = Record<string, unknown> | (() => Record<string, unknown>);

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

  /** `fields` may be a function: it runs only for lines written, so a flood of suppressed ones costs little. */
  info(message: string, fields?: LogFields): void {
    this.#log('info', message, fields);
  }

  /** Like `info`, at warn level. */
  warn(message: string, fields?: LogFields): void {
    this.#log('warn', message, fields);
  }

  #log(level: Exclude<LogLevel, 'silent'>, message: string, fields: LogFields | undefined): void {
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
      this.#logger[level](message, typeof fields === 'function' ? fields() : fields);
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
