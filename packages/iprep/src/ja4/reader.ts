/**
 * From a SPOE message to a fingerprint, on the hot path: the ClientHello pieces are read from the
 * message's named arguments into one reused object, and fingerprints are cached by their input
 * bytes (clients of one TLS stack send the same pieces, so hashing happens once per stack, not
 * once per message). A cache hit allocates nothing.
 */
import { createHash } from 'node:crypto';
import type { Message } from 'spop';
import { type ClientHelloFields, MAX_ALPN_BYTES, MAX_FIELD_BYTES, computeJa3, emptyHello, ja4Parts } from './fingerprint.js';

/** The message arguments the recipe names (examples/recipes/ja4/spoe-ja4.conf) and the fetch each carries. */
export const TLS_ARGUMENTS = {
  /** ssl_fc_protocol_hello_id */
  version: 'tls_version',
  /** ssl_fc_cipherlist_bin */
  ciphers: 'tls_ciphers',
  /** ssl_fc_extlist_bin */
  extensions: 'tls_extensions',
  /** ssl_fc_eclist_bin */
  groups: 'tls_groups',
  /** ssl_fc_ecformats_bin */
  pointFormats: 'tls_point_formats',
  /** ssl_fc_sigalgs_bin (HAProxy 3.1+) */
  sigalgs: 'tls_sigalgs',
  /** ssl_fc_supported_versions_bin (HAProxy 3.1+) */
  supportedVersions: 'tls_versions',
  /** ssl_fc_alpn */
  alpn: 'tls_alpn',
} as const;

/** A client's fingerprints, computed once per distinct ClientHello. */
export interface TlsFingerprint {
  /** Undefined when the pieces cannot give an exact JA4 (HAProxy before 3.1: see docs/ja4.md). */
  readonly ja4: string | undefined;
  readonly ja3: string | undefined;
  /** JA4_r: what the JA4 hashes, for explain and debugging. */
  readonly ja4Raw: string | undefined;
  /** 16 bytes naming the fingerprint for the behaviour tracker (from a SHA-256 of the fingerprint). */
  readonly key: Uint8Array;
}

/** Default number of distinct ClientHellos whose fingerprints are kept. */
export const DEFAULT_CACHE_SIZE = 4096;

function binValue(message: Message, index: number, limit: number): Uint8Array | undefined {
  const data = message.args[index]?.value;
  if (data === undefined || data.type !== 'bin' || data.value.length > limit) return undefined;
  return data.value;
}

/** Reads the ClientHello pieces of messages into one object, reused: valid until the next read. */
export class ClientHelloReader {
  readonly #fields: ClientHelloFields = emptyHello();

  /** The pieces this message carries, or undefined when it carries no cipher list (not TLS, or no capture). */
  read(message: Message): ClientHelloFields | undefined {
    // The address, the ciphers and the extensions at least: most messages have the address alone,
    // and are turned away without decoding their arguments.
    if (message.argCount < 3) return undefined;
    const args = message.args;
    const f = this.#fields;
    f.helloVersion = -1;
    f.ciphers = f.extensions = f.groups = f.pointFormats = f.sigalgs = f.supportedVersions = f.alpn = undefined;
    for (let i = 0; i < args.length; i++) {
      switch ((args[i] as { name: string }).name) {
        case TLS_ARGUMENTS.version: {
          const data = args[i]?.value;
          if (data !== undefined && (data.type === 'int32' || data.type === 'uint32' || data.type === 'int64' || data.type === 'uint64')) {
            const v = Number(data.value);
            if (v >= 0 && v <= 0xffff) f.helloVersion = v;
          }
          break;
        }
        case TLS_ARGUMENTS.ciphers:
          f.ciphers = binValue(message, i, MAX_FIELD_BYTES);
          break;
        case TLS_ARGUMENTS.extensions:
          f.extensions = binValue(message, i, MAX_FIELD_BYTES);
          break;
        case TLS_ARGUMENTS.groups:
          f.groups = binValue(message, i, MAX_FIELD_BYTES);
          break;
        case TLS_ARGUMENTS.pointFormats:
          f.pointFormats = binValue(message, i, MAX_FIELD_BYTES);
          break;
        case TLS_ARGUMENTS.sigalgs:
          f.sigalgs = binValue(message, i, MAX_FIELD_BYTES);
          break;
        case TLS_ARGUMENTS.supportedVersions:
          f.supportedVersions = binValue(message, i, MAX_FIELD_BYTES);
          break;
        case TLS_ARGUMENTS.alpn: {
          const data = args[i]?.value;
          // HAProxy sends an empty string or nothing when no protocol was negotiated.
          if (data !== undefined && data.type === 'str') {
            const bytes = data.bytes ?? Buffer.from(data.value, 'latin1');
            if (bytes.length <= MAX_ALPN_BYTES) f.alpn = bytes;
          } else if (data !== undefined && data.type === 'bin' && data.value.length <= MAX_ALPN_BYTES) {
            f.alpn = data.value;
          }
          break;
        }
      }
    }
    return f.ciphers === undefined ? undefined : f;
  }
}

