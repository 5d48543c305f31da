/** Worker-thread entry of `compileListBody`: runs one list job (workerData) and transfers the result back. */
import { parentPort, workerData } from 'node:worker_threads';
import { type ListJob, listJobResultTransferList, runListJob } from './list-job.js';
import { lowerThreadPriority } from './thread-priority.js';

if (parentPort === null) throw new Error('list-worker must run in a worker thread (see compileListBody)');
lowerThreadPriority();
const result = runListJob(workerData as ListJob);
parentPort.postMessage(result, listJobResultTransferList(result));
