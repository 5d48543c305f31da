/**
 * SPOP varints (docs/protocol.md §3): the §3.4 table both ways, the §3.3 size
 * boundaries, and rejection of truncated, over-long and out-of-range input.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_VARINT,
  Reader,
  Status,
  decodeVarint,
  encodeTypedData,
  encodeVarint,
  readVarint,
  varintSize,
  varintSizeBig,
  writeVarint,
  writeVarintBig,
} from '../src/codec/index.js';
import { assertSpopError, canonicalInt, fromHex, toHex } from './helpers.js';
import { int64Vectors, varintRanges, varintVectors } from './vectors.js';

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const isSafe = (v: bigint): boolean => v <= SAFE;

/** Decodes the whole of `hex` and checks nothing is left over. */
function decodeAll(hex: string): number | bigint {
  const bytes = fromHex(hex);
  const r = decodeVarint(bytes);
  assert.equal(r.offset, bytes.length, `varint ${hex} is ${r.offset} bytes, not ${bytes.length}`);
  return r.value;
}

describe('§3.4 worked examples', () => {
  for (const { value, hex } of varintVectors) {
    const big = BigInt(value);
    it(`${value} <-> ${hex}`, () => {
      assert.equal(toHex(encodeVarint(big)), hex, 'bigint input');
      if (isSafe(big)) assert.equal(toHex(encodeVarint(Number(big))), hex, 'number input');
      assert.equal(decodeAll(hex), canonicalInt(big));
      assert.equal(varintSizeBig(big), hex.length / 2);
      if (isSafe(big)) assert.equal(varintSize(Number(big)), hex.length / 2);
    });
  }

  for (const { value, hex } of int64Vectors) {
    it(`int64 ${value} <-> ${hex}`, () => {
      assert.equal(toHex(encodeTypedData({ type: 'int64', value })), hex, 'number input');
      assert.equal(toHex(encodeTypedData({ type: 'int64', value: BigInt(value) })), hex, 'bigint input');
      const reader = new Reader(fromHex(hex));
      assert.deepEqual(reader.typedData(), { type: 'int64', value });
      assert.equal(reader.remaining, 0);
    });
  }

  it("negative int64 is the same varint as its 64-bit two's complement (no zig-zag)", () => {
    const minusOne = int64Vectors.find((v) => v.value === -1)!;
    const max = varintVectors.find((v) => v.value === MAX_VARINT)!;
    assert.equal(minusOne.hex, `04${max.hex}`);
  });

  it('continuation bytes are added with their high bit (not LEB128): f0 80 00 is 2288, not 240', () => {
    assert.equal(decodeAll('f08000'), 2288);
  });
});

describe('§3.3 size boundaries', () => {
  // min-1, min, min+1, max-1, max, max+1 of every size, where they exist.
  const all = varintRanges.flatMap(({ bytes, min, max }) => [
    ...(min > 0n ? [{ value: min - 1n, bytes: bytes - 1 }] : []),
    { value: min, bytes },
    { value: min + 1n, bytes },
    { value: max - 1n, bytes },
    { value: max, bytes },
    ...(max < MAX_VARINT ? [{ value: max + 1n, bytes: bytes + 1 }] : []),
  ]);
  const boundaries = [...new Map(all.map((b) => [b.value, b])).values()];

  for (const { value, bytes } of boundaries) {
    it(`${value} takes ${bytes} byte(s) and round-trips`, () => {
      const wire = encodeVarint(value);
      assert.equal(wire.length, bytes);
      assert.equal(varintSizeBig(value), bytes);
      assert.equal(decodeVarint(wire).value, canonicalInt(value));
      assert.equal(decodeVarint(wire).offset, bytes);
      if (isSafe(value)) {
        assert.equal(varintSize(Number(value)), bytes);
        assert.deepEqual(encodeVarint(Number(value)), wire, 'number and bigint encoders agree');
      }
    });
  }

  it('the 8-byte range straddles 2^53: both sides of the limit', () => {
    assert.equal(decodeAll(toHex(encodeVarint(SAFE))), Number.MAX_SAFE_INTEGER);
    assert.equal(decodeAll(toHex(encodeVarint(SAFE + 1n))), SAFE + 1n);
    assert.equal(varintSizeBig(SAFE), 8);
    assert.equal(varintSizeBig(SAFE + 1n), 8);
  });
});

