/**
 * A SPOP load generator: it plays HAProxy 3.x's side of the protocol (HELLO
 * with pipelining, then NOTIFY frames shaped like `check-client-ip` with a
 * random source address, or one drawn from a fixed set of clients, uniformly
 * or by a Zipf law), keeps `connections x depth` frames in flight, and
 * validates every ACK.
 *
 * It usually shares the machine (here: two cores) with the agent it measures,
 * so it is written to be cheap: no object is encoded or decoded per frame, no
 * allocation happens per frame, and all frames due on a connection go out in
 * one write.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  type AgentHello,
  type FrameHead,
  type KvEntry,
  ActionType,
  DataType,
  FrameFlags,
  FrameParser,
  FrameType,
  Reader,
  SPOP_VERSION,
  Writer,
  decodeFrame,
  disconnectKv,
  encodeFrame,
  formatFrame,
  haproxyHelloKv,
  readAgentHello,
  readFrameHead,
  versionNumber,
  writeVarint,
} from 'spop';
import { type LatencySummary, LatencyHistogram } from './histogram.js';

/** Where the agent listens. */
export type LoadTarget = { readonly host?: string; readonly port: number } | { readonly path: string };

/** Source addresses put in the NOTIFY frames; `mixed` picks the family at random per frame. */
export type AddressFamily = 'ipv4' | 'ipv6' | 'mixed';

/** Window boundaries reported to `onPhase`: the measured window starts at 'measure' and ends at 'drain'. */
export type LoadPhase = 'measure' | 'drain';

export interface LoadOptions {
  readonly target: LoadTarget;
  /** TCP (or Unix) connections. Default 1. */
  readonly connections?: number;
  /** NOTIFY frames kept in flight on each connection. Default 1. */
  readonly depth?: number;
  /**
   * Open loop: NOTIFY frames per second offered over all connections, released on a 1 ms schedule and
   * dealt round-robin, instead of a new frame as soon as an ACK frees a slot (closed loop, the default).
   * A frame due on a connection whose `depth` slots are busy waits for one, and that wait counts in its
   * latency: latency is measured from the moment the frame was due, not from when it was sent.
   */
  readonly rate?: number;
  /** Length of the measured window. Default 5000 ms. */
  readonly durationMs?: number;
  /** Load applied before the measured window (JIT, caches, worker start-up). Default 1000 ms. */
  readonly warmupMs?: number;
  /** Default 'ipv4'. */
  readonly family?: AddressFamily;
  /**
   * Source addresses drawn from this many distinct clients (random addresses chosen once per run)
   * instead of a new random address per frame (the default: every source is new, as in a botnet).
   */
  readonly clients?: number;
  /**
   * With `clients`: the clients' popularity follows a Zipf law of this exponent (the k-th most
   * popular client sends in proportion to 1/k^zipf: 1 is the classic web mix). Absent or 0: uniform.
   */
  readonly zipf?: number;
  /** Message name in the NOTIFY frames. Default 'check-client-ip'. */
  readonly messageName?: string;
  /** Variable the ACK must set in `sess` scope. Default 'ip_score'. */
  readonly variable?: string;
  /** max-frame-size announced in HAPROXY-HELLO. Default 16380 (HAProxy's default). */
  readonly maxFrameSize?: number;
  /** capabilities announced in HAPROXY-HELLO. Default 'pipelining' (HAProxy 3.x). */
  readonly capabilities?: string;
  /** Time allowed to connect and complete the HELLO exchange. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** Time allowed, after the window, for frames still in flight; those left are counted unanswered. Default 2000 ms. */
  readonly drainTimeoutMs?: number;
  /** Largest latency resolved to the microsecond by the histogram. Default 1 s. */
  readonly latencyLimitUs?: number;
  /** Called synchronously at the window boundaries, e.g. to sample the agent's CPU time exactly there. */
  readonly onPhase?: (phase: LoadPhase) => void;
}

