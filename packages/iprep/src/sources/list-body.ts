/**
 * A list body read from a stream (a download, a file, a cached copy) with a byte limit: the
 * bytes land in blocks this code owns (so they can be transferred to the parsing thread), and
 * are hashed as they come, so the main thread never holds the body as one string nor hashes it
 * in one go. Reading stops as soon as the limit is passed.
 */
import { createHash } from 'node:crypto';

export interface ListBody {
  /** The bytes, in order; each block owns its buffer. */
  readonly blocks: Uint8Array[];
  readonly length: number;
  /** SHA-256 of the bytes (base64): tells an unchanged body from a new one. */
  readonly digest: string;
}

/** Blocks start small (most lists are small) and grow to this size. */
export const LARGEST_BLOCK = 2 ** 20;
const FIRST_BLOCK = 2 ** 16;

/** A body over its limit; the message names what was read, the limit, and the key that raises it. */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
}

/** Text of a limit for messages: `64 MiB (67108864 bytes)`. */
export function describeLimit(maxBytes: number): string {
  const mib = maxBytes / 2 ** 20;
  return Number.isInteger(mib) ? `${mib} MiB (${maxBytes} bytes)` : `${maxBytes} bytes`;
}

/** The message of a body over `maxBytes` (`what`: "the body", "the file"). */
export function tooLargeMessage(what: string, size: number | undefined, maxBytes: number): string {
  const seen = size === undefined ? `more than ${describeLimit(maxBytes)}` : `${size} bytes, more than ${describeLimit(maxBytes)}`;
  return `${what} is ${seen}: raise max-bytes (of the list, or list-defaults.max-bytes) to accept it`;
}

/**
 * Reads `chunks` whole, or throws a BodyTooLargeError once more than `maxBytes` came (the
 * iteration is stopped then, which cancels a download or closes a file).
 */
export async function readListBody(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, maxBytes: number, what: string): Promise<ListBody> {
  const hash = createHash('sha256');
  const blocks: Uint8Array[] = [];
  let block = new Uint8Array(FIRST_BLOCK);
  let used = 0;
  let length = 0;
  for await (const chunk of chunks) {
    length += chunk.byteLength;
    if (length > maxBytes) throw new BodyTooLargeError(tooLargeMessage(what, undefined, maxBytes));
    hash.update(chunk);
    let at = 0;
    while (at < chunk.byteLength) {
      if (used === block.length) {
        blocks.push(block);
        block = new Uint8Array(Math.min(LARGEST_BLOCK, Math.max(FIRST_BLOCK, length)));
        used = 0;
      }
      const take = Math.min(block.length - used, chunk.byteLength - at);
      block.set(chunk.subarray(at, at + take), used);
      used += take;
      at += take;
    }
  }
  if (used > 0) blocks.push(used === block.length ? block : block.slice(0, used));
  return { blocks, length, digest: hash.digest('base64') };
}

/** A body from bytes already in memory (tests, small documents). */
export function listBodyOf(content: string | Uint8Array): ListBody {
  const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : Uint8Array.from(content);
  return { blocks: bytes.length === 0 ? [] : [bytes], length: bytes.length, digest: createHash('sha256').update(bytes).digest('base64') };
}
