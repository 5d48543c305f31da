/**
 * FrameParser against TCP's chunking, pg-protocol style: every vector (and
 * all of them as one stream) split at every byte offset and fed byte by byte
 * must yield the same frame bodies. Plus pause/resume, the LENGTH checks made
 * before the body arrives, and the stability of bodies already delivered.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameParser, Status, decodeFrame } from '../src/codec/index.js';
import { assertSpopError, fromHex, normalise, toHex } from './helpers.js';
import { type Vector, vectors } from './vectors.js';

const MAX = 16380;

/** A parser and the bodies it delivered, kept as views (no copy) on purpose. */
function collector(maxFrameSize = MAX) {
  const parser = new FrameParser(maxFrameSize);
  const bodies: Buffer[] = [];
  const sink = (buf: Buffer, start: number, end: number): void => {
    bodies.push(buf.subarray(start, end));
  };
  return { parser, bodies, sink, push: (chunk: Buffer) => parser.push(chunk, sink) };
}

/** Feeds `chunks` and returns the delivered bodies; nothing may be left pending. */
function feed(chunks: Buffer[]): Buffer[] {
  const c = collector();
  for (const chunk of chunks) c.push(chunk);
  assert.equal(c.parser.buffered, 0, 'bytes left pending');
  return c.bodies;
}

const normalised = new Map(vectors.map((v) => [v, normalise(v.frame)]));

/** The bodies decode, in order, to the frames of `expected`. */
function assertFrames(bodies: Buffer[], expected: readonly Vector[]): void {
  assert.equal(bodies.length, expected.length, 'number of frames');
  bodies.forEach((body, i) => {
    const v = expected[i]!;
    assert.deepEqual(normalise(decodeFrame(body)), normalised.get(v) ?? normalise(v.frame), v.name);
  });
}

/** The bodies, byte for byte, as one string: cheap enough to check thousands of times. */
const bodiesHex = (bodies: Buffer[]): string => bodies.map(toHex).join(' ');

const wire = (v: Vector): Buffer => fromHex(v.hex);
const byteByByte = (buf: Buffer): Buffer[] => Array.from(buf, (b) => Buffer.of(b));
const stream = Buffer.concat(vectors.map(wire));
const expectedBodies = vectors.map((v) => v.hex.slice(8));
const expectedHex = expectedBodies.join(' ');

describe('every vector split in two at every offset', () => {
  for (const v of vectors) {
    it(v.name, () => {
      const bytes = wire(v);
      for (let i = 0; i <= bytes.length; i++) {
        assertFrames(feed([bytes.subarray(0, i), bytes.subarray(i)]), [v]);
      }
      assertFrames(feed(byteByByte(bytes)), [v]);
    });
  }
});

describe(`all ${vectors.length} vectors as one stream (${stream.length} bytes)`, () => {
  it('in one chunk', () => {
    assertFrames(feed([stream]), vectors);
  });

  it('split in two at every offset', () => {
    for (let i = 0; i <= stream.length; i++) {
      // Byte-exact bodies at every offset (the bodies' decoding is checked in
      // the other tests: equal bytes decode equally).
      assert.equal(bodiesHex(feed([stream.subarray(0, i), stream.subarray(i)])), expectedHex, `split at ${i}`);
    }
  });

  it('byte by byte', () => {
    assertFrames(feed(byteByByte(stream)), vectors);
  });

  it('in chunks of every size from 2 to 64', () => {
    for (let size = 2; size <= 64; size++) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));
      assert.equal(bodiesHex(feed(chunks)), expectedHex, `chunks of ${size}`);
    }
  });
});

describe('bodies already delivered', () => {
  it('are not corrupted by later pushes (split frames are joined into fresh buffers)', () => {
    const c = collector();
    const snapshots: string[] = [];
    const snapshot = (): void => {
      while (snapshots.length < c.bodies.length) snapshots.push(toHex(c.bodies[snapshots.length]!));
    };
    // Each push carries the tail of one frame and the head of the next, so the
    // parser holds a partial frame every time it delivers a body.
    const halves = vectors.map(wire).map((b) => [b.subarray(0, b.length >> 1), b.subarray(b.length >> 1)] as const);
    c.push(halves[0]![0]);
    halves.forEach(([, tail], i) => {
      c.push(Buffer.concat([tail, halves[i + 1]?.[0] ?? Buffer.alloc(0)]));
      snapshot();
    });
    assert.deepEqual(snapshots, expectedBodies, 'bodies as delivered');
    assert.deepEqual(c.bodies.map(toHex), snapshots, 'bodies after every later push');
  });
});

