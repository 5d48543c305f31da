/**
 * Fuzzing with a fixed seed (reproducible): random bytes and mutated valid
 * frames thrown at decodeFrame and FrameParser. Each input must either decode
 * or throw SpopError with a defined status (4 from the decoder, 3 or 4 from
 * the parser) — never another error type, never a hang. A frame that does
 * decode must re-encode to something that decodes to the same frame.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameParser, SpopError, Status, decodeFrame, encodeFrame } from '../src/codec/index.js';
import { assertIsSpopError, assertSpopError, bodyOf, fromHex, normalise } from './helpers.js';
import { vectors } from './vectors.js';

const SEED = 0x5eed_5909;
const CASES = 3000;
const TIME_LIMIT_MS = 5000;

/** mulberry32: tiny, seedable, good enough to pick mutations. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n); // [0, n)
  return {
    int,
    byte: (): number => int(256),
    pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]!,
    bytes: (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256))),
  };
}
type Rng = ReturnType<typeof prng>;

const wires = vectors.map((v) => fromHex(v.hex));
const knownTypes = [0, 1, 2, 3, 101, 102, 103];

/** One random change to a copy of `buf`. */
function mutate(rng: Rng, input: Buffer): Buffer {
  const buf = Buffer.from(input);
  const at = rng.int(buf.length + 1);
  switch (rng.int(7)) {
    case 0: // flip 1..3 bits
      for (let n = 1 + rng.int(3); n > 0 && buf.length > 0; n--) buf[rng.int(buf.length)]! ^= 1 << rng.int(8);
      return buf;
    case 1: // truncate
      return buf.subarray(0, at);
    case 2: // insert random bytes
      return Buffer.concat([buf.subarray(0, at), rng.bytes(1 + rng.int(8)), buf.subarray(at)]);
    case 3: // delete a run
      return Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1 + rng.int(8))]);
    case 4: // overwrite a byte with an interesting value
      if (buf.length > 0) buf[rng.int(buf.length)] = rng.pick([0x00, 0x7f, 0x80, 0xef, 0xf0, 0xff, 0x0a, 0x1f]);
      return buf;
    case 5: // splice in a piece of another vector
      return Buffer.concat([buf.subarray(0, at), rng.pick(wires).subarray(rng.int(20)), buf.subarray(at + rng.int(8))]);
    default: // append garbage
      return Buffer.concat([buf, rng.bytes(1 + rng.int(16))]);
  }
}

/** A frame body: sometimes a plausible header (known type, FIN, small ids) before random payload. */
function randomBody(rng: Rng): Buffer {
  const payload = rng.bytes(rng.int(80));
  if (rng.int(2) === 0) return payload;
  return Buffer.concat([Buffer.of(rng.pick(knownTypes), 0, 0, 0, 1, rng.int(4), rng.int(4)), payload]);
}

/**
 * Decodes `body`: returns true when it decoded, false when it threw a
 * SpopError with status 4; fails the test on anything else. A decoded frame
 * must re-encode, and the re-encoding must decode to the same frame.
 */
function decodeOrReject(body: Buffer): boolean {
  let frame;
  try {
    frame = decodeFrame(body);
  } catch (e) {
    assertIsSpopError(e, [Status.INVALID_FRAME]);
    return false;
  }
  const again = decodeFrame(bodyOf(encodeFrame(frame)));
  assert.deepEqual(normalise(again), normalise(frame), `re-encoding changed the frame of ${body.toString('hex')}`);
  return true;
}

