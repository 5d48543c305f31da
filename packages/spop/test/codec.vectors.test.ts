/**
 * Every named vector, both directions: decode(hex) is the object, encode(object)
 * is the hex, and a decoded frame re-encodes to the same bytes (which goes
 * through the raw `bytes` views the decoder keeps for strings and addresses).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Reader, Status, decodeFrame, encodeFrame, encodeTypedData } from '../src/codec/index.js';
import { assertSpopError, bodyOf, fromHex, normalise, normaliseData, toHex } from './helpers.js';
import { int64Vectors, invalidBodies, referenceVectors, typedDataVectors, varintVectors, vectors } from './vectors.js';

describe('vector table', () => {
  it('has unique names and unique hex', () => {
    assert.equal(new Set(vectors.map((v) => v.name)).size, vectors.length);
    assert.equal(new Set(vectors.map((v) => v.hex)).size, vectors.length);
  });

  it('LENGTH of every vector is the size of its body', () => {
    for (const v of vectors) {
      const wire = fromHex(v.hex);
      assert.equal(wire.readUInt32BE(0), wire.length - 4, v.name);
    }
  });

  // Guards against a vector of docs/protocol.md being forgotten: every backticked
  // hex string of its test vectors (§11) that is a whole frame (LENGTH matches)
  // must be in the table, and so must every varint of its examples (§3.4).
  const protocol = readFileSync(fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url)), 'utf8');

  /** The text of the section whose heading starts with `heading`, up to the next heading of its level or above. */
  function section(heading: string): string {
    const start = protocol.indexOf(`\n${heading}`);
    assert.ok(start >= 0, `docs/protocol.md has no section "${heading}"`);
    const level = heading.slice(0, heading.indexOf(' ') + 1);
    const next = protocol.slice(start + 1).search(new RegExp(`\\n#{2,${level.length - 1}} `));
    return next < 0 ? protocol.slice(start) : protocol.slice(start, start + 1 + next);
  }

  it('holds every whole frame of docs/protocol.md §11', () => {
    const frames = new Set<string>();
    for (const [, quoted] of section('## 11. ').matchAll(/`([0-9a-f ]+)`/g)) {
      const hex = quoted!.replace(/ /g, '');
      if (hex.length >= 22 && parseInt(hex.slice(0, 8), 16) * 2 === hex.length - 8) frames.add(hex);
    }
    assert.ok(frames.size >= 26, `only ${frames.size} frames found in §11`);
    const table = new Set(referenceVectors.map((v) => v.hex));
    for (const hex of frames) assert.ok(table.has(hex), `§11 frame missing from the table: ${hex}`);
  });

  it('holds every varint of docs/protocol.md §3.4', () => {
    const rows = [...section('### 3.4 ').matchAll(/^\| ([^|]+) \| `([0-9a-f ]+)` \|/gm)];
    assert.ok(rows.length >= 25, `only ${rows.length} varints found in §3.4`);
    // int64Vectors are typed data: the varint follows the type byte 04.
    const table = new Set([...varintVectors.map((v) => v.hex), ...int64Vectors.map((v) => v.hex.slice(2))]);
    for (const [, value, quoted] of rows) {
      const hex = quoted!.replace(/ /g, '');
      assert.ok(table.has(hex), `§3.4 varint missing from the table: ${value!.trim()} = ${hex}`);
    }
  });
});

describe('frame vectors', () => {
  for (const v of vectors) {
    describe(v.name, () => {
      it('decodes to the object', () => {
        assert.deepEqual(normalise(decodeFrame(bodyOf(fromHex(v.hex)))), normalise(v.frame));
      });
      it('encodes to the hex', () => {
        assert.equal(toHex(encodeFrame(v.frame)), v.hex);
      });
      it('re-encodes the decoded frame to the same bytes', () => {
        assert.equal(toHex(encodeFrame(decodeFrame(bodyOf(fromHex(v.hex))))), v.hex);
      });
    });
  }
});

describe('typed data vectors', () => {
  for (const { kind, hex, value } of typedDataVectors) {
    it(`${kind}: ${hex}`, () => {
      const bytes = fromHex(hex);
      assert.equal(toHex(encodeTypedData(value)), toHex(bytes));
      const reader = new Reader(bytes);
      assert.deepEqual(normaliseData(reader.typedData()), normaliseData(value));
      assert.equal(reader.remaining, 0, 'the whole value is consumed');
    });
  }
});

describe('decoded values', () => {
  /** The IPv4 and the STR argument of the two-message NOTIFY of docs/protocol.md §11.4, as decoded. */
  function decodedArgs() {
    const twoMessages = vectors.find((v) => v.name.includes('two messages'))!;
    const body = bodyOf(fromHex(twoMessages.hex));
    const decoded = decodeFrame(body);
    assert.ok(decoded.type === 'notify');
    return [decoded.messages[0]!.args[0]!.value, decoded.messages[1]!.args[0]!.value, body] as const;
  }

  it('strings and addresses are views of the input, with their text on demand', () => {
    const [ip, method, body] = decodedArgs();
    assert.equal(ip.type, 'ipv4');
    assert.equal(method.type, 'str');
    // Same memory, at the value's own offset in the body: not a copy.
    const isViewAt = (view: Uint8Array | undefined, hex: string): boolean =>
      view?.buffer === body.buffer && view.byteOffset - body.byteOffset === body.indexOf(fromHex(hex));
    assert.ok(isViewAt(ip.bytes, '7f000001'));
    assert.ok(isViewAt(method.bytes, '474554'));
    assert.equal(toHex(ip.bytes!), '7f000001');
    assert.equal(method.bytes!.toString('latin1'), 'GET');
    assert.equal(ip.value, '127.0.0.1');
    assert.equal(method.value, 'GET');
  });

  it('serialise to plain {type, value} JSON', () => {
    const [ip, method] = decodedArgs();
    assert.equal(JSON.stringify(ip), '{"type":"ipv4","value":"127.0.0.1"}');
    assert.equal(JSON.stringify(method), '{"type":"str","value":"GET"}');
  });

  it('int64 is a number when safe, a bigint beyond', () => {
    const values = typedDataVectors.filter((v) => v.kind.startsWith('int64') || v.kind.startsWith('uint64')).map((v) => new Reader(fromHex(v.hex)).typedData());
    for (const d of values) {
      assert.ok(d.type === 'int64' || d.type === 'uint64');
      const safe = typeof d.value === 'number' ? Number.isSafeInteger(d.value) : false;
      const big = typeof d.value === 'bigint' && (d.value > Number.MAX_SAFE_INTEGER || d.value < Number.MIN_SAFE_INTEGER);
      assert.ok(safe || big, `${d.type} ${d.value} (${typeof d.value})`);
    }
  });

  it('a BOOL is true only for the exact flag nibble 1 (HAProxy rule: 0x31, 0x91 are false)', () => {
    const bool = (b: number) => new Reader(Buffer.of(b)).typedData();
    assert.deepEqual(bool(0x11), { type: 'bool', value: true });
    for (const b of [0x01, 0x31, 0x91, 0xf1]) assert.deepEqual(bool(b), { type: 'bool', value: false }, b.toString(16));
  });

  it('a STR with flag bits set is still a string (type is the low nibble)', () => {
    assert.deepEqual(normaliseData(new Reader(fromHex('18 02 6f 6b')).typedData()), { type: 'str', value: 'ok' });
  });
});

describe('malformed bodies are rejected with status 4', () => {
  for (const { name, hex } of invalidBodies) {
    it(name, () => {
      assertSpopError(() => decodeFrame(fromHex(hex)), [Status.INVALID_FRAME]);
    });
  }
});
