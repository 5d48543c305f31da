/**
 * Worker-thread entry of `compileTable`: flattens packed entries (transferred
 * in as workerData) and transfers the intervals back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { flattenEntries, type PackedEntries } from './flatten.js';
import { intervalTableTransferList } from './interval-table.js';

if (parentPort === null) throw new Error('compile-worker must run in a worker thread (see compileTable)');
const data = flattenEntries(workerData as PackedEntries);
parentPort.postMessage(data, intervalTableTransferList(data));