export interface LoadResult {
  readonly connections: number;
  readonly depth: number;
  /** Frames per second offered (open loop), or undefined for a closed loop. */
  readonly rate: number | undefined;
  readonly family: AddressFamily;
  /** Distinct source clients, or undefined for a new random address per frame. */
  readonly clients: number | undefined;
  /** Zipf exponent of the clients' popularity (0: uniform), undefined without `clients`. */
  readonly zipf: number | undefined;
  /** Actual length of the warm-up, in ms. */
  readonly warmupMs: number;
  /** Actual length of the measured window, in ms. */
  readonly durationMs: number;
  /** NOTIFY frames sent during the measured window. */
  readonly sent: number;
  /** Valid ACKs received during the measured window. */
  readonly acks: number;
  /** Valid ACKs per second of the measured window. */
  readonly throughput: number;
  /** Send-to-ACK latency of the ACKs counted in `acks`. */
  readonly latency: LatencySummary;
  /**
   * Longest time in the measured window without a valid ACK from any connection (from the window's
   * start to the first, between two, from the last to the window's end), in ms: the longest pause of
   * the target as the load sees it, its GC pauses included. Chunks are timed as they arrive.
   */
  readonly maxAckGapMs: number;
  /** invalidAcks + unanswered + connectionErrors, over the whole run (warm-up and drain included). */
  readonly errors: number;
  /** ACKs with unknown ids, without FIN, or not setting exactly sess.<variable> to an integer 0..100. */
  readonly invalidAcks: number;
  /** NOTIFY frames never answered (connection lost, or still pending when the drain timed out). */
  readonly unanswered: number;
  /** Connections lost before the end (closed, reset, AGENT-DISCONNECT, unparsable bytes). */
  readonly connectionErrors: number;
  /** The first few error descriptions. */
  readonly errorSamples: readonly string[];
  /** NOTIFY frames sent and valid ACKs received over the whole run. */
  readonly totalSent: number;
  readonly totalAcks: number;
  /**
   * Open loop only: frames that fell due but were dropped, because their connection already had
   * BACKLOG_LIMIT frames waiting for a slot (or was lost). Above 0, the target did not keep up with `rate`;
   * below that, `throughput` short of `rate` says the same. Frames still waiting when the window ends are
   * neither sent nor counted here.
   */
  readonly unsent: number;
  /** CPU time (user + system) this process used during the measured window: tells whether the generator was the bottleneck. */
  readonly generatorCpuMs: number;
  /** The latency samples of the window, to compute other percentiles or merge runs. */
  readonly histogram: LatencyHistogram;
}

const MAX_ERROR_SAMPLES = 10;
/** Open loop: frames a connection may have waiting for a free slot before further ones are dropped as unsent. */
const BACKLOG_LIMIT = 4096;
const READ_BUFFER_SIZE = 64 * 1024;

/** State shared by the connections of one run. Plain fields: the hot path reads them once per frame. */
class RunState {
  /** NOTIFY frames are sent during warm-up and window, not while draining. */
  sending = true;
  /** ACKs count (and latencies are recorded) only inside the window. */
  measuring = false;
  sent = 0;
  acks = 0;
  totalSent = 0;
  totalAcks = 0;
  invalidAcks = 0;
  connectionErrors = 0;
  unsent = 0;
  live = 0;
  /** Arrival of the last valid ACK in the window (or the window's start), and the longest gap so far. */
  lastAckAt = 0;
  maxAckGapMs = 0;
  readonly errorSamples: string[] = [];
  readonly histogram: LatencyHistogram;
  #wake: (() => void) | null = null;

  constructor(latencyLimitUs: number) {
    this.histogram = new LatencyHistogram(latencyLimitUs);
  }

  /** `describe` is only called while samples are still wanted, so a flood of errors builds no strings. */
  invalidAck(describe: () => string): void {
    this.invalidAcks++;
    this.#sample(describe);
  }

  connectionError(describe: () => string): void {
    this.connectionErrors++;
    this.#sample(describe);
  }

  #sample(describe: () => string): void {
    if (this.errorSamples.length < MAX_ERROR_SAMPLES) this.errorSamples.push(describe());
  }

  /** Resolves when `done()` holds (re-checked on each `poke`) or after `ms`. */
  waitUntil(done: () => boolean, ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (done()) {
        resolve();
        return;
      }
      const finish = (): void => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.#wake = () => {
        if (done()) finish();
      };
    });
  }

  /** Called on the rare events a wait may be waiting for: a connection lost, a connection drained. */
  poke(): void {
    this.#wake?.();
  }
}

