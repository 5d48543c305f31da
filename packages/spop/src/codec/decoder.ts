/**
 * Decoding of SPOP payloads and frame bodies. Knows nothing of sockets: it
 * reads from a byte range and throws SpopError (with the status code to send)
 * on anything malformed. Strings, binaries and addresses stay views of the
 * input buffer; their text is produced on first access.
 */
import { formatIPv4, formatIPv6, parseIPInto } from './ip.js';
import { Message } from './message.js';
import { invalidFrame } from './status.js';
import {
  type Action,
  type BinData,
  type Frame,
  type FrameId,
  type IpData,
  type KvEntry,
  type MessageArg,
  type StrData,
  type TypedData,
  type TypedDataType,
  type VarScope,
  ActionType,
  DataType,
  FrameFlags,
  FrameType,
} from './types.js';
import { type VarintResult, readVarint } from './varint.js';

const TWO_POW_63 = 1n << 63n;

interface InternedName {
  readonly bytes: Buffer;
  readonly text: string;
}

/** A STR value decoded from the wire: raw bytes now, UTF-8 text on demand. */
class DecodedStr implements StrData {
  readonly type = 'str';
  #text: string | undefined;
  constructor(readonly bytes: Buffer) {}
  get value(): string {
    return (this.#text ??= this.bytes.toString('utf8'));
  }
  toJSON(): StrData {
    return { type: 'str', value: this.value };
  }
}

/**
 * An IPV4/IPV6 value decoded from the wire: it only remembers where the
 * address sits; the bytes view and the text are made on first access.
 */
class DecodedIp implements IpData {
  #text: string | undefined;
  readonly #buf: Buffer;
  readonly #offset: number;
  constructor(
    readonly type: 'ipv4' | 'ipv6',
    buf: Buffer,
    offset: number,
  ) {
    this.#buf = buf;
    this.#offset = offset;
  }
  /**
   * A plain Uint8Array view, not Buffer#subarray: on Node 20 the latter costs about 200 ns (species
   * lookup, FastBuffer), more than decoding the whole message, and a handler asks for it per message.
   */
  get bytes(): Uint8Array {
    const buf = this.#buf;
    return new Uint8Array(buf.buffer, buf.byteOffset + this.#offset, this.type === 'ipv4' ? 4 : 16);
  }
  get value(): string {
    return (this.#text ??= this.type === 'ipv4' ? formatIPv4(this.#buf, this.#offset) : formatIPv6(this.#buf, this.#offset));
  }
  toJSON(): IpData {
    return { type: this.type, value: this.value };
  }
}

const NULL_DATA: TypedData = Object.freeze({ type: 'null' });
const TRUE_DATA: TypedData = Object.freeze({ type: 'bool', value: true });
const FALSE_DATA: TypedData = Object.freeze({ type: 'bool', value: false });
const scopeNames: readonly VarScope[] = ['proc', 'sess', 'txn', 'req', 'res'];

/** A cursor over `buf[pos, end)`. One instance can be reused for many frames. */
export class Reader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  end = 0;
  readonly #varint: VarintResult = { value: 0, offset: 0 };
  readonly #names: InternedName[] = [];

  constructor(buf?: Buffer, start = 0, end = buf?.length ?? 0) {
    if (buf) this.reset(buf, start, end);
  }

  /** Points the cursor at `buf[start, end)`. */
  reset(buf: Buffer, start = 0, end = buf.length): this {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    return this;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Reads one byte. */
  byte(): number {
    if (this.pos >= this.end) throw invalidFrame('truncated payload');
    return this.buf[this.pos++] as number;
  }

  /** Reads a varint: a number when safe, a bigint beyond 2^53. */
  varint(): number | bigint {
    const pos = this.pos;
    if (pos < this.end) {
      // One byte (below 240): ids, lengths and counts, most of the time.
      const b = this.buf[pos] as number;
      if (b < 240) {
        this.pos = pos + 1;
        return b;
      }
    }
    const r = readVarint(this.buf, this.pos, this.end, this.#varint);
    this.pos = r.offset;
    return r.value;
  }

  /** A varint used as a byte count: must fit in what is left of the frame. */
  length(): number {
    const n = this.varint();
    if (typeof n !== 'number' || n > this.end - this.pos) throw invalidFrame('length exceeds frame');
    return n;
  }

  /** `n` bytes as a view of the input (no copy). */
  bytes(n: number): Buffer {
    if (n > this.end - this.pos) throw invalidFrame('truncated payload');
    const start = this.pos;
    this.pos += n;
    return this.buf.subarray(start, this.pos);
  }

  /** Moves past `n` bytes; returns where they start. */
  skip(n: number): number {
    if (n > this.end - this.pos) throw invalidFrame('truncated payload');
    const start = this.pos;
    this.pos += n;
    return start;
  }

  /** A bare length-prefixed string (KV keys, message, argument and variable names). */
  string(): string {
    const n = this.length();
    if (n === 0) return ''; // unnamed arguments: no native call for nothing
    const start = this.pos;
    this.pos += n;
    return this.buf.toString('utf8', start, this.pos);
  }

  /**
   * A name that repeats from frame to frame (message names): recently seen
   * ones are recognised by their bytes, so the same string is returned
   * without decoding (or allocating) it again.
   */
  name(): string {
    const n = this.length();
    const start = this.pos;
    this.pos += n;
    const names = this.#names;
    for (let i = 0; i < names.length; i++) {
      const known = names[i] as InternedName;
      if (known.bytes.length === n && sameBytes(known.bytes, this.buf, start)) return known.text;
    }
    const text = this.buf.toString('utf8', start, this.pos);
    if (n <= 64) {
      if (names.length >= 8) names.pop();
      names.unshift({ bytes: Buffer.from(this.buf.subarray(start, this.pos)), text });
    }
    return text;
  }

  /** Reads one typed value. */
  typedData(): TypedData {
    const typeByte = this.byte();
    switch (typeByte & 0x0f) {
      case DataType.NULL:
        return NULL_DATA;
      case DataType.BOOL:
        // HAProxy's rule: true only when the flag nibble is exactly 1 (0x31 is false).
        return (typeByte & 0xf0) === 0x10 ? TRUE_DATA : FALSE_DATA;
      case DataType.INT32:
        return { type: 'int32', value: inRange(signed64(this.varint()), INT32_MIN, INT32_MAX, 'int32') };
      case DataType.UINT32:
        return { type: 'uint32', value: inRange(this.varint(), 0, UINT32_MAX, 'uint32') };
      case DataType.INT64:
        return { type: 'int64', value: signed64(this.varint()) };
      case DataType.UINT64:
        return { type: 'uint64', value: this.varint() };
      case DataType.IPV4:
        return new DecodedIp('ipv4', this.buf, this.skip(4));
      case DataType.IPV6:
        return new DecodedIp('ipv6', this.buf, this.skip(16));
      case DataType.STR:
        return new DecodedStr(this.bytes(this.length()));
      case DataType.BIN:
        return { type: 'bin', value: this.bytes(this.length()) } satisfies BinData;
      default:
        // Types 10..15 carry no length, so nothing after them can be trusted.
        throw invalidFrame(`unknown data type ${typeByte & 0x0f}`);
    }
  }

  /** KV-LIST: key/value pairs up to the end of the range. */
  kvList(): KvEntry[] {
    const entries: KvEntry[] = [];
    while (this.pos < this.end) {
      const key = this.string();
      if (key === '') throw invalidFrame('empty key in KV list');
      entries.push([key, this.typedData()]);
    }
    return entries;
  }

  /** LIST-OF-MESSAGES (NOTIFY payload). */
  messages(): Message[] {
    const messages: Message[] = [];
    while (this.pos < this.end) messages.push(this.message());
    return messages;
  }

  /**
   * One message. Its arguments are walked (so a malformed one fails here,
   * with the frame) but not decoded: handlers decode what they look at.
   */
  message(): Message {
    const name = this.name();
    const count = this.byte();
    const start = this.pos;
    for (let i = 0; i < count; i++) {
      this.skip(this.length());
      this.skipTypedData();
    }
    return new EncodedMessage(name, this.buf, start, this.pos, count);
  }

  /** Moves past one typed value, checking it as typedData() would, without building it. */
  skipTypedData(): void {
    if (this.pos >= this.end) throw invalidFrame('truncated payload');
    switch ((this.buf[this.pos] as number) & 0x0f) {
      case DataType.NULL:
      case DataType.BOOL:
        this.pos++;
        return;
      case DataType.IPV4:
        this.pos++;
        this.skip(4);
        return;
      case DataType.IPV6:
        this.pos++;
        this.skip(16);
        return;
      case DataType.STR:
      case DataType.BIN:
        this.pos++;
        this.skip(this.length());
        return;
      default:
        this.typedData(); // integers (range checks) and errors (truncation, unknown types)
    }
  }

  /** LIST-OF-ACTIONS (ACK payload). */
  actions(): Action[] {
    const actions: Action[] = [];
    while (this.pos < this.end) {
      const type = this.byte();
      const count = this.byte();
      if (type === ActionType.SET_VAR && count === 3) {
        const scope = this.scope();
        actions.push({ type: 'set-var', scope, name: this.string(), value: this.typedData() });
      } else if (type === ActionType.UNSET_VAR && count === 2) {
        const scope = this.scope();
        actions.push({ type: 'unset-var', scope, name: this.string() });
      } else {
        throw invalidFrame(`bad action type ${type} with ${count} arguments`);
      }
    }
    return actions;
  }

  /** Reads the scope byte of an action. */
  scope(): VarScope {
    const b = this.byte();
    const scope = scopeNames[b];
    if (scope === undefined) throw invalidFrame(`bad variable scope ${b}`);
    return scope;
  }
}

/** Decodes arguments of messages after the fact; used synchronously only, so one is enough. */
const argReader = new Reader();

/**
 * A message whose arguments stay encoded in the frame until asked for. The
 * frame was fully checked when the message was read, so decoding later
 * cannot fail, and the bytes are never written to (see FrameParser).
 */
class EncodedMessage extends Message {
  #decoded: readonly MessageArg[] | undefined;
  readonly #buf: Buffer;
  readonly #start: number;
  readonly #end: number;
  readonly #count: number;

  constructor(name: string, buf: Buffer, start: number, end: number, count: number) {
    super(name, NO_ARGS);
    this.#buf = buf;
    this.#start = start;
    this.#end = end;
    this.#count = count;
  }

  override get args(): readonly MessageArg[] {
    if (this.#decoded === undefined) {
      const r = argReader.reset(this.#buf, this.#start, this.#end);
      const args = new Array<MessageArg>(this.#count);
      for (let i = 0; i < this.#count; i++) args[i] = { name: r.string(), value: r.typedData() };
      this.#decoded = args;
    }
    return this.#decoded;
  }

  /**
   * By position: decodes that one argument only (the common `args src` case costs one value). By
   * an ASCII name: compares the names' bytes in place and decodes the matching value only (a
   * handler looking for `ip` then costs no argument list, no name strings, no other values).
   */
  override arg(key: number | string): TypedData | undefined {
    if (this.#decoded !== undefined) return super.arg(key);
    if (typeof key !== 'number') return isAscii(key) ? this.#argNamed(key) : super.arg(key);
    if (!isIndex(key, this.#count)) return undefined;
    return this.#seek(key).typedData();
  }

  override get argCount(): number {
    return this.#count;
  }

  override argIndex(name: string): number {
    if (this.#decoded !== undefined || !isAscii(name)) return super.argIndex(name);
    return this.#seekNamed(name);
  }

  override argType(index: number): TypedDataType | undefined {
    if (!isIndex(index, this.#count)) return undefined;
    const r = this.#seek(index);
    return TYPE_NAMES[(this.#buf[r.pos] as number) & 0x0f];
  }

  override addressInto(index: number, into: Uint8Array): 0 | 4 | 16 {
    if (into.length < 16) throw new RangeError(`addressInto needs 16 bytes of room, got ${into.length}`);
    if (!isIndex(index, this.#count)) return 0;
    const r = this.#seek(index);
    const buf = this.#buf;
    const type = (buf[r.pos] as number) & 0x0f;
    const at = r.pos + 1;
    if (type === DataType.IPV4) {
      into[0] = buf[at] as number;
      into[1] = buf[at + 1] as number;
      into[2] = buf[at + 2] as number;
      into[3] = buf[at + 3] as number;
      return 4;
    }
    if (type === DataType.IPV6) {
      for (let i = 0; i < 16; i++) into[i] = buf[at + i] as number;
      return 16;
    }
    if (type !== DataType.STR) return 0;
    r.pos = at;
    const length = r.length();
    return parseIPInto(buf, r.pos, r.pos + length, into);
  }

  /** The argument reader at the value of argument `index` (< count), its name skipped. */
  #seek(index: number): Reader {
    const r = argReader.reset(this.#buf, this.#start, this.#end);
    for (let i = 0; i < index; i++) {
      r.skip(r.length());
      r.skipTypedData();
    }
    r.skip(r.length());
    return r;
  }

  /** Index of the first argument named `name` (ASCII: its UTF-8 bytes are its char codes), the reader left at its value; -1. */
  #seekNamed(name: string): number {
    const r = argReader.reset(this.#buf, this.#start, this.#end);
    const buf = this.#buf;
    for (let i = 0; i < this.#count; i++) {
      const n = r.length();
      const at = r.skip(n);
      let same = n === name.length;
      for (let j = 0; same && j < n; j++) same = buf[at + j] === name.charCodeAt(j);
      if (same) return i;
      r.skipTypedData();
    }
    return -1;
  }

  /** The first argument named `name` (ASCII). */
  #argNamed(name: string): TypedData | undefined {
    return this.#seekNamed(name) < 0 ? undefined : argReader.typedData();
  }
}

const NO_ARGS: readonly MessageArg[] = Object.freeze([]);

/** Type names by the low nibble of a type byte (the types a checked frame can hold). */
const TYPE_NAMES: readonly (TypedDataType | undefined)[] = ['null', 'bool', 'int32', 'uint32', 'int64', 'uint64', 'ipv4', 'ipv6', 'str', 'bin'];

/** An argument position: an integer from 0 below `count` (1.5 or NaN is none, as for an array). */
function isIndex(index: number, count: number): boolean {
  return Number.isInteger(index) && index >= 0 && index < count;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** True when `buf` holds `known` at `start` (the caller checked there is room). */
function sameBytes(known: Buffer, buf: Buffer, start: number): boolean {
  for (let j = 0; j < known.length; j++) if (known[j] !== buf[start + j]) return false;
  return true;
}

/** Reinterprets a 64-bit unsigned varint as two's complement (there is no zig-zag in SPOP). */
function signed64(v: number | bigint): number | bigint {
  if (typeof v === 'number') return v; // numbers are < 2^53, so non-negative either way
  if (v < TWO_POW_63) return v;
  const s = v - (1n << 64n);
  return s >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(s) : s;
}

const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;
const UINT32_MAX = 0xffff_ffff;

/**
 * INT32/UINT32 values must fit their type: a wider varint would otherwise be
 * rounded by Number() and come back as a value the encoder refuses.
 */
function inRange(v: number | bigint, min: number, max: number, type: string): number {
  if (typeof v !== 'number' || v < min || v > max) throw invalidFrame(`${type} out of range: ${v}`);
  return v;
}

/** Smallest legal frame body: type, flags and two one-byte ids. */
export const MIN_FRAME_LENGTH = 7;

/** The fixed part of every frame, read without looking at the payload. */
export interface FrameHead {
  typeId: number;
  flags: number;
  streamId: FrameId;
  frameId: FrameId;
  /** Offset of the payload in the buffer given to readFrameHead. */
  payloadStart: number;
}

/** Reads type, flags and ids of the frame body `buf[start, end)` (no length prefix). */
export function readFrameHead(reader: Reader, buf: Buffer, start: number, end: number, out: FrameHead): FrameHead {
  if (end - start < MIN_FRAME_LENGTH) throw invalidFrame(`frame of ${end - start} bytes is shorter than 7`);
  out.typeId = buf[start] as number;
  // By hand: readUInt32BE's checks cost more than the read, on every frame.
  out.flags = (((buf[start + 1] as number) << 24) | ((buf[start + 2] as number) << 16) | ((buf[start + 3] as number) << 8) | (buf[start + 4] as number)) >>> 0;
  reader.reset(buf, start + 5, end);
  out.streamId = reader.varint();
  out.frameId = reader.varint();
  out.payloadStart = reader.pos;
  return out;
}

/**
 * Decodes one frame body (the bytes after the 4-byte length). Payloads that
 * cannot stand alone (fragments: no FIN, UNSET frames) and unknown types come
 * back as RawFrame.
 */
export function decodeFrame(body: Buffer): Frame {
  const reader = new Reader();
  const head = readFrameHead(reader, body, 0, body.length, {
    typeId: 0,
    flags: 0,
    streamId: 0,
    frameId: 0,
    payloadStart: 0,
  });
  const { typeId, flags, streamId, frameId } = head;
  const fin = (flags & FrameFlags.FIN) !== 0;
  switch (typeId) {
    case FrameType.HAPROXY_HELLO:
    case FrameType.AGENT_HELLO:
      return {
        type: typeId === FrameType.HAPROXY_HELLO ? 'haproxy-hello' : 'agent-hello',
        flags,
        streamId,
        frameId,
        kv: reader.kvList(),
      };
    case FrameType.HAPROXY_DISCONNECT:
    case FrameType.AGENT_DISCONNECT:
      return {
        type: typeId === FrameType.HAPROXY_DISCONNECT ? 'haproxy-disconnect' : 'agent-disconnect',
        flags,
        streamId,
        frameId,
        kv: reader.kvList(),
      };
    case FrameType.NOTIFY:
      if (fin) return { type: 'notify', flags, streamId, frameId, messages: reader.messages() };
      break;
    case FrameType.ACK:
      if (fin) return { type: 'ack', flags, streamId, frameId, actions: reader.actions() };
      break;
  }
  return { type: 'raw', typeId, flags, streamId, frameId, payload: reader.bytes(reader.remaining) };
}
