/**
 * Shared helpers for the connection/server tests: an Agent on 127.0.0.1
 * port 0 plus FakeHaproxy clients, all closed when the test ends, a logger
 * that captures its lines, and a log of every frame each client received (in
 * order, never consumed by waitFor) so that tests can assert on ordering and
 * on the status code of every AGENT-DISCONNECT the agent ever sent.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { waitFor } from 'test-support/wait';
import {
  Agent,
  type AgentOptions,
  type DisconnectFrame,
  type Frame,
  type FrameId,
  type HelloOptions,
  type Logger,
  type SpoeMessage,
  type TypedData,
  FrameFlags,
  FrameParser,
  Writer,
  consoleLogger,
  decodeFrame,
  isSendableStatus,
} from '../src/index.js';
import { FakeHaproxy, type ConnectTarget } from '../src/testkit/index.js';

// ---- logging -----------------------------------------------------------------

export type Level = 'debug' | 'info' | 'warn' | 'error';
export interface LogLine {
  level: Level;
  message: string;
  fields: Record<string, unknown> | undefined;
}

export interface CapturingLogger extends Logger {
  readonly lines: LogLine[];
  /** Lines at `level` or above. */
  atLeast(level: Level): LogLine[];
}

const rank: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export function capturingLogger(): CapturingLogger {
  const lines: LogLine[] = [];
  const at =
    (level: Level) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
    };
  return {
    lines,
    atLeast: (level) => lines.filter((l) => rank[l.level] >= rank[level]),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
}

export const silent = (): Logger => consoleLogger('silent');

