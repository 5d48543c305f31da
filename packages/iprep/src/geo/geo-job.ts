/**
 * Loading a MaxMind DB file as one job for a worker thread: read it (at most max-bytes), hash it,
 * and compile it (mmdb.ts). A file of tens of MB takes most of a second to walk: done here, the
 * event loop answering HAProxy only receives the typed arrays. A file that cannot be used is a
 * result with an error naming it, not an exception crossing threads.
 */
import { BodyTooLargeError } from '../sources/list-body.js';
import { readBoundedFileSync } from '../sources/list-cache.js';
import { compileMmdb, type GeoKind, type GeoTableData, geoTableTransferList } from './mmdb.js';

export interface GeoJob {
  readonly path: string;
  readonly kind: GeoKind;
  readonly maxBytes: number;
  readonly maxNetworks: number;
  /** The digest of the copy in service: the same bytes are not compiled again. */
  readonly unchangedDigest?: string | undefined;
}

export type GeoJobResult =
  | { readonly ok: true; readonly unchanged: false; readonly data: GeoTableData; readonly digest: string }
  | { readonly ok: true; readonly unchanged: true; readonly digest: string }
  | { readonly ok: false; readonly error: string };

export function runGeoJob(job: GeoJob): GeoJobResult {
  let blocks: readonly Uint8Array[];
  let digest: string;
  try {
    ({ blocks, digest } = readBoundedFileSync(job.path, job.maxBytes));
  } catch (err) {
    return { ok: false, error: err instanceof BodyTooLargeError ? err.message : `cannot read ${job.path}: ${(err as Error).message}` };
  }
  if (digest === job.unchangedDigest) return { ok: true, unchanged: true, digest };
  try {
    const db = Buffer.concat(blocks);
    blocks = [];
    return { ok: true, unchanged: false, data: compileMmdb(db, job.kind, job.path, { maxNetworks: job.maxNetworks }), digest };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, error: message.startsWith(job.path) ? message : `${job.path}: ${message}` };
  }
}

export function geoJobResultTransferList(result: GeoJobResult): ArrayBuffer[] {
  return result.ok && !result.unchanged ? geoTableTransferList(result.data) : [];
}
