/**
 * The last good copy of a URL list on disk: the body as fetched, plus a small JSON
 * metadata file for conditional GETs. Both are written atomically (temp file, then
 * rename), body first, so a crash never leaves metadata describing a body that is
 * not there.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type ListBody, BodyTooLargeError, LARGEST_BLOCK, readListBody, tooLargeMessage } from './list-body.js';

/** The metadata file is a few hundred bytes; anything much larger is not ours. */
const MAX_METADATA_BYTES = 64 * 1024;

export interface CacheMetadata {
  readonly url: string;
  readonly etag?: string;
  readonly lastModified?: string;
  /** When the body was fetched (ms since epoch). */
  readonly fetchedAt: number;
}

export interface CachedCopy {
  readonly body: ListBody;
  readonly meta: CacheMetadata;
}

export class ListCache {
  readonly bodyPath: string;
  readonly metaPath: string;

  constructor(
    readonly dir: string,
    listName: string,
  ) {
    // Any list name makes one safe file name, and two names never share one.
    const base = path.join(dir, encodeURIComponent(listName));
    this.bodyPath = `${base}.list`;
    this.metaPath = `${base}.meta.json`;
  }

  /**
   * The stored copy; undefined when there is none. Throws (naming the file) when it is unreadable,
   * malformed, or its body is larger than `maxBytes` (checked before reading it).
   */
  async read(maxBytes: number): Promise<CachedCopy | undefined> {
    let meta: CacheMetadata;
    let body: ListBody;
    try {
      if ((await stat(this.metaPath)).size > MAX_METADATA_BYTES) throw new Error(`${this.metaPath}: larger than ${MAX_METADATA_BYTES} bytes`);
      meta = parseMetadata(await readFile(this.metaPath, 'utf8'), this.metaPath);
      body = await readBoundedFile(this.bodyPath, maxBytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return { body, meta };
  }

  async write(body: readonly Uint8Array[], meta: CacheMetadata): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeAtomically(this.bodyPath, body);
    await writeAtomically(this.metaPath, [new TextEncoder().encode(JSON.stringify(meta, null, 2) + '\n')]);
  }
}

function parseMetadata(text: string, file: string): CacheMetadata {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not JSON (${(err as Error).message})`);
  }
  const meta = value as Partial<Record<keyof CacheMetadata, unknown>> | null;
  if (
    typeof meta !== 'object' ||
    meta === null ||
    typeof meta.url !== 'string' ||
    typeof meta.fetchedAt !== 'number' ||
    !(meta.etag === undefined || typeof meta.etag === 'string') ||
    !(meta.lastModified === undefined || typeof meta.lastModified === 'string')
  ) {
    throw new Error(`${file}: expected {url, fetchedAt, etag?, lastModified?}`);
  }
  return {
    url: meta.url,
    fetchedAt: meta.fetchedAt,
    ...(meta.etag === undefined ? {} : { etag: meta.etag }),
    ...(meta.lastModified === undefined ? {} : { lastModified: meta.lastModified }),
  };
}

/** A file's bytes, when it is not larger than `maxBytes`: its size is checked first, and counted while reading (it may grow). */
export async function readBoundedFile(file: string, maxBytes: number): Promise<ListBody> {
  const { size } = await stat(file);
  if (size > maxBytes) throw new BodyTooLargeError(`${file}: ${tooLargeMessage('the file', size, maxBytes)}`);
  try {
    return await readListBody(createReadStream(file, { highWaterMark: 2 ** 18 }), maxBytes, 'the file');
  } catch (err) {
    if (err instanceof BodyTooLargeError) throw new BodyTooLargeError(`${file}: ${err.message}`);
    throw err;
  }
}

/**
 * readBoundedFile for the parsing thread, where blocking is harmless: the bytes and their hashing
 * stay off the main thread. Same limits and messages; reading stops as soon as the limit is passed.
 */
export function readBoundedFileSync(file: string, maxBytes: number): ListBody {
  const fd = openSync(file, 'r');
  try {
    const { size } = fstatSync(fd);
    if (size > maxBytes) throw new BodyTooLargeError(`${file}: ${tooLargeMessage('the file', size, maxBytes)}`);
    const hash = createHash('sha256');
    const blocks: Uint8Array[] = [];
    let length = 0;
    for (;;) {
      // One block past the size read so far: a file that grew is still read to its end, within the limit.
      const block = new Uint8Array(Math.min(LARGEST_BLOCK, Math.max(size - length, 0) + 1));
      let used = 0;
      while (used < block.length) {
        const read = readSync(fd, block, used, block.length - used, null);
        if (read === 0) break;
        used += read;
      }
      length += used;
      if (length > maxBytes) throw new BodyTooLargeError(`${file}: ${tooLargeMessage('the file', undefined, maxBytes)}`);
      if (used > 0) {
        const filled = used === block.length ? block : block.slice(0, used);
        hash.update(filled);
        blocks.push(filled);
      }
      if (used < block.length) return { blocks, length, digest: hash.digest('base64') };
    }
  } finally {
    closeSync(fd);
  }
}

async function writeAtomically(file: string, blocks: readonly Uint8Array[]): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    if (blocks.length === 0) await writeFile(temp, '');
    else {
      const handle = await open(temp, 'w');
      try {
        for (const block of blocks) {
          for (let at = 0; at < block.byteLength; ) at += (await handle.write(block, at)).bytesWritten;
        }
      } finally {
        await handle.close();
      }
    }
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}
