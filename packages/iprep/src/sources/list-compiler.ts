/**
 * Runs a list job (list-job.ts) in a worker thread, so that parsing and compiling a big list
 * never stalls the event loop that answers HAProxy; a small body is done inline, where a
 * thread would cost more than it saves. The body's buffers are transferred there and back.
 */
import { runWorkerJob } from '../table/compile.js';
import { type ListJob, type ListJobResult, listJobTransferList, runListJob } from './list-job.js';

export interface CompileListOptions {
  /** Bodies from this many bytes on go to a worker thread. Default 64 KiB (about 4,000 lines: a few ms inline). */
  readonly workerThresholdBytes?: number;
}

export const DEFAULT_WORKER_THRESHOLD_BYTES = 64 * 1024;

/** Heap a parsing thread may use: a body is at most max-bytes, so this only stops a pathological document. */
const WORKER_HEAP_MB = 1024;

export async function compileListBody(job: ListJob, options: CompileListOptions = {}): Promise<ListJobResult> {
  const bytes = job.body.reduce((sum, block) => sum + block.byteLength, 0);
  if (bytes < (options.workerThresholdBytes ?? DEFAULT_WORKER_THRESHOLD_BYTES)) return runListJob(job);
  // The body went to the thread: on a failure the caller keeps nothing of it.
  return runWorkerJob<ListJobResult>(new URL('./list-worker.js', import.meta.url), job, {
    thread: 'the parsing thread',
    transferList: listJobTransferList(job),
    heapMb: WORKER_HEAP_MB,
    failed: (problem) => ({ ok: false, error: `${job.origin}: ${problem}`, body: [] }),
  });
}
