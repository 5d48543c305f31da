/** Every option of the agent, with its default, in one place. */
import type { AgentErrorHook } from './events.js';
import { type LogRateLimit, type Logger, consoleLogger } from './logger.js';

/** The remote end of a TCP connection, as `allowConnection` sees it. */
export interface PeerAddress {
  readonly address: string;
  /** `IPv4` or `IPv6` (an IPv4 client of a dual-stack listener shows as `::ffff:a.b.c.d`). */
  readonly family: string;
  readonly port: number;
}

/** The options of `new Agent(...)`; every one is optional (defaults in {@link defaultAgentOptions}). */
export interface AgentOptions {
  /**
   * Largest frame we accept and announce (LENGTH, excluding the 4-byte prefix).
   * The negotiated size is min(this, HAProxy's); keep it at least HAProxy's
   * `tune.bufsize - 4` so HAProxy never needs to fragment. Default 65532.
   */
  maxFrameSize?: number;
  /** Announce `pipelining` (several NOTIFY in flight per connection). Default true. */
  pipelining?: boolean;
  /** Announce `async` (2.6: ACKs may return on another connection of the same engine). Default false. */
  async?: boolean;
  /** Announce `fragmentation` (2.6: reassemble NOTIFY payloads split over several frames). Default false. */
  fragmentation?: boolean;
  /** NOTIFY frames in flight per connection before we stop reading. Default 20 (HAProxy's own bound). */
  maxInFlight?: number;
  /** Milliseconds a handler may run before its signal aborts and the ACK goes without its actions. Default 1000. */
  handlerTimeout?: number;
  /** Milliseconds a new connection may take to send its HELLO. Default 10000. */
  helloTimeout?: number;
  /** Largest reassembled fragmented NOTIFY payload, in bytes. Default 1 MiB. */
  maxReassembledSize?: number;
  /**
   * Connections served at once; beyond, a new connection is closed at once
   * (counted in `stats.refusedConnections`, logged rate-limited). Keeps file
   * descriptors and memory for everything else the process does. Default 1000.
   */
  maxConnections?: number;
  /**
   * Milliseconds a connection may stay after its HELLO without sending any
   * NOTIFY; then AGENT-DISCONNECT status 2 (what HAProxy 2.6 sends on its own
   * `timeout idle`). Connections that sent a NOTIFY are never cut: HAProxy
   * keeps those idle in its pool and closes them itself. 0 disables. Default 30000.
   */
  idleTimeout?: number;
  /**
   * Bytes all connections together may hold in partial frames (a frame whose
   * bytes are still arriving). The connection whose frame would exceed it gets
   * AGENT-DISCONNECT status 13 (resource allocation error) and is closed: a
   * paused connection would keep its bytes, and the budget, forever. At least
   * `maxFrameSize + 4`. Default 32 MiB (raised to `maxFrameSize + 4` if that is more).
   */
  maxBufferedBytes?: number;
  /**
   * Milliseconds a connection may hold a partial frame without completing
   * any frame; then AGENT-DISCONNECT status 2. HAProxy writes each frame
   * whole, so only a stalled or hostile peer keeps one hanging, and its bytes
   * from `maxBufferedBytes`. Not counted while the agent itself stops
   * reading (back-pressure). Default 10000.
   */
  partialFrameTimeout?: number;
  /**
   * Decides at accept whether a TCP peer may talk to the agent (SPOP has no
   * authentication: whoever reaches the port can ask for, and with a
   * reputation agent influence, verdicts). Refused peers are closed at once,
   * counted in `stats.deniedConnections` and logged rate-limited; a filter
   * that throws refuses. Not asked for Unix-socket peers (file permissions
   * guard those). Default: every peer is allowed.
   */
  allowConnection?: ((peer: PeerAddress) => boolean) | undefined;
  /**
   * Warnings about peers (protocol errors, refused connections, timeouts):
   * at most `lines` of each kind per `intervalMs`, then one line
   * "suppressed K similar". Default 10 lines per 10000 ms.
   */
  peerLogLimit?: LogRateLimit;
  /** Logger; default: warnings and errors to stderr. */
  logger?: Logger;
  /**
   * Called for a handler that throws or rejects, a handler timeout, an action that does not
   * encode, and a connection closed on a protocol error, with a typed event (kind, message
   * names, error, connection, duration): route them to your own telemetry. These are logged
   * either way. A hook that throws or rejects is logged and changes nothing. Default: none.
   */
  onError?: AgentErrorHook | undefined;
  /** Called with every frame decoded or sent, for debugging (`spoa -d`). Costs a full decode per frame. */
  onFrame?: ((direction: 'in' | 'out', frame: import('./codec/index.js').Frame, connectionId: number) => void) | undefined;
}

