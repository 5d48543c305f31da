/**
 * Longest-prefix-match table: compile time for many random overlapping
 * prefixes (inline and in a worker thread), lookup speed per family, memory.
 *
 *   node --import tsx packages/iprep/bench/lpm.ts [--prefixes 1000000] [--lookups 5000000] [--seed 1]
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { prefixRange } from '../src/net/address.js';
import { IntervalTable, type TableEntry, compileTable } from '../src/table/index.js';

const { values: args } = parseArgs({
  options: {
    prefixes: { type: 'string', default: '1000000' },
    lookups: { type: 'string', default: '5000000' },
    seed: { type: 'string', default: '1' },
  },
});
const prefixCount = Number(args.prefixes);
const lookupCount = Number(args.lookups);
const IPV6_SHARE = 0.3;

// xorshift32: the same input on every run.
let state = Number(args.seed) >>> 0 || 1;
function random32(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>>= 0);
}
function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i += 4) {
    const r = random32();
    bytes[i] = r >>> 24;
    bytes[i + 1] = r >>> 16;
    bytes[i + 2] = r >>> 8;
    bytes[i + 3] = r;
  }
  return bytes;
}
/** A length drawn from [length, weight] pairs: list-like mixes, mostly /24 and /32, /48 and /64. */
function pick(weights: readonly (readonly [number, number])[]): number {
  const total = weights.reduce((sum, [, w]) => sum + w, 0);
  let r = (random32() / 2 ** 32) * total;
  for (const [length, w] of weights) if ((r -= w) < 0) return length;
  return (weights[weights.length - 1] as readonly [number, number])[0];
}
const V4_LENGTHS = [
  [8, 1],
  [12, 2],
  [16, 10],
  [20, 10],
  [22, 10],
  [24, 80],
  [28, 10],
  [32, 120],
] as const;
const V6_LENGTHS = [
  [16, 1],
  [24, 2],
  [29, 5],
  [32, 20],
  [40, 10],
  [48, 60],
  [56, 20],
  [64, 60],
  [128, 30],
] as const;

const entries: TableEntry[] = [];
for (let i = 0; i < prefixCount; i++) {
  const v6 = random32() / 2 ** 32 < IPV6_SHARE;
  const address = randomBytes(v6 ? 16 : 4);
  if (v6) address[0] = 0x20 | ((address[0] as number) & 0x1f); // global unicast, so prefixes overlap more
  entries.push({ range: prefixRange(address, pick(v6 ? V6_LENGTHS : V4_LENGTHS)), value: i % 1000 });
}

const ms = (t: number): string => `${t.toFixed(0)} ms`;

let t0 = performance.now();
const inline = IntervalTable.compile(entries);
const inlineMs = performance.now() - t0;

t0 = performance.now();
const pending = compileTable(entries, { workerThreshold: 0 });
const blockedMs = performance.now() - t0; // checking and packing on this thread
const viaWorker = await pending;
const workerMs = performance.now() - t0;
if (viaWorker.intervals !== inline.intervals) throw new Error('worker and inline compiles differ');

const { v4, v6 } = inline.toData();
const tableBytes = [v4, v6].reduce((sum, f) => sum + f.records.byteLength + (f.index?.byteLength ?? 0), 0);
console.log(
  `${prefixCount} prefixes (${(IPV6_SHARE * 100).toFixed(0)}% IPv6), ${inline.intervals} intervals (${v4.records.length / 3} IPv4), table ${(tableBytes / 2 ** 20).toFixed(1)} MiB`,
);
console.log(`compile inline        ${ms(inlineMs)}`);
// What the main thread spends on a table flattened in a worker thread: wrapping its arrays.
t0 = performance.now();
IntervalTable.fromFlattened(inline.toData());
console.log(`wrap flattened data   ${(performance.now() - t0).toFixed(2)} ms on the main thread`);
console.log(`compile in a worker   ${ms(workerMs)} (event loop blocked ${ms(blockedMs)} while packing)`);

/** Random addresses as separate arrays, as SPOP hands them over. */
function addresses(length: number, count: number): Uint8Array[] {
  return Array.from({ length: count }, () => {
    const a = randomBytes(length);
    if (length === 16) a[0] = 0x20 | ((a[0] as number) & 0x1f);
    return a;
  });
}
function measure(name: string, pool: readonly Uint8Array[]): void {
  const mask = pool.length - 1;
  let hits = 0;
  for (let i = 0; i < 200_000; i++) if (inline.lookup(pool[i & mask] as Uint8Array) >= 0) hits++; // warm up
  hits = 0;
  const start = performance.now();
  for (let i = 0; i < lookupCount; i++) if (inline.lookup(pool[i & mask] as Uint8Array) >= 0) hits++;
  const elapsed = performance.now() - start;
  const perSecond = lookupCount / (elapsed / 1000);
  console.log(
    `lookup ${name}  ${(perSecond / 1e6).toFixed(2)} M/s, ${((elapsed * 1e6) / lookupCount).toFixed(0)} ns/lookup, ${((hits / lookupCount) * 100).toFixed(0)}% hits`,
  );
}
measure('IPv4', addresses(4, 1 << 16));
measure('IPv6', addresses(16, 1 << 16));

const { rss, heapUsed } = process.memoryUsage();
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
console.log(`RSS ${mib(rss)}, heap used ${mib(heapUsed)} (the input entries included; two tables alive)`);
