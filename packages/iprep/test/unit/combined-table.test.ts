/**
 * The combined address table (one lookup for the allowlist and every list): the engine answers
 * with it exactly as with one table per source, swaps never expose a table built from other
 * lists, a failed or oversized build keeps the per-table lookups, and the tables a merge reads
 * are shared with its thread, not copied.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Logger, consoleLogger } from 'spop';
import { loadConfigFile } from '../../src/config/index.js';
import { DecisionIndex } from '../../src/decisions/index.js';
import { type CompiledAllowlist, type CompiledList, type EngineDependencies, ReputationEngine } from '../../src/engine/engine.js';
import { type IpRange, formatAddress, parseAddress } from '../../src/net/address.js';
import { IprepService } from '../../src/service.js';
import { PackedListEntries } from '../../src/sources/index.js';
import { compileListBody } from '../../src/sources/list-compiler.js';
import { IntervalTable } from '../../src/table/index.js';
import { mergeJob, mergeTables, mergeTablesInWorker, sharedBytesMissing } from '../../src/table/merge.js';
import type { IprepConfig, ListConfig, ListEntry, LoadedList } from '../../src/types.js';

const thresholds: IprepConfig['thresholds'] = { deny: 20, tarpit: 40, captcha: 60, log: 80 };
const NOW = Date.UTC(2026, 11, 3, 12);

/** Addresses of one family near a base (so that ranges overlap, nest and touch), as bytes. */
const V4_BASE = 0x5db8_0000n; // 93.184.0.0: globally reachable, not special
const V6_BASE = 0x2a00_1450_0000_0000_0000_0000_0000_0000n;
function bytesOf(n: bigint, length: 4 | 16): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(n & 255n);
    n >>= 8n;
  }
  return out;
}
const near = (family: 4 | 6, delta: number): Uint8Array => (family === 4 ? bytesOf(V4_BASE + BigInt(delta), 4) : bytesOf(V6_BASE + BigInt(delta), 16));
const rangeOf = (family: 4 | 6, delta: number, span: number): IpRange => ({ family, start: near(family, delta), end: near(family, delta + span) });

const rangeArb = fc
  .tuple(
    fc.constantFrom(4 as const, 6 as const),
    fc.integer({ min: 0, max: 2000 }),
    fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 600 })),
  )
  .map(([family, delta, span]) => rangeOf(family, delta, span));

function loaded(name: string, entries: readonly ListEntry[]): LoadedList {
  const table = IntervalTable.compile(entries.map((e, value) => ({ range: e.range, value })));
  return { name, entries: PackedListEntries.from(entries), table, loadedAt: NOW, origin: 'test', warnings: [] };
}

function compiledList(config: Partial<ListConfig> & { name: string }, entries: readonly ListEntry[]): CompiledList {
  const full: ListConfig = { format: 'netset', refreshMs: 3_600_000, category: config.name, minEntries: 0, maxShrink: 1, ...config };
  const list = loaded(full.name, entries);
  return { config: full, list, table: list.table };
}

function allowlist(ranges: readonly IpRange[], files: readonly (readonly IpRange[])[] = []): CompiledAllowlist {
  return {
    ranges,
    table: IntervalTable.compile(ranges.map((range, value) => ({ range, value }))),
    files: files.map((file, i) =>
      loaded(
        `allowlist:${i}`,
        file.map((range) => ({ range })),
      ),
    ),
  };
}

const listArb = fc.record({
  csv: fc.boolean(),
  entries: fc.array(fc.tuple(rangeArb, fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined })), { minLength: 1, maxLength: 12 }),
  score: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
  penalty: fc.integer({ min: 0, max: 100 }),
  action: fc.option(fc.constantFrom('allow', 'log', 'captcha', 'tarpit', 'deny' as const), { nil: undefined }),
});
type ListShape = typeof listArb extends fc.Arbitrary<infer T> ? T : never;

function listsOf(shapes: readonly ListShape[]): CompiledList[] {
  return shapes.map((l, i) =>
    compiledList(
      {
        name: `l${i}`,
        format: l.csv ? 'csv' : 'netset',
        ...(l.score === undefined ? { penalty: l.penalty } : { score: l.score }),
        ...(l.action ? { action: l.action } : {}),
      },
      l.entries.map(([range, score]) => (l.csv && score !== undefined ? { range, score } : { range })),
    ),
  );
}

