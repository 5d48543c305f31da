/**
 * HELLO negotiation (docs/protocol.md §6): what HAProxy offered, what we
 * answer. Pure functions, so every rule is testable without a socket.
 */
import { type KvEntry, type TypedData, SpopError, Status } from '../codec/index.js';
import { MIN_MAX_FRAME_SIZE, type ResolvedAgentOptions } from '../options.js';

/** The only protocol version in use since 2018 (the flag byte-order fix). */
export const SPOP_VERSION = '2.0';

export interface HaproxyHello {
  supportedVersions: string[];
  maxFrameSize: number;
  capabilities: string[];
  engineId: string | undefined;
  healthcheck: boolean;
}

export interface Negotiated {
  maxFrameSize: number;
  /** Capabilities we announce, and so the ones in force on this connection. */
  capabilities: string[];
  pipelining: boolean;
  async: boolean;
  fragmentation: boolean;
}

function integerValue(d: TypedData): number | undefined {
  if (d.type === 'int32' || d.type === 'uint32' || d.type === 'int64' || d.type === 'uint64') {
    return typeof d.value === 'bigint' ? Number.MAX_SAFE_INTEGER : d.value;
  }
  return undefined;
}

const list = (text: string): string[] =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

/** Reads a HAPROXY-HELLO payload. Throws SpopError with the status to answer. */
export function readHaproxyHello(kv: readonly KvEntry[]): HaproxyHello {
  let versions: string[] | undefined;
  let maxFrameSize: number | undefined;
  let capabilities: string[] = [];
  let engineId: string | undefined;
  let healthcheck = false;
  for (const [key, value] of kv) {
    switch (key) {
      case 'supported-versions':
        if (value.type !== 'str') throw new SpopError(Status.INVALID_FRAME, 'supported-versions is not a string');
        versions = list(value.value);
        break;
      case 'max-frame-size':
        maxFrameSize = integerValue(value);
        if (maxFrameSize === undefined) throw new SpopError(Status.INVALID_FRAME, 'max-frame-size is not an integer');
        break;
      case 'capabilities':
        if (value.type !== 'str') throw new SpopError(Status.INVALID_FRAME, 'capabilities is not a string');
        capabilities = list(value.value);
        break;
      case 'engine-id':
        if (value.type === 'str') engineId = value.value;
        break;
      case 'healthcheck':
        healthcheck = value.type === 'bool' && value.value;
        break;
      default:
        break; // unknown keys are for future versions: ignore them
    }
  }
  if (versions === undefined) throw new SpopError(Status.NO_VERSION);
  if (maxFrameSize === undefined) throw new SpopError(Status.NO_MAX_FRAME_SIZE);
  return { supportedVersions: versions, maxFrameSize, capabilities, engineId, healthcheck };
}

/**
 * Parses "MAJOR.MINOR" into 1000 * MAJOR + MINOR, as HAProxy does; NaN when it is not one.
 * Comparison is numeric, so "2.00" is 2.0 and "10.0" is above "2.0".
 */
export function versionNumber(text: string): number {
  const m = /^\s*(\d+)\.(\d+)\s*$/.exec(text);
  if (!m) return NaN;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major === 0 || minor > 999) return NaN;
  return major * 1000 + minor;
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

/** The AGENT-HELLO payload. `capabilities` is always present: 3.x health checks require it. */
export function agentHelloKv(n: Pick<Negotiated, 'maxFrameSize' | 'capabilities'>): KvEntry[] {
  return [
    ['version', { type: 'str', value: SPOP_VERSION }],
    ['max-frame-size', { type: 'uint32', value: n.maxFrameSize }],
    ['capabilities', { type: 'str', value: n.capabilities.join(',') }],
  ];
}

/** The payload of a DISCONNECT frame. HAProxy 2.6 rejects messages over 255 bytes. */
export function disconnectKv(status: number, message: string): KvEntry[] {
  let text = message;
  while (Buffer.byteLength(text) > 255) text = text.slice(0, -1);
  return [
    ['status-code', { type: 'uint32', value: status }],
    ['message', { type: 'str', value: text }],
  ];
}

/** Reads a DISCONNECT payload (either direction). */
export function readDisconnect(kv: readonly KvEntry[]): { status: number; message: string } {
  let status = Status.UNKNOWN as number;
  let message = '';
  for (const [key, value] of kv) {
    if (key === 'status-code') status = integerValue(value) ?? status;
    else if (key === 'message' && value.type === 'str') message = value.value;
  }
  return { status, message };
}
