/**
 * Just enough of a net.Socket for an Agent's connection, in-process: writes are counted, never
 * sent (bench/connection.ts, bench/hot-path.ts). `feed` hands it chunks as the socket would.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { type Agent, FrameFlags, Writer, encodeFrame, haproxyHelloKv } from 'spop';

export class StubSocket extends EventEmitter {
  written = 0;
  writes = 0;
  readonly remoteAddress = undefined;
  readonly writableLength = 0;
  setNoDelay(): this {
    return this;
  }
  write(bytes: Uint8Array): boolean {
    this.written += bytes.length;
    this.writes++;
    return true;
  }
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  end(): this {
    return this;
  }
  destroy(): this {
    this.emit('close');
    return this;
  }
  feed(chunk: Buffer): void {
    this.emit('data', chunk);
  }
}

/** A connection of `agent` on a stub socket, past the HELLO (HAProxy 3.x's: pipelining). */
export function stubConnection(agent: Agent): StubSocket {
  const socket = new StubSocket();
  agent.handle(socket as unknown as Socket);
  socket.feed(encodeFrame({ type: 'haproxy-hello', flags: FrameFlags.FIN, streamId: 0, frameId: 0, kv: haproxyHelloKv({}) }));
  return socket;
}

/**
 * Chunks of `depth` pipelined NOTIFY frames (one `check-client-ip` message with one IPv4 argument,
 * as HAProxy sends it), stream ids increasing, sources from `source`.
 */
export function notifyChunks(count: number, depth: number, source: (i: number) => Uint8Array): Buffer[] {
  const chunks: Buffer[] = [];
  let stream = 1;
  for (let c = 0; c < count; c++) {
    const w = new Writer(64 * depth);
    for (let f = 0; f < depth; f++) {
      const bytes = source(c * depth + f);
      w.frame({
        type: 'notify',
        flags: FrameFlags.FIN,
        streamId: stream++ & 0xffff,
        frameId: 1,
        messages: [{ name: 'check-client-ip', args: [{ name: '', value: { type: 'ipv4', value: bytes.join('.') } }] }],
      });
    }
    chunks.push(w.take());
  }
  return chunks;
}
