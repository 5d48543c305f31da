/**
 * One HAProxy connection: the SPOP state machine between a socket and the
 * registered handlers.
 *
 *   hello --HAPROXY-HELLO--> ready --shutdown()--> draining --> closing --> closed
 *     \--healthcheck HELLO: answer, then closing    \--detach()--> detaching --> detached
 *
 * A detached connection's socket goes on in another agent (`Agent.adopt`),
 * which starts it in `ready` with the negotiated state it was handed.
 *
 * Frames are parsed straight from the socket's chunks; ACKs are encoded into
 * one buffer and written once per batch (end of a chunk, or end of a
 * microtask run for async handlers), each frame whole.
 */
import type { Socket } from 'node:net';
import {
  type Action,
  type ByteBudget,
  type FrameHead,
  type FrameId,
  FrameFlags,
  FrameParser,
  type Message,
  FrameType,
  Reader,
  SpopError,
  Status,
  Writer,
  agentHelloKv,
  decodeFrame,
  disconnectKv,
  isSendableStatus,
  readDisconnect,
  readFrameHead,
  readHaproxyHello,
  statusMessage,
} from '../codec/index.js';
import type { ConnectionInfo, HandlerResult, MessageHandler } from '../handler/types.js';
import { type AgentErrorEvent, callErrorHook, toError } from '../events.js';
import type { RateLimitedLog } from '../logger.js';
import type { ResolvedAgentOptions } from '../options.js';
import {
  type AdoptedState,
  type ConnectionHandoverState,
  type DetachedConnection,
  MAX_HANDOVER_UNREAD,
  moveHandle,
  restartReading,
  stopReading,
} from './handover.js';
import { type Negotiated, negotiate } from './hello.js';
import { SPOP_VERSION } from '../codec/index.js';
import { NotifyCall } from './notify-call.js';
import type { AgentStats } from './stats.js';

/** Where a connection is in its life: see {@link SpopConnection}. */
export type ConnectionState = 'hello' | 'ready' | 'draining' | 'detaching' | 'detached' | 'closing' | 'closed';

/**
 * What a connection needs from the agent that owns it. The agent hands each
 * connection a private object, so none of this is part of the agent's API.
 */
export interface ConnectionHost {
  readonly options: ResolvedAgentOptions;
  readonly handlers: ReadonlyMap<string, MessageHandler>;
  readonly stats: AgentStats;
  /** Shared by all connections: bytes they may hold in partial frames and fragmented NOTIFY. */
  readonly partialFrameBudget: ByteBudget;
  /** Warnings a peer can provoke at will go through it. */
  readonly peerLog: RateLimitedLog;
  /** With `async`, another ready connection of the same engine, for an ACK whose connection died. */
  rerouteTarget?(from: SpopConnection): SpopConnection | undefined;
  onClose(connection: SpopConnection): void;
}

/** Network errors that mean "the peer went away": normal closes, logged at debug level. */
const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'ERR_STREAM_DESTROYED']);

/** How long after our DISCONNECT we wait for HAProxy to close before destroying the socket. */
const CLOSE_GRACE_MS = 2000;

interface Fragments {
  streamId: number | bigint;
  frameId: number | bigint;
  chunks: Buffer[];
  size: number;
}

/** One HAProxy connection of an agent (`agent.connections`): its negotiated `info`, its state and NOTIFY in flight, a graceful `shutdown` and `destroy`. Created by the agent. */
export class SpopConnection {
  readonly info: ConnectionInfo & { engineId: string | undefined; maxFrameSize: number; capabilities: string[] };
  #state: ConnectionState = 'hello';
  #negotiated: Negotiated | undefined;
  readonly #socket: Socket;
  readonly #host: ConnectionHost;
  readonly #options: ResolvedAgentOptions;
  readonly #parser: FrameParser;
  readonly #reader = new Reader();
  readonly #head: FrameHead = { typeId: 0, flags: 0, streamId: 0, frameId: 0, payloadStart: 0 };
  readonly #writer = new Writer(2048); // under 4 KiB: carved from Node's shared pool, not a buffer per connection
  readonly #sink = (buf: Buffer, start: number, end: number): boolean => this.#onFrame(buf, start, end);
  #inFlight = 0;
  /** Set by the first NOTIFY: from then on the connection is HAProxy's to keep idle. */
  #notified = false;
  /** Frames received, and their count when the partial-frame timer was armed: progress means no cut. */
  #frames = 0;
  #framesAtArm = 0;
  #partialTimer: NodeJS.Timeout | undefined;
  /** Async NOTIFY calls still running, to abort them if the connection goes. */
  readonly #pending = new Set<NotifyCall>();
  /** The last message name whose handler was found, and that handler (see #handlerOf). */
  #lastName: string | undefined;
  #lastHandler: MessageHandler | undefined;
  #fragments: Fragments | undefined;
  #inData = false;
  #flushQueued = false;
  #writeBlocked = false;
  #timer: NodeJS.Timeout | undefined;
  #drained: (() => void) | undefined;
  /** Chunks that reached #onData while detaching: passed on unparsed. */
  #held: Buffer[] = [];
  readonly #closed: Promise<void>;
  /** `performance.now()` at accept, for the duration of connection events. */
  readonly #openedAt = performance.now();

