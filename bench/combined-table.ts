/**
 * The combined address table (issue 14): what a rebuild costs the main thread with a big list,
 * and the memory the table takes. Loads a deny list of `--prefixes` random prefixes (70 % IPv4,
 * 30 % IPv6), a 10,000-address CSV list and a 1,000-address allowlist file the way the service
 * does (parsed and compiled in worker threads), then rebuilds the combined table `--repeat` times.
 * For each: the main thread's busy time during the rebuild (event-loop utilization), the longest
 * gap of a 1 ms timer, main-thread GC pauses, and the wall time until the table is in use. RSS is
 * taken after a GC with and without the table.
 *
 *   node --expose-gc --import tsx bench/combined-table.ts [--prefixes 1000000] [--repeat 3] [--dist]
 *
 * Then the main thread's pieces of a rebuild timed one by one: the job, `new Worker`, installing the
 * result. `--dist`: everything with the built modules (packages/iprep/dist, `npx tsc -b` first), where
 * a worker thread starts without tsx's loader.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { watchEventLoop } from 'test-support/event-loop';
import type { CompiledAllowlist, CompiledList } from '../packages/iprep/src/engine/index.js';
import type { ListConfig } from '../packages/iprep/src/types.js';
import { seededRandom32 } from './random.js';

const { values } = parseArgs({
  options: { prefixes: { type: 'string', default: '1000000' }, repeat: { type: 'string', default: '3' }, dist: { type: 'boolean', default: false } },
});
const prefixes = Number(values.prefixes);
// Every module from one place (a list loaded by one copy of the code is not an instance of the other's classes).
const from = (path: string): string =>
  values.dist ? pathToFileURL(resolve(`packages/iprep/dist/${path}.js`)).href : new URL(`../packages/iprep/src/${path}.ts`, import.meta.url).href;
const { DecisionIndex } = (await import(from('decisions/index'))) as typeof import('../packages/iprep/src/decisions/index.js');
const { ReputationEngine } = (await import(from('engine/index'))) as typeof import('../packages/iprep/src/engine/index.js');
const { ListSource } = (await import(from('sources/index'))) as typeof import('../packages/iprep/src/sources/index.js');
const { IntervalTable } = (await import(from('table/index'))) as typeof import('../packages/iprep/src/table/index.js');
const { combinedJob, combinedTable } = (await import(from('engine/combined'))) as typeof import('../packages/iprep/src/engine/combined.js');
const { listSlot } = (await import(from('engine/list-slot'))) as typeof import('../packages/iprep/src/engine/list-slot.js');
const { mergeTables, mergeTablesInWorker } = (await import(from('table/merge'))) as typeof import('../packages/iprep/src/table/merge.js');
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const random32 = seededRandom32();
const byte = (): number => random32() & 255;
const hex = (): string => (random32() & 0xffff).toString(16);
const lines = (n: number, line: (i: number) => string): string => `${Array.from({ length: n }, (_, i) => line(i)).join('\n')}\n`;

const dir = mkdtempSync(join(tmpdir(), 'iprep-combined-'));
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const rss = (): number => {
  gc();
  gc();
  return process.memoryUsage().rss;
};

async function load(name: string, format: ListConfig['format'], text: string, extra: Partial<ListConfig> = {}): Promise<CompiledList> {
  const path = join(dir, name);
  writeFileSync(path, text);
  const config: ListConfig = {
    name,
    format,
    path,
    refreshMs: 3_600_000,
    category: name,
    minEntries: 0,
    maxShrink: 1,
    maxEntries: prefixes + 1,
    maxBytes: 2 ** 30,
    ...extra,
  };
  const list = await new ListSource(config, { cacheDir: dir, watch: false }).load();
  return { config, list, table: list.table };
}

try {
  const deny = await load(
    'deny',
    'netset',
    lines(prefixes, (i) => (i % 10 < 7 ? `${byte()}.${byte()}.${byte()}.0/${16 + (i % 9)}` : `2${hex().slice(1)}:${hex()}:${hex()}::/${32 + (i % 17)}`)),
    { score: 0, action: 'deny' },
  );
  const scored = await load(
    'scored',
    'csv',
    lines(10_000, () => `${byte()}.${byte()}.${byte()}.${byte()},${random32() % 101}`),
  );
  const allowFile = await load(
    'allow',
    'netset',
    lines(1_000, () => `${byte()}.${byte()}.${byte()}.${byte()}`),
  );
  const allow: CompiledAllowlist = { ranges: [], table: IntervalTable.empty(), files: [allowFile.list] };
  const lists = [deny, scored];

  const thresholds = { deny: 20, tarpit: 40, captcha: 60, log: 80 };
  const engine = new ReputationEngine({ thresholds, special: { enabled: true, internalAction: 'allow', bogonScore: 10 } }, { decisions: new DecisionIndex() });
  engine.setAllowlist(allow);
  const records = deny.table.intervals + scored.table.intervals + allowFile.table.intervals;
  console.log(
    `${prefixes.toLocaleString('en-US')} deny prefixes (${deny.table.intervals.toLocaleString('en-US')} intervals), 10,000 CSV addresses, 1,000 allowlisted: ${records.toLocaleString('en-US')} records`,
  );

  // The merge itself (what the worker thread does), here: its time and the table it makes.
  for (const [name, sources] of [
    ['CSV + allowlist (inline below the worker threshold)', [scored]],
    ['all', lists],
  ] as const) {
    const t = performance.now();
    const result = mergeTables(combinedJob(allow, sources.map(listSlot), 65_536));
    const ms = performance.now() - t;
    if (!result.ok) throw new Error(result.error);
    const { v4, v6 } = result.table;
    const bytes = [v4.records, v6.records, v4.index, v6.index, result.combinations].reduce((sum, a) => sum + (a?.byteLength ?? 0), 0);
    console.log(
      `merge of ${name}: ${ms.toFixed(1)} ms, ${result.table.intervals.toLocaleString('en-US')} intervals, ` +
        `${result.combinations.length / (sources.length + 2)} combinations, ${mib(bytes)} MiB of arrays`,
    );
  }

  // What posting the tables to a thread would copy on the main thread were they not shared.
  const started = performance.now();
  const copied = structuredClone({ v4: deny.table.toData().v4.records.slice(), v6: deny.table.toData().v6.records.slice() });
  const copyMs = performance.now() - started;
  console.log(
    `(not done: cloning the deny list's records, ${mib(copied.v4.byteLength + copied.v6.byteLength)} MiB, takes ${copyMs.toFixed(1)} ms on this thread)`,
  );

  const pauses: string[] = [];
  const observer = new PerformanceObserver((items) => {
    const kinds: Record<number, string> = { 1: 'scavenge', 2: 'minor', 4: 'mark-compact', 8: 'incremental', 16: 'weak' };
    for (const e of items.getEntries()) pauses.push(`${kinds[(e as { detail?: { kind: number } }).detail?.kind ?? 0] ?? '?'} ${e.duration.toFixed(1)}`);
  });
  observer.observe({ entryTypes: ['gc'] });
  let loop = watchEventLoop();
  const rssWithout = rss();
  let rssWith = 0;
  for (let pass = 0; pass < Number(values.repeat); pass++) {
    engine.setLists([]);
    await engine.combinedSettled();
    const before = rss();
    await new Promise((done) => setTimeout(done, 50)); // the forced GCs' entries arrive late
    pauses.length = 0;
    loop.reset();
    const elu = performance.eventLoopUtilization();
    const t0 = performance.now();
    engine.setLists(lists);
    const setMs = performance.now() - t0;
    const active = await engine.combinedSettled();
    const wall = performance.now() - t0;
    const busy = performance.eventLoopUtilization(elu);
    const longest = loop.longest();
    await new Promise((done) => setTimeout(done, 50));
    const gcs = pauses.splice(0);
    rssWith = rss();
    // Again without the 1 ms timer, whose own callbacks count as busy time.
    loop.stop();
    engine.setLists([]);
    await engine.combinedSettled();
    const quiet = performance.eventLoopUtilization();
    engine.setLists(lists);
    await engine.combinedSettled();
    const quietBusy = performance.eventLoopUtilization(quiet).active;
    loop = watchEventLoop();
    console.log(
      `rebuild ${pass + 1}: busy without the timer ${quietBusy.toFixed(1)} ms; in use ${active}, wall ${wall.toFixed(0)} ms; main thread: setLists ${setMs.toFixed(2)} ms, ` +
        `busy ${(busy.active).toFixed(1)} ms of ${busy.idle.toFixed(0) === '0' ? '?' : (busy.active + busy.idle).toFixed(0)} ms, ` +
        `longest 1 ms timer gap ${longest.toFixed(1)} ms, GC (ms) ${gcs.join(', ') || 'none'}; ` +
        `RSS ${mib(before)} -> ${mib(rssWith)} MiB`,
    );
  }
  observer.disconnect();
  loop.stop();
  console.log(`RSS after GC: lists only ${mib(rssWithout)} MiB, with the combined table ${mib(rssWith)} MiB (+${mib(rssWith - rssWithout)} MiB)`);

  const slots = lists.map(listSlot);
  for (let pass = 0; pass < Number(values.repeat) * 2; pass++) {
    let t = performance.now();
    const job = combinedJob(allow, slots, 65_536);
    const jobMs = performance.now() - t;
    t = performance.now();
    const pending = mergeTablesInWorker(job, { timeoutMs: 60_000 });
    const startMs = performance.now() - t;
    const result = await pending;
    if (!result.ok) throw new Error(result.error);
    t = performance.now();
    combinedTable(allow, slots, result);
    const installMs = performance.now() - t;
    console.log(`pieces${values.dist ? ' (dist)' : ''}: job ${jobMs.toFixed(2)} ms, new Worker ${startMs.toFixed(2)} ms, install ${installMs.toFixed(2)} ms`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
