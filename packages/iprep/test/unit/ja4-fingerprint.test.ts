import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type WireHello, parseClientHello, wireJa3, wireJa4 } from 'test-support/client-hello';
import { type ClientHelloFields, computeJa3, computeJa4, emptyHello, isGrease, ja3Text, ja4Parts } from '../../src/ja4/fingerprint.js';

/** `1301,1302` (hex values) as the 2-byte big-endian list HAProxy's `ssl_fc_*_bin` fetches give. */
function bin(hexValues: string): Uint8Array {
  return Buffer.from(hexValues.split(',').join(''), 'hex');
}

function hello(fields: Partial<ClientHelloFields>): ClientHelloFields {
  return { ...emptyHello(), ...fields };
}

describe('JA4: the specification examples', () => {
  // FoxIO-LLC/ja4, technical_details/JA4.md (v0.18.2): the worked example, with GREASE values added
  // where a real Chrome puts them (HAProxy's fetches give them unless called with (1)).
  const spec = hello({
    helloVersion: 0x0303,
    ciphers: bin('3a3a,1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035'),
    extensions: bin('0a0a,001b,0000,0033,0010,4469,0017,002d,000d,0005,0023,0012,002b,ff01,000b,000a,0015,fafa'),
    sigalgs: bin('0403,0804,0401,0503,0805,0501,0806,0601'),
    supportedVersions: bin('9a9a,0304,0303'),
    alpn: 'h2',
  });

  it('gives t13d1516h2_8daaf6152771_e5627efa2ab1 and its raw form', () => {
    const parts = ja4Parts(spec);
    assert.equal(parts?.ja4, 't13d1516h2_8daaf6152771_e5627efa2ab1');
    assert.equal(
      parts?.raw,
      't13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_' +
        '0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601',
    );
  });

  it('hashes the extensions alone, without an underscore, when the client sends no signature algorithms (6d807ffa2a79)', () => {
    // The spec's example: the same extensions hashed alone. A client without sigalgs also lacks extension 000d in
    // practice; the spec hashes this exact list, so 000d stays in it here.
    const noSigalgs = { ...spec, sigalgs: bin('') };
    assert.equal(computeJa4(noSigalgs)?.split('_')[2], '6d807ffa2a79');
  });

  it('alpn http/1.1 gives h1, none gives 00, non-alphanumeric ends give hex digits', () => {
    assert.equal(computeJa4({ ...spec, alpn: 'http/1.1' })?.slice(8, 10), 'h1');
    assert.equal(computeJa4({ ...spec, alpn: undefined })?.slice(8, 10), '00');
    assert.equal(computeJa4({ ...spec, alpn: '' })?.slice(8, 10), '00');
    // 0xab ... 0x2f: first hex digit of the first byte, last hex digit of the last.
    assert.equal(computeJa4({ ...spec, alpn: Uint8Array.of(0xab, 0x61, 0x2f) })?.slice(8, 10), 'af');
  });

  it('a Chrome 143 ClientHello as a public fingerprinting service reported it: JA4 and JA3 (browserleaks.com/tls)', () => {
    // Published together: ja4 t13d1516h2_8daaf6152771_d8a2da3f94cd, ja4_ro (original order, GREASE removed),
    // ja3_text and ja3_hash 98487aa16281980e7d1120d399efb6a4.
    const chrome = hello({
      helloVersion: 771,
      ciphers: bin('1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035'),
      extensions: bin('002d,0033,0010,fe0d,0017,44cd,0000,000b,000a,002b,ff01,0023,0012,0005,000d,001b'),
      groups: bin('11ec,001d,0017,0018'),
      pointFormats: Uint8Array.of(0),
      sigalgs: bin('0403,0804,0401,0503,0805,0501,0806,0601'),
      supportedVersions: bin('0304,0303'),
      alpn: 'h2',
    });
    assert.equal(computeJa4(chrome), 't13d1516h2_8daaf6152771_d8a2da3f94cd');
    assert.equal(
      ja3Text(chrome),
      '771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,' +
        '45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0',
    );
    assert.equal(computeJa3(chrome), '98487aa16281980e7d1120d399efb6a4');
  });
});