  /**
   * @internal Connections are created by their agent (`agent.handle(socket)`, `agent.adopt(...)`).
   * `adopted`: a connection handed over by another agent, ready in the state it negotiated.
   */
  constructor(socket: Socket, host: ConnectionHost, id: number, adopted?: AdoptedState) {
    this.#socket = socket;
    this.#host = host;
    this.#options = host.options;
    this.#parser = new FrameParser(host.options.maxFrameSize, host.partialFrameBudget);
    this.info = {
      id,
      remoteAddress: socket.remoteAddress,
      remotePort: socket.remotePort,
      engineId: undefined,
      maxFrameSize: host.options.maxFrameSize,
      capabilities: [],
    };
    socket.setNoDelay(true);
    this.#closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('data', this.#onData);
    socket.on('error', this.#onSocketError);
    socket.on('close', this.#onClose);
    if (adopted !== undefined) {
      // Past HELLO and NOTIFY already: no HELLO or idle timer.
      this.#negotiated = adopted;
      this.#state = 'ready';
      this.#notified = true;
      this.info.engineId = adopted.engineId;
      this.info.maxFrameSize = adopted.maxFrameSize;
      this.info.capabilities = adopted.capabilities;
      this.#parser.maxFrameSize = adopted.maxFrameSize;
      return;
    }
    this.#timer = setTimeout(() => this.#helloTimedOut(), host.options.helloTimeout);
    this.#timer.unref();
  }

  /** @internal Parses the bytes an adopted connection was handed before those of its socket (`agent.adopt`). */
  static adopted(socket: Socket, host: ConnectionHost, id: number, state: AdoptedState, unread: Buffer): SpopConnection {
    const connection = new SpopConnection(socket, host, id, state);
    if (unread.length > 0) connection.#onData(unread);
    // A detached socket is paused: it reads once the handed bytes let it (back-pressure otherwise resumes it).
    if (connection.#state === 'ready' && !connection.#parser.paused) socket.resume();
    return connection;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Resolves once the socket is closed. */
  get closed(): Promise<void> {
    return this.#closed;
  }

  // ---- input ---------------------------------------------------------------

  readonly #onData = (chunk: Buffer): void => {
    // Closing: nothing more is looked at. Pushing into the parser would buffer
    // it for nothing, and re-throw (and re-count) the error that closed us.
    if (this.#state === 'closing' || this.#state === 'closed' || this.#state === 'detached') return;
    if (this.#state === 'detaching') {
      this.#held.push(chunk);
      return;
    }
    this.#inData = true;
    try {
      this.#parser.push(chunk, this.#sink);
      // Not when the frame just handled closed us: #end() keeps the socket reading.
      if (this.#parser.paused && this.state !== 'closing') this.#socket.pause();
      this.#watchPartialFrame();
    } catch (err) {
      this.#protocolError(err);
    } finally {
      this.#inData = false;
      this.#flush();
    }
  };

  /** Arms the partial-frame timer when bytes of an incomplete frame are held (one check per chunk). */
  #watchPartialFrame(): void {
    if (this.#partialTimer !== undefined || this.#parser.held === 0 || this.#parser.paused) return;
    this.#framesAtArm = this.#frames;
    this.#partialTimer = setTimeout(() => this.#partialFrameTimerFired(), this.#options.partialFrameTimeout);
    this.#partialTimer.unref();
  }

  #partialFrameTimerFired(): void {
    this.#partialTimer = undefined;
    if (this.#state === 'closing' || this.#state === 'closed') return;
    if (this.#frames !== this.#framesAtArm) return this.#watchPartialFrame(); // frames keep completing
    if (this.#parser.held === 0 || this.#parser.paused) return; // re-armed by the next chunk if needed
    this.#host.stats.partialFrameTimeouts++;
    this.#host.peerLog.warn('partial frame not completed in time: closing', {
      connection: this.info.id,
      remote: this.info.remoteAddress,
      partialFrameTimeoutMs: this.#options.partialFrameTimeout,
    });
    this.#disconnect(Status.TIMEOUT, statusMessage(Status.TIMEOUT));
  }

  /** Handles one frame; returns false to stop reading (back-pressure or a state change). */
  #onFrame(buf: Buffer, start: number, end: number): boolean {
    const head = readFrameHead(this.#reader, buf, start, end, this.#head);
    this.#frames++;
    this.#options.onFrame?.('in', decodeFrame(buf.subarray(start, end)), this.info.id);
    switch (this.#state) {
      case 'hello':
        this.#onHelloStateFrame(head);
        break;
      case 'ready':
      case 'draining':
      case 'detaching':
        this.#onReadyStateFrame(head, end);
        break;
      default:
        return false; // closing: whatever else arrives is not looked at
    }
    return this.#state === 'ready' && this.#inFlight < this.#options.maxInFlight && !this.#writeBlocked;
  }

  #onHelloStateFrame(head: FrameHead): void {
    if (head.typeId === FrameType.HAPROXY_DISCONNECT) return this.#onHaproxyDisconnect();
    if (head.typeId !== FrameType.HAPROXY_HELLO) {
      throw new SpopError(Status.INVALID_FRAME, `expected HAPROXY-HELLO, got frame type ${head.typeId}`);
    }
    if ((head.flags & FrameFlags.FIN) === 0) throw new SpopError(Status.FRAGMENTATION_NOT_SUPPORTED, 'HELLO without FIN');
    if (head.streamId !== 0 || head.frameId !== 0) throw new SpopError(Status.INVALID_FRAME, 'HELLO with non-zero ids');
    const hello = readHaproxyHello(this.#reader.kvList());
    const negotiated = negotiate(hello, this.#options);
    clearTimeout(this.#timer);
    this.#negotiated = negotiated;
    this.info.engineId = hello.engineId;
    this.info.maxFrameSize = negotiated.maxFrameSize;
    this.info.capabilities = negotiated.capabilities;
    this.#parser.maxFrameSize = negotiated.maxFrameSize;
    this.#writeFrame(FrameType.AGENT_HELLO, () => this.#writer.kvList(agentHelloKv(negotiated)));
    if (hello.healthcheck) {
      // A health check never sends a NOTIFY: answer and close.
      this.#host.stats.healthChecks++;
      this.#options.logger.debug('health check answered', { connection: this.info.id });
      this.#end();
      return;
    }
    this.#state = 'ready';
    if (this.#options.idleTimeout > 0) {
      this.#timer = setTimeout(() => this.#idleTimedOut(), this.#options.idleTimeout);
      this.#timer.unref();
    }
    this.#options.logger.debug('connection ready', {
      connection: this.info.id,
      engineId: hello.engineId,
      maxFrameSize: negotiated.maxFrameSize,
      capabilities: negotiated.capabilities.join(','),
    });
  }

  #onReadyStateFrame(head: FrameHead, end: number): void {
    switch (head.typeId) {
      case FrameType.NOTIFY:
        if (!this.#notified) {
          this.#notified = true;
          clearTimeout(this.#timer);
        }
        return this.#onNotify(head, end);
      case FrameType.UNSET:
        return this.#onFragment(head, end);
      case FrameType.HAPROXY_DISCONNECT:
        return this.#onHaproxyDisconnect();
      case FrameType.HAPROXY_HELLO:
        throw new SpopError(Status.INVALID_FRAME, 'second HAPROXY-HELLO');
      default:
        // Unknown types are skipped by their length, as HAProxy itself does.
        this.#options.logger.debug('skipped frame of unknown type', { connection: this.info.id, type: head.typeId });
    }
  }

  #onNotify(head: FrameHead, end: number): void {
    const fin = (head.flags & FrameFlags.FIN) !== 0;
    if (!fin) {
      if (!this.#negotiated?.fragmentation) {
        throw new SpopError(Status.FRAGMENTATION_NOT_SUPPORTED, 'NOTIFY without FIN');
      }
      if (this.#fragments) throw new SpopError(Status.INTERLACED_FRAMES, 'new fragmented NOTIFY before the last one ended');
      // Copy: the chunk the payload sits in will not outlive this call for long.
      const payload = Buffer.from(this.#reader.bytes(end - this.#reader.pos));
      this.#takeFragmentBytes(payload.length);
      this.#fragments = { streamId: head.streamId, frameId: head.frameId, chunks: [payload], size: payload.length };
      return;
    }
    this.#dispatchMessages(head.streamId, head.frameId);
  }

  /** A continuation frame of a fragmented NOTIFY (HAProxy 2.6 with `fragmentation`). */
  #onFragment(head: FrameHead, end: number): void {
    const fragments = this.#fragments;
    if (!this.#negotiated?.fragmentation || fragments === undefined) {
      throw new SpopError(Status.INVALID_FRAME, 'unexpected continuation frame');
    }
    if (head.streamId !== fragments.streamId || head.frameId !== fragments.frameId) {
      throw new SpopError(Status.INTERLACED_FRAMES, 'continuation frame ids do not match');
    }
    if ((head.flags & FrameFlags.ABORT) !== 0) {
      // HAProxy gave up on this NOTIFY (2.6): forget it, no ACK is expected.
      this.#dropFragments();
      this.#options.logger.debug('fragmented NOTIFY aborted', { connection: this.info.id });
      return;
    }
    const payload = Buffer.from(this.#reader.bytes(end - this.#reader.pos));
    if (fragments.size + payload.length > this.#options.maxReassembledSize) {
      throw new SpopError(Status.FRAME_TOO_BIG, `fragmented NOTIFY above ${this.#options.maxReassembledSize} bytes`);
    }
    this.#takeFragmentBytes(payload.length);
    fragments.size += payload.length;
    fragments.chunks.push(payload);
    if ((head.flags & FrameFlags.FIN) === 0) return;
    // Pieces kept in a list and joined once: reassembly copies each byte twice, whatever their number.
    const whole = Buffer.concat(fragments.chunks, fragments.size);
    this.#dropFragments();
    this.#reader.reset(whole);
    this.#dispatchMessages(fragments.streamId, fragments.frameId);
  }

  #takeFragmentBytes(bytes: number): void {
    if (!this.#host.partialFrameBudget.take(bytes)) {
      throw new SpopError(Status.RESOURCE_ALLOCATION, 'fragmented NOTIFY payloads of all connections would exceed their budget');
    }
  }

  /** Forgets a fragmented NOTIFY and gives its bytes back. */
  #dropFragments(): void {
    const fragments = this.#fragments;
    if (fragments === undefined) return;
    this.#fragments = undefined;
    // `size` counts exactly the bytes taken from the budget.
    this.#host.partialFrameBudget.give(fragments.size);
  }

  #onHaproxyDisconnect(): void {
    const { status, message } = readDisconnect(this.#reader.kvList());
    this.#host.stats.haproxyDisconnects++;
    const fields = { connection: this.info.id, status, message };
    if (status === Status.NORMAL || status === Status.TIMEOUT) this.#options.logger.debug('HAProxy disconnected', fields);
    else this.#host.peerLog.warn('HAProxy disconnected', fields);
    this.#disconnect(Status.NORMAL, statusMessage(Status.NORMAL));
  }

  // ---- handlers ------------------------------------------------------------

  /** Reads the NOTIFY's messages at the reader and calls their handlers. */
  #dispatchMessages(streamId: FrameId, frameId: FrameId): void {
    const reader = this.#reader;
    if (reader.pos < reader.end) {
      const first = reader.message();
      // One message (the common case): no list of messages, no list of results.
      if (reader.pos >= reader.end) return this.#dispatchOne(streamId, frameId, first);
      const messages = [first, reader.message()];
      while (reader.pos < reader.end) messages.push(reader.message());
      return this.#dispatch(streamId, frameId, messages);
    }
    this.#dispatch(streamId, frameId, []);
  }

  /**
   * The handler registered for `name`. Names come interned from the reader (the same string each
   * time), so the last one found is recognised before the map is asked; handlers are never removed
   * or replaced, so what is remembered stays true.
   */
  #handlerOf(name: string): MessageHandler | undefined {
    if (name === this.#lastName) return this.#lastHandler;
    const handler = this.#host.handlers.get(name);
    if (handler !== undefined) {
      this.#lastName = name;
      this.#lastHandler = handler;
    }
    return handler;
  }

  #startCall(streamId: FrameId, frameId: FrameId, messages: Message | readonly Message[]): NotifyCall {
    const stats = this.#host.stats;
    stats.notifies++;
    stats.inFlight++;
    this.#inFlight++;
    const call = new NotifyCall(streamId, frameId, this.info, messages);
    if (this.#options.onError !== undefined) call.startedAt = performance.now();
    return call;
  }

  /** A NOTIFY of one message: its result goes straight to the ACK. */
  #dispatchOne(streamId: FrameId, frameId: FrameId, m: Message): void {
    const call = this.#startCall(streamId, frameId, m);
    const handler = this.#handlerOf(m.name);
    if (handler === undefined) {
      this.#host.stats.unknownMessages++;
      return this.#complete(call, undefined, undefined);
    }
    let result: HandlerResult | Promise<HandlerResult>;
    try {
      result = handler(m, call);
    } catch (err) {
      this.#handlerFailed(call, m.name, err);
      return this.#complete(call, undefined, undefined);
    }
    if (!isPromiseLike(result)) return this.#complete(call, undefined, result);
    if (this.#options.onError !== undefined) call.waitingOn = [m.name];
    result.then(
      (value) => {
        if (call.done) return;
        settled(call, m.name);
        this.#complete(call, undefined, value);
      },
      (err: unknown) => {
        if (call.done) return;
        settled(call, m.name);
        this.#handlerFailed(call, m.name, err);
        this.#complete(call, undefined, undefined);
      },
    );
    if (!call.done) this.#wait(call, undefined); // a thenable may have called back already
  }

  /** A NOTIFY of no message or several: results in message order, whatever finishes first. */
  #dispatch(streamId: FrameId, frameId: FrameId, messages: readonly Message[]): void {
    const call = this.#startCall(streamId, frameId, messages);
    const hooked = this.#options.onError !== undefined;
    const results = new Array<HandlerResult>(messages.length);
    // One for the loop itself: a thenable calling back at once must not complete the call before
    // every handler was called.
    let waiting = 1;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as Message;
      const handler = this.#handlerOf(m.name);
      if (handler === undefined) {
        this.#host.stats.unknownMessages++;
        continue;
      }
      let result: HandlerResult | Promise<HandlerResult>;
      try {
        result = handler(m, call);
      } catch (err) {
        this.#handlerFailed(call, m.name, err);
        continue;
      }
      if (isPromiseLike(result)) {
        waiting++;
        if (hooked) (call.waitingOn ??= []).push(m.name);
        result.then(
          (value) => {
            if (call.done) return;
            results[i] = value;
            settled(call, m.name);
            if (--waiting === 0) this.#complete(call, results, undefined);
          },
          (err: unknown) => {
            if (call.done) return;
            settled(call, m.name);
            this.#handlerFailed(call, m.name, err);
            if (--waiting === 0) this.#complete(call, results, undefined);
          },
        );
      } else {
        results[i] = result;
      }
    }
    if (--waiting === 0) return this.#complete(call, results, undefined);
    this.#wait(call, results);
  }

  /** A call whose handlers have not all settled: a place in the pending set and a timer (only calls that really wait get them). */
  #wait(call: NotifyCall, results: HandlerResult[] | undefined): void {
    this.#pending.add(call);
    call.timer = setTimeout(() => {
      this.#host.stats.handlerTimeouts++;
      this.#options.logger.warn('handler timed out: ACK sent without its actions', {
        connection: this.info.id,
        streamId: String(call.streamId),
        timeoutMs: this.#options.handlerTimeout,
      });
      const error = new Error(`handler timeout (${this.#options.handlerTimeout} ms)`);
      call.abort(error);
      this.#notifyEvent('handler-timeout', call, call.waitingOn ?? [], error);
      this.#complete(call, results, undefined);
    }, this.#options.handlerTimeout);
  }

  #handlerFailed(call: NotifyCall, message: string, err: unknown): void {
    this.#host.stats.handlerErrors++;
    this.#options.logger.error('handler failed: ACK sent without its actions', {
      connection: this.info.id,
      message,
      error: err instanceof Error ? err.message : String(err),
    });
    this.#notifyEvent('handler-error', call, [message], err);
  }

  /** Tells the `onError` hook, if any, about one NOTIFY's failure. */
  #notifyEvent(kind: 'handler-error' | 'handler-timeout' | 'invalid-action', call: NotifyCall, messages: readonly string[], err: unknown): void {
    const hook = this.#options.onError;
    if (hook === undefined) return;
    const event: AgentErrorEvent = {
      kind,
      connection: call.connection,
      streamId: call.streamId,
      frameId: call.frameId,
      messages,
      error: toError(err),
      durationMs: performance.now() - call.startedAt,
    };
    callErrorHook(hook, event, this.#host.peerLog);
  }

  /** Tells the `onError` hook, if any, that this connection is being closed on an error. */
  #connectionEvent(kind: 'protocol-error' | 'internal-error', status: number, err: unknown): void {
    const hook = this.#options.onError;
    if (hook === undefined) return;
    const event: AgentErrorEvent = { kind, connection: this.info, status, error: toError(err), durationMs: performance.now() - this.#openedAt };
    callErrorHook(hook, event, this.#host.peerLog);
  }

  /**
   * Answers a NOTIFY: `results` in message order, or for a NOTIFY of one message undefined and
   * its `result`.
   */
  #complete(call: NotifyCall, results: HandlerResult[] | undefined, result: HandlerResult): void {
    call.done = true;
    if (call.timer !== undefined) {
      // Only calls that waited have a timer and a place in #pending.
      clearTimeout(call.timer);
      this.#pending.delete(call);
    }
    this.#inFlight--;
    this.#host.stats.inFlight--;
    if (this.#state === 'ready' || this.#state === 'draining' || this.#state === 'detaching') {
      this.#writeAck(call, results, result);
    } else if (!(this.#negotiated?.async && this.#rerouteAck(call, results, result))) {
      return; // the connection is gone: HAProxy will time this NOTIFY out
    }
    if (this.#state === 'draining' || this.#state === 'detaching') {
      if (this.#inFlight === 0) this.#drained?.();
    } else if (this.#parser.paused && this.#inFlight < this.#options.maxInFlight && !this.#writeBlocked) {
      this.#resumeReading();
    }
  }

  /** With `async` (HAProxy 2.6), an ACK may go back on any connection of the same engine. */
  #rerouteAck(call: NotifyCall, results: HandlerResult[] | undefined, result: HandlerResult): boolean {
    const other = this.#host.rerouteTarget?.(this);
    if (other === undefined) return false;
    other.#writeAck(call, results, result);
    return true;
  }

  /**
   * Encodes an ACK. Actions that fail to encode (a bad value from a handler)
   * are left out; an ACK over the negotiated size goes out empty, since
   * HAProxy 3.x wedges the connection on an oversize frame.
   */
  #writeAck(call: NotifyCall, results: HandlerResult[] | undefined, result: HandlerResult): void {
    const w = this.#writer;
    const mark = w.length;
    const start = w.beginFrame(FrameType.ACK, FrameFlags.FIN, call.streamId, call.frameId);
    if (results === undefined) {
      if (result !== undefined && result !== null) this.#writeResult(call, result, 0);
    } else {
      for (let i = 0; i < results.length; i++) {
        const r = results[i];
        if (r !== undefined && r !== null) this.#writeResult(call, r, i);
      }
    }
    const length = w.endFrame(start);
    if (length > (this.#negotiated?.maxFrameSize ?? this.#options.maxFrameSize)) {
      this.#host.stats.oversizedAcks++;
      this.#options.logger.warn('ACK above max-frame-size: sent without actions', { connection: this.info.id, length });
      w.truncate(mark);
      w.endFrame(w.beginFrame(FrameType.ACK, FrameFlags.FIN, call.streamId, call.frameId));
    }
    this.#host.stats.acks++;
    this.#frameWritten(mark);
  }

  /** The actions of message `index`'s handler; left out (and reported) when they do not encode. */
  #writeResult(call: NotifyCall, result: Action | readonly Action[], index: number): void {
    const w = this.#writer;
    const before = w.length;
    try {
      if (isActionList(result)) w.actions(result);
      else w.action(result);
    } catch (err) {
      w.truncate(before);
      this.#host.stats.handlerErrors++;
      const message = call.messageName(index);
      this.#options.logger.error('handler returned an action that does not encode: left out of the ACK', {
        connection: this.info.id,
        message,
        error: err instanceof Error ? err.message : String(err),
      });
      this.#notifyEvent('invalid-action', call, [message], err);
    }
  }

  // ---- output --------------------------------------------------------------

  #writeFrame(typeId: number, payload: () => void): void {
    const mark = this.#writer.length;
    const start = this.#writer.beginFrame(typeId, FrameFlags.FIN, 0, 0);
    payload();
    this.#writer.endFrame(start);
    this.#frameWritten(mark);
  }

  #frameWritten(mark: number): void {
    if (this.#options.onFrame) {
      // Debug only: decode what we just encoded, from a copy (decoded values view their bytes, and
      // the writer's are written over once the socket has sent them).
      const bytes = this.#writer.take();
      this.#writer.bytes(bytes);
      this.#options.onFrame('out', decodeFrame(Buffer.from(bytes.subarray(mark + 4))), this.info.id);
    }
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#inData || this.#flushQueued) return; // #onData flushes when the chunk is done
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  /** One socket write for everything encoded since the last flush. */
  #flush(): void {
    if (this.#writer.length === 0 || this.#state === 'closed') return;
    const socket = this.#socket;
    if (socket.write(this.#writer.take())) {
      // Written out at once (nothing queued): the next ACKs go in the same bytes, no new buffer.
      if (socket.writableLength === 0) this.#writer.recycle();
      return;
    }
    if (this.#writeBlocked) return;
    // HAProxy reads slower than we answer: stop reading NOTIFY until it catches up.
    this.#writeBlocked = true;
    this.#socket.once('drain', () => {
      this.#writeBlocked = false;
      if (this.#state === 'ready' && this.#parser.paused && this.#inFlight < this.#options.maxInFlight) {
        this.#resumeReading();
      }
    });
  }

  #resumeReading(): void {
    this.#inData = true;
    try {
      this.#parser.resume(this.#sink);
      if (!this.#parser.paused) this.#socket.resume();
      this.#watchPartialFrame();
    } catch (err) {
      this.#protocolError(err);
    } finally {
      this.#inData = false;
      this.#flush();
    }
  }

  // ---- closing -------------------------------------------------------------

  #protocolError(err: unknown): void {
    if (!(err instanceof SpopError)) {
      // A bug of ours, not the peer's: say so, but still close only this connection.
      this.#options.logger.error('internal error on connection', { connection: this.info.id, error: String(err) });
      this.#connectionEvent('internal-error', Status.UNKNOWN, err);
      this.#disconnect(Status.UNKNOWN, statusMessage(Status.UNKNOWN));
      return;
    }
    if (err.status === Status.RESOURCE_ALLOCATION) {
      this.#host.stats.bufferLimitDisconnects++;
      this.#host.peerLog.warn('partial-frame budget exhausted: disconnecting', {
        connection: this.info.id,
        remote: this.info.remoteAddress,
        maxBufferedBytes: this.#options.maxBufferedBytes,
      });
      this.#connectionEvent('protocol-error', err.status, err);
      this.#disconnect(err.status, err.message);
      return;
    }
    this.#host.stats.protocolErrors++;
    this.#host.peerLog.warn('protocol error: disconnecting', {
      connection: this.info.id,
      remote: this.info.remoteAddress,
      status: err.status,
      error: err.message,
    });
    this.#connectionEvent('protocol-error', isSendableStatus(err.status) ? err.status : Status.UNKNOWN, err);
    this.#disconnect(err.status, err.message);
  }

  /** Sends AGENT-DISCONNECT and ends the connection. */
  #disconnect(status: number, message: string): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    const code = isSendableStatus(status) ? status : Status.UNKNOWN;
    this.#writeFrame(FrameType.AGENT_DISCONNECT, () => this.#writer.kvList(disconnectKv(code, message)));
    this.#end();
  }

  #end(): void {
    this.#state = 'closing';
    this.#flushQueued = false;
    this.#flush();
    this.#socket.end();
    // shutdown() paused the socket: keep reading (and discarding, see #onData),
    // or bytes that arrived meanwhile hide HAProxy's FIN and the socket only
    // closes when the (unref'd) grace timer fires, if the process lives that long.
    this.#socket.resume();
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS);
    this.#timer.unref();
  }

  #helloTimedOut(): void {
    if (this.#state !== 'hello') return;
    this.#host.stats.helloTimeouts++;
    this.#host.peerLog.warn('no HELLO received in time: closing', { connection: this.info.id, remote: this.info.remoteAddress });
    this.#disconnect(Status.TIMEOUT, statusMessage(Status.TIMEOUT));
  }

  #idleTimedOut(): void {
    if (this.#state !== 'ready' || this.#notified) return;
    this.#host.stats.idleTimeouts++;
    this.#host.peerLog.info('no NOTIFY since HELLO: closing idle connection', {
      connection: this.info.id,
      remote: this.info.remoteAddress,
      idleTimeoutMs: this.#options.idleTimeout,
    });
    this.#disconnect(Status.TIMEOUT, statusMessage(Status.TIMEOUT));
  }

  readonly #onSocketError = (err: NodeJS.ErrnoException): void => {
    const gone = err.code !== undefined && PEER_GONE.has(err.code);
    const fields = { connection: this.info.id, code: err.code, error: err.message };
    if (gone) this.#options.logger.debug('connection error', fields);
    else this.#host.peerLog.warn('connection error', fields);
  };

  readonly #onClose = (): void => {
    if (this.#state === 'closed' || this.#state === 'detached') return;
    this.#state = 'closed';
    clearTimeout(this.#timer);
    clearTimeout(this.#partialTimer);
    this.#parser.release();
    this.#dropFragments();
    const lost = new Error('connection closed');
    for (const call of this.#pending) {
      call.abort(lost);
      // Its ACK can go nowhere (unless `async` may reroute it): forget the call
      // now, so that neither its timer (a false "timed out") nor a handler
      // rejecting because of this abort (a false "handler failed") is reported.
      if (!this.#negotiated?.async) this.#complete(call, undefined, undefined);
    }
    this.#drained?.();
    this.#host.onClose(this);
  };

  /**
   * Graceful stop: read no more NOTIFY, let those in flight finish (up to the
   * deadline), then AGENT-DISCONNECT status 0 so that HAProxy fails whatever
   * else it queued here at once instead of waiting for its processing timeout.
   */
  async shutdown(deadlineMs: number): Promise<void> {
    if (this.#state === 'closed') return;
    if (this.#state === 'ready' || this.#state === 'hello') {
      const wasReady = this.#state === 'ready';
      this.#state = 'draining';
      this.#socket.pause();
      if (wasReady && this.#inFlight > 0) {
        await new Promise<void>((resolve) => {
          this.#drained = resolve;
          setTimeout(resolve, deadlineMs).unref();
        });
      }
      this.#flush();
      this.#disconnect(Status.NORMAL, statusMessage(Status.NORMAL));
    }
    await this.#closed;
  }

  /**
   * Takes the connection out of this agent without closing it, for another agent (in this process
   * or another) to adopt: reading stops at once, the NOTIFY already read are answered and their ACKs
   * written out, then the socket is handed back with the negotiated state and the bytes read but
   * not parsed. Only a `ready` connection with no fragmented NOTIFY pending is detached; otherwise,
   * or when what is in flight takes longer than `timeoutMs`, it is closed as `shutdown` does, and
   * undefined is returned once it is closed.
   */
  async detach(timeoutMs: number): Promise<DetachedConnection | undefined> {
    if (this.#state !== 'ready' || this.#fragments !== undefined || !stopReading(this.#socket)) {
      await this.shutdown(timeoutMs);
      return undefined;
    }
    this.#state = 'detaching';
    clearTimeout(this.#timer);
    clearTimeout(this.#partialTimer);
    this.#partialTimer = undefined;
    const socket = this.#socket;
    const settled = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
      const check = (): void => {
        if (this.#state !== 'detaching') return resolve(false); // closed meanwhile
        if (this.#inFlight > 0) return;
        this.#flush();
        if (socket.writableLength === 0) {
          clearTimeout(timer);
          resolve(true);
        } else socket.once('drain', check);
      };
      this.#drained = check;
      socket.once('close', check);
      check();
    });
    this.#drained = undefined;
    if (this.#state !== 'detaching') {
      await this.#closed;
      return undefined;
    }
    let held = 0;
    for (const chunk of this.#held) held += chunk.length;
    if (!settled || this.#parser.buffered + held + socket.readableLength > MAX_HANDOVER_UNREAD) {
      // Not idle in time (or too much read ahead): close as shutdown() does; what is in flight is lost either way.
      this.#held = [];
      this.#state = 'draining';
      restartReading(socket);
      this.#disconnect(Status.NORMAL, statusMessage(Status.NORMAL));
      await this.#closed;
      return undefined;
    }
    const pending = this.#parser.takePending();
    socket.off('data', this.#onData);
    socket.off('error', this.#onSocketError);
    socket.off('close', this.#onClose);
    const moved = moveHandle(socket);
    const unread = Buffer.concat([pending, ...this.#held, ...(moved?.buffered ?? [])]);
    this.#held = [];
    if (moved === undefined) {
      // stopReading found the handle: cannot happen, but never leave a socket nobody owns.
      socket.destroy();
      this.#onClose();
      return undefined;
    }
    this.#state = 'detached';
    this.#parser.release();
    this.#host.stats.connectionsDetached++;
    this.#host.onClose(this);
    const state: ConnectionHandoverState = {
      version: SPOP_VERSION,
      maxFrameSize: this.info.maxFrameSize,
      capabilities: [...this.info.capabilities],
      ...(this.info.engineId === undefined ? {} : { engineId: this.info.engineId }),
    };
    return { socket: moved.socket, state, unread };
  }

  /** Closes at once, without a DISCONNECT. */
  destroy(): void {
    this.#socket.destroy();
  }
}

/** Marks one of a waiting call's messages as answered (with a hook only: else nothing is tracked). */
function settled(call: NotifyCall, name: string): void {
  const waiting = call.waitingOn;
  if (waiting === undefined) return;
  const i = waiting.indexOf(name);
  if (i >= 0) waiting.splice(i, 1);
}

function isPromiseLike(v: unknown): v is PromiseLike<HandlerResult> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function isActionList(r: Action | readonly Action[]): r is readonly Action[] {
  return Array.isArray(r);
}
