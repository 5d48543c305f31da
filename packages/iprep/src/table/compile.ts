/**
 * Compiling a table off the main thread: a large list (a geo or ASN table,
 * a CrowdSec snapshot) takes long enough to flatten that it would stall the
 * event loop, so it goes to a worker thread; small ones compile inline.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { flattenEntries, type PackedEntries, packEntries, packedTransferList } from './flatten.js';
import { IntervalTable, type IntervalTableData, type TableEntry } from './interval-table.js';

export interface CompileTableOptions {
  /** Compile in a worker thread from this many entries on. Default 50,000. */
  readonly workerThreshold?: number;
}

const DEFAULT_WORKER_THRESHOLD = 50_000;

/**
 * Compiles in a worker thread when entries.length >= workerThreshold, else
 * inline. The entries are checked and packed into typed arrays on the calling
 * thread (bad entries reject, naming their index); the arrays are transferred,
 * not copied, both ways.
 */
export async function compileTable(entries: readonly TableEntry[], options: CompileTableOptions = {}): Promise<IntervalTable> {
  const threshold = options.workerThreshold ?? DEFAULT_WORKER_THRESHOLD;
  const packed = packEntries(entries);
  const data = entries.length >= threshold ? await flattenInWorker(packed) : flattenEntries(packed);
  return IntervalTable.fromData(data);
}

function flattenInWorker(packed: PackedEntries): Promise<IntervalTableData> {
  return new Promise((resolve, reject) => {
    const worker = startWorker(new URL('./compile-worker.js', import.meta.url), { workerData: packed, transferList: packedTransferList(packed) });
    let settled = false;
    worker.once('message', (data: IntervalTableData) => {
      settled = true;
      resolve(data);
    });
    worker.once('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`table compile worker exited with code ${code} before answering`));
    });
  });
}

/**
 * A worker thread running `entry` (a .js module beside this one). Under tsx
 * (tests, benches) only the .ts source exists, and on Node 20 a worker thread
 * does not inherit tsx's loader hooks, so the worker registers them before
 * importing its entry.
 */
export function startWorker(entry: URL, options: WorkerOptions): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(entry, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const source = entry.href.replace(/\.js$/, '.ts');
  const code = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); });`;
  return new Worker(code, { ...options, eval: true });
}