/** Bytes that never change between frames, computed once per run. */
interface Templates {
  /** NOTIFY payload up to the IPV4 value: name, nb-args 1, unnamed arg, type byte. */
  readonly notify4: Uint8Array;
  readonly notify6: Uint8Array;
  /** Largest NOTIFY on the wire, length prefix and a 10-byte stream-id included. */
  readonly maxNotifySize: number;
  /** ACK payload up to the value's type byte: SET-VAR, 3 args, scope sess, variable name. */
  readonly ackPrefix: Uint8Array;
  readonly hello: Buffer;
  readonly disconnect: Buffer;
}

/**
 * A fixed set of source clients shared by the connections of a run, and how often each sends.
 * Typed arrays: a draw is a binary search over the cumulative probabilities (Zipf) or a multiply
 * (uniform), then the address's words are copied; nothing is allocated per frame.
 */
class SourceClients {
  /** Four words per client, big-endian order; an IPv4 client uses the first. */
  readonly #words: Uint32Array;
  /** 1 for an IPv6 client. */
  readonly #v6: Uint8Array;
  /** Cumulative probability of clients 0..i (most popular first); null for a uniform draw. */
  readonly #cdf: Float64Array | null;
  readonly #count: number;

  constructor(count: number, family: AddressFamily, zipf: number) {
    this.#count = count;
    const words = new Uint32Array(count * 4);
    const random = randomBytes(words.byteLength);
    words.set(new Uint32Array(random.buffer, random.byteOffset, words.length));
    this.#words = words;
    this.#v6 = new Uint8Array(count);
    for (let i = 0; i < count; i++) this.#v6[i] = family === 'ipv6' || (family === 'mixed' && (words[i * 4 + 3] as number) & 1) ? 1 : 0;
    if (zipf === 0) {
      this.#cdf = null;
      return;
    }
    const cdf = new Float64Array(count);
    let sum = 0;
    for (let k = 0; k < count; k++) {
      sum += 1 / (k + 1) ** zipf;
      cdf[k] = sum;
    }
    for (let k = 0; k < count; k++) cdf[k] = (cdf[k] as number) / sum;
    this.#cdf = cdf;
  }

  /** The client drawn by `u` in [0, 1). */
  pick(u: number): number {
    const cdf = this.#cdf;
    if (cdf === null) return Math.floor(u * this.#count);
    let low = 0;
    let high = this.#count - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((cdf[mid] as number) > u) high = mid;
      else low = mid + 1;
    }
    return low;
  }

  isV6(client: number): boolean {
    return this.#v6[client] === 1;
  }

  /** Word `k` (0..3) of the client's address. */
  word(client: number, k: number): number {
    return this.#words[client * 4 + k] as number;
  }
}

function buildTemplates(messageName: string, variable: string, maxFrameSize: number, capabilities: string): Templates {
  // The payloads come from the library's own encoder, then the address bytes are cut off to be patched per frame.
  const payload = (type: 'ipv4' | 'ipv6', value: string, size: number): Uint8Array => {
    const bytes = new Writer(64).message({ name: messageName, args: [{ name: '', value: { type, value } }] }).take();
    return Uint8Array.prototype.slice.call(bytes, 0, bytes.length - size);
  };
  const notify4 = payload('ipv4', '0.0.0.0', 4);
  const notify6 = payload('ipv6', '::', 16);
  const maxNotifySize = 4 + 1 + 4 + 10 + 1 + notify6.length + 16;
  if (maxNotifySize - 4 > maxFrameSize) throw new RangeError(`a NOTIFY would exceed max-frame-size ${maxFrameSize}`);
  const action = new Writer(32).byte(1).byte(3).byte(1).string(variable).take();
  return {
    notify4,
    notify6,
    maxNotifySize,
    ackPrefix: Uint8Array.prototype.slice.call(action),
    hello: encodeFrame({
      type: 'haproxy-hello',
      flags: FrameFlags.FIN,
      streamId: 0,
      frameId: 0,
      // One engine id per run: 3.x uses one per agent section, shared by its connections.
      kv: haproxyHelloKv({ maxFrameSize, capabilities, engineId: randomUUID() }),
    }),
    disconnect: encodeFrame({
      type: 'haproxy-disconnect',
      flags: FrameFlags.FIN,
      streamId: 0,
      frameId: 0,
      kv: disconnectKv(0, 'normal'),
    }),
  };
}

// biome-ignore lint/suspicious/noConstEnum: module-private, inlined into the hot read loop
const enum ConnState {
  Hello,
  Ready,
  Running,
  Closing,
  Closed,
}