describe('JA4: bounds and missing pieces', () => {
  const base = hello({ helloVersion: 0x0303, ciphers: bin('1301,c02b'), extensions: bin('0000,000a'), groups: bin('001d') });

  it('gives no fingerprint for odd lengths, oversized lists or a missing cipher or extension list', () => {
    assert.ok(computeJa4(base));
    assert.equal(computeJa4({ ...base, ciphers: Uint8Array.of(0x13, 0x01, 0x13) }), undefined);
    assert.equal(computeJa4({ ...base, extensions: new Uint8Array(514) }), undefined);
    assert.equal(computeJa4({ ...base, ciphers: undefined }), undefined);
    assert.equal(computeJa4({ ...base, alpn: 'x'.repeat(256) }), undefined);
    assert.equal(computeJa3({ ...base, groups: Uint8Array.of(1) }), undefined);
    assert.equal(computeJa3({ ...base, helloVersion: -1 }), undefined);
  });

  it('needs the signature algorithms and supported versions when the client sent those extensions (HAProxy < 3.1 has neither)', () => {
    const withSigalgs = { ...base, extensions: bin('0000,000a,000d') };
    assert.equal(computeJa4(withSigalgs), undefined);
    assert.ok(computeJa4({ ...withSigalgs, sigalgs: bin('0403') }));
    const withVersions = { ...base, extensions: bin('0000,002b') };
    assert.equal(computeJa4(withVersions), undefined);
    assert.match(computeJa4({ ...withVersions, supportedVersions: bin('0304') }) ?? '', /^t13d/);
    // JA3 needs neither: HAProxy 2.6 and 3.0 give all of it.
    assert.ok(computeJa3(withSigalgs));
  });

  it('gives 000000000000 for an empty list, counts past 99 as 99, and the legacy version without supported_versions', () => {
    const empty = computeJa4({ ...base, ciphers: bin(''), extensions: bin('') });
    assert.equal(empty, 't12i000000_000000000000_000000000000');
    const many = Array.from({ length: 120 }, (_, i) => (0x0100 + i).toString(16).padStart(4, '0')).join(',');
    assert.match(computeJa4({ ...base, ciphers: bin(many) }) ?? '', /^t12d9902/);
    assert.match(computeJa4({ ...base, helloVersion: 0x0301 }) ?? '', /^t10d/);
    assert.match(computeJa4({ ...base, transport: 'q' }) ?? '', /^q12/);
  });

  it('knows the 16 GREASE values', () => {
    const grease = Array.from({ length: 65536 }, (_, v) => v).filter(isGrease);
    assert.deepEqual(
      grease.map((v) => v.toString(16)),
      ['a0a', '1a1a', '2a2a', '3a3a', '4a4a', '5a5a', '6a6a', '7a7a', '8a8a', '9a9a', 'aaaa', 'baba', 'caca', 'dada', 'eaea', 'fafa'],
    );
  });

  it('never throws, whatever the bytes', () => {
    const bytes = fc.option(fc.uint8Array({ maxLength: 600 }), { nil: undefined });
    fc.assert(
      fc.property(
        bytes,
        bytes,
        bytes,
        bytes,
        bytes,
        bytes,
        fc.option(fc.string({ maxLength: 300 }), { nil: undefined }),
        fc.integer(),
        (a, b, c, d, e, f, alpn, v) => {
          const fields = hello({ ciphers: a, extensions: b, groups: c, pointFormats: d, sigalgs: e, supportedVersions: f, alpn, helloVersion: v });
          computeJa4(fields);
          computeJa3(fields);
        },
      ),
    );
  });
});

// ---------------------------------------------------------------------------
// Against an independent implementation (test-support/client-hello): JA4 and JA3 straight from a
// ClientHello on the wire, against the module fed the pieces HAProxy's fetches would give.

/** What HAProxy's `ssl_fc_*_bin(0)` fetches give for this ClientHello (GREASE included), and the ALPN it would negotiate first. */
function fetchesOf(h: WireHello): ClientHelloFields {
  const u16Bytes = (values: number[]): Uint8Array => Uint8Array.from(values.flatMap((v) => [v >> 8, v & 0xff]));
  const ext = (type: number): Buffer | undefined => h.extensions.find((e) => e.type === type)?.data;
  const alpnData = ext(0x10);
  return hello({
    helloVersion: h.version,
    ciphers: u16Bytes(h.ciphers),
    extensions: u16Bytes(h.extensions.map((e) => e.type)),
    groups: ext(0x0a)?.subarray(2),
    pointFormats: ext(0x0b)?.subarray(1),
    sigalgs: ext(0x0d)?.subarray(2),
    supportedVersions: ext(0x2b)?.subarray(1),
    alpn: alpnData?.subarray(3, 3 + (alpnData[2] as number)),
  });
}

const helloDir = join(import.meta.dirname, '..', 'fixtures', 'client-hellos');

describe('JA4 against an independent implementation, on ClientHellos captured from real clients', () => {
  const files = readdirSync(helloDir).filter((f) => f.endsWith('.hex'));

  it('has the captures (curl, Node, Python, openssl s_client)', () => {
    assert.deepEqual(files.map((f) => f.split('-')[0]).sort(), ['curl', 'node', 'openssl', 'python']);
  });

  for (const file of files) {
    it(`${file}: the same JA4 and JA3 from the wire and from the fetches`, () => {
      const wire = parseClientHello(Buffer.from(readFileSync(join(helloDir, file), 'utf8').trim(), 'hex'));
      const fields = fetchesOf(wire);
      assert.equal(computeJa4(fields), wireJa4(wire));
      assert.equal(computeJa3(fields), wireJa3(wire));
    });
  }

  it('the four clients have four different JA4 fingerprints', () => {
    const ja4s = files.map((f) => computeJa4(fetchesOf(parseClientHello(Buffer.from(readFileSync(join(helloDir, f), 'utf8').trim(), 'hex')))));
    assert.equal(new Set(ja4s).size, 4, ja4s.join(' '));
  });
});