describe('pause and resume', () => {
  const three = vectors.slice(0, 3);
  const threeWire = Buffer.concat(three.map(wire));

  it('a sink returning false stops delivery until resume', () => {
    const parser = new FrameParser(MAX);
    const got: Buffer[] = [];
    let allow = 1;
    const sink = (buf: Buffer, start: number, end: number): boolean => {
      got.push(buf.subarray(start, end));
      return --allow > 0;
    };
    parser.push(threeWire, sink);
    assert.equal(got.length, 1);
    assert.equal(parser.paused, true);
    assert.equal(parser.buffered, threeWire.length - wire(three[0]!).length);

    // Bytes pushed while paused are kept, not delivered.
    const more = wire(vectors[3]!);
    parser.push(more, sink);
    assert.equal(got.length, 1);
    assert.equal(parser.buffered, threeWire.length + more.length - wire(three[0]!).length);

    // Resume delivers one more (the sink pauses again), then the rest.
    allow = 1;
    parser.resume(sink);
    assert.equal(got.length, 2);
    assert.equal(parser.paused, true);
    allow = Infinity;
    parser.resume(sink);
    assert.equal(parser.paused, false);
    assert.equal(parser.buffered, 0);
    assertFrames(got, vectors.slice(0, 4));
  });

  it('pausing on the last complete frame still holds back the next push', () => {
    const parser = new FrameParser(MAX);
    const got: Buffer[] = [];
    parser.push(wire(vectors[0]!), (buf, s, e) => {
      got.push(buf.subarray(s, e));
      return false;
    });
    assert.equal(parser.paused, true);
    assert.equal(parser.buffered, 0);
    const sink = (buf: Buffer, s: number, e: number): void => void got.push(buf.subarray(s, e));
    parser.push(wire(vectors[1]!), sink);
    assert.equal(got.length, 1, 'nothing delivered while paused');
    parser.resume(sink);
    assertFrames(got, vectors.slice(0, 2));
  });

  it('resume with nothing pending is harmless', () => {
    const c = collector();
    c.parser.resume(c.sink);
    assert.equal(c.bodies.length, 0);
    assert.equal(c.parser.paused, false);
  });

  it('a partial frame stays pending across pause and resume', () => {
    const parser = new FrameParser(MAX);
    const got: Buffer[] = [];
    const bytes = Buffer.concat([wire(vectors[0]!), wire(vectors[1]!)]);
    const cut = wire(vectors[0]!).length + 10;
    parser.push(bytes.subarray(0, cut), (buf, s, e) => {
      got.push(buf.subarray(s, e));
      return false;
    });
    assert.equal(parser.buffered, 10);
    const sink = (buf: Buffer, s: number, e: number): void => void got.push(buf.subarray(s, e));
    parser.resume(sink);
    assert.equal(got.length, 1, 'the second frame is not complete yet');
    parser.push(bytes.subarray(cut), sink);
    assertFrames(got, vectors.slice(0, 2));
  });
});

describe('LENGTH checks', () => {
  it('LENGTH > maxFrameSize is rejected with status 3 as soon as the prefix is in', () => {
    const c = collector(256);
    c.push(fromHex('000001'));
    assert.equal(c.parser.buffered, 3, 'three bytes: nothing to check yet');
    assertSpopError(() => c.push(fromHex('01')), [Status.FRAME_TOO_BIG]); // 257, body never sent
    assert.equal(c.bodies.length, 0);
  });

  it('LENGTH == maxFrameSize is accepted and waits for its body', () => {
    const c = collector(256);
    c.push(fromHex('00000100'));
    assert.equal(c.parser.buffered, 4);
    const body = Buffer.concat([fromHex('67 00000001 01 01'), Buffer.alloc(249, 0)]);
    assert.equal(body.length, 256);
    c.push(body.subarray(0, 100));
    c.push(body.subarray(100));
    assert.equal(c.bodies.length, 1);
    assert.equal(toHex(c.bodies[0]!), toHex(body));
  });

  it('a lowered maxFrameSize (after negotiation) applies to the next frame', () => {
    const c = collector(16380);
    const hello = wire(vectors[1]!); // 133 bytes, LENGTH 129
    c.push(hello);
    c.parser.maxFrameSize = 128;
    assertSpopError(() => c.push(hello), [Status.FRAME_TOO_BIG]);
    assert.equal(c.bodies.length, 1);
  });

  for (const length of [0, 1, 6]) {
    it(`LENGTH ${length} (< 7) is rejected with status 4`, () => {
      const c = collector();
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(length);
      assertSpopError(() => c.push(prefix), [Status.INVALID_FRAME]);
    });
  }

  it('LENGTH 7 is the smallest frame', () => {
    assertFrames(feed([fromHex('00000007 67 00000001 14 01')]), [vectors.find((v) => v.name === '11.5 empty ACK')!]);
  });

  it('frames before a bad LENGTH in the same chunk are delivered first', () => {
    const c = collector();
    assertSpopError(() => c.push(Buffer.concat([wire(vectors[0]!), fromHex('00000003')])), [Status.INVALID_FRAME]);
    assertFrames(c.bodies, [vectors[0]!]);
  });
});

describe('reassembly cost', () => {
  it('a 256 KiB frame arriving one byte at a time costs linear copying, not quadratic', () => {
    const size = 256 * 1024;
    const frame = Buffer.alloc(4 + size);
    frame.writeUInt32BE(size, 0);
    frame[4] = 3; // NOTIFY
    frame[8] = 1; // FIN
    const c = collector(size);
    const started = performance.now();
    for (let i = 0; i < frame.length; i++) c.push(frame.subarray(i, i + 1));
    const ms = performance.now() - started;
    assert.equal(c.bodies.length, 1);
    assert.ok(c.bodies[0]!.equals(frame.subarray(4)), 'the body is the bytes sent');
    assert.equal(c.parser.buffered, 0);
    // Joining the pending bytes with each new byte copies ~34 GB here (seconds); appending copies ~512 KiB.
    assert.ok(ms < 500, `reassembly took ${Math.round(ms)} ms`);
  });

  it('a frame split across chunks leaves the frames after it in the chunk uncopied', () => {
    const a = wire(vectors[0]!);
    const b = wire(vectors[1]!);
    const c = collector();
    c.push(a.subarray(0, 5));
    const rest = Buffer.concat([a.subarray(5), b]);
    c.push(rest);
    assertFrames(c.bodies, [vectors[0]!, vectors[1]!]);
    const second = c.bodies[1]!;
    assert.ok(second.buffer === rest.buffer && second.byteOffset === rest.byteOffset + a.length - 5 + 4, 'the second frame is a view on the chunk it came in');
  });
});
