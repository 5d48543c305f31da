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
  // Made here or by this module's worker: wrapped without checking again (see fromFlattened).
  const data = entries.length >= threshold ? await flattenInWorker(packed) : flattenEntries(packed);
  return IntervalTable.fromFlattened(data);
}

async function flattenInWorker(packed: PackedEntries): Promise<IntervalTableData> {
  const result = await runWorkerJob<IntervalTableData | Error>(new URL('./compile-worker.js', import.meta.url), packed, {
    thread: 'the table compile worker',
    transferList: packedTransferList(packed),
    failed: (problem) => new Error(problem),
  });
  if (result instanceof Error) throw result;
  return result;
}

export interface WorkerJobOptions<R> {
  /** Names the thread in failures: `the parsing thread`. */
  readonly thread: string;
  /** Buffers moved to the thread, not copied. */
  readonly transferList?: readonly ArrayBuffer[];
  /** The thread's heap limit. */
  readonly heapMb?: number;
  /** A thread still busy after this long is stopped. Default: never. */
  readonly timeoutMs?: number;
  /** The result when the thread fails, exits or times out before answering, from what happened. */
  readonly failed: (problem: string) => R;
}

/**
 * Runs one job in a worker thread (`entry` posts one message, the result) and resolves with that
 * result. Never rejects: whatever stops the thread first becomes `failed(problem)`.
 */
export function runWorkerJob<R>(entry: URL, workerData: unknown, options: WorkerJobOptions<R>): Promise<R> {
  return new Promise((resolve) => {
    const worker = startWorker(entry, {
      workerData,
      ...(options.transferList === undefined ? {} : { transferList: [...options.transferList] }),
      ...(options.heapMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: options.heapMb } }),
    });
    let settled = false;
    const settle = (result: R): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const { timeoutMs } = options;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            settle(options.failed(`${options.thread} did not answer within ${timeoutMs / 1000} s: stopped`));
            void worker.terminate();
          }, timeoutMs).unref();
    worker.once('message', (result: R) => settle(result));
    worker.once('error', (error) => settle(options.failed(`${options.thread} failed: ${error.message}`)));
    worker.once('exit', (code) => settle(options.failed(`${options.thread} exited with code ${code} before answering`)));
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
