/**
 * A fake HAProxy: the client side of SPOP, for tests and load generators.
 * It speaks exact bytes (send any frame or raw buffer) and collects every
 * frame the agent sends.
 */
import { connect, type Socket } from 'node:net';
import {
  type AckFrame,
  type Frame,
  type FrameId,
  type HelloOptions,
  type SpoeMessage,
  FrameFlags,
  FrameParser,
  decodeFrame,
  disconnectKv,
  encodeFrame,
  haproxyHelloKv,
} from '../codec/index.js';

/** Where `FakeHaproxy.connect` connects: a TCP port (host 127.0.0.1 by default) or a Unix socket. */
export type ConnectTarget = { port: number; host?: string } | { path: string };

/** HAProxy's side of one SPOP connection, for tests: send frames or raw bytes, wait for what the agent answers. */
export class FakeHaproxy {
  readonly socket: Socket;
  readonly #parser = new FrameParser(0xffff_ffff);
  readonly #frames: Frame[] = [];
  #waiters: Array<() => void> = [];
  #ended = false;
  /** Resolves when the agent closed the connection (or it broke). */
  readonly closed: Promise<void>;
  /** Set if the agent sent bytes that do not parse. */
  error: Error | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#parser.push(chunk, (buf, start, end) => {
          // Copy: the test may keep frames after the chunk is gone.
          this.#frames.push(decodeFrame(Buffer.from(buf.subarray(start, end))));
        });
      } catch (err) {
        this.error = err as Error;
        socket.destroy();
      }
      this.#wake();
    });
    socket.on('error', () => {}); // resets are part of what tests provoke
    socket.on('close', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  /** Opens a connection to an agent; resolves once connected. */
  static connect(target: ConnectTarget): Promise<FakeHaproxy> {
    return new Promise((resolve, reject) => {
      const socket = 'path' in target ? connect(target.path) : connect(target.port, target.host ?? '127.0.0.1');
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new FakeHaproxy(socket));
      });
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Frames received and not yet taken. */
  get received(): readonly Frame[] {
    return this.#frames;
  }

  /** True once the agent closed the connection. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Writes a frame (object or raw bytes), in one write. */
  send(frame: Frame | Uint8Array): void {
    this.socket.write(frame instanceof Uint8Array ? frame : encodeFrame(frame));
  }

  /** Waits for the first received frame matching `match`, and takes it out of the queue. */
  async waitFor(match: (f: Frame) => boolean = () => true, timeoutMs = 2000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#frames.findIndex(match);
      if (i >= 0) return this.#frames.splice(i, 1)[0] as Frame;
      if (this.#ended) throw new Error(`connection closed before the expected frame${this.error ? `: ${this.error.message}` : ''}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends HAPROXY-HELLO and returns the agent's answer (AGENT-HELLO or AGENT-DISCONNECT). */
  async hello(options: HelloOptions = {}): Promise<Frame> {
    this.send({ type: 'haproxy-hello', flags: FrameFlags.FIN, streamId: 0, frameId: 0, kv: haproxyHelloKv(options) });
    return this.waitFor((f) => f.type === 'agent-hello' || f.type === 'agent-disconnect');
  }

  /** Sends one NOTIFY and waits for its ACK. */
  async notify(streamId: FrameId, frameId: FrameId, messages: SpoeMessage[], timeoutMs = 2000): Promise<AckFrame> {
    this.send({ type: 'notify', flags: FrameFlags.FIN, streamId, frameId, messages });
    return this.waitForAck(streamId, frameId, timeoutMs);
  }

  /** Waits for the ACK of a NOTIFY sent earlier. */
  waitForAck(streamId: FrameId, frameId: FrameId, timeoutMs = 2000): Promise<AckFrame> {
    return this.waitFor((f) => f.type === 'ack' && f.streamId === streamId && f.frameId === frameId, timeoutMs) as Promise<AckFrame>;
  }

  /** Sends HAPROXY-DISCONNECT. */
  disconnect(status = 0, message = 'normal'): void {
    this.send({
      type: 'haproxy-disconnect',
      flags: FrameFlags.FIN,
      streamId: 0,
      frameId: 0,
      kv: disconnectKv(status, message),
    });
  }

  /** Destroys the socket at once. */
  close(): void {
    this.socket.destroy();
  }
}