/** A cached fingerprint with copies of the bytes it was computed from. */
interface CacheEntry {
  readonly version: number;
  readonly transport: string;
  readonly fields: readonly (Uint8Array | undefined)[];
  readonly fingerprint: TlsFingerprint | undefined;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over the length, then 16 bits at a time (the pieces are lists of 2-byte values). */
function fnv(hash: number, bytes: Uint8Array | undefined): number {
  if (bytes === undefined) return Math.imul(hash ^ 0x10000, FNV_PRIME);
  let h = Math.imul(hash ^ bytes.length, FNV_PRIME);
  const even = bytes.length & ~1;
  for (let i = 0; i < even; i += 2) h = Math.imul(h ^ (((bytes[i] as number) << 8) | (bytes[i + 1] as number)), FNV_PRIME);
  if (even !== bytes.length) h = Math.imul(h ^ (bytes[even] as number), FNV_PRIME);
  return h;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Fingerprints by ClientHello pieces, at most `maxEntries` of them (the oldest goes first). Keys
 * are a 32-bit hash of the pieces; an entry is used only when its copied pieces equal the new
 * ones, so a collision costs a recomputation, never a wrong fingerprint.
 */
export class FingerprintCache {
  readonly #maxEntries: number;
  readonly #ja3: boolean;
  readonly #entries = new Map<number, CacheEntry>();
  #hits = 0;
  #misses = 0;

  constructor(options: { maxEntries?: number; ja3?: boolean } = {}) {
    this.#maxEntries = Math.max(1, options.maxEntries ?? DEFAULT_CACHE_SIZE);
    this.#ja3 = options.ja3 ?? true;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Lookups answered from the cache, and those that computed. */
  get hits(): number {
    return this.#hits;
  }

  get misses(): number {
    return this.#misses;
  }

  /** The fingerprint of these pieces, or undefined when they give neither JA4 nor JA3. */
  get(f: ClientHelloFields): TlsFingerprint | undefined {
    // The reader gives bytes; text (tests, embedding) is converted.
    const alpn = typeof f.alpn === 'string' ? Buffer.from(f.alpn, 'latin1') : f.alpn;
    let h = Math.imul(FNV_OFFSET ^ (f.helloVersion & 0xffff), FNV_PRIME) ^ f.transport.charCodeAt(0);
    h = fnv(fnv(fnv(fnv(fnv(fnv(fnv(h, f.ciphers), f.extensions), f.groups), f.pointFormats), f.sigalgs), f.supportedVersions), alpn);
    // 30 bits: a small integer key, no heap number per lookup.
    h &= 0x3fffffff;
    const entry = this.#entries.get(h);
    if (entry !== undefined && entry.version === f.helloVersion && entry.transport === f.transport && this.#matches(entry.fields, f, alpn)) {
      this.#hits++;
      return entry.fingerprint;
    }
    this.#misses++;
    const fingerprint = compute(f, this.#ja3);
    if (entry === undefined && this.#entries.size >= this.#maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value as number);
    }
    // Copies: the message's bytes are views into a frame buffer that will be reused.
    const pieces = [f.ciphers, f.extensions, f.groups, f.pointFormats, f.sigalgs, f.supportedVersions, alpn];
    const fields = pieces.map((bytes) => (bytes === undefined ? undefined : Uint8Array.from(bytes)));
    this.#entries.set(h, { version: f.helloVersion, transport: f.transport, fields, fingerprint });
    return fingerprint;
  }

  clear(): void {
    this.#entries.clear();
  }

  #matches(fields: readonly (Uint8Array | undefined)[], f: ClientHelloFields, alpn: Uint8Array | undefined): boolean {
    return (
      sameBytes(fields[0], f.ciphers) &&
      sameBytes(fields[1], f.extensions) &&
      sameBytes(fields[2], f.groups) &&
      sameBytes(fields[3], f.pointFormats) &&
      sameBytes(fields[4], f.sigalgs) &&
      sameBytes(fields[5], f.supportedVersions) &&
      sameBytes(fields[6], alpn)
    );
  }
}

function compute(f: ClientHelloFields, withJa3: boolean): TlsFingerprint | undefined {
  const parts = ja4Parts(f);
  const ja3 = withJa3 ? computeJa3(f) : undefined;
  if (parts === undefined && ja3 === undefined) return undefined;
  const name = parts?.ja4 ?? `ja3:${ja3}`;
  return Object.freeze({ ja4: parts?.ja4, ja3, ja4Raw: parts?.raw, key: fingerprintKey(name) });
}

/** 16 bytes for the behaviour tracker: never all-zero in front, so never taken for an IPv4-mapped address. */
export function fingerprintKey(name: string): Uint8Array {
  const key = new Uint8Array(createHash('sha256').update(name).digest().subarray(0, 16));
  key[0] = (key[0] as number) | 0x80;
  return key;
}
