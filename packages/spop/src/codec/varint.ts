/**
 * SPOP variable-length integers (docs/protocol.md §3): the "Peers" encoding.
 *
 * Not LEB128: the first byte carries 4 bits when >= 240, and continuation
 * bytes are *added* with their high bit, so masking with 0x7f is wrong.
 * Values up to 7 bytes (< 2^46.x) are exact in a JS number and decoded without
 * BigInt; longer ones go through BigInt and come back as a number when safe.
 */
import { invalidFrame } from './status.js';

/** Largest encodable value: 2^64 - 1. */
export const MAX_VARINT = 0xffff_ffff_ffff_ffffn;
/** A 64-bit value needs at most ten bytes. */
export const MAX_VARINT_BYTES = 10;

/** Bytes needed to encode `value` (a non-negative safe integer). */
export function varintSize(value: number): number {
  if (value < 240) return 1;
  let v = Math.floor((value - 240) / 16);
  let size = 2;
  while (v >= 128) {
    v = Math.floor((v - 128) / 128);
    size++;
  }
  return size;
}

/**
 * Writes `value` (a non-negative safe integer) at `offset`; returns the offset after it.
 * Uses division rather than bit shifts: `>>` would truncate to 32 bits.
 */
export function writeVarint(buf: Uint8Array, offset: number, value: number): number {
  if (value < 240) {
    buf[offset++] = value;
    return offset;
  }
  buf[offset++] = (value % 16) | 0xf0;
  let v = Math.floor((value - 240) / 16);
  while (v >= 128) {
    buf[offset++] = (v % 128) | 0x80;
    v = Math.floor((v - 128) / 128);
  }
  buf[offset++] = v;
  return offset;
}

/** Writes a bigint in [0, 2^64); returns the offset after it. */
export function writeVarintBig(buf: Uint8Array, offset: number, value: bigint): number {
  if (value < 240n) {
    buf[offset++] = Number(value);
    return offset;
  }
  buf[offset++] = Number(value & 0x0fn) | 0xf0;
  let v = (value - 240n) >> 4n;
  while (v >= 128n) {
    buf[offset++] = Number(v & 0x7fn) | 0x80;
    v = (v - 128n) >> 7n;
  }
  buf[offset++] = Number(v);
  return offset;
}

/** Bytes needed to encode a bigint in [0, 2^64). */
export function varintSizeBig(value: bigint): number {
  if (value < 240n) return 1;
  let v = (value - 240n) >> 4n;
  let size = 2;
  while (v >= 128n) {
    v = (v - 128n) >> 7n;
    size++;
  }
  return size;
}

/** Result of a decode: the value and the offset just after it. Reused to avoid an allocation per call. */
export interface VarintResult {
  value: number | bigint;
  offset: number;
}

/**
 * Decodes the varint at `offset`, reading no further than `end`.
 * The value is a number when it is a safe integer, a bigint otherwise.
 * Throws SpopError(INVALID_FRAME) when truncated, longer than ten bytes, or >= 2^64.
 */
export function readVarint(buf: Uint8Array, offset: number, end: number, out: VarintResult): VarintResult {
  if (offset >= end) throw invalidFrame('truncated varint');
  const b0 = buf[offset] as number;
  if (b0 < 240) {
    out.value = b0;
    out.offset = offset + 1;
    return out;
  }
  let value = b0;
  let factor = 16; // 2^shift, kept as a float: exact for powers of two
  let pos = offset + 1;
  for (let i = 1; i < 7; i++) {
    if (pos >= end) throw invalidFrame('truncated varint');
    const b = buf[pos++] as number;
    value += b * factor;
    if (b < 128) {
      out.value = value;
      out.offset = pos;
      return out;
    }
    factor *= 128;
  }
  // Eight bytes or more may exceed 2^53: start again exactly with BigInt.
  return readVarintBig(buf, offset, end, out);
}

function readVarintBig(buf: Uint8Array, offset: number, end: number, out: VarintResult): VarintResult {
  let value = BigInt(buf[offset] as number);
  let shift = 4n;
  let pos = offset + 1;
  for (let i = 1; i < MAX_VARINT_BYTES; i++) {
    if (pos >= end) throw invalidFrame('truncated varint');
    const b = buf[pos++] as number;
    value += BigInt(b) << shift;
    if (b < 128) {
      if (value > MAX_VARINT) throw invalidFrame('varint exceeds 64 bits');
      out.value = value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
      out.offset = pos;
      return out;
    }
    shift += 7n;
  }
  throw invalidFrame('varint longer than 10 bytes');
}

/** Convenience decoder for tests and tools: returns a fresh result. */
export function decodeVarint(buf: Uint8Array, offset = 0, end = buf.length): VarintResult {
  return readVarint(buf, offset, end, { value: 0, offset: 0 });
}

/** Encodes any value in [0, 2^64) into a fresh buffer. */
export function encodeVarint(value: number | bigint): Buffer {
  const big = typeof value === 'bigint';
  assertVarintRange(value);
  const buf = Buffer.allocUnsafe(big ? varintSizeBig(value) : varintSize(value));
  if (big) writeVarintBig(buf, 0, value);
  else writeVarint(buf, 0, value);
  return buf;
}

/** Throws a RangeError for values a varint cannot carry (a programming error, not a peer's). */
export function assertVarintRange(value: number | bigint): void {
  if (typeof value === 'bigint') {
    if (value < 0n || value > MAX_VARINT) throw new RangeError(`varint out of range: ${value}`);
  } else if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`varint must be a non-negative safe integer or a bigint: ${value}`);
  }
}
