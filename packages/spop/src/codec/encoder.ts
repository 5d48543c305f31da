/**
 * Encoding of SPOP payloads and frames into a growable buffer. Like
 * pg-protocol's writer, a frame reserves its 4-byte length prefix and
 * back-fills it once the body is written, so nothing is encoded twice.
 */
import { parseIPv4, parseIPv6 } from './ip.js';
import { type Action, type Frame, type FrameId, type KvEntry, type SpoeMessage, type TypedData, ActionType, DataType, Scope, frameTypeIds } from './types.js';
import { assertVarintRange, varintSize, writeVarint, writeVarintBig } from './varint.js';

/** Encoded names kept; a workload with more distinct names simply starts the cache over. */
const MAX_ENCODED_NAMES = 1024;
const encodedNames = new Map<string, Buffer>();

const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;
const UINT32_MAX = 0xffff_ffff;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** What a writer holds between a take() that left no room and the next bytes. */
const NO_ROOM = Buffer.alloc(0);

/** Encodes SPOP values, payloads and whole frames into a growing buffer; `take()` hands the bytes out. One instance is reused for many frames. */
export class Writer {
  #buf: Buffer;
  #pos = 0;
  /** Where the bytes not taken yet start: `take()` moves it on rather than making a Buffer of the tail. */
  #base = 0;
  readonly #initialSize: number;
  /** The buffer take() left when it was full: recycle() takes it back. */
  #spent: Buffer | undefined;

  constructor(initialSize = 1024) {
    this.#initialSize = initialSize;
    this.#buf = Buffer.allocUnsafe(initialSize);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#pos - this.#base;
  }

