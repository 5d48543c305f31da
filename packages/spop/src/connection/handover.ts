/**
 * Hand-over of an established connection from one agent to another (another
 * process, typically: a rolling restart): what travels with the socket, and
 * how it is checked on arrival. Closing a busy connection loses the NOTIFY
 * HAProxy already sent on it; handing it over loses nothing.
 */
import { Socket } from 'node:net';
import { SPOP_VERSION } from '../codec/index.js';
import { MIN_MAX_FRAME_SIZE, type ResolvedAgentOptions } from '../options.js';
import type { Negotiated } from './hello.js';

/** What a connection negotiated in its HELLO: plain JSON, to send with the socket. */
export interface ConnectionHandoverState {
  readonly version: string;
  readonly maxFrameSize: number;
  /** Capabilities in force: a subset of pipelining, async, fragmentation. */
  readonly capabilities: readonly string[];
  readonly engineId?: string;
}

/** A connection taken out of its agent: nothing of it is read or written any more by that agent. */
export interface DetachedConnection {
  /** Not reading: give it to `Agent.adopt` (here, or in a process it is sent to), or destroy it. */
  readonly socket: Socket;
  readonly state: ConnectionHandoverState;
  /** Bytes read from the socket and not parsed yet (a partial frame, or frames read but not handled). */
  readonly unread: Buffer;
}

/**
 * Most unread bytes a hand-over carries. What a detached connection holds is at most a few socket
 * reads (the parser's pending bytes and the stream's buffer), far below this.
 */
export const MAX_HANDOVER_UNREAD = 1 << 20;

/** Longest engine id taken from a hand-over (HAProxy's are UUIDs). */
const MAX_ENGINE_ID_LENGTH = 256;

const CAPABILITIES = ['pipelining', 'async', 'fragmentation'] as const;

export interface AdoptedState extends Negotiated {
  readonly engineId: string | undefined;
}

/**
 * Checks a hand-over state (it crossed a process boundary) against what this agent supports: the
 * negotiated state is a promise made to HAProxy, so an agent that cannot keep it refuses. Returns
 * the state, or why it is refused.
 */
export function readHandoverState(value: unknown, options: ResolvedAgentOptions): AdoptedState | string {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const v = value as { version?: unknown; maxFrameSize?: unknown; capabilities?: unknown; engineId?: unknown };
  if (v.version !== SPOP_VERSION) return `version is not ${SPOP_VERSION}`;
  const { maxFrameSize, capabilities, engineId } = v;
  if (typeof maxFrameSize !== 'number' || !Number.isInteger(maxFrameSize) || maxFrameSize < MIN_MAX_FRAME_SIZE) {
    return 'max-frame-size is not an integer of at least 256';
  }
  if (maxFrameSize > options.maxFrameSize) return `max-frame-size ${maxFrameSize} above this agent's ${options.maxFrameSize}`;
  if (!Array.isArray(capabilities) || capabilities.length > CAPABILITIES.length) return 'capabilities is not a short list';
  const names = new Set<string>();
  for (const c of capabilities as unknown[]) {
    if (typeof c !== 'string' || !(CAPABILITIES as readonly string[]).includes(c) || names.has(c)) return 'capabilities holds an unknown or repeated name';
    names.add(c);
  }
  const pipelining = names.has('pipelining');
  const async = names.has('async');
  const fragmentation = names.has('fragmentation');
  if ((pipelining && !options.pipelining) || (async && !options.async) || (fragmentation && !options.fragmentation)) {
    return 'a capability this agent does not announce';
  }
  if (engineId !== undefined && (typeof engineId !== 'string' || engineId.length > MAX_ENGINE_ID_LENGTH)) return 'engine-id is not a short string';
  return { maxFrameSize, capabilities: [...names], pipelining, async, fragmentation, engineId };
}

// ---- the socket ------------------------------------------------------------------------------
// A net.Socket keeps reading into its stream buffer while paused (pause() only stops 'data'
// events), and whatever it reads is lost to the next owner. So reading is stopped at the handle
// (libuv's readStop), and the handle moves to a fresh Socket that never started reading. These are
// Node internals (stable since Node 0.12, and what child_process itself does to send a socket).

interface StreamHandle {
  reading: boolean;
  readStop(): number;
  readStart(): number;
}

interface SocketInternals {
  _handle: StreamHandle | null;
}

/** The handle of a connected socket, when it has one that can stop reading. */
function handleOf(socket: Socket): StreamHandle | undefined {
  const handle = (socket as unknown as SocketInternals)._handle;
  return handle !== null && handle !== undefined && typeof handle.readStop === 'function' ? handle : undefined;
}

/**
 * Stops reading from the kernel at once; false when the socket has no handle. The stream is told it
 * still reads, so that nothing (a read() of its buffer, its read-ahead) starts it again.
 */
export function stopReading(socket: Socket): boolean {
  socket.pause();
  const handle = handleOf(socket);
  if (handle === undefined) return false;
  handle.readStop();
  handle.reading = true;
  return true;
}

/** Undoes stopReading: the socket reads again (a detach that fell back to closing the connection). */
export function restartReading(socket: Socket): void {
  const handle = handleOf(socket);
  if (handle === undefined) return;
  handle.reading = true;
  handle.readStart();
  socket.resume();
}

/**
 * Moves the handle of `socket` (stopped by stopReading) to a new Socket that does not read until
 * someone listens, and returns it with the bytes the old stream had read and not delivered. The old
 * Socket is destroyed without closing the handle (its server's count goes down).
 */
export function moveHandle(socket: Socket): { socket: Socket; buffered: Buffer[] } | undefined {
  const handle = handleOf(socket);
  if (handle === undefined) return undefined;
  (socket as unknown as SocketInternals)._handle = null;
  const buffered: Buffer[] = [];
  // Without a handle, read() only empties the stream's buffer.
  for (let chunk: unknown = socket.read(); chunk !== null; chunk = socket.read()) {
    if (Buffer.isBuffer(chunk)) buffered.push(chunk);
  }
  socket.destroy();
  const SocketWithHandle = Socket as unknown as new (options: { handle: StreamHandle; readable: boolean; writable: boolean; pauseOnCreate: boolean }) => Socket;
  return { socket: new SocketWithHandle({ handle, readable: true, writable: true, pauseOnCreate: true }), buffered };
}
