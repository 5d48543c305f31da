/**
 * JA4 and JA3 TLS client fingerprints from the pieces of the ClientHello that
 * HAProxy captures (`tune.ssl.capture-buffer-size`) and sends in a SPOE message:
 * `ssl_fc_cipherlist_bin`, `ssl_fc_extlist_bin`, `ssl_fc_eclist_bin`,
 * `ssl_fc_ecformats_bin`, `ssl_fc_sigalgs_bin`, `ssl_fc_supported_versions_bin`
 * (lists of 2-byte big-endian values, point formats 1 byte each),
 * `ssl_fc_protocol_hello_id` and `ssl_fc_alpn`.
 *
 * JA4 follows FoxIO's specification (github.com/FoxIO-LLC/ja4, technical_details/JA4.md):
 * `a_b_c` where a = transport, version, SNI flag, cipher and extension counts and the ALPN's
 * first and last characters; b = the first 12 hex of the SHA-256 of the sorted ciphers; c =
 * the same of the sorted extensions (SNI and ALPN left out) then `_` and the signature
 * algorithms in their order. GREASE values (RFC 8701) are ignored everywhere, whether HAProxy
 * filtered them (`(1)` argument) or not. JA3 is Salesforce's: the MD5 of
 * `version,ciphers,extensions,groups,point-formats` in decimal, in the client's order.
 *
 * Pure functions of bounded bytes: malformed input (odd lengths, too long) gives undefined,
 * never a throw.
 */
import { createHash } from 'node:crypto';

/** What JA4's first character says about the transport: TLS over TCP, QUIC, DTLS. */
export type Ja4Transport = 't' | 'q' | 'd';

/** The captured ClientHello pieces. A field left undefined was not captured (not sent by HAProxy). */
export interface ClientHelloFields {
  /** The ClientHello's legacy version (`ssl_fc_protocol_hello_id`, 0x0303 for TLS 1.2 and 1.3); -1 unknown. */
  helloVersion: number;
  /** Cipher suites, 2 bytes each. */
  ciphers: Uint8Array | undefined;
  /** Extension types in the client's order, 2 bytes each. */
  extensions: Uint8Array | undefined;
  /** Supported groups (elliptic curves), 2 bytes each. */
  groups: Uint8Array | undefined;
  /** EC point formats, 1 byte each. */
  pointFormats: Uint8Array | undefined;
  /** Signature algorithms in the client's order, 2 bytes each (HAProxy 3.1+). */
  sigalgs: Uint8Array | undefined;
  /** The supported_versions extension's list, 2 bytes each (HAProxy 3.1+). */
  supportedVersions: Uint8Array | undefined;
  /** The ALPN protocol (HAProxy gives the negotiated one: see docs/ja4.md). */
  alpn: Uint8Array | string | undefined;
  transport: Ja4Transport;
}

/** Longest list accepted for any piece, in bytes: 256 two-byte values, far beyond any real client. */
export const MAX_FIELD_BYTES = 512;
/** Longest ALPN protocol name (RFC 7301 allows 255 bytes). */
export const MAX_ALPN_BYTES = 255;

const EXT_SNI = 0x0000;
const EXT_ALPN = 0x0010;
const EXT_SIGALGS = 0x000d;
const EXT_SUPPORTED_VERSIONS = 0x002b;
const EMPTY_HASH = '000000000000';

/** RFC 8701's reserved values: 0x0a0a, 0x1a1a, ... 0xfafa. */
export function isGrease(value: number): boolean {
  return (value & 0x0f0f) === 0x0a0a && value >> 8 === (value & 0xff);
}

/** A fresh, empty set of fields (transport `t`). */
export function emptyHello(): ClientHelloFields {
  return {
    helloVersion: -1,
    ciphers: undefined,
    extensions: undefined,
    groups: undefined,
    pointFormats: undefined,
    sigalgs: undefined,
    supportedVersions: undefined,
    alpn: undefined,
    transport: 't',
  };
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function validList(bytes: Uint8Array | undefined): bytes is Uint8Array {
  return bytes !== undefined && bytes.length <= MAX_FIELD_BYTES && (bytes.length & 1) === 0;
}

function u16(bytes: Uint8Array, at: number): number {
  return ((bytes[at] as number) << 8) | (bytes[at + 1] as number);
}

/** The non-GREASE 2-byte values of a list, optionally leaving some out. */
function values(bytes: Uint8Array, skip?: (v: number) => boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += 2) {
    const v = u16(bytes, i);
    if (!isGrease(v) && (skip === undefined || !skip(v))) out.push(v);
  }
  return out;
}

function hex4(v: number): string {
  return (HEX[v >> 8] as string) + (HEX[v & 0xff] as string);
}

function hash12(text: string): string {
  return text === '' ? EMPTY_HASH : createHash('sha256').update(text).digest('hex').slice(0, 12);
}

function has(list: Uint8Array, value: number): boolean {
  for (let i = 0; i < list.length; i += 2) if (u16(list, i) === value) return true;
  return false;
}