  #ensure(n: number): void {
    const need = this.#pos + n;
    if (need <= this.#buf.length) return;
    if (this.#buf.length === 0) {
      // take() left no room: a fresh buffer (the spent one's bytes may still be in use).
      this.#buf = Buffer.allocUnsafe(Math.max(need, this.#initialSize));
      this.#spent = undefined;
      return;
    }
    const grown = Buffer.allocUnsafe(Math.max(need, this.#buf.length * 2));
    // Same offsets: a frame begun before growing ends at the position beginFrame gave.
    this.#buf.copy(grown, this.#base, this.#base, this.#pos);
    this.#buf = grown;
  }

  /**
   * Hands over what was written and starts afresh on a new buffer: the bytes
   * returned may sit in a socket's queue, so they are never written again.
   */
  take(): Buffer {
    const buf = this.#buf;
    const out = buf.subarray(this.#base, this.#pos);
    // Keep writing after what was taken when there is room (no allocation, not even a Buffer for
    // the tail: one per flush cost about as much as a frame); never keep a one-off large buffer's
    // size for every later flush. A new buffer is allocated only when bytes come (recycle() may
    // give this one back first).
    const tail = buf.length - this.#pos;
    if ((tail >= 256 && tail <= this.#initialSize) || buf.length === 0) {
      this.#base = this.#pos;
    } else {
      this.#spent = buf.length === this.#initialSize ? buf : undefined;
      this.#buf = NO_ROOM;
      this.#base = this.#pos = 0;
    }
    return out;
  }

  /**
   * Declares every byte `take()` handed out no longer in use (a socket wrote them all out
   * synchronously: its `writableLength` is 0): the writer then writes over them, from the start of
   * its buffer, instead of allocating another. Does nothing when bytes were written since the last
   * `take()`.
   */
  recycle(): void {
    if (this.#pos !== this.#base) return;
    if (this.#buf.length === 0) {
      if (this.#spent === undefined) return;
      this.#buf = this.#spent;
    } else if (this.#buf.length > this.#initialSize) {
      this.#buf = NO_ROOM; // a one-off large buffer is not kept
    }
    this.#spent = undefined;
    this.#base = this.#pos = 0;
  }

  /** Forgets everything after `position`, a `length` taken earlier (used to drop a frame that came out too big). */
  truncate(position: number): void {
    this.#pos = this.#base + position;
  }

  /** Writes one byte. */
  byte(b: number): this {
    this.#ensure(1);
    this.#buf[this.#pos++] = b;
    return this;
  }

  /** Writes a 32-bit unsigned integer, big-endian (the frame length and flags). */
  uint32(v: number): this {
    this.#ensure(4);
    this.#buf.writeUInt32BE(v, this.#pos);
    this.#pos += 4;
    return this;
  }

  /** A varint in [0, 2^64). */
  varint(v: number | bigint): this {
    if (typeof v === 'number' && v >= 0 && v <= 0xffff_ffff && Number.isInteger(v)) {
      // The common case (ids, lengths, 32-bit values): unsigned shifts are exact below 2^32.
      this.#ensure(5);
      const buf = this.#buf;
      let pos = this.#pos;
      if (v < 240) {
        buf[pos++] = v;
      } else {
        buf[pos++] = (v & 0x0f) | 0xf0;
        let rest = (v - 240) >>> 4;
        while (rest >= 128) {
          buf[pos++] = (rest & 0x7f) | 0x80;
          rest = (rest - 128) >>> 7;
        }
        buf[pos++] = rest;
      }
      this.#pos = pos;
      return this;
    }
    assertVarintRange(v);
    this.#ensure(10);
    this.#pos = typeof v === 'bigint' ? writeVarintBig(this.#buf, this.#pos, v) : writeVarint(this.#buf, this.#pos, v);
    return this;
  }

  /** Writes raw bytes. */
  bytes(data: Uint8Array): this {
    this.#ensure(data.length);
    this.#buf.set(data, this.#pos);
    this.#pos += data.length;
    return this;
  }

  /** Length-prefixed bytes. */
  lengthPrefixed(data: Uint8Array): this {
    return this.varint(data.length).bytes(data);
  }

  /**
   * A name that repeats from frame to frame (variable and message names,
   * keys): its length-prefixed bytes are encoded once and then copied.
   */
  name(s: string): this {
    let encoded = encodedNames.get(s);
    if (encoded === undefined) {
      encoded = new Writer(Buffer.byteLength(s) + 10).string(s).take();
      if (encodedNames.size >= MAX_ENCODED_NAMES) encodedNames.clear();
      encodedNames.set(s, encoded);
    }
    return this.bytes(encoded);
  }

  /** A bare length-prefixed UTF-8 string. */
  string(s: string): this {
    const n = Buffer.byteLength(s);
    this.#ensure(varintSize(n) + n);
    this.#pos = writeVarint(this.#buf, this.#pos, n);
    this.#pos += this.#buf.write(s, this.#pos, 'utf8');
    return this;
  }

  /** Writes one typed value: its type byte, then its value. */
  typedData(d: TypedData): this {
    switch (d.type) {
      case 'null':
        return this.byte(DataType.NULL);
      case 'bool':
        return this.byte(d.value ? 0x11 : DataType.BOOL);
      case 'int32':
        checkInteger(d.value, INT32_MIN, INT32_MAX, 'int32');
        return this.byte(DataType.INT32).varint(twosComplement64(d.value));
      case 'uint32':
        checkInteger(d.value, 0, UINT32_MAX, 'uint32');
        return this.byte(DataType.UINT32).varint(d.value);
      case 'int64':
        if (typeof d.value === 'bigint' && (d.value < INT64_MIN || d.value > INT64_MAX)) {
          throw new RangeError(`int64 out of range: ${d.value}`);
        }
        return this.byte(DataType.INT64).varint(twosComplement64(d.value));
      case 'uint64':
        return this.byte(DataType.UINT64).varint(d.value);
      case 'ipv4':
        return this.byte(DataType.IPV4).bytes(addressBytes(d.bytes, 4) ?? parseIPv4(d.value));
      case 'ipv6':
        return this.byte(DataType.IPV6).bytes(addressBytes(d.bytes, 16) ?? parseIPv6(d.value));
      case 'str':
        this.byte(DataType.STR);
        return d.bytes ? this.lengthPrefixed(d.bytes) : this.string(d.value);
      case 'bin':
        return this.byte(DataType.BIN).lengthPrefixed(d.value);
      default:
        throw new TypeError(`unknown typed data: ${JSON.stringify(d satisfies never)}`);
    }
  }

  /** Writes a KV-LIST (HELLO and DISCONNECT payloads). */
  kvList(entries: readonly KvEntry[]): this {
    for (const [key, value] of entries) this.name(key).typedData(value);
    return this;
  }

  /** Writes one message of a NOTIFY payload: name, argument count, arguments. */
  message(m: SpoeMessage): this {
    if (m.args.length > 255) throw new RangeError(`message ${m.name} has more than 255 arguments`);
    this.name(m.name).byte(m.args.length);
    for (const arg of m.args) this.string(arg.name).typedData(arg.value);
    return this;
  }

  /** Writes one SET-VAR or UNSET-VAR action of an ACK payload. */
  action(a: Action): this {
    const encoded = (a as PreEncoded)[ENCODED];
    if (encoded !== undefined) return this.bytes(encoded);
    if (a.type === 'set-var') {
      return this.byte(ActionType.SET_VAR).byte(3).byte(Scope[a.scope]).name(a.name).typedData(a.value);
    }
    return this.byte(ActionType.UNSET_VAR).byte(2).byte(Scope[a.scope]).name(a.name);
  }

  /** Writes a list of actions: one copy for a list from {@link preEncode}, else each in turn. */
  actions(list: readonly Action[]): this {
    const encoded = (list as PreEncoded)[ENCODED];
    if (encoded !== undefined) return this.bytes(encoded);
    for (let i = 0; i < list.length; i++) this.action(list[i] as Action);
    return this;
  }

  /**
   * Starts a frame: reserves the length prefix and writes the header.
   * Returns the frame's start, to give to endFrame.
   */
  beginFrame(typeId: number, flags: number, streamId: FrameId, frameId: FrameId): number {
    const start = this.#pos;
    this.#ensure(9);
    const buf = this.#buf;
    let pos = start + 4; // the length prefix, back-filled by endFrame
    buf[pos++] = typeId;
    // Flags: 32 bits in network byte order (FIN is 00 00 00 01). Plain byte stores beat writeUInt32BE here.
    buf[pos++] = flags >>> 24;
    buf[pos++] = (flags >>> 16) & 0xff;
    buf[pos++] = (flags >>> 8) & 0xff;
    buf[pos++] = flags & 0xff;
    this.#pos = pos;
    this.varint(streamId).varint(frameId);
    return start;
  }

  /** Back-fills the length prefix of the frame begun at `start`; returns the frame's LENGTH. */
  endFrame(start: number): number {
    const length = this.#pos - start - 4;
    const buf = this.#buf;
    buf[start] = length >>> 24;
    buf[start + 1] = (length >>> 16) & 0xff;
    buf[start + 2] = (length >>> 8) & 0xff;
    buf[start + 3] = length & 0xff;
    return length;
  }

  /** Encodes a whole frame, length prefix included. Returns the frame's LENGTH. */
  frame(f: Frame): number {
    const typeId = f.type === 'raw' ? f.typeId : frameTypeIds[f.type];
    const start = this.beginFrame(typeId, f.flags, f.streamId, f.frameId);
    switch (f.type) {
      case 'haproxy-hello':
      case 'agent-hello':
      case 'haproxy-disconnect':
      case 'agent-disconnect':
        this.kvList(f.kv);
        break;
      case 'notify':
        for (const m of f.messages) this.message(m);
        break;
      case 'ack':
        this.actions(f.actions);
        break;
      case 'raw':
        this.bytes(f.payload);
        break;
    }
    return this.endFrame(start);
  }
}

function checkInteger(v: number, min: number, max: number, type: string): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${type} out of range: ${v}`);
}

/** Negative integers travel as their 64-bit two's complement (ten bytes, no zig-zag). */
function twosComplement64(v: number | bigint): number | bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new RangeError(`integer must be a safe integer or a bigint: ${v}`);
    return v >= 0 ? v : BigInt.asUintN(64, BigInt(v));
  }
  return v >= 0n ? v : BigInt.asUintN(64, v);
}

function addressBytes(bytes: Uint8Array | undefined, size: number): Uint8Array | undefined {
  if (bytes === undefined) return undefined;
  if (bytes.length !== size) throw new RangeError(`an IPv${size === 4 ? 4 : 6} address has ${size} bytes`);
  return bytes;
}

/** Where a pre-encoded action keeps its wire bytes. */
const ENCODED = Symbol('spop.encoded');
type PreEncoded = { readonly [ENCODED]?: Uint8Array };

/**
 * The same action with its wire bytes computed once. Handlers that answer
 * with a few recurring actions (a fixed verdict, one of 101 scores) keep them
 * pre-encoded: each ACK then costs a copy instead of an encoding. The copy
 * keeps the action's fields (`type`, `scope`, `name`, `value`), no others.
 *
 * Given a list, a frozen copy of it whose actions are encoded together: a
 * handler answering with a recurring list (a verdict's four variables) then
 * costs one copy per ACK, not one per action. Throws, as encoding would, on
 * a value that does not encode.
 */
export function preEncode<A extends Action>(action: A): A;
export function preEncode(actions: readonly Action[]): readonly Action[];
export function preEncode(actions: Action | readonly Action[]): Action | readonly Action[] {
  if (!isActionList(actions)) return Object.freeze(withEncoding(actions, new Writer(64).action(actions).take()));
  const bytes = new Writer(64 * Math.max(1, actions.length)).actions(actions).take();
  const list = [...actions];
  Object.defineProperty(list, ENCODED, { value: bytes });
  return Object.freeze(list);
}

/**
 * The action's fields and its bytes in an object literal of fixed order: a spread (`{ ...action }`)
 * gives objects of one kind many hidden classes, which makes every property load on them in the ACK
 * path megamorphic.
 */
function withEncoding(a: Action, bytes: Uint8Array): Action {
  if (a.type === 'set-var') return { type: 'set-var', scope: a.scope, name: a.name, value: a.value, [ENCODED]: bytes } as Action;
  return { type: 'unset-var', scope: a.scope, name: a.name, [ENCODED]: bytes } as Action;
}

function isActionList(a: Action | readonly Action[]): a is readonly Action[] {
  return Array.isArray(a);
}

/** Encodes one frame into a fresh Buffer (length prefix included). */
export function encodeFrame(f: Frame): Buffer {
  const w = new Writer(64);
  w.frame(f);
  return w.take();
}

/** Encodes one typed value (type byte + value) into a fresh Buffer. */
export function encodeTypedData(d: TypedData): Buffer {
  return new Writer(32).typedData(d).take();
}
