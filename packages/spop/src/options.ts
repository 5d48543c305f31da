/** Every option of the agent, with its default, in one place. */
import { type Logger, consoleLogger } from './logger.js';

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
  /** Logger; default: warnings and errors to stderr. */
  logger?: Logger;
  /** Called with every frame decoded or sent, for debugging (`spoa -d`). Costs a full decode per frame. */
  onFrame?: ((direction: 'in' | 'out', frame: import('./codec/index.js').Frame, connectionId: number) => void) | undefined;
}

export type ResolvedAgentOptions = Required<Omit<AgentOptions, 'onFrame'>> & Pick<AgentOptions, 'onFrame'>;

/** Smallest max-frame-size HAProxy accepts. */
export const MIN_MAX_FRAME_SIZE = 256;

export const defaultAgentOptions: Readonly<Omit<ResolvedAgentOptions, 'logger' | 'onFrame'>> = {
  maxFrameSize: 65532,
  pipelining: true,
  async: false,
  fragmentation: false,
  maxInFlight: 20,
  handlerTimeout: 1000,
  helloTimeout: 10_000,
  maxReassembledSize: 1 << 20,
};

export function resolveAgentOptions(options: AgentOptions = {}): ResolvedAgentOptions {
  const resolved: ResolvedAgentOptions = {
    ...defaultAgentOptions,
    ...stripUndefined(options),
    logger: options.logger ?? consoleLogger('warn'),
    onFrame: options.onFrame,
  };
  const { maxFrameSize, maxInFlight, handlerTimeout } = resolved;
  if (!Number.isInteger(maxFrameSize) || maxFrameSize < MIN_MAX_FRAME_SIZE || maxFrameSize > 0xffff_ffff) {
    throw new RangeError(`maxFrameSize must be an integer from ${MIN_MAX_FRAME_SIZE}: ${maxFrameSize}`);
  }
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new RangeError(`maxInFlight must be >= 1: ${maxInFlight}`);
  if (!(handlerTimeout > 0)) throw new RangeError(`handlerTimeout must be > 0: ${handlerTimeout}`);
  return resolved;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
