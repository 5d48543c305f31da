/**
 * Country / ASN lookups per message: the `maxmind` package's reader (its default LRU cache of
 * decoded records), mmdb-lib's reader alone, and the engine's compiled table (geo/mmdb.ts). Prints
 * lookups per second and the minor GCs (scavenges) each run caused: a lookup that allocates fills
 * the young generation and triggers them; an allocation-free one triggers none.
 *
 *   node --import tsx packages/iprep/bench/geo.ts [--db file.mmdb] [--kind country|asn] [--lookups 2000000]
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import maxmind from 'maxmind';
import { Reader } from 'mmdb-lib';
import { DecisionIndex } from '../src/decisions/index.js';
import { ReputationEngine } from '../src/engine/index.js';
import { GeoTable } from '../src/geo/geo-table.js';
import { compileMmdb, type GeoKind } from '../src/geo/mmdb.js';
import { formatAddress } from '../src/net/address.js';

const require = createRequire(import.meta.url);
const { values: args } = parseArgs({
  options: {
    db: { type: 'string', default: require.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb') },
    kind: { type: 'string', default: 'country' },
    lookups: { type: 'string', default: '2000000' },
  },
});
const file = args.db;
const kind = args.kind as GeoKind;
const lookups = Number(args.lookups);

// xorshift32: the same addresses on every run; 70% IPv4, 30% IPv6 in 2000::/3.
let state = 1;
const random32 = (): number => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>>= 0);
};
const DISTINCT = 100_000;
const bytes: Uint8Array[] = [];
for (let i = 0; i < DISTINCT; i++) {
  const address = new Uint8Array(i % 10 < 7 ? 4 : 16);
  const view = new DataView(address.buffer);
  for (let w = 0; w < address.length / 4; w++) view.setUint32(w * 4, random32());
  if (address.length === 16) address[0] = 0x20 | ((address[0] as number) & 0x1f);
  bytes.push(address);
}
const texts = bytes.map((address) => formatAddress(address));

let scavenges = 0;
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if ((entry as unknown as { detail?: { kind?: number } }).detail?.kind === 1) scavenges++;
});
observer.observe({ entryTypes: ['gc'] });

async function run(name: string, lookup: (i: number) => unknown): Promise<void> {
  for (let i = 0; i < 200_000; i++) lookup(i % DISTINCT); // warm up
  await new Promise((resolve) => setTimeout(resolve, 50)); // GC entries of the warm-up arrive
  scavenges = 0;
  let sink = 0;
  const started = performance.now();
  for (let i = 0; i < lookups; i++) if (lookup(i % DISTINCT) != null) sink++;
  const ms = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 50));
  const perSecond = (lookups / ms) * 1000;
  console.log(
    `${name.padEnd(44)} ${(perSecond / 1e6).toFixed(2).padStart(6)} M lookups/s  ${((ms * 1e6) / lookups).toFixed(0).padStart(5)} ns each  ${String(scavenges).padStart(4)} scavenges  (${sink} located)`,
  );
}

const db = readFileSync(file);
console.log(`${file}: ${(db.length / 2 ** 20).toFixed(1)} MiB, ${kind}; ${lookups} lookups over ${DISTINCT} distinct addresses (70% IPv4)`);
let started = performance.now();
const table = new GeoTable(compileMmdb(db, kind, file, { maxNetworks: 10_000_000 }));
const compileMs = performance.now() - started;
const heapMb = process.memoryUsage().heapUsed / 2 ** 20;
console.log(
  `compiled table: ${table.table.intervals} intervals, ${table.labelCount} labels, ${compileMs.toFixed(0)} ms to compile (in a worker thread when the agent loads it)`,
);

started = performance.now();
const cached = await maxmind.open<Record<string, unknown>>(file);
console.log(`maxmind.open: ${(performance.now() - started).toFixed(0)} ms; heap after both loaded ${heapMb.toFixed(0)} MiB`);
const plain = new Reader<Record<string, unknown>>(db);

await run('maxmind reader (LRU of decoded records)', (i) => cached.get(texts[i] as string));
await run('mmdb-lib reader, no cache', (i) => plain.get(texts[i] as string));
await run('compiled interval table (bytes)', (i) => {
  const label = table.lookup(bytes[i] as Uint8Array);
  return label < 0 ? null : label;
});

// The engine's hot path, without and with the database (and a rule naming the most common label).
const engineWith = (geo: boolean): ReputationEngine => {
  const engine = new ReputationEngine(
    { thresholds: { deny: 20, tarpit: 40, captcha: 60, log: 80 }, special: { enabled: true, internalAction: 'allow', bogonScore: 10 } },
    { decisions: new DecisionIndex() },
  );
  if (geo) {
    engine.geo.setTables(kind === 'country' ? table : undefined, kind === 'asn' ? table : undefined);
    engine.geo.setRules([
      { name: 'rule', countries: kind === 'country' ? [table.text(0)] : [], asns: kind === 'asn' ? [table.asn(0)] : [], penalty: 30, category: 'geo' },
    ]);
  }
  return engine;
};
for (const geo of [false, true]) {
  const engine = engineWith(geo);
  await run(`engine.score, ${geo ? 'with the database and a rule' : 'no geo database'}`, (i) => engine.score(bytes[i] as Uint8Array, 0));
}
observer.disconnect();
