/** Worker-thread entry of `compileListBody`: runs one list job (workerData) and transfers the result back. */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { type ListJob, listJobResultTransferList, runListJob } from './list-job.js';

if (parentPort === null) throw new Error('list-worker must run in a worker thread (see compileListBody)');
lowerThreadPriority();
const result = runListJob(workerData as ListJob);
parentPort.postMessage(result, listJobResultTransferList(result));

/**
 * On a busy machine the parsing thread competes with the event loop for a core: a nice value of 10
 * for this thread alone (Linux: setpriority on the thread id) lets the event loop answering HAProxy
 * run first. Elsewhere, or when not allowed, the thread keeps the process' priority.
 */
function lowerThreadPriority(): void {
  try {
    const tid = Number(/\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'))?.[1]);
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, 10);
  } catch {
    // not Linux, or not permitted
  }
}