const silent: Logger = consoleLogger('silent');

function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const record = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
  return { logger: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') } as unknown as Logger, lines };
}

function engine(specialEnabled: boolean, combined: EngineDependencies['combined'], logger: Logger = silent): ReputationEngine {
  return new ReputationEngine(
    { thresholds, special: { enabled: specialEnabled, internalAction: 'allow', bogonScore: 10 } },
    { decisions: new DecisionIndex(), combined, logger },
  );
}

const brief = (v: { score: number; action: string; category: string; source: string }) => [v.score, v.action, v.category, v.source];

/** Edges of every range and their neighbours, and random addresses near the bases. */
function probes(ranges: readonly IpRange[], extra: readonly [4 | 6, number][]): Uint8Array[] {
  const out = extra.map(([family, delta]) => near(family, delta));
  for (const range of ranges) {
    const length = range.start.length as 4 | 16;
    const base = length === 4 ? V4_BASE : V6_BASE;
    for (const edge of [range.start, range.end]) {
      const n = BigInt(`0x${Buffer.from(edge).toString('hex')}`);
      for (const d of [-1n, 0n, 1n]) if (n + d >= base) out.push(bytesOf(n + d, length));
    }
  }
  return out;
}

describe('the combined table in the engine', () => {
  it('scores like the per-table path and like explain, for random allowlists and lists', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(rangeArb, { maxLength: 4 }),
        fc.array(fc.array(rangeArb, { maxLength: 5 }), { maxLength: 2 }),
        fc.array(listArb, { maxLength: 5 }),
        fc.array(fc.tuple(fc.constantFrom(4 as const, 6 as const), fc.integer({ min: 0, max: 2700 })), { maxLength: 20 }),
        fc.boolean(),
        async (allowRanges, allowFiles, shapes, extra, specialEnabled) => {
          const allow = allowlist(allowRanges, allowFiles);
          const lists = listsOf(shapes);
          const perTable = engine(specialEnabled, false);
          const combined = engine(specialEnabled, {});
          for (const e of [perTable, combined]) {
            e.setAllowlist(allow);
            e.setLists(lists);
          }
          assert.equal(await combined.combinedSettled(), true, 'the combined table is in use');
          assert.equal(await perTable.combinedSettled(), false);
          const ranges = [...allowRanges, ...allowFiles.flat(), ...shapes.flatMap((s) => s.entries.map(([r]) => r))];
          for (const address of probes(ranges, extra)) {
            const expected = brief(perTable.score(address, NOW));
            assert.deepEqual(brief(combined.score(address, NOW)), expected, formatAddress(address));
            assert.deepEqual(brief(combined.explain(address, NOW)), expected, `explain ${formatAddress(address)}`);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('merges in a worker thread like inline', async () => {
    const lists = listsOf(fc.sample(listArb, { numRuns: 6, seed: 11 }));
    const inline = engine(false, {});
    const threaded = engine(false, { workerThreshold: 0 });
    for (const e of [inline, threaded]) {
      e.setAllowlist(allowlist([rangeOf(4, 100, 20)]));
      e.setLists(lists);
    }
    assert.equal(await inline.combinedSettled(), true);
    assert.equal(await threaded.combinedSettled(), true);
    for (let d = 0; d < 2700; d += 7) {
      for (const family of [4, 6] as const) assert.deepEqual(brief(threaded.score(near(family, d), NOW)), brief(inline.score(near(family, d), NOW)));
    }
  });
});

describe('swapping lists while the combined table is rebuilt', () => {
  const onlyA = near(4, 10);
  const onlyB = near(4, 500);
  const a = [compiledList({ name: 'a', score: 0, category: 'first' }, [{ range: rangeOf(4, 0, 100) }])];
  const b = [compiledList({ name: 'b', score: 30, category: 'second' }, [{ range: rangeOf(4, 400, 200) }])];

  it('never answers from a table of other lists, and uses the new one once built', async () => {
    const { logger, lines } = recordingLogger();
    const e = engine(false, { workerThreshold: 0 }, logger);
    e.setAllowlist(allowlist([]));
    e.setLists(a);
    assert.deepEqual(brief(e.score(onlyA, NOW)), [0, 'deny', 'first', 'a']);
    assert.equal(await e.combinedSettled(), true);
    e.setLists(b); // the table of `a` is current no more
    assert.equal(e.combinedActive, false);
    assert.deepEqual(brief(e.score(onlyA, NOW)), [100, 'allow', 'none', 'default']);
    assert.deepEqual(brief(e.score(onlyB, NOW)), [30, 'tarpit', 'second', 'b']);
    await delay(5); // b's merge thread is starting (tens of ms)
    const builtBefore = lines.filter((line) => line === 'debug combined address table built').length;
    e.setLists(a); // while b's rebuild runs: it is superseded, its result discarded
    e.setAllowlist(allowlist([rangeOf(4, 0, 20)]));
    assert.deepEqual(brief(e.score(onlyA, NOW)), [100, 'allow', 'allowlisted', 'allowlist']);
    assert.deepEqual(brief(e.score(onlyB, NOW)), [100, 'allow', 'none', 'default']);
    assert.equal(await e.combinedSettled(), true);
    assert.equal(e.combinedActive, true);
    assert.deepEqual(brief(e.score(onlyA, NOW)), [100, 'allow', 'allowlisted', 'allowlist']);
    assert.deepEqual(brief(e.score(near(4, 50), NOW)), [0, 'deny', 'first', 'a']);
    assert.deepEqual(brief(e.score(onlyB, NOW)), [100, 'allow', 'none', 'default']);
    assert.equal(lines.filter((line) => line === 'debug combined address table built').length, builtBefore + 1, 'b discarded, a installed');
  });

  it('builds once for an allowlist and lists set together (a reload)', async () => {
    const { logger, lines } = recordingLogger();
    const e = engine(false, {}, logger);
    e.setAllowlist(allowlist([rangeOf(4, 0, 20)]));
    e.setLists(a);
    assert.equal(await e.combinedSettled(), true);
    assert.equal(lines.filter((line) => line === 'debug combined address table built').length, 1, lines.join('\n'));
  });

  it('keeps the per-table path and logs when the merge fails or times out', async () => {
    const { logger, lines } = recordingLogger();
    const e = engine(false, { workerThreshold: 0, timeoutMs: 1 }, logger);
    e.setAllowlist(allowlist([]));
    e.setLists(a);
    assert.equal(await e.combinedSettled(), false);
    assert.equal(e.combinedActive, false);
    assert.deepEqual(brief(e.score(onlyA, NOW)), [0, 'deny', 'first', 'a']);
    assert.ok(
      lines.some((line) => /^error combined address table: .*did not answer within .*per-table lookups/.test(line)),
      lines.join('\n'),
    );
  });

  it('gives up the combined table beyond the combination bound, with a log line', async () => {
    const { logger, lines } = recordingLogger();
    const e = engine(false, { maxCombinations: 2 }, logger);
    e.setAllowlist(allowlist([]));
    // Three lists over nested ranges: three distinct combinations.
    e.setLists([
      compiledList({ name: 'x', score: 10 }, [{ range: rangeOf(4, 0, 300) }]),
      compiledList({ name: 'y', score: 20 }, [{ range: rangeOf(4, 100, 100) }]),
      compiledList({ name: 'z', format: 'csv', score: 20 }, [{ range: rangeOf(6, 0, 10), score: 5 }]),
    ]);
    assert.equal(await e.combinedSettled(), false);
    assert.deepEqual(brief(e.score(near(4, 150), NOW)), [10, 'deny', 'x', 'x']);
    assert.ok(
      lines.some((line) => /^warn combined address table: more than 2 combinations/.test(line)),
      lines.join('\n'),
    );
    // Within the bound it is used.
    const roomy = engine(false, { maxCombinations: 3 });
    roomy.setAllowlist(allowlist([]));
    roomy.setLists(e.lists);
    assert.equal(await roomy.combinedSettled(), true);
  });
});

describe('mergeTables', () => {
  it('gives every address the tuple of each table’s key', async () => {
    const tables = fc.sample(fc.array(fc.tuple(rangeArb, fc.integer({ min: 0, max: 9 })), { maxLength: 15 }), { numRuns: 4, seed: 3 });
    const compiled = tables.map((entries) => IntervalTable.compile(entries.map(([range], value) => ({ range, value }))));
    const keys = tables.map((entries) => Uint8Array.from(entries.map(([, key]) => key)));
    const sources = compiled.map((table, i) => ({ table: table.toData(), keys: i % 2 === 0 ? (keys[i] as Uint8Array) : new Uint8Array(0) }));
    const inline = mergeTables(mergeJob(sources, 1000));
    const threaded = await mergeTablesInWorker(mergeJob(sources, 1000), { timeoutMs: 30_000 });
    assert.ok(inline.ok && threaded.ok);
    assert.deepEqual(threaded.combinations, inline.combinations);
    const merged = IntervalTable.fromFlattened(inline.table);
    for (let d = 0; d < 2700; d++) {
      for (const family of [4, 6] as const) {
        const address = near(family, d);
        const id = merged.lookup(address);
        const expected = compiled.map((table, i) => {
          const value = table.lookup(address);
          return value < 0 ? -1 : i % 2 === 0 ? ((keys[i] as Uint8Array)[value] as number) : 255;
        });
        if (expected.every((k) => k < 0)) assert.equal(id, -1);
        else assert.deepEqual([...inline.combinations.subarray(id * sources.length, (id + 1) * sources.length)], expected);
      }
    }
  });
});

describe('the tables a merge reads', () => {
  it('are shared with its thread, not copied: loaded lists keep records and scores in SharedArrayBuffers', async () => {
    const body = (lines: number) => [new TextEncoder().encode(Array.from({ length: lines }, (_, i) => `93.184.${i >> 8}.${i & 255},${i % 90}`).join('\n'))];
    for (const workerThresholdBytes of [0, 1 << 30]) {
      const result = await compileListBody({ format: 'csv', origin: 'test', body: body(3000), maxEntries: 10_000 }, { workerThresholdBytes });
      assert.ok(result.ok && result.unchanged !== true);
      assert.ok(result.table.v4.records.buffer instanceof SharedArrayBuffer, 'records');
      assert.ok(result.entries.scores.buffer instanceof SharedArrayBuffer, 'scores');
      const job = mergeJob([{ table: result.table, keys: result.entries.scores }], 100);
      assert.equal(sharedBytesMissing(job), 0, 'nothing to copy when posting the job');
    }
  });
});

describe('the service and the combined table', () => {
  it('builds it once the lists are loaded, and again on a reload, answering like explain throughout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iprep-combined-'));
    const write = (name: string, text: string): void => writeFileSync(join(dir, name), text);
    write('allow.netset', '93.184.0.1\n');
    write('deny.netset', '93.184.0.0/24\n2a00:1450::/32\n');
    write('scored.csv', '93.184.0.2,70\n93.184.0.3,10\n');
    write(
      'iprep.yaml',
      `special: { enabled: false }
admin: { enabled: false }
allowlist: [{ file: allow.netset }]
lists:
  - { name: deny, path: deny.netset, penalty: 40, category: attacker }
  - { name: scored, format: csv, path: scored.csv, category: partner }
`,
    );
    const configPath = join(dir, 'iprep.yaml');
    const service = new IprepService(await loadConfigFile(configPath), { configPath, logger: silent });
    const addresses = ['93.184.0.1', '93.184.0.2', '93.184.0.3', '93.184.0.9', '93.184.1.1', '2a00:1450::1'];
    const verdicts = () => addresses.map((a) => brief(service.engine.score(parseAddress(a) as Uint8Array, NOW)));
    try {
      await service.start();
      assert.equal(await service.engine.combinedSettled(), true);
      assert.deepEqual(
        verdicts(),
        addresses.map((a) => brief(service.explain(a))),
      );
      assert.deepEqual(verdicts()[1], [30, 'tarpit', 'attacker', 'deny']); // 70 less the penalty
      write('deny.netset', '93.184.1.0/24\n');
      assert.equal((await service.reload()).ok, true);
      assert.equal(await service.engine.combinedSettled(), true);
      assert.deepEqual(
        verdicts(),
        addresses.map((a) => brief(service.explain(a))),
      );
      assert.deepEqual(verdicts()[4], [60, 'log', 'attacker', 'deny']);
      assert.deepEqual(verdicts()[1], [70, 'log', 'partner', 'scored']);
    } finally {
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
