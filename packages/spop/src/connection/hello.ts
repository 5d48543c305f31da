/**
 * HELLO negotiation (docs/protocol.md §6): what HAProxy offered, what we
 * answer. Pure functions, so every rule is testable without a socket. The
 * payloads themselves are read and written by the codec (codec/handshake.ts).
 */
import { type HaproxyHello, SPOP_VERSION, SpopError, Status, versionNumber } from '../codec/index.js';
import { MIN_MAX_FRAME_SIZE, type ResolvedAgentOptions } from '../options.js';

/** The parameters of one connection, decided by `negotiate` from HAProxy's HELLO and the agent's options. */
export interface Negotiated {
  maxFrameSize: number;
  /** Capabilities we announce, and so the ones in force on this connection. */
  capabilities: string[];
  pipelining: boolean;
  async: boolean;
  fragmentation: boolean;
}

/**
 * Decides the connection's parameters. A listed "X.Y" means every X.y with
 * y <= Y (SPOE.txt), so we accept any offer of major 2.
 */
export function negotiate(hello: HaproxyHello, options: ResolvedAgentOptions): Negotiated {
  const ours = versionNumber(SPOP_VERSION);
  const supported = hello.supportedVersions.some((v) => {
    const n = versionNumber(v);
    return Math.floor(n / 1000) === Math.floor(ours / 1000) && n >= ours;
  });
  if (!supported) {
    throw new SpopError(Status.UNSUPPORTED_VERSION, `HAProxy offers ${hello.supportedVersions.join(',') || 'none'}`);
  }
  if (hello.maxFrameSize < MIN_MAX_FRAME_SIZE) {
    throw new SpopError(Status.BAD_MAX_FRAME_SIZE, `HAProxy offers ${hello.maxFrameSize}`);
  }
  const offered = new Set(hello.capabilities);
  const pipelining = options.pipelining && offered.has('pipelining');
  const async = options.async && offered.has('async');
  // HAProxy never announces fragmentation (it cannot receive fragments) but sends them when we do.
  const fragmentation = options.fragmentation;
  const capabilities: string[] = [];
  if (pipelining) capabilities.push('pipelining');
  if (async) capabilities.push('async');
  if (fragmentation) capabilities.push('fragmentation');
  return {
    maxFrameSize: Math.min(options.maxFrameSize, hello.maxFrameSize),
    capabilities,
    pipelining,
    async,
    fragmentation,
  };
}