/**
 * One connection and its `depth` slots of frames in flight. Stream-ids encode
 * the slot: sid = 2 * (generation * depth + slot) + 1, odd like HAProxy 3.x,
 * unique on the connection, and exactly 1, 3, 5... when ACKs come in order.
 */
class LoadConnection {
  /** Frames sent and not yet answered. */
  outstanding = 0;
  #state = ConnState.Hello;
  readonly #run: RunState;
  readonly #tpl: Templates;
  readonly #depth: number;
  readonly #family: AddressFamily;
  /** Null: a new random address per frame. */
  readonly #clients: SourceClients | null;
  readonly #capabilities: string;
  readonly #maxFrameSize: number;
  #socket: Socket | null = null;
  readonly #parser: FrameParser;
  readonly #reader = new Reader();
  readonly #head: FrameHead = { typeId: 0, flags: 0, streamId: 0, frameId: 0, payloadStart: 0 };
  /** Expected stream-id of the frame in flight in each slot; 0 when the slot is free (real ids are odd). */
  readonly #slotSid: Float64Array;
  /** How many times each slot was used: makes every stream-id unique on the connection. */
  readonly #generation: Float64Array;
  readonly #sentAt: Float64Array;
  /** Slots whose ACK arrived and that wait for the next batch. */
  readonly #free: Int32Array;
  #freeCount: number;
  /** Open loop: due times of the frames waiting for a free slot, a ring; null in a closed loop. */
  readonly #backlog: Float64Array | null;
  #backlogHead = 0;
  #backlogCount = 0;
  /** Open loop: already in this tick's list of connections to flush. */
  touched = false;
  #batch: Buffer;
  /** Every read lands in this buffer (net's `onread`): no allocation per read, no Readable stream machinery. */
  #readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
  /** xorshift32 state for the addresses: a few integer ops per frame, no Math.random call. */
  #rng: number;
  /** Time the current chunk arrived: one clock read per chunk, not per ACK. */
  #now = 0;
  #lastError = '';
  #onOpen: ((err?: Error) => void) | null = null;
  #onClosed: (() => void) | null = null;

  constructor(
    run: RunState,
    tpl: Templates,
    depth: number,
    family: AddressFamily,
    clients: SourceClients | null,
    capabilities: string,
    maxFrameSize: number,
    openLoop: boolean,
  ) {
    this.#run = run;
    this.#tpl = tpl;
    this.#depth = depth;
    this.#family = family;
    this.#clients = clients;
    this.#capabilities = capabilities;
    this.#maxFrameSize = maxFrameSize;
    this.#parser = new FrameParser(maxFrameSize);
    this.#slotSid = new Float64Array(depth);
    this.#generation = new Float64Array(depth);
    this.#sentAt = new Float64Array(depth);
    this.#free = new Int32Array(depth);
    for (let i = 0; i < depth; i++) this.#free[i] = i;
    this.#freeCount = depth;
    this.#backlog = openLoop ? new Float64Array(BACKLOG_LIMIT) : null;
    this.#batch = Buffer.allocUnsafeSlow(depth * tpl.maxNotifySize);
    this.#rng = randomBytes(4).readUInt32BE(0) | 1; // xorshift must not start at 0
  }

