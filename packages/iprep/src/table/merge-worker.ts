/** Worker-thread entry of `mergeTablesInWorker`: merges the tables of the job (workerData, shared) and transfers the result back. */
import { parentPort, workerData } from 'node:worker_threads';
import { type MergeJob, mergeResultTransferList, mergeTables } from './merge.js';

if (parentPort === null) throw new Error('merge-worker must run in a worker thread (see mergeTablesInWorker)');
const result = mergeTables(workerData as MergeJob);
parentPort.postMessage(result, mergeResultTransferList(result));
