/** Worker-thread entry of `GeoSource`: runs one geo job (workerData) and transfers the compiled table back. */
import { parentPort, workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../sources/thread-priority.js';
import { type GeoJob, geoJobResultTransferList, runGeoJob } from './geo-job.js';

if (parentPort === null) throw new Error('geo-worker must run in a worker thread (see GeoSource)');
lowerThreadPriority();
const result = runGeoJob(workerData as GeoJob);
parentPort.postMessage(result, geoJobResultTransferList(result));