  /** Connects and completes the HELLO exchange. */
  open(target: LoadTarget, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#onOpen = null;
        this.#socket?.destroy();
        reject(new Error(`no AGENT-HELLO within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#onOpen = (err) => {
        clearTimeout(timer);
        this.#onOpen = null;
        if (err) {
          this.#socket?.destroy();
          reject(err);
        } else {
          resolve();
        }
      };
      const onread = { buffer: () => this.#readBuffer, callback: this.#onRead };
      const socket = 'path' in target ? connect({ path: target.path, onread }) : connect({ port: target.port, host: target.host ?? '127.0.0.1', onread });
      this.#socket = socket;
      socket.setNoDelay(true);
      socket.on('connect', () => socket.write(this.#tpl.hello));
      socket.on('error', (err) => {
        this.#lastError = err.message;
      });
      socket.on('close', this.#onClose);
    });
  }

  /** Fills the pipeline: `depth` NOTIFY frames in one write (closed loop); an open loop waits for `due`. */
  start(): void {
    if (this.#state !== ConnState.Ready) return;
    this.#state = ConnState.Running;
    if (this.#backlog === null) this.#flush();
  }

  /** Open loop: a frame falls due at `now`; it goes out at the next `flushDue`, or when a slot frees. */
  due(now: number): void {
    const backlog = this.#backlog as Float64Array;
    if (this.#state !== ConnState.Running || this.#backlogCount === BACKLOG_LIMIT) {
      this.#run.unsent++;
      return;
    }
    backlog[(this.#backlogHead + this.#backlogCount++) % BACKLOG_LIMIT] = now;
  }

  /** Open loop: sends what is due and has a slot, in one write. */
  flushDue(): void {
    this.touched = false;
    if (this.#freeCount > 0 && this.#backlogCount > 0 && this.#state === ConnState.Running) this.#flush();
  }

  /** Says goodbye like HAProxy (HAPROXY-DISCONNECT, then FIN), and waits for the close, at most `timeoutMs`. */
  close(timeoutMs: number): Promise<void> {
    const socket = this.#socket;
    if (socket === null || this.#state === ConnState.Closed) return Promise.resolve();
    this.#state = ConnState.Closing;
    return new Promise((resolve) => {
      const timer = setTimeout(() => socket.destroy(), timeoutMs);
      this.#onClosed = () => {
        clearTimeout(timer);
        resolve();
      };
      socket.end(this.#tpl.disconnect);
    });
  }

  #onClose = (): void => {
    const was = this.#state;
    this.#state = ConnState.Closed;
    if (was === ConnState.Hello) {
      this.#onOpen?.(new Error(`connection closed before AGENT-HELLO${this.#lastError ? `: ${this.#lastError}` : ''}`));
    } else if (was === ConnState.Ready || was === ConnState.Running) {
      this.#run.live--;
      this.#run.connectionError(() => `connection lost${this.#lastError ? `: ${this.#lastError}` : ''} (${this.outstanding} frames in flight)`);
      this.#run.poke();
    }
    this.#onClosed?.();
  };

  /** Drops the connection after a protocol error; its frames in flight stay counted as unanswered. */
  #abort(reason: string): void {
    this.#lastError = reason;
    this.#socket?.destroy();
  }

  #onRead = (length: number): boolean => {
    this.#now = performance.now();
    try {
      this.#parser.push(this.#readBuffer.subarray(0, length), this.#onFrame);
    } catch (err) {
      this.#abort(`unparsable bytes from the agent: ${(err as Error).message}`);
      return false;
    }
    // The parser keeps a view of an incomplete frame's bytes: the next read must not overwrite them.
    if (this.#parser.buffered > 0) this.#readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
    // Every slot freed by this chunk is refilled in a single write (open loop: with frames already due).
    if (this.#freeCount > 0 && this.#state === ConnState.Running && this.#run.sending && (this.#backlog === null || this.#backlogCount !== 0)) {
      this.#flush();
    }
    return true;
  };

  /** Called by the FrameParser for each frame body `buf[start, end)`; the hot path is an ACK while running. */
  #onFrame = (buf: Buffer, start: number, end: number): boolean => {
    if (this.#state !== ConnState.Running) return this.#onOtherFrame(buf, start, end);
    const head = readFrameHead(this.#reader, buf, start, end, this.#head);
    if (head.typeId !== FrameType.ACK) return this.#onOtherFrame(buf, start, end);
    const run = this.#run;
    const sid = head.streamId;
    // The slot is encoded in the stream-id, so finding the frame is arithmetic, not a Map lookup.
    const slot = typeof sid === 'number' && (sid & 1) === 1 ? ((sid - 1) / 2) % this.#depth : -1;
    if (slot < 0 || this.#slotSid[slot] !== sid || head.frameId !== 1) {
      run.invalidAck(() => `ACK for no frame in flight: stream-id ${sid}, frame-id ${head.frameId}`);
      return true;
    }
    this.#slotSid[slot] = 0;
    this.#free[this.#freeCount++] = slot;
    this.outstanding--;
    if ((head.flags & FrameFlags.FIN) === 0) {
      run.invalidAck(() => `ACK without FIN: stream-id ${sid}`);
    } else if (!this.#validActions(buf, head.payloadStart, end)) {
      run.invalidAck(() => `bad ACK payload: ${describeFrame(buf, start, end)}`);
    } else {
      run.totalAcks++;
      if (run.measuring) {
        run.acks++;
        run.histogram.record((this.#now - (this.#sentAt[slot] as number)) * 1000);
        const gap = this.#now - run.lastAckAt;
        if (gap > run.maxAckGapMs) run.maxAckGapMs = gap;
        run.lastAckAt = this.#now;
      }
    }
    if (this.outstanding === 0 && !run.sending) run.poke();
    return true;
  };

  /**
   * Byte-level check that the first action is a SET-VAR of sess.<variable> to
   * an integer 0..100: the prefix is compared with a template, and since a
   * varint has a single encoding, 0..100 is always one byte (a negative would
   * take ten). Further actions may follow it (the reputation mode's action,
   * category and source): the next byte must then start one.
   */
  #validActions(buf: Buffer, pos: number, end: number): boolean {
    const prefix = this.#tpl.ackPrefix;
    const n = prefix.length;
    if (end - pos < n + 2) return false;
    for (let i = 0; i < n; i++) if (buf[pos + i] !== prefix[i]) return false;
    const type = buf[pos + n] as number;
    if (!(type >= DataType.INT32 && type <= DataType.UINT64 && (buf[pos + n + 1] as number) <= 100)) return false;
    const next = pos + n + 2;
    return next === end || buf[next] === ActionType.SET_VAR || buf[next] === ActionType.UNSET_VAR;
  }

  /** Everything but an ACK while running: the handshake, or a frame that breaks the run. */
  #onOtherFrame(buf: Buffer, start: number, end: number): boolean {
    const state = this.#state;
    if (state === ConnState.Closing || state === ConnState.Closed) return true; // the agent's goodbye
    let frame;
    try {
      frame = decodeFrame(buf.subarray(start, end));
    } catch (err) {
      this.#fail(`undecodable frame: ${(err as Error).message}`);
      return false;
    }
    if (frame.type === 'agent-disconnect') {
      this.#fail(formatFrame(frame));
      return false;
    }
    if (state !== ConnState.Hello || frame.type !== 'agent-hello') {
      this.#fail(`unexpected frame: ${formatFrame(frame)}`);
      return false;
    }
    const problem = checkAgentHello(frame.kv, frame.flags, this.#maxFrameSize, this.#depth, this.#capabilities);
    if (problem !== undefined) {
      this.#fail(`AGENT-HELLO rejected: ${problem}`);
      return false;
    }
    this.#state = ConnState.Ready;
    this.#run.live++;
    this.#onOpen?.();
    return true;
  }

  #fail(reason: string): void {
    if (this.#state === ConnState.Hello) {
      this.#onOpen?.(new Error(reason));
      return;
    }
    this.#abort(reason);
  }

  /** Sends a NOTIFY for every free slot (open loop: for as many frames as are due), all in one write. */
  #flush(): void {
    const buf = this.#batch;
    const depth = this.#depth;
    const backlog = this.#backlog;
    const count = backlog === null ? this.#freeCount : Math.min(this.#freeCount, this.#backlogCount);
    let pos = 0;
    const now = performance.now(); // one clock read per batch
    for (let k = 0; k < count; k++) {
      const slot = this.#free[--this.#freeCount] as number;
      const generation = this.#generation[slot] as number;
      this.#generation[slot] = generation + 1;
      const sid = 2 * (generation * depth + slot) + 1;
      this.#slotSid[slot] = sid;
      if (backlog === null) {
        this.#sentAt[slot] = now;
      } else {
        this.#sentAt[slot] = backlog[this.#backlogHead] as number; // latency runs from when the frame was due
        this.#backlogHead = (this.#backlogHead + 1) % BACKLOG_LIMIT;
        this.#backlogCount--;
      }
      pos = this.#writeNotify(buf, pos, sid);
    }
    this.outstanding += count;
    const run = this.#run;
    run.totalSent += count;
    if (run.measuring) run.sent += count;
    const socket = this.#socket as Socket;
    // A view, not a copy. Once write() returns with nothing left queued, the kernel has the bytes and
    // the batch buffer can be reused; otherwise the socket still points at it, so take a fresh one.
    socket.write(buf.subarray(0, pos));
    if (socket.writableLength > 0) this.#batch = Buffer.allocUnsafeSlow(buf.length);
  }

  /** Writes one NOTIFY at `pos` by patching ids and address into the template; returns the end. */
  #writeNotify(buf: Buffer, pos: number, sid: number): number {
    const start = pos;
    pos += 4; // length, back-filled below
    buf[pos++] = FrameType.NOTIFY;
    buf[pos++] = 0; // flags: FIN, network order
    buf[pos++] = 0;
    buf[pos++] = 0;
    buf[pos++] = 1;
    if (sid < 240) buf[pos++] = sid;
    else pos = writeVarint(buf, pos, sid);
    buf[pos++] = 1; // frame-id, always 1 like HAProxy 3.x
    let x = this.#rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const clients = this.#clients;
    if (clients !== null) {
      this.#rng = x;
      const client = clients.pick((x >>> 0) / 4294967296);
      const v6 = clients.isV6(client);
      const tpl = v6 ? this.#tpl.notify6 : this.#tpl.notify4;
      for (let i = 0; i < tpl.length; i++) buf[pos++] = tpl[i] as number;
      for (let k = 0, words = v6 ? 4 : 1; k < words; k++) {
        const w = clients.word(client, k);
        buf[pos++] = w >>> 24;
        buf[pos++] = w >>> 16;
        buf[pos++] = w >>> 8;
        buf[pos++] = w;
      }
      buf.writeUInt32BE(pos - start - 4, start);
      return pos;
    }
    const v6 = this.#family === 'ipv6' || (this.#family === 'mixed' && (x & 0x100) !== 0);
    const tpl = v6 ? this.#tpl.notify6 : this.#tpl.notify4;
    // A byte loop beats Buffer#copy/set for ~20 bytes: no native call, no bounds re-checks.
    for (let i = 0; i < tpl.length; i++) buf[pos++] = tpl[i] as number;
    for (let words = v6 ? 4 : 1; ; ) {
      buf[pos++] = x >>> 24;
      buf[pos++] = x >>> 16;
      buf[pos++] = x >>> 8;
      buf[pos++] = x;
      if (--words === 0) break;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
    }
    this.#rng = x;
    buf.writeUInt32BE(pos - start - 4, start);
    return pos;
  }
}

