/**
 * The handshake payloads, both sides: the key/value lists
 * of HAPROXY-HELLO, AGENT-HELLO and DISCONNECT, written and read. Which offer
 * to accept is the agent's policy (connection/hello.ts); these only say what
 * the keys mean, so a client (test kit, load generator) speaks HAProxy's side
 * with the same code the agent reads it with.
 */
import type { KvEntry, TypedData } from './types.js';
import { SpopError, Status } from './status.js';

/** The only protocol version in use since 2018 (the flag byte-order fix). */
export const SPOP_VERSION = '2.0';

/** What a HAPROXY-HELLO says, as read by `readHaproxyHello`. */
export interface HaproxyHello {
  supportedVersions: string[];
  maxFrameSize: number;
  capabilities: string[];
  engineId: string | undefined;
  healthcheck: boolean;
}

/** What an AGENT-HELLO says, as read by `readAgentHello`. */
export interface AgentHello {
  version: string;
  maxFrameSize: number;
  capabilities: string[];
}

/** What a HAPROXY-HELLO offers; anything left out is what HAProxy 2.6 sends by default. */
export interface HelloOptions {
  supportedVersions?: string;
  maxFrameSize?: number;
  capabilities?: string;
  engineId?: string;
  healthcheck?: boolean;
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

/** The HAPROXY-HELLO payload HAProxy would send (2.6 defaults unless told otherwise). */
export function haproxyHelloKv(o: HelloOptions = {}): KvEntry[] {
  const kv: KvEntry[] = [
    ['supported-versions', { type: 'str', value: o.supportedVersions ?? '2.0' }],
    ['max-frame-size', { type: 'uint32', value: o.maxFrameSize ?? 16380 }],
    ['capabilities', { type: 'str', value: o.capabilities ?? (o.healthcheck ? '' : 'pipelining,async') }],
  ];
  if (!o.healthcheck) kv.push(['engine-id', { type: 'str', value: o.engineId ?? 'c0f397ef-7909-40f6-a287-2e2f29cd5288' }]);
  else kv.push(['healthcheck', { type: 'bool', value: true }]);
  return kv;
}

/** `max-frame-size`, which both HELLOs carry: an integer of any width. */
function maxFrameSizeOf(value: TypedData): number {
  const size = integerValue(value);
  if (size === undefined) throw new SpopError(Status.INVALID_FRAME, 'max-frame-size is not an integer');
  return size;
}

/** `capabilities`, which both HELLOs carry: a comma-separated string. */
function capabilitiesOf(value: TypedData): string[] {
  if (value.type !== 'str') throw new SpopError(Status.INVALID_FRAME, 'capabilities is not a string');
  return list(value.value);
}

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
        maxFrameSize = maxFrameSizeOf(value);
        break;
      case 'capabilities':
        capabilities = capabilitiesOf(value);
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

/** The AGENT-HELLO payload. `capabilities` is always present: 3.x health checks require it. */
export function agentHelloKv(n: { readonly maxFrameSize: number; readonly capabilities: readonly string[] }): KvEntry[] {
  return [
    ['version', { type: 'str', value: SPOP_VERSION }],
    ['max-frame-size', { type: 'uint32', value: n.maxFrameSize }],
    ['capabilities', { type: 'str', value: n.capabilities.join(',') }],
  ];
}

/**
 * Reads an AGENT-HELLO payload (HAProxy's side of the handshake). Throws
 * SpopError with the status HAProxy would disconnect with. The version is
 * returned trimmed, not judged: compare it with versionNumber().
 */
export function readAgentHello(kv: readonly KvEntry[]): AgentHello {
  let version: string | undefined;
  let maxFrameSize: number | undefined;
  let capabilities: string[] = [];
  for (const [key, value] of kv) {
    switch (key) {
      case 'version':
        if (value.type !== 'str') throw new SpopError(Status.INVALID_FRAME, 'version is not a string');
        version = value.value.trim();
        break;
      case 'max-frame-size':
        maxFrameSize = maxFrameSizeOf(value);
        break;
      case 'capabilities':
        capabilities = capabilitiesOf(value);
        break;
      default:
        break;
    }
  }
  if (version === undefined) throw new SpopError(Status.NO_VERSION);
  if (maxFrameSize === undefined) throw new SpopError(Status.NO_MAX_FRAME_SIZE);
  return { version, maxFrameSize, capabilities };
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