// ---- small async utilities ---------------------------------------------------

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Rejects with `label` if `p` does not settle within `ms`. The timer never outlives the race. */
export async function withTimeout<T>(p: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `cond` every 2 ms until true (test-support's waitFor, with this file's argument order). */
export function until(cond: () => boolean, label: string, ms = 2000): Promise<void> {
  return waitFor(label, cond, ms, 2);
}

// ---- frames ------------------------------------------------------------------

export const str = (value: string): TypedData => ({ type: 'str', value });
export const int = (value: number | bigint): TypedData => ({ type: 'int64', value });

/** A message with named arguments, in the given order. */
export function msg(name: string, args: Record<string, TypedData> = {}): SpoeMessage {
  return { name, args: Object.entries(args).map(([n, value]) => ({ name: n, value })) };
}

export function notifyFrame(streamId: FrameId, frameId: FrameId, messages: SpoeMessage[], flags: number = FrameFlags.FIN): Frame {
  return { type: 'notify', flags, streamId, frameId, messages };
}

export function rawFrame(typeId: number, flags: number, streamId: FrameId, frameId: FrameId, payload: Uint8Array = Buffer.alloc(0)): Frame {
  return { type: 'raw', typeId, flags, streamId, frameId, payload };
}

/** The LIST-OF-MESSAGES payload of a NOTIFY, as bytes. */
export function messagesPayload(messages: SpoeMessage[]): Buffer {
  const w = new Writer(64);
  for (const m of messages) w.message(m);
  return w.take();
}

/** The status-code of a DISCONNECT frame; asserts it is one the agent may send (0..13, 99). */
export function statusOf(f: Frame): number {
  assert.ok(f.type === 'agent-disconnect' || f.type === 'haproxy-disconnect', `not a DISCONNECT: ${f.type}`);
  const entry = f.kv.find(([k]) => k === 'status-code');
  assert.ok(entry, 'DISCONNECT without status-code');
  const v = entry[1];
  assert.ok(v.type === 'uint32' || v.type === 'int32' || v.type === 'int64' || v.type === 'uint64', `status-code type ${v.type}`);
  const code = Number(v.value);
  if (f.type === 'agent-disconnect') assert.ok(isSendableStatus(code), `agent sent status ${code}, outside 0..13 and 99`);
  return code;
}

/** Key/value pairs of a HELLO as a plain object ({key: value}). */
export function kvObject(f: Frame): Record<string, unknown> {
  assert.ok(f.type === 'agent-hello' || f.type === 'haproxy-hello', `not a HELLO: ${f.type}`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of f.kv) out[k] = v.type === 'null' ? null : v.value;
  return out;
}

// ---- wire log ----------------------------------------------------------------

const logs = new WeakMap<FakeHaproxy, Frame[]>();

/** Every frame `fake` received, in order, including those already taken by waitFor. */
export function wire(fake: FakeHaproxy): Frame[] {
  const log = logs.get(fake);
  assert.ok(log, 'client not connected through the harness');
  return log;
}

function attachWireLog(fake: FakeHaproxy): void {
  const log: Frame[] = [];
  logs.set(fake, log);
  const parser = new FrameParser(0xffff_ffff);
  fake.socket.on('data', (chunk: Buffer) => {
    try {
      parser.push(chunk, (buf, start, end) => {
        log.push(decodeFrame(Buffer.from(buf.subarray(start, end))));
      });
    } catch {
      // FakeHaproxy itself records the error and destroys the socket
    }
  });
}

/**
 * Waits for an AGENT-DISCONNECT with `status`, then for the agent to close
 * the socket, and checks that nothing came after the DISCONNECT.
 */
export async function expectDisconnect(fake: FakeHaproxy, status: number, ms = 5000): Promise<DisconnectFrame> {
  const frame = (await fake.waitFor((f) => f.type === 'agent-disconnect', ms)) as DisconnectFrame;
  assert.equal(statusOf(frame), status, `AGENT-DISCONNECT status (message: ${JSON.stringify(kvMessage(frame))})`);
  await withTimeout(fake.closed, ms, 'agent closes the connection after its AGENT-DISCONNECT');
  const log = wire(fake);
  assert.equal(log.at(-1)?.type, 'agent-disconnect', 'the AGENT-DISCONNECT is the last frame sent');
  assert.equal(log.filter((f) => f.type === 'agent-disconnect').length, 1, 'exactly one AGENT-DISCONNECT');
  return frame;
}

function kvMessage(f: DisconnectFrame): unknown {
  const v = f.kv.find(([k]) => k === 'message')?.[1];
  return v === undefined || v.type === 'null' ? v : v.value;
}

// ---- agent harness -------------------------------------------------------------

export interface Harness {
  agent: Agent;
  port: number;
  target: ConnectTarget;
  /** A connected client that has not said anything yet. */
  connect(): Promise<FakeHaproxy>;
  /** A connected client past the HELLO exchange (asserts the AGENT-HELLO). */
  ready(hello?: HelloOptions): Promise<FakeHaproxy>;
}

/**
 * Starts an Agent (silent logger unless one is given) on 127.0.0.1 port 0.
 * Every client is destroyed and the agent closed when the test ends, and
 * every AGENT-DISCONNECT any client received is checked for a sendable code.
 */
export async function startAgent(t: TestContext, options: AgentOptions = {}, register: (agent: Agent) => void = () => {}): Promise<Harness> {
  const agent = new Agent({ logger: silent(), ...options });
  register(agent);
  const clients: FakeHaproxy[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await withTimeout(agent.close({ timeout: 0 }), 3000, 'agent.close() in test cleanup');
    for (const c of clients) {
      for (const f of wire(c)) if (f.type === 'agent-disconnect') statusOf(f);
      assert.equal(c.error, undefined, 'the agent sent bytes that do not parse');
    }
  });
  const address = await agent.listen({ port: 0, host: '127.0.0.1' });
  assert.ok(typeof address === 'object');
  const target = { port: address.port, host: '127.0.0.1' };
  const connect = async (): Promise<FakeHaproxy> => {
    const fake = await FakeHaproxy.connect(target);
    clients.push(fake);
    attachWireLog(fake);
    return fake;
  };
  return {
    agent,
    port: address.port,
    target,
    connect,
    async ready(hello = {}) {
      const fake = await connect();
      const answer = await fake.hello(hello);
      assert.equal(answer.type, 'agent-hello', `HELLO refused: ${answer.type === 'agent-disconnect' ? statusOf(answer) : ''}`);
      return fake;
    },
  };
}

/** Connects a client through the harness's log, for agents the test started itself. */
export async function connectTo(t: TestContext, target: ConnectTarget): Promise<FakeHaproxy> {
  const fake = await FakeHaproxy.connect(target);
  attachWireLog(fake);
  t.after(() => fake.close());
  return fake;
}

/** A plain, comparable form of typed data (decoded strings/addresses are class instances). */
export function plain(d: TypedData): { type: string; value?: unknown } {
  switch (d.type) {
    case 'null':
      return { type: 'null' };
    case 'bin':
      return { type: 'bin', value: Buffer.from(d.value).toString('hex') };
    case 'int64':
    case 'uint64':
    case 'int32':
    case 'uint32':
      return { type: d.type, value: typeof d.value === 'bigint' ? d.value : BigInt(d.value) };
    default:
      return { type: d.type, value: d.value };
  }
}