/** Returns why an AGENT-HELLO would be refused by HAProxy (or by this run), or undefined when it is fine. */
function checkAgentHello(kv: readonly KvEntry[], flags: number, maxFrameSize: number, depth: number, capabilities: string): string | undefined {
  if ((flags & FrameFlags.FIN) === 0) return 'no FIN flag';
  let hello: AgentHello;
  try {
    hello = readAgentHello(kv);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  if (versionNumber(hello.version) !== versionNumber(SPOP_VERSION)) return `version is not ${SPOP_VERSION}`;
  if (!(hello.maxFrameSize >= 256 && hello.maxFrameSize <= maxFrameSize)) return `max-frame-size not an integer in [256, ${maxFrameSize}]`;
  if (
    depth > 1 &&
    !(
      capabilities
        .split(',')
        .map((c) => c.trim())
        .includes('pipelining') && hello.capabilities.includes('pipelining')
    )
  ) {
    return 'pipelining not negotiated, so only depth 1 is possible';
  }
  return undefined;
}

function describeFrame(buf: Buffer, start: number, end: number): string {
  try {
    return formatFrame(decodeFrame(buf.subarray(start, end)));
  } catch {
    return buf.toString('hex', start, Math.min(end, start + 64));
  }
}

function positiveInteger(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new RangeError(`${name} must be an integer from 1 to ${max}: ${value}`);
  return value;
}

function duration(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0 || value > 86_400_000) throw new RangeError(`${name} must be from 0 to 86400000 ms: ${value}`);
  return value;
}