/** The options in force: every default filled in (`agent.options`). */
export type ResolvedAgentOptions = Required<Omit<AgentOptions, 'onFrame' | 'allowConnection' | 'onError'>> &
  Pick<AgentOptions, 'onFrame' | 'allowConnection' | 'onError'>;

/** Smallest max-frame-size HAProxy accepts. */
export const MIN_MAX_FRAME_SIZE = 256;

/**
 * Largest max-frame-size HAProxy can announce: its own is `tune.bufsize - 4`,
 * and HAProxy refuses a `tune.bufsize` of 256 MiB or more when HTTP is in use
 * (rounded down to a multiple of 16, that leaves 256 MiB - 16 - 4). A larger
 * value could never be negotiated, only let a peer announce frames we must buffer.
 */
export const MAX_MAX_FRAME_SIZE = 256 * 1024 * 1024 - 20;

/** The default of every option (the logger defaults to `consoleLogger('warn')`). */
export const defaultAgentOptions: Readonly<Omit<ResolvedAgentOptions, 'logger' | 'onFrame' | 'onError'>> = {
  maxFrameSize: 65532,
  pipelining: true,
  async: false,
  fragmentation: false,
  maxInFlight: 20,
  handlerTimeout: 1000,
  helloTimeout: 10_000,
  maxReassembledSize: 1 << 20,
  maxConnections: 1000,
  idleTimeout: 30_000,
  maxBufferedBytes: 32 << 20,
  partialFrameTimeout: 10_000,
  peerLogLimit: { lines: 10, intervalMs: 10_000 },
};

/** Fills in the defaults and checks every value (RangeError or TypeError when out of bounds). */
export function resolveAgentOptions(options: AgentOptions = {}): ResolvedAgentOptions {
  const given = stripUndefined(options);
  const resolved: ResolvedAgentOptions = {
    ...defaultAgentOptions,
    ...given,
    logger: options.logger ?? consoleLogger('warn'),
    onFrame: options.onFrame,
    allowConnection: options.allowConnection,
    onError: options.onError,
  };
  const { maxFrameSize, maxInFlight, handlerTimeout, maxConnections, idleTimeout, peerLogLimit } = resolved;
  if (!Number.isInteger(maxFrameSize) || maxFrameSize < MIN_MAX_FRAME_SIZE || maxFrameSize > MAX_MAX_FRAME_SIZE) {
    throw new RangeError(`maxFrameSize must be an integer from ${MIN_MAX_FRAME_SIZE} to ${MAX_MAX_FRAME_SIZE}: ${maxFrameSize}`);
  }
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new RangeError(`maxInFlight must be >= 1: ${maxInFlight}`);
  if (resolved.onError !== undefined && typeof resolved.onError !== 'function') throw new TypeError('onError must be a function');
  if (!(handlerTimeout > 0)) throw new RangeError(`handlerTimeout must be > 0: ${handlerTimeout}`);
  if (!Number.isInteger(maxConnections) || maxConnections < 1) throw new RangeError(`maxConnections must be an integer >= 1: ${maxConnections}`);
  if (!(idleTimeout >= 0) || idleTimeout > MAX_TIMER_MS) throw new RangeError(`idleTimeout must be from 0 to ${MAX_TIMER_MS}: ${idleTimeout}`);
  const { partialFrameTimeout } = resolved;
  if (!(partialFrameTimeout > 0) || partialFrameTimeout > MAX_TIMER_MS) {
    throw new RangeError(`partialFrameTimeout must be from 1 to ${MAX_TIMER_MS}: ${partialFrameTimeout}`);
  }
  if (given.maxBufferedBytes === undefined) resolved.maxBufferedBytes = Math.max(resolved.maxBufferedBytes, maxFrameSize + 4);
  if (!Number.isInteger(resolved.maxBufferedBytes) || resolved.maxBufferedBytes < maxFrameSize + 4) {
    throw new RangeError(`maxBufferedBytes must hold one whole frame (maxFrameSize + 4 = ${maxFrameSize + 4}): ${resolved.maxBufferedBytes}`);
  }
  if (!Number.isInteger(peerLogLimit.lines) || peerLogLimit.lines < 0 || !(peerLogLimit.intervalMs > 0)) {
    throw new RangeError(`peerLogLimit needs lines >= 0 and intervalMs > 0: ${JSON.stringify(peerLogLimit)}`);
  }
  return resolved;
}

/** Longest timer period: setTimeout fires at once past 2^31 - 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
