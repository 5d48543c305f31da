/**
 * The "floor" agent: the least work a Node.js SPOP agent can do per NOTIFY.
 * It reads a frame's length and ids, copies the ids' raw bytes into a
 * pre-encoded ACK setting sess.<variable> to a pseudo-random 0..100, and
 * sends all the ACKs of one data chunk in one write. No payload is decoded.
 *
 * Benchmarks run it beside the real agent, in the same run, and report the
 * real agent as a ratio of it: absolute figures drift on a shared machine,
 * ratios much less.
 *
 * Also a command: `node dist/floor-agent.js --port N [--host H]`
 * prints `listening <port>` on stdout once it accepts connections.
 */
import { realpathSync } from 'node:fs';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DataType, FrameFlags, FrameType, Writer, decodeFrame, disconnectKv, encodeFrame } from 'spop';

export interface FloorAgentOptions {
  /** TCP port; 0 (the default) picks a free one. Ignored with `path`. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Unix socket path instead of TCP. */
  readonly path?: string;
  /** Variable set in sess scope. Default 'ip_score'. */
  readonly variable?: string;
}

export interface FloorAgent {
  readonly server: Server;
  /** The port (TCP) or the socket path. */
  readonly address: AddressInfo | string;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

/** Largest LENGTH accepted and announced: HAProxy's default max-frame-size. */
const MAX_FRAME_SIZE = 16380;
/** Largest ACK: length 4 + type 1 + flags 4 + two 10-byte varints + the action. */
const ackRoom = (tailLength: number): number => 4 + 1 + 4 + 20 + tailLength;

function agentHello(maxFrameSize: number): Buffer {
  return encodeFrame({
    type: 'agent-hello',
    flags: FrameFlags.FIN,
    streamId: 0,
    frameId: 0,
    kv: [
      ['version', { type: 'str', value: '2.0' }],
      ['max-frame-size', { type: 'uint32', value: maxFrameSize }],
      ['capabilities', { type: 'str', value: 'pipelining' }],
    ],
  });
}

const AGENT_DISCONNECT = encodeFrame({
  type: 'agent-disconnect',
  flags: FrameFlags.FIN,
  streamId: 0,
  frameId: 0,
  kv: disconnectKv(0, 'normal'),
});

/** HAProxy's max-frame-size from its HELLO (echoed, capped at ours); ours when absent or unreadable. */
function helloMaxFrameSize(body: Buffer): number {
  try {
    const frame = decodeFrame(body);
    if (frame.type !== 'haproxy-hello') return MAX_FRAME_SIZE;
    const size = frame.kv.find(([k]) => k === 'max-frame-size')?.[1];
    const n = size !== undefined && 'value' in size ? Number(size.value) : NaN;
    return n >= 256 && n <= MAX_FRAME_SIZE ? n : MAX_FRAME_SIZE;
  } catch {
    return MAX_FRAME_SIZE;
  }
}

function serve(socket: Socket, tail: Buffer): void {
  socket.setNoDelay(true);
  const tailLength = tail.length;
  const room = ackRoom(tailLength);
  let out = Buffer.allocUnsafeSlow(64 * room);
  /** Bytes of an incomplete frame left by the previous chunk. */
  let pending: Buffer | null = null;
  // xorshift32: a few integer ops per score instead of a Math.random call.
  let rng = (Math.random() * 0xffffffff) | 1;

  socket.on('error', () => {}); // a reset peer is not our problem; 'close' follows
  socket.on('data', (chunk: Buffer) => {
    // Node hands each read its own buffer, so a view of the leftover stays valid; only a split frame costs a copy.
    const buf: Buffer = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pending = null;
    const end = buf.length;
    let pos = 0;
    let o = 0;
    while (end - pos >= 4) {
      const length = buf.readUInt32BE(pos);
      if (length < 7 || length > MAX_FRAME_SIZE) {
        socket.destroy();
        return;
      }
      if (end - pos - 4 < length) break;
      const body = pos + 4;
      pos = body + length;
      const type = buf[body] as number;
      if (type === FrameType.NOTIFY) {
        // Skip the two varints (a byte >= 240 starts a long one, continuation bytes are >= 128).
        const idStart = body + 5;
        let i = idStart;
        if ((buf[i++] as number) >= 240) while ((buf[i++] as number) >= 128);
        if ((buf[i++] as number) >= 240) while ((buf[i++] as number) >= 128);
        if (i > pos) {
          socket.destroy();
          return;
        }
        if (o + room > out.length) {
          const grown = Buffer.allocUnsafeSlow(out.length * 2);
          out.copy(grown, 0, 0, o);
          out = grown;
        }
        const idLength = i - idStart;
        const start = o;
        o += 4;
        out[o++] = FrameType.ACK;
        out[o++] = 0; // flags: FIN, network order
        out[o++] = 0;
        out[o++] = 0;
        out[o++] = 1;
        // Raw id bytes copied as they came: no varint decoding or re-encoding.
        for (let k = idStart; k < i; k++) out[o++] = buf[k] as number;
        for (let k = 0; k < tailLength; k++) out[o++] = tail[k] as number;
        rng ^= rng << 13;
        rng ^= rng >>> 17;
        rng ^= rng << 5;
        out[o - 1] = (rng >>> 0) % 101; // the score: 0..100 is a one-byte varint
        out.writeUInt32BE(5 + idLength + tailLength, start);
      } else if (type === FrameType.HAPROXY_HELLO) {
        socket.write(agentHello(helloMaxFrameSize(buf.subarray(body, pos))));
      } else if (type === FrameType.HAPROXY_DISCONNECT) {
        if (o > 0) socket.write(out.subarray(0, o));
        socket.end(AGENT_DISCONNECT);
        return;
      }
      // Anything else is ignored: the floor does not police the protocol.
    }
    if (pos < end) pending = buf.subarray(pos);
    if (o > 0) {
      // One write per chunk. If the socket could not hand the bytes to the kernel at once it keeps
      // a reference to `out`, so the next chunk gets a fresh buffer instead of overwriting it.
      socket.write(out.subarray(0, o));
      if (socket.writableLength > 0) out = Buffer.allocUnsafeSlow(out.length);
    }
  });
}

/** Starts a floor agent and resolves once it listens. */
export function startFloorAgent(options: FloorAgentOptions = {}): Promise<FloorAgent> {
  // SET-VAR, 3 args, scope sess, name, UINT32 type byte, then a score byte patched per ACK.
  const tail = new Writer(32)
    .byte(1)
    .byte(3)
    .byte(1)
    .string(options.variable ?? 'ip_score')
    .byte(DataType.UINT32)
    .byte(0)
    .take();
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serve(socket, tail);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const onListening = (): void => {
      server.off('error', reject);
      const address = server.address();
      resolve({
        server,
        address: address ?? '',
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    };
    if (options.path !== undefined) server.listen(options.path, onListening);
    else server.listen(options.port ?? 0, options.host ?? '127.0.0.1', onListening);
  });
}

/** The command: `floor-agent [--port N] [--host H] [--path P] [--variable NAME]`. */
export async function floorAgentMain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      path: { type: 'string' },
      variable: { type: 'string' },
    },
  });
  const port = Number(values.port ?? '0');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad --port: ${values.port}`);
  const agent = await startFloorAgent({ port, host: values.host, path: values.path, variable: values.variable });
  const stop = (): void => {
    void agent.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`listening ${typeof agent.address === 'string' ? agent.address : agent.address.port}\n`);
}

/** True when this file is the script node was started with (not imported). */
function isMainModule(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainModule()) {
  floorAgentMain(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`floor-agent: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