describe('number vs bigint results', () => {
  const cases: [bigint, 'number' | 'bigint'][] = [
    [70922828777711n, 'number'], // largest 7-byte value: decoded without BigInt
    [70922828777712n, 'number'], // smallest 8-byte value: BigInt path, converted back
    [SAFE, 'number'],
    [SAFE + 1n, 'bigint'],
    [9078122083518703n, 'bigint'], // largest 8-byte value
    [MAX_VARINT, 'bigint'],
  ];
  for (const [value, kind] of cases) {
    it(`${value} decodes as a ${kind}`, () => {
      const decoded = decodeVarint(encodeVarint(value)).value;
      assert.equal(typeof decoded, kind);
      assert.equal(BigInt(decoded), value);
    });
  }
});

describe('writers', () => {
  it('write at an offset and return the offset after the value', () => {
    const buf = Buffer.alloc(16, 0xaa);
    assert.equal(writeVarint(buf, 3, 16380), 6);
    assert.equal(toHex(buf.subarray(2, 7)), 'aafcf006aa');
    assert.equal(writeVarintBig(buf, 1, MAX_VARINT), 11);
    assert.equal(toHex(buf.subarray(0, 12)), 'aafff0fefefefefefefe0eaa');
  });

  it('readVarint stops at `end` and reuses its result object', () => {
    const out = { value: 0 as number | bigint, offset: 0 };
    const buf = fromHex('aa f0 ea 02 bb');
    assert.equal(readVarint(buf, 1, 4, out), out);
    assert.deepEqual(out, { value: 8080, offset: 4 });
    assertSpopError(() => readVarint(buf, 1, 3, out), [Status.INVALID_FRAME]);
  });
});

describe('rejections', () => {
  it('every strict prefix of a multi-byte varint is truncated (status 4)', () => {
    for (const { hex } of varintVectors.filter((v) => v.hex.length > 2)) {
      const bytes = fromHex(hex);
      for (let n = 0; n < bytes.length; n++) {
        assertSpopError(() => decodeVarint(bytes.subarray(0, n)), [Status.INVALID_FRAME]);
        assertSpopError(() => decodeVarint(bytes, 0, n), [Status.INVALID_FRAME]);
      }
    }
  });

  it('an 11-byte varint is rejected', () => {
    // f0, nine continuation bytes, a terminator. (The 10th byte, shifted by 60,
    // has its high bit set, so any 11-byte form is also >= 2^67.)
    assertSpopError(() => decodeVarint(fromHex('f0 80 80 80 80 80 80 80 80 80 00')), [Status.INVALID_FRAME]);
    assertSpopError(() => decodeVarint(fromHex('ff ff ff ff ff ff ff ff ff ff 7f')), [Status.INVALID_FRAME]);
  });

  it('ten-byte values >= 2^64 are rejected', () => {
    // 2^64 encoded with the §3.1 algorithm, and the largest 10-byte form (≈ 1.5 · 2^67).
    for (const hex of ['f0 f1 fe fe fe fe fe fe fe 0e', 'ff ff ff ff ff ff ff ff ff 7f', 'ff f0 fe fe fe fe fe fe fe 0f']) {
      assertSpopError(() => decodeVarint(fromHex(hex)), [Status.INVALID_FRAME]);
    }
    assert.equal(decodeAll('fff0fefefefefefefe0e'), MAX_VARINT, '2^64-1 itself is fine');
  });

  it('the encoder refuses what a varint cannot carry (RangeError)', () => {
    for (const v of [-1, -1n, 1.5, NaN, Infinity, Number.MAX_SAFE_INTEGER + 1, MAX_VARINT + 1n]) {
      assert.throws(() => encodeVarint(v), RangeError, String(v));
    }
  });
});