function versionText(v: number): string {
  switch (v) {
    case 0x0304:
      return '13';
    case 0x0303:
      return '12';
    case 0x0302:
      return '11';
    case 0x0301:
      return '10';
    case 0x0300:
      return 's3';
    case 0x0200:
      return 's2';
    case 0x0100:
      return 's1';
    case 0xfeff:
      return 'd1';
    case 0xfefd:
      return 'd2';
    case 0xfefc:
      return 'd3';
    default:
      return '00';
  }
}

function isAlphanumeric(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** The ALPN's first and last characters; their hex digits (first of the first, last of the last) when either is not alphanumeric. */
function alpnText(alpn: Uint8Array | string | undefined): string | undefined {
  if (alpn === undefined) return '00';
  const bytes = typeof alpn === 'string' ? Buffer.from(alpn, 'latin1') : alpn;
  if (bytes.length > MAX_ALPN_BYTES) return undefined;
  if (bytes.length === 0) return '00';
  const first = bytes[0] as number;
  const last = bytes[bytes.length - 1] as number;
  if (isAlphanumeric(first) && isAlphanumeric(last)) return String.fromCharCode(first, last);
  return (HEX[first] as string).charAt(0) + (HEX[last] as string).charAt(1);
}

function count2(n: number): string {
  return n > 99 ? '99' : n < 10 ? `0${n}` : String(n);
}

/** JA4's parts, raw (JA4_r) and hashed, or undefined when the fields cannot give an exact JA4. */
export interface Ja4Parts {
  readonly ja4: string;
  /** JA4_r: the a part, then the sorted ciphers, the sorted extensions and the signature algorithms in hex. */
  readonly raw: string;
}

/**
 * JA4 of the fields, or undefined when a piece it needs is missing or malformed: the cipher and
 * extension lists; the signature algorithms when the client sent that extension (0x000d), and
 * the supported versions when it sent that one (0x002b) — HAProxy before 3.1 captures neither.
 */
export function ja4Parts(hello: ClientHelloFields): Ja4Parts | undefined {
  const { ciphers, extensions, sigalgs, supportedVersions } = hello;
  if (!validList(ciphers) || !validList(extensions)) return undefined;
  const sentSigalgs = has(extensions, EXT_SIGALGS);
  if (sentSigalgs && !validList(sigalgs)) return undefined;
  const sentVersions = has(extensions, EXT_SUPPORTED_VERSIONS);
  let version = hello.helloVersion;
  if (sentVersions) {
    if (!validList(supportedVersions)) return undefined;
    version = -1;
    for (const v of values(supportedVersions)) if (v > version) version = v;
  }
  const alpn = alpnText(hello.alpn);
  if (alpn === undefined) return undefined;

  const cipherValues = values(ciphers).sort((x, y) => x - y);
  const allExtensions = values(extensions);
  const sni = has(extensions, EXT_SNI) ? 'd' : 'i';
  const a = `${hello.transport}${versionText(version)}${sni}${count2(cipherValues.length)}${count2(allExtensions.length)}${alpn}`;

  const cipherText = cipherValues.map(hex4).join(',');
  const extensionText = allExtensions
    .filter((v) => v !== EXT_SNI && v !== EXT_ALPN)
    .sort((x, y) => x - y)
    .map(hex4)
    .join(',');
  const sigalgText = sentSigalgs
    ? values(sigalgs as Uint8Array)
        .map(hex4)
        .join(',')
    : '';
  const c = sigalgText === '' ? extensionText : `${extensionText}_${sigalgText}`;
  return { ja4: `${a}_${hash12(cipherText)}_${hash12(c)}`, raw: `${a}_${cipherText}_${c}` };
}

export function computeJa4(hello: ClientHelloFields): string | undefined {
  return ja4Parts(hello)?.ja4;
}

/** JA3's text (`771,4865-4866,...`), or undefined when a piece is missing or malformed. */
export function ja3Text(hello: ClientHelloFields): string | undefined {
  const { ciphers, extensions, groups, pointFormats, helloVersion } = hello;
  if (!validList(ciphers) || !validList(extensions) || helloVersion < 0 || helloVersion > 0xffff) return undefined;
  if (groups !== undefined && !validList(groups)) return undefined;
  if (pointFormats !== undefined && pointFormats.length > MAX_FIELD_BYTES) return undefined;
  const formats: number[] = [];
  if (pointFormats !== undefined) for (const f of pointFormats) formats.push(f);
  return [helloVersion, values(ciphers).join('-'), values(extensions).join('-'), groups === undefined ? '' : values(groups).join('-'), formats.join('-')].join(
    ',',
  );
}

/** JA3: the MD5 of its text, in hex. */
export function computeJa3(hello: ClientHelloFields): string | undefined {
  const text = ja3Text(hello);
  return text === undefined ? undefined : createHash('md5').update(text).digest('hex');
}
