/**
 * Which tables pay for an index, and of what size: the engine's tables as bench/hot-path.ts loads
 * them (a 1,000-address allowlist, the RFC 6890 ranges, a 10,000-address scored list, a deny
 * list of --prefixes prefixes), each random IPv4 source asking all four in turn, as
 * ReputationEngine does, with tables of --threshold records or more indexed. Between two
 * sources, --pollute random lines of a 256 KiB x --pollute buffer are read, standing in
 * for the rest of a message's work (behaviour tracker, decisions, buffers) that evicts tables.
 * Thresholds run interleaved, best of --repeat passes, timed in CPU time.
 *
 *   node --import tsx packages/iprep/bench/lpm-threshold.ts [--prefixes 100000] [--lookups 2000000] [--repeat 5] [--pollute 4]
 *     [--threshold N (a /16 index from N records) | N/sized (the table's own index bits, indexBits) | N/sized+K (K bits more)]...
 */
import { parseArgs } from 'node:util';
import { seededRandom32 } from '../../../bench/random.js';
import { parseRange, prefixRange } from '../src/net/address.js';
import { type FamilyRecords, IntervalTable, SPECIAL_RANGES, type TableEntry } from '../src/table/index.js';
import { indexBits, recordsIndex } from '../src/table/records.js';

const { values: args } = parseArgs({
  options: {
    prefixes: { type: 'string', default: '100000' },
    lookups: { type: 'string', default: '2000000' },
    repeat: { type: 'string', default: '5' },
    pollute: { type: 'string', default: '4' },
    threshold: { type: 'string', multiple: true, default: ['16/sized', '16', '1024', '4096', '65536', '1000000000'] },
  },
});
const random32 = seededRandom32();
const word = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
const v4Entries = (count: number, length: () => number): TableEntry[] =>
  Array.from({ length: count }, (_, value) => ({ range: prefixRange(word(random32()), length()), value }));

// As bench/reputation-data.ts writes them: 70% IPv4 /16../24, 30% IPv6 /32../48.
const deny: TableEntry[] = [];
for (let i = 0; i < Number(args.prefixes); i++) {
  const v6 = i % 10 >= 7;
  const bytes = v6 ? new Uint8Array(16) : word(random32());
  if (v6) bytes.set([...word(0x20000000 | (random32() & 0x0fffffff)), ...word(random32())]);
  deny.push({ range: prefixRange(bytes, v6 ? 32 + (i % 17) : 16 + (i % 9)), value: i });
}
const sources = [
  IntervalTable.compile(v4Entries(1_000, () => 32)),
  IntervalTable.compile(SPECIAL_RANGES.map((special, value) => ({ range: parseRange(special.cidr), value }))),
  IntervalTable.compile(v4Entries(10_000, () => 32)),
  IntervalTable.compile(deny),
];

/** The same table, indexed from `threshold` records, on `bits` bits, or indexBits + `extra` bits (at most 16). */
function withIndex(table: IntervalTable, threshold: number, bits: number | undefined, extra: number): IntervalTable {
  const data = table.toData();
  const family = (records: Uint32Array, w: number): FamilyRecords => {
    const n = records.length / (2 * w + 1);
    return { records, index: recordsIndex(records, w, threshold, bits ?? Math.min(16, indexBits(n) + extra)) };
  };
  return IntervalTable.fromFlattened({ ...data, v4: family(data.v4.records, 1), v6: family(data.v6.records, 4) });
}

// --threshold N: a /16 index from N records; N/sized: an index sized by the table (indexBits); N/sized+K: K more bits.
const variants = args.threshold.map((t) => {
  const [threshold, how = '16'] = t.split('/');
  const sized = how.startsWith('sized');
  const extra = sized ? Number(how.slice(6) || 0) : 0;
  const bits = sized ? undefined : Number(how);
  const name = sized ? `${how}, from ${threshold}` : `/${how}, from ${threshold}`;
  return { name, tables: sources.map((s) => withIndex(s, Number(threshold), bits, extra)), best: Number.POSITIVE_INFINITY };
});
const lookups = Number(args.lookups);
const addresses = new Uint32Array(1 << 20).map(() => random32());
const pollution = new Uint32Array(Math.max(1, Number(args.pollute)) * 1024 * 64); // 256 KiB per line touched
const touches = Number(args.pollute);
let sink = 0;
for (let pass = 0; pass <= Number(args.repeat); pass++) {
  for (const variant of variants) {
    const [allow, special, scored, denied] = variant.tables as [IntervalTable, IntervalTable, IntervalTable, IntervalTable];
    let p = 0;
    const started = process.cpuUsage(); // CPU time, not wall time: the machine's other processes preempt this one
    for (let i = 0; i < lookups; i++) {
      const a = addresses[i & 0xfffff] as number;
      sink +=
        allow.lookupWords(true, a, 0, 0, 0) +
        special.lookupWords(true, a, 0, 0, 0) +
        scored.lookupWords(true, a, 0, 0, 0) +
        denied.lookupWords(true, a, 0, 0, 0);
      for (let k = 0; k < touches; k++) {
        p = (p + 0x9e3779b1 + a) >>> 0;
        sink += pollution[p % pollution.length] as number;
      }
    }
    const used = process.cpuUsage(started);
    const ns = ((used.user + used.system) * 1e3) / lookups;
    if (pass > 0) variant.best = Math.min(variant.best, ns); // pass 0 warms up
  }
}
const records = sources.map((t) => t.toData().v4.records.length / 3);
console.log(
  `IPv4 records: allow ${records[0]}, special ${records[1]}, scored ${records[2]}, deny ${records[3]}; --pollute ${touches} lines of ${pollution.byteLength >> 10} KiB`,
);
for (const v of variants) console.log(`index ${v.name.padEnd(20)} records   ${v.best.toFixed(0).padStart(5)} ns per source (4 tables)`);
console.log(`(checksum ${sink % 1000})`);