/**
 * Open loop: every millisecond, the frames that fell due since the last tick are dealt round-robin to the
 * connections, and each connection given one sends what it can in one write. A tick that comes late
 * (timer drift, a busy generator) stamps its frames with its own time: the generator's lateness is not
 * charged to the target.
 */
function startSchedule(run: RunState, conns: readonly LoadConnection[], rate: number): NodeJS.Timeout {
  const start = performance.now();
  const touched: LoadConnection[] = [];
  let released = 0;
  let next = 0;
  return setInterval(() => {
    if (!run.sending) return;
    const now = performance.now();
    const due = Math.floor(((now - start) * rate) / 1000);
    for (; released < due; released++) {
      const conn = conns[next] as LoadConnection;
      next = next + 1 === conns.length ? 0 : next + 1;
      conn.due(now);
      if (!conn.touched) {
        conn.touched = true;
        touched.push(conn);
      }
    }
    for (const conn of touched) conn.flushDue();
    touched.length = 0;
  }, 1);
}

/**
 * Runs the load: connects, completes every HELLO, applies the load for the
 * warm-up then the measured window, waits (bounded) for the frames still in
 * flight, and closes. Rejects only when the connections cannot be set up;
 * anything going wrong later is counted in the result's errors.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const connections = positiveInteger('connections', options.connections ?? 1, 100_000);
  const depth = positiveInteger('depth', options.depth ?? 1, 1_000_000);
  const durationMs = duration('durationMs', options.durationMs ?? 5000);
  const warmupMs = duration('warmupMs', options.warmupMs ?? 1000);
  const rate = options.rate;
  if (rate !== undefined && !(Number.isFinite(rate) && rate > 0 && rate <= 10_000_000)) {
    throw new RangeError(`rate must be a number of frames per second from 0 to 10000000: ${rate}`);
  }
  const family = options.family ?? 'ipv4';
  if (family !== 'ipv4' && family !== 'ipv6' && family !== 'mixed') throw new RangeError(`unknown family: ${String(family)}`);
  const clientCount = options.clients === undefined ? undefined : positiveInteger('clients', options.clients, 10_000_000);
  const zipf = options.zipf;
  if (zipf !== undefined && clientCount === undefined) throw new RangeError('zipf needs clients: the Zipf law ranks a fixed set of clients');
  if (zipf !== undefined && !(Number.isFinite(zipf) && zipf >= 0 && zipf <= 10)) throw new RangeError(`zipf must be a number from 0 to 10: ${zipf}`);
  const clients = clientCount === undefined ? null : new SourceClients(clientCount, family, zipf ?? 0);
  const maxFrameSize = options.maxFrameSize ?? 16380;
  const capabilities = options.capabilities ?? 'pipelining';
  const tpl = buildTemplates(options.messageName ?? 'check-client-ip', options.variable ?? 'ip_score', maxFrameSize, capabilities);
  const run = new RunState(options.latencyLimitUs ?? 1_000_000);

  const conns = Array.from({ length: connections }, () => new LoadConnection(run, tpl, depth, family, clients, capabilities, maxFrameSize, rate !== undefined));
  const opened = await Promise.allSettled(conns.map((c) => c.open(options.target, options.connectTimeoutMs ?? 5000)));
  const failed = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(conns.map((c) => c.close(200)));
    const count = opened.filter((r) => r.status === 'rejected').length;
    throw new Error(`${count} of ${connections} connections failed to open: ${(failed.reason as Error).message}`);
  }

  const allLost = (): boolean => run.live === 0;
  const warmupStart = performance.now();
  for (const c of conns) c.start();
  const schedule = rate === undefined ? undefined : startSchedule(run, conns, rate);
  await run.waitUntil(allLost, warmupMs);

  const windowStart = performance.now();
  const cpuStart = process.cpuUsage();
  run.lastAckAt = windowStart;
  run.measuring = true;
  options.onPhase?.('measure');
  await run.waitUntil(allLost, durationMs);
  run.measuring = false;
  run.sending = false;
  const cpu = process.cpuUsage(cpuStart);
  const windowEnd = performance.now();
  run.maxAckGapMs = Math.max(run.maxAckGapMs, windowEnd - run.lastAckAt);
  options.onPhase?.('drain');

  if (schedule !== undefined) clearInterval(schedule);
  await run.waitUntil(() => conns.every((c) => c.outstanding === 0), options.drainTimeoutMs ?? 2000);
  const unanswered = conns.reduce((n, c) => n + c.outstanding, 0);
  await Promise.all(conns.map((c) => c.close(1000)));

  const measuredMs = windowEnd - windowStart;
  return {
    connections,
    depth,
    rate,
    family,
    clients: clientCount,
    zipf: clientCount === undefined ? undefined : (zipf ?? 0),
    warmupMs: windowStart - warmupStart,
    durationMs: measuredMs,
    sent: run.sent,
    acks: run.acks,
    throughput: measuredMs > 0 ? (run.acks * 1000) / measuredMs : 0,
    latency: run.histogram.summary(),
    maxAckGapMs: run.maxAckGapMs,
    errors: run.invalidAcks + unanswered + run.connectionErrors,
    invalidAcks: run.invalidAcks,
    unanswered,
    connectionErrors: run.connectionErrors,
    errorSamples: run.errorSamples,
    unsent: run.unsent,
    totalSent: run.totalSent,
    totalAcks: run.totalAcks,
    generatorCpuMs: (cpu.user + cpu.system) / 1000,
    histogram: run.histogram,
  };
}
