/**
 * The agent server: accepts HAProxy connections, runs one SpopConnection per
 * socket, routes messages to their handlers, and stops gracefully.
 */
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { SpopConnection, type ConnectionHost } from '../connection/connection.js';
import { type DetachedConnection, MAX_HANDOVER_UNREAD, readHandoverState } from '../connection/handover.js';
import { AgentStats } from '../connection/stats.js';
import { type ByteBudget, FrameFlags, Status, disconnectKv, encodeFrame } from '../codec/index.js';
import { RateLimitedLog } from '../logger.js';
import type { MessageHandler } from '../handler/types.js';
import { type AgentOptions, type ResolvedAgentOptions, resolveAgentOptions } from '../options.js';

/** Where `agent.listen` listens: a TCP port, a Unix socket path, or an open file descriptor. */
export type ListenOptions =
  | { port: number; host?: string; backlog?: number; exclusive?: boolean }
  | { path: string; backlog?: number }
  /** A listening socket already open, e.g. passed by systemd (socket activation). */
  | { fd: number; backlog?: number };

/** Receives each connection `handOver` detached; the hand-over waits for what it returns. */
export type HandOverReceiver = (detached: DetachedConnection) => void | Promise<void>;

/** Options of `agent.close` and `closeOnSignals`. */
export interface CloseOptions {
  /** Milliseconds in-flight NOTIFY may take to finish before their connection is closed anyway. Default 5000. */
  timeout?: number;
}

/** The budget of partial-frame bytes shared by an agent's connections, kept in its stats. */
class PartialFrameBudget implements ByteBudget {
  readonly #limit: number;
  readonly #stats: AgentStats;

  constructor(limit: number, stats: AgentStats) {
    this.#limit = limit;
    this.#stats = stats;
  }

  take(bytes: number): boolean {
    if (this.#stats.partialFrameBytes + bytes > this.#limit) return false;
    this.#stats.partialFrameBytes += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#stats.partialFrameBytes -= bytes;
  }
}

/** An SPOE agent server: register message handlers with `message`, then `listen`; `close` stops gracefully. */
export class Agent {
  readonly options: ResolvedAgentOptions;
  readonly stats = new AgentStats();
  readonly #handlers = new Map<string, MessageHandler>();
  readonly #connections = new Set<SpopConnection>();
  /** What the agent's connections see of it: shared with them, kept out of the agent's API. */
  readonly #host: ConnectionHost;
  readonly #peerLog: RateLimitedLog;
  #server: Server | undefined;
  #nextConnectionId = 1;
  #closing: Promise<void> | undefined;

  constructor(options: AgentOptions = {}) {
    this.options = resolveAgentOptions(options);
    this.#peerLog = new RateLimitedLog(this.options.logger, this.options.peerLogLimit);
    this.#host = {
      options: this.options,
      handlers: this.#handlers,
      stats: this.stats,
      partialFrameBudget: new PartialFrameBudget(this.options.maxBufferedBytes, this.stats),
      peerLog: this.#peerLog,
      rerouteTarget: (from) => this.#rerouteTarget(from),
      onClose: (connection) => this.#onClose(connection),
    };
  }