describe(`fuzz (seed ${SEED.toString(16)}, ${CASES} cases per test)`, () => {
  // CPU time rather than wall time: the budget holds on a busy machine too.
  const cpuMs = (): number => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  const started = cpuMs();

  it('decodeFrame on random bodies', { timeout: TIME_LIMIT_MS }, () => {
    const rng = prng(SEED);
    let decoded = 0;
    for (let i = 0; i < CASES; i++) if (decodeOrReject(randomBody(rng))) decoded++;
    // Both outcomes must be exercised, or the fuzzer tests nothing.
    assert.ok(decoded > CASES / 20 && decoded < CASES, `${decoded} of ${CASES} decoded`);
  });

  it('decodeFrame on mutated vectors (1 to 4 mutations each)', { timeout: TIME_LIMIT_MS }, () => {
    const rng = prng(SEED + 1);
    let decoded = 0;
    for (let i = 0; i < CASES; i++) {
      let body = bodyOf(rng.pick(wires));
      for (let n = 1 + rng.int(4); n > 0; n--) body = mutate(rng, body);
      if (decodeOrReject(body)) decoded++;
    }
    assert.ok(decoded > CASES / 20 && decoded < CASES, `${decoded} of ${CASES} decoded`);
  });

  it('FrameParser on mutated streams in random chunks, length prefixes included', { timeout: TIME_LIMIT_MS }, () => {
    const rng = prng(SEED + 2);
    const outcomes = { clean: 0, rejected: 0 };
    for (let i = 0; i < CASES; i++) {
      // A few vectors in a row, then mutations anywhere (prefixes too).
      let stream: Buffer = Buffer.concat(Array.from({ length: 1 + rng.int(4) }, () => rng.pick(wires)));
      for (let n = rng.int(4); n > 0; n--) stream = mutate(rng, stream);
      if (rng.int(4) === 0 && stream.length >= 4) stream.writeUInt32BE(rng.pick([0, 6, 7, 8, 255, 256, 257, 0xffff, 0xffff_ffff]), 0);

      const parser = new FrameParser(rng.pick([256, 1024, 16380]));
      const sink = (buf: Buffer, start: number, end: number): void => void decodeOrReject(buf.subarray(start, end));
      try {
        for (let pos = 0; pos < stream.length; ) {
          const size = 1 + rng.int(48);
          parser.push(stream.subarray(pos, pos + size), sink);
          pos += size;
          assert.ok(parser.buffered < parser.maxFrameSize + 4, `${parser.buffered} bytes buffered`);
        }
        outcomes.clean++;
      } catch (e) {
        if (!(e instanceof SpopError)) throw e;
        assertIsSpopError(e, [Status.FRAME_TOO_BIG, Status.INVALID_FRAME]);
        outcomes.rejected++;
      }
    }
    assert.ok(outcomes.clean > 0 && outcomes.rejected > 0, JSON.stringify(outcomes));
  });

  it('the whole fuzz run stays within its time budget', () => {
    const spent = cpuMs() - started;
    assert.ok(spent < TIME_LIMIT_MS, `${Math.round(spent)} ms of CPU`);
  });
});

describe('hostile length prefixes', () => {
  it('0xffffffff is rejected at once with status 3, nothing buffered beyond the prefix', () => {
    for (const split of [0, 1, 2, 3]) {
      const parser = new FrameParser(16380);
      const prefix = fromHex('ffffffff');
      const sink = (): void => assert.fail('no frame expected');
      if (split > 0) {
        parser.push(prefix.subarray(0, split), sink);
        assert.equal(parser.buffered, split);
      }
      assertSpopError(() => parser.push(prefix.subarray(split), sink), [Status.FRAME_TOO_BIG]);
    }
  });

  it('a frame of exactly maxFrameSize trickled in never buffers more than maxFrameSize + 4 bytes', () => {
    const max = 1024;
    const parser = new FrameParser(max);
    const frame = Buffer.alloc(4 + max);
    frame.writeUInt32BE(max, 0);
    fromHex('67 00000001 01 01').copy(frame, 4);
    let peak = 0;
    let delivered = 0;
    for (let i = 0; i < frame.length; i += 7) {
      parser.push(frame.subarray(i, i + 7), () => void delivered++);
      peak = Math.max(peak, parser.buffered);
    }
    assert.equal(delivered, 1);
    assert.ok(peak <= max + 4, `peak ${peak}`);
    assert.equal(peak, frame.length - (frame.length % 7 || 7), 'the body was buffered up to its last chunk');
  });

  it('a too-big LENGTH after valid frames in one chunk is caught before its body', () => {
    const parser = new FrameParser(256);
    let delivered = 0;
    const chunk = Buffer.concat([wires[0]!, wires[0]!, fromHex('00000101 67')]);
    assertSpopError(() => parser.push(chunk, () => void delivered++), [Status.FRAME_TOO_BIG]);
    assert.equal(delivered, 2);
  });
});
