/**
 * The heavy part of loading a list, as one job for a worker thread: decode the body, parse it
 * line by line, pack the entries into typed arrays and flatten them into a lookup table. Pure
 * and synchronous; its result is plain data whose buffers are transferred back. A list that
 * cannot be used is a result with an error, not an exception crossing threads. A file is read
 * and hashed by the job itself: its bytes never touch the main thread's heap, whose GC would
 * otherwise pause answers to reclaim them.
 */
import type { IntervalTableData } from '../table/interval-table.js';
import { flattenEntries } from '../table/flatten.js';
import { intervalTableTransferList } from '../table/interval-table.js';
import type { ListFormat } from '../types.js';
import { parseListInto } from './formats.js';
import { BodyTooLargeError } from './list-body.js';
import { type EntriesInsideInternal, entriesInsideInternal } from './internal-entries.js';
import { readBoundedFileSync } from './list-cache.js';
import { PackedListBuilder, type PackedListData, packedListTransferList } from './list-entries.js';

export interface ListJob {
  readonly format: ListFormat;
  /** Names the list's source in warnings and errors: a path or a URL. */
  readonly origin: string;
  /** The raw body, in blocks (each owning its buffer, so that they can be transferred). */
  readonly body: readonly Uint8Array[];
  /** Instead of a body: a file to read (at most maxBytes) and hash here; unchanged when its digest is unchangedDigest. */
  readonly file?: { readonly path: string; readonly maxBytes: number; readonly unchangedDigest?: string | undefined };
  readonly maxEntries: number;
}

export type ListJobResult =
  | {
      readonly ok: true;
      readonly entries: PackedListData;
      readonly table: IntervalTableData;
      /** The first MAX_WARNINGS problems, `origin:line: problem`, and a count of the others. */
      readonly warnings: readonly string[];
      /** Entries wholly inside internal ranges, which `special` decides first when enabled. */
      readonly insideInternal: EntriesInsideInternal;
      readonly body: readonly Uint8Array[];
      readonly unchanged?: false;
      /** A file job's digest of the bytes read (SHA-256, base64). */
      readonly digest?: string;
    }
  /** A file job whose file has the digest it was given: not parsed. */
  | { readonly ok: true; readonly unchanged: true; readonly digest: string; readonly body: readonly Uint8Array[] }
  | { readonly ok: false; readonly error: string; readonly body: readonly Uint8Array[] };

export function runListJob(job: ListJob): ListJobResult {
  let blocks = job.body;
  let digest: string | undefined;
  if (job.file !== undefined) {
    try {
      ({ blocks, digest } = readBoundedFileSync(job.file.path, job.file.maxBytes));
    } catch (err) {
      const message = err instanceof BodyTooLargeError ? err.message : `cannot read ${job.file.path}: ${(err as Error).message}`;
      return { ok: false, error: message, body: [] };
    }
    if (digest === job.file.unchangedDigest) return { ok: true, unchanged: true, digest, body: [] };
  }
  try {
    const decoder = new TextDecoder();
    let text = '';
    for (const block of blocks) text += decoder.decode(block, { stream: true });
    text += decoder.decode();
    const builder = new PackedListBuilder();
    const { warnings } = parseListInto(job.format, text, job.origin, builder, job.maxEntries);
    text = '';
    const entries = builder.finish();
    // Shared: the combined table's merge reads it in its own thread without a copy.
    const table = flattenEntries({ v4: entries.v4, v6: entries.v6 }, true);
    const insideInternal = entriesInsideInternal(entries);
    return { ok: true, entries, table, warnings, insideInternal, body: job.body, ...(digest === undefined ? {} : { digest }) };
  } catch (err) {
    // A ListFormatError names the origin; anything else (out of memory for a string) gets it here.
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, error: message.startsWith(job.origin) ? message : `${job.origin}: ${message}`, body: job.body };
  }
}

/** The buffers to transfer with a job (its body). */
export function listJobTransferList(job: Pick<ListJob, 'body'>): ArrayBuffer[] {
  return job.body.map((block) => block.buffer as ArrayBuffer);
}

/** The buffers to transfer with a result: the body back, and the entries and table. */
export function listJobResultTransferList(result: ListJobResult): ArrayBuffer[] {
  const body = listJobTransferList(result);
  if (!result.ok || result.unchanged === true) return body;
  return body.concat(packedListTransferList(result.entries), intervalTableTransferList(result.table));
}