  /** Registers the handler of a SPOE message (`spoe-message <name>`); messages without one get an empty ACK. */
  message(name: string, handler: MessageHandler): this {
    if (this.#handlers.has(name)) throw new Error(`a handler is already registered for message ${name}`);
    this.#handlers.set(name, handler);
    return this;
  }

  /** Open connections. */
  get connections(): ReadonlySet<SpopConnection> {
    return this.#connections;
  }

  /**
   * Serves one accepted socket (for servers you create yourself, or tests).
   * A peer `allowConnection` refuses, or one beyond `maxConnections`, is
   * closed at once: undefined is returned.
   */
  handle(socket: Socket): SpopConnection | undefined {
    if (!this.#allowed(socket)) {
      this.stats.deniedConnections++;
      this.#peerLog.warn('connection refused: peer not allowed', { remote: socket.remoteAddress });
      socket.destroy();
      return undefined;
    }
    if (this.#connections.size >= this.options.maxConnections) {
      this.stats.refusedConnections++;
      this.#peerLog.warn('connection refused: max-connections reached', {
        remote: socket.remoteAddress,
        maxConnections: this.options.maxConnections,
      });
      socket.destroy();
      return undefined;
    }
    const connection = new SpopConnection(socket, this.#host, this.#nextConnectionId++);
    this.#connections.add(connection);
    this.stats.connections++;
    this.stats.connectionsTotal++;
    if (this.#closing !== undefined) void connection.shutdown(0);
    return connection;
  }

  /**
   * Serves a connection another agent detached (`DetachedConnection`, possibly sent from another
   * process): no HELLO, the negotiated `state` as it was, `unread` parsed before the socket's bytes.
   * A state that does not check out (it is validated like anything from outside), unread bytes
   * above MAX_HANDOVER_UNREAD, `maxConnections` reached, or a peer `allowConnection` refuses: the
   * socket gets an AGENT-DISCONNECT and is closed, and undefined is returned. Never throws.
   */
  adopt(socket: Socket, state: unknown, unread: Uint8Array = new Uint8Array(0)): SpopConnection | undefined {
    const adopted = readHandoverState(state, this.options);
    const refusal =
      typeof adopted === 'string'
        ? `bad state: ${adopted}`
        : unread.length > MAX_HANDOVER_UNREAD
          ? `${unread.length} unread bytes, above ${MAX_HANDOVER_UNREAD}`
          : this.#connections.size >= this.options.maxConnections
            ? 'max-connections reached'
            : !this.#allowed(socket)
              ? 'peer not allowed' // a restart may have changed allowConnection
              : undefined;
    if (refusal !== undefined || typeof adopted === 'string') {
      this.stats.adoptionsRefused++;
      this.#peerLog.warn('connection hand-over refused: disconnecting', { remote: socket.remoteAddress, reason: refusal });
      refuse(socket);
      return undefined;
    }
    const buffer = Buffer.isBuffer(unread) ? unread : Buffer.from(unread.buffer, unread.byteOffset, unread.length);
    const connection = SpopConnection.adopted(socket, this.#host, this.#nextConnectionId++, adopted, buffer);
    this.#connections.add(connection);
    this.stats.connections++;
    this.stats.connectionsTotal++;
    this.stats.connectionsAdopted++;
    if (this.#closing !== undefined) void connection.shutdown(0);
    return connection;
  }

  #allowed(socket: Socket): boolean {
    const allow = this.options.allowConnection;
    const { remoteAddress: address, remoteFamily: family, remotePort: port } = socket;
    // No address: a Unix-socket peer (guarded by file permissions), or a TCP peer already gone.
    if (allow === undefined || address === undefined || family === undefined || port === undefined) return true;
    try {
      return allow({ address, family, port }) === true;
    } catch (err) {
      this.#peerLog.warn('allowConnection failed: peer refused', { error: err instanceof Error ? err.message : String(err) });
      return false;
    }
  }

  /** Called by a connection once its socket is closed. */
  #onClose(connection: SpopConnection): void {
    if (this.#connections.delete(connection)) this.stats.connections--;
  }

  /**
   * With `async` (HAProxy 2.6), an ACK may go back on any connection of the
   * same engine: the one to use when the NOTIFY's own connection died meanwhile.
   */
  #rerouteTarget(from: SpopConnection): SpopConnection | undefined {
    const engineId = from.info.engineId;
    if (engineId === undefined) return undefined;
    for (const c of this.#connections) {
      if (c !== from && c.state === 'ready' && c.info.engineId === engineId && c.info.capabilities.includes('async')) return c;
    }
    return undefined;
  }

  /** Listens on TCP (`port`, `host`) or a Unix socket (`path`). Resolves with the bound address. */
  listen(options: ListenOptions): Promise<AddressInfo | string> {
    if (this.#server) return Promise.reject(new Error('agent is already listening'));
    const server = createServer({ noDelay: true }, (socket) => this.handle(socket));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(options, () => {
        server.off('error', reject);
        server.on('error', (err) => this.options.logger.error('server error', { error: err.message }));
        const address = server.address();
        if (address === null) reject(new Error('server has no address'));
        else resolve(address);
      });
    });
  }

  /** The bound address, once listening. */
  address(): AddressInfo | string | null {
    return this.#server?.address() ?? null;
  }

  /**
   * Graceful stop: accept no new connection, let in-flight NOTIFY finish (up
   * to `timeout`), send AGENT-DISCONNECT status 0 on every connection, close.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#close(options.timeout ?? 5000);
    return this.#closing;
  }

  /**
   * Like close(), but each connection that can be is detached rather than closed (see
   * `SpopConnection.detach`) and given to `receive`, which hands it to another agent (`adopt`):
   * nothing is closed, so HAProxy loses nothing. The others are closed gracefully, as by close().
   * Resolves once every connection is detached or closed and every `receive` has settled.
   */
  handOver(receive: HandOverReceiver, options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#handOver(receive, options.timeout ?? 5000);
    return this.#closing;
  }

  async #handOver(receive: HandOverReceiver, timeout: number): Promise<void> {
    const server = this.#server;
    const stopped = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    await Promise.all(
      [...this.#connections].map(async (c) => {
        const detached = await c.detach(timeout);
        if (detached === undefined) return;
        try {
          await receive(detached);
        } catch (err) {
          this.options.logger.error('hand-over receiver failed: connection closed', { error: err instanceof Error ? err.message : String(err) });
          detached.socket.destroy();
        }
      }),
    );
    await stopped;
  }

  async #close(timeout: number): Promise<void> {
    const server = this.#server;
    const stopped = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    await Promise.all([...this.#connections].map((c) => c.shutdown(timeout)));
    // Connections that ignore our DISCONNECT are cut after a grace period by the connection itself.
    await stopped;
  }
}

/**
 * Closes the agent gracefully on SIGTERM and SIGINT (a second signal exits at
 * once). Returns a function that removes the handlers.
 */
export function closeOnSignals(agent: Agent, options: CloseOptions & { signals?: NodeJS.Signals[]; onClosed?: () => void } = {}): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let received = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received) process.exit(1);
    received = true;
    agent.options.logger.info('shutting down', { signal });
    void agent.close(options).then(options.onClosed ?? (() => process.exit(0)));
  };
  for (const s of signals) process.on(s, onSignal);
  return () => {
    for (const s of signals) process.off(s, onSignal);
  };
}

/** An AGENT-DISCONNECT for a connection whose state is unknown: a frame that fits any max-frame-size. */
const REFUSAL = encodeFrame({
  type: 'agent-disconnect',
  flags: FrameFlags.FIN,
  streamId: 0,
  frameId: 0,
  kv: disconnectKv(Status.UNKNOWN, 'connection hand-over refused'),
});

/** Ends a socket whose hand-over is refused with an AGENT-DISCONNECT, and cuts it if HAProxy does not close it. */
function refuse(socket: Socket): void {
  socket.on('error', () => {});
  socket.end(REFUSAL);
  socket.resume(); // reads (and drops) what HAProxy still sends, to see its FIN
  setTimeout(() => socket.destroy(), 2000).unref();
}
