/**
 * The last good copy of a URL list on disk: the body as fetched, plus a small JSON
 * metadata file for conditional GETs. Both are written atomically (temp file, then
 * rename), body first, so a crash never leaves metadata describing a body that is
 * not there.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface CacheMetadata {
  readonly url: string;
  readonly etag?: string;
  readonly lastModified?: string;
  /** When the body was fetched (ms since epoch). */
  readonly fetchedAt: number;
}

export interface CachedCopy {
  readonly body: string;
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

  /** The stored copy; undefined when there is none. Throws (naming the file) when it is unreadable or malformed. */
  async read(): Promise<CachedCopy | undefined> {
    let metaText: string;
    let body: string;
    try {
      metaText = await readFile(this.metaPath, 'utf8');
      body = await readFile(this.bodyPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return { body, meta: parseMetadata(metaText, this.metaPath) };
  }

  async write(body: string, meta: CacheMetadata): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeAtomically(this.bodyPath, body);
    await writeAtomically(this.metaPath, JSON.stringify(meta, null, 2) + '\n');
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

async function writeAtomically(file: string, content: string): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, content);
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}
