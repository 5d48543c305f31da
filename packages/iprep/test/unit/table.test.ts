import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compareAddress, type IpRange, parseAddress, parseRange, prefixRange } from '../../src/net/address.js';
import { IntervalTable, type IntervalTableData, type TableEntry, compileTable, intervalTableTransferList } from '../../src/table/index.js';
import { INDEX_MIN_RECORDS, indexBits } from '../../src/table/records.js';

/** The specification: the smallest range containing the address, the later entry among equal sizes. */
function naiveLookup(entries: readonly TableEntry[], address: Uint8Array): number {
  let best: TableEntry | undefined;
  let bestSize = 0n;
  for (const entry of entries) {
    const { start, end } = entry.range;
    if (start.length !== address.length || compareAddress(start, address) > 0 || compareAddress(address, end) > 0) continue;
    const size = toBigInt(end) - toBigInt(start);
    if (best === undefined || size <= bestSize) {
      best = entry;
      bestSize = size;
    }
  }
  return best === undefined ? -1 : best.value;
}

function toBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function fromBigInt(n: bigint, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    bytes[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return bytes;
}

const entry = (text: string, value: number): TableEntry => ({ range: parseRange(text), value });
const address = (text: string): Uint8Array => {
  const bytes = parseAddress(text);
  assert.ok(bytes, text);
  return bytes;
};

// Addresses drawn from a few small neighbourhoods (and the family's edges), so
// random ranges overlap, nest and touch instead of being scattered.
function addressArbitrary(length: 4 | 16): fc.Arbitrary<Uint8Array> {
  const max = (1n << BigInt(length * 8)) - 1n;
  const bases = [0n, max - 4095n, 0x0a00_0000n << BigInt(length * 8 - 32), 0xc000_0200n << BigInt(length * 8 - 32)];
  return fc
    .oneof(
      fc.constantFrom(0n, max),
      fc.tuple(fc.constantFrom(...bases), fc.bigInt({ min: 0n, max: 4095n })).map(([base, delta]) => base + delta),
      fc.bigInt({ min: 0n, max }),
    )
    .map((n) => fromBigInt(n, length));
}

function rangeArbitrary(length: 4 | 16): fc.Arbitrary<IpRange> {
  const bits = length * 8;
  const prefix = fc
    .tuple(addressArbitrary(length), fc.oneof(fc.integer({ min: 0, max: bits }), fc.constantFrom(0, bits, bits - 1, bits - 8)))
    .map(([a, len]) => prefixRange(a, len));
  const span = fc.tuple(addressArbitrary(length), addressArbitrary(length)).map(([a, b]): IpRange => {
    const [start, end] = compareAddress(a, b) <= 0 ? [a, b] : [b, a];
    return { family: length === 4 ? 4 : 6, start, end };
  });
  const short = fc.tuple(addressArbitrary(length), fc.integer({ min: 0, max: 300 })).map(([a, extra]): IpRange => {
    const max = (1n << BigInt(bits)) - 1n;
    const s = toBigInt(a);
    const e = s + BigInt(extra) > max ? max : s + BigInt(extra);
    return { family: length === 4 ? 4 : 6, start: a, end: fromBigInt(e, length) };
  });
  return fc.oneof(prefix, span, short);
}

const entriesArbitrary = fc.array(
  fc.tuple(fc.oneof(rangeArbitrary(4), rangeArbitrary(16)), fc.integer({ min: 0, max: 20 })).map(([range, value]) => ({ range, value })),
  { maxLength: 40 },
);

/** Addresses worth probing: every range's edges and their neighbours, plus random ones. */
function probes(entries: readonly TableEntry[], extra: readonly Uint8Array[]): Uint8Array[] {
  const out = [...extra];
  for (const { range } of entries) {
    const max = (1n << BigInt(range.start.length * 8)) - 1n;
    for (const edge of [toBigInt(range.start), toBigInt(range.end)]) {
      for (const n of [edge - 1n, edge, edge + 1n]) if (n >= 0n && n <= max) out.push(fromBigInt(n, range.start.length));
    }
  }
  return out;
}

function assertMatchesNaive(table: IntervalTable, entries: readonly TableEntry[], extra: readonly Uint8Array[], edgesOf = entries): void {
  for (const a of probes(edgesOf, extra)) {
    const expected = naiveLookup(entries, a);
    assert.equal(table.lookup(a), expected, `lookup of ${toBigInt(a).toString(16)} (${a.length} bytes)`);
    const word = (at: number): number =>
      a.length > at ? (((a[at] as number) << 24) | ((a[at + 1] as number) << 16) | ((a[at + 2] as number) << 8) | (a[at + 3] as number)) >>> 0 : 0;
    assert.equal(table.lookupWords(a.length === 4, word(0), word(4), word(8), word(12)), expected, `lookupWords of ${toBigInt(a).toString(16)}`);
  }
}

/** assertMatchesNaive for thousands of entries: the same specification, the sizes computed once. */
function assertMatchesModel(table: IntervalTable, entries: readonly TableEntry[], addresses: readonly Uint8Array[]): void {
  const model = entries.map(({ range, value }) => ({ length: range.start.length, start: toBigInt(range.start), end: toBigInt(range.end), value }));
  for (const a of addresses) {
    const n = toBigInt(a);
    let expected = -1;
    let bestSize = 0n;
    for (const m of model) {
      if (m.length !== a.length || n < m.start || n > m.end) continue;
      const size = m.end - m.start;
      if (expected < 0 || size <= bestSize) {
        expected = m.value;
        bestSize = size;
      }
    }
    assert.equal(table.lookup(a), expected, `lookup of ${n.toString(16)} (${a.length} bytes)`);
  }
}

describe('IntervalTable', () => {
  it('answers like a linear scan for random IPv4 and IPv6 ranges and prefixes', () => {
    fc.assert(
      fc.property(entriesArbitrary, fc.array(fc.oneof(addressArbitrary(4), addressArbitrary(16)), { maxLength: 20 }), (entries, extra) => {
        const table = IntervalTable.compile(entries);
        assert.equal(table.size, entries.length);
        assertMatchesNaive(table, entries, extra);
      }),
      { numRuns: 400 },
    );
  });

  it('answers like a linear scan for a thousand heavily overlapping ranges', () => {
    const entries = fc
      .sample(fc.tuple(fc.oneof(rangeArbitrary(4), rangeArbitrary(16)), fc.nat(50)), { numRuns: 1000, seed: 7 })
      .map(([range, value]) => ({ range, value }));
    const table = IntervalTable.compile(entries);
    assertMatchesNaive(table, entries, []);
  });

  it('answers like a linear scan through its /16 index: ranges across, inside and at the edges of /16s', () => {
    // Enough records for a full /16 index (2^15 and more); ranges that start, end and span /16 boundaries.
    const entries: TableEntry[] = [];
    const probesAt: Uint8Array[] = [];
    let x = 99;
    const next = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x >>> 0;
    };
    const count = 40_000;
    for (let i = 0; i < count; i++) {
      const bucket = (next() % 64) + 0x0a00; // 10.0.0.0/10: many ranges per /16 and many /16s empty
      const start = ((bucket << 16) >>> 0) + (i % 3 === 0 ? 0 : next() % 65536) - (i % 7 === 0 ? 5 : 0);
      const span = i % 11 === 0 ? 70_000 + (next() % 200_000) : next() % 300;
      const v6 = i % 4 === 0;
      const word = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
      const end = Math.min(start + span, 0xffffffff);
      const range: IpRange = v6
        ? { family: 6, start: Uint8Array.of(...word(start), ...new Uint8Array(12)), end: Uint8Array.of(...word(end), ...new Uint8Array(12).fill(255)) }
        : { family: 4, start: word(start), end: word(end) };
      entries.push({ range, value: i });
      if (i % 64 !== 0) continue; // probes around a sample of the /16s and entries: the linear scan is slow
      probesAt.push(word(((bucket << 16) >>> 0) - 1), word((bucket << 16) >>> 0), word(((bucket << 16) | 0xffff) >>> 0));
      probesAt.push(
        Uint8Array.of(...word((bucket << 16) >>> 0), ...new Uint8Array(12)),
        Uint8Array.of(...word(((bucket << 16) >>> 0) - 1), ...new Uint8Array(12).fill(255)),
      );
    }
    const table = IntervalTable.compile(entries);
    const { v4, v6 } = table.toData();
    assert.equal(v4.index?.length, 65537, 'a /16 index');
    assert.ok(v6.index !== null, 'IPv6 indexed');
    assertMatchesModel(
      table,
      entries,
      probes(
        entries.filter((_, i) => i % 64 === 1),
        probesAt,
      ),
    );
  });

  // Sizes on both sides of INDEX_MIN_RECORDS, and indexes of a few bits and of 16 bits.
  for (const length of [4, 16] as const) {
    for (const [count, what] of [
      [Math.floor((INDEX_MIN_RECORDS - 1) / 4), 'no index'],
      [INDEX_MIN_RECORDS * 3, 'a small index'],
      [1_500, 'an index of about one bucket per record'],
      [40_000, 'a /16 index'],
    ] as const) {
      it(`answers like a linear scan for ${count} random IPv${length === 4 ? 4 : 6} ranges, with ${what}`, () => {
        // Mostly short ranges anywhere (each adds one or two records), some clustered ones that
        // nest and overlap. At most 4 records per entry.
        const max = (1n << BigInt(length * 8)) - 1n;
        const scattered = fc.tuple(fc.bigInt({ min: 0n, max }), fc.integer({ min: 0, max: 1000 })).map(([s, extra]): IpRange => {
          const e = s + BigInt(extra) > max ? max : s + BigInt(extra);
          return { family: length === 4 ? 4 : 6, start: fromBigInt(s, length), end: fromBigInt(e, length) };
        });
        const range = fc.oneof({ arbitrary: scattered, weight: 9 }, { arbitrary: rangeArbitrary(length), weight: 1 });
        const entry = fc.tuple(range, fc.nat(30)).map(([r, value]) => ({ range: r, value }));
        // Sampled, not shrunk: a shrunk failure would fall to another size than the one it is about.
        const samples = fc.sample(
          fc.tuple(fc.array(entry, { minLength: count, maxLength: count }), fc.array(addressArbitrary(length), { minLength: 200, maxLength: 200 })),
          {
            numRuns: count > 10_000 ? 1 : 3,
            seed: length + count,
          },
        );
        for (const [entries, extra] of samples) {
          const table = IntervalTable.compile(entries);
          const family = length === 4 ? table.toData().v4 : table.toData().v6;
          const records = family.records.length / (length === 4 ? 3 : 9);
          if (count * 4 < INDEX_MIN_RECORDS) assert.equal(family.index, null, `${records} records`);
          else {
            assert.ok(records >= INDEX_MIN_RECORDS, `${records} records`);
            assert.equal(family.index?.length, 2 ** indexBits(records) + 1, `${records} records`);
          }
          if (count === 40_000) assert.equal(family.index?.length, 65537);
          assertMatchesModel(table, entries, probes(entries.slice(0, 100), extra));
        }
      });
    }
  }

  it('keeps records (start, end, value) disjoint, sorted and merged when neighbours share a value', () => {
    fc.assert(
      fc.property(entriesArbitrary, (entries) => {
        const data = IntervalTable.compile(entries).toData();
        let count = 0;
        for (const [family, w] of [
          [data.v4, 1],
          [data.v6, 4],
        ] as const) {
          const { records } = family;
          const stride = 2 * w + 1;
          assert.equal(records.length % stride, 0, 'whole records');
          count += records.length / stride;
          for (let i = 0; i < records.length / stride; i++) {
            const start = toBigInt(wordsToBytes(records, i * stride, w));
            assert.ok(start <= toBigInt(wordsToBytes(records, i * stride + w, w)), 'starts before it ends');
            if (i === 0) continue;
            const previousEnd = toBigInt(wordsToBytes(records, (i - 1) * stride + w, w));
            assert.ok(previousEnd < start, 'sorted and disjoint');
            if (previousEnd + 1n === start) assert.notEqual(records[i * stride + 2 * w], records[(i - 1) * stride + 2 * w], 'touching equal values are merged');
          }
        }
        assert.equal(data.intervals, count);
      }),
    );
  });

  it('resolves nested, adjacent, equal and edge ranges', () => {
    const entries = [
      entry('0.0.0.0/0', 1),
      entry('10.0.0.0/8', 2),
      entry('10.1.0.0/16', 3),
      entry('10.1.2.3/32', 4),
      entry('10.2.0.0/16', 5),
      entry('10.3.0.0/16', 5), // adjacent to 10.2.0.0/16, same value: one interval
      entry('10.1.0.0/16', 6), // same range again: the later entry wins
      entry('255.255.255.255/32', 7),
      entry('192.0.2.10-192.0.2.20', 8),
      entry('192.0.2.15-192.0.2.30', 9), // overlaps the previous one partly, and is larger
      entry('::/0', 10),
      entry('2001:db8::/32', 11),
      entry('2001:db8::1/128', 12),
      entry('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128', 13),
      entry('2001:db8::/32', 14), // equal again: later wins
    ];
    const table = IntervalTable.compile(entries);
    const cases: [string, number][] = [
      ['0.0.0.0', 1],
      ['9.255.255.255', 1],
      ['10.0.0.0', 2],
      ['10.1.2.2', 6],
      ['10.1.2.3', 4],
      ['10.1.2.4', 6],
      ['10.2.255.255', 5],
      ['10.3.0.0', 5],
      ['10.4.0.0', 2],
      ['11.0.0.0', 1],
      ['192.0.2.9', 1],
      ['192.0.2.10', 8],
      ['192.0.2.20', 8],
      ['192.0.2.21', 9],
      ['192.0.2.30', 9],
      ['192.0.2.31', 1],
      ['255.255.255.254', 1],
      ['255.255.255.255', 7],
      ['::', 10],
      ['2001:db8::', 14],
      ['2001:db8::1', 12],
      ['2001:db8::2', 14],
      ['2001:db9::', 10],
      ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe', 10],
      ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 13],
    ];
    for (const [text, expected] of cases) assert.equal(table.lookup(address(text)), expected, text);
    assertMatchesNaive(table, entries, []);
    assert.equal(table.size, entries.length);
  });

  it('looks up from an offset: the IPv4 part of an IPv4-mapped address', () => {
    const table = IntervalTable.compile([entry('192.0.2.0/24', 1), entry('::ffff:0:0/96', 2)]);
    const mapped = address('::ffff:192.0.2.7');
    assert.equal(table.lookup(mapped), 2);
    assert.equal(table.lookup(mapped, 12), 1);
    const frame = new Uint8Array([9, 9, 192, 0, 2, 1]);
    assert.equal(table.lookup(frame, 2), 1);
    assert.throws(() => table.lookup(frame, 1), /4 or 16 address bytes/);
    assert.throws(() => table.lookup(new Uint8Array(0)), /4 or 16 address bytes/);
  });

  it('is empty when built from nothing', () => {
    for (const table of [IntervalTable.empty(), IntervalTable.compile([])]) {
      assert.equal(table.size, 0);
      assert.equal(table.intervals, 0);
      assert.equal(table.lookup(address('0.0.0.0')), -1);
      assert.equal(table.lookup(address('255.255.255.255')), -1);
      assert.equal(table.lookup(address('::')), -1);
    }
  });

  it('counts entries and the intervals kept', () => {
    const table = IntervalTable.compile([entry('10.0.0.0/8', 1), entry('10.1.0.0/16', 2), entry('2001:db8::/32', 3)]);
    assert.equal(table.size, 3);
    assert.equal(table.intervals, 4); // 10.0/16 before, 10.1/16, 10.2-10.255 after, and one IPv6 interval
  });

  it('accepts any iterable', () => {
    function* generate(): Generator<TableEntry> {
      yield entry('192.0.2.0/24', 1);
      yield entry('2001:db8::/32', 2);
    }
    const table = IntervalTable.compile(generate());
    assert.equal(table.lookup(address('192.0.2.1')), 1);
    assert.equal(table.lookup(address('2001:db8::9')), 2);
  });

  it('rejects bad entries, naming them', () => {
    const good = entry('192.0.2.0/24', 1);
    assert.throws(() => IntervalTable.compile([good, { range: good.range, value: -1 }]), /table entry 1: value -1 is not an integer/);
    assert.throws(() => IntervalTable.compile([{ range: good.range, value: 1.5 }]), /table entry 0: value 1.5/);
    assert.throws(() => IntervalTable.compile([{ range: good.range, value: 2 ** 31 }]), RangeError);
    const backwards: IpRange = { family: 4, start: address('192.0.2.9'), end: address('192.0.2.1') };
    assert.throws(
      () => IntervalTable.compile([good, good, { range: backwards, value: 0 }]),
      /table entry 2: range ends before it starts \(192\.0\.2\.9-192\.0\.2\.1\)/,
    );
    const mixed: IpRange = { family: 6, start: address('192.0.2.1'), end: address('192.0.2.1') };
    assert.throws(() => IntervalTable.compile([mixed].map((range) => ({ range, value: 0 }))), /table entry 0: range is not 16 bytes/);
    const bogusFamily = { family: 5, start: address('192.0.2.1'), end: address('192.0.2.1') } as unknown as IpRange;
    assert.throws(() => IntervalTable.compile([{ range: bogusFamily, value: 0 }]), /table entry 0: range is not IPv4 or IPv6/);
  });

  it('round-trips through toData/fromData without copying', () => {
    fc.assert(
      fc.property(entriesArbitrary, (entries) => {
        const table = IntervalTable.compile(entries);
        const data = table.toData();
        const copy = IntervalTable.fromData(structuredClone(data));
        assert.equal(copy.size, table.size);
        assert.equal(copy.intervals, table.intervals);
        assert.deepEqual(copy.toData(), data);
        assertMatchesNaive(copy, entries, []);
        assert.equal(IntervalTable.fromData(data).toData().v4.records, data.v4.records);
      }),
      { numRuns: 100 },
    );
  });

  it('rejects table data that is not sorted, disjoint records', () => {
    const data = IntervalTable.compile([entry('10.0.0.0/8', 1), entry('10.1.0.0/16', 2), entry('2001:db8::/32', 3)]).toData();
    // IPv4: [10.0.0.0, 10.0.255.255, 1] [10.1.0.0, 10.1.255.255, 2] [10.2.0.0, 10.255.255.255, 1]
    assert.equal(data.v4.records.length, 9);
    const withV4 = (records: Uint32Array): IntervalTableData => ({ ...data, v4: { records, index: null } });
    const changed = (at: number, word: number): Uint32Array => {
      const records = data.v4.records.slice();
      records[at] = word;
      return records;
    };
    assert.throws(() => IntervalTable.fromData(withV4(data.v4.records.subarray(0, 8))), /IPv4 records hold 8 words, not a multiple of 3/);
    assert.throws(() => IntervalTable.fromData(withV4(changed(5, 0x80000000))), /IPv4 record 1 has a bad value 2147483648/);
    assert.throws(() => IntervalTable.fromData(withV4(changed(1, 0))), /IPv4 record 0 ends before it starts/);
    assert.throws(() => IntervalTable.fromData(withV4(changed(3, data.v4.records[1] as number))), /IPv4 record 1 does not start after record 0 ends/);
    assert.throws(
      () => IntervalTable.fromData({ ...data, v6: { records: new Uint32Array(4), index: null } }),
      /IPv6 records hold 4 words, not a multiple of 9/,
    );
    assert.throws(() => IntervalTable.fromData({ ...data, intervals: 5 }), /5 intervals announced, 4 found/);
    assert.throws(() => IntervalTable.fromData({ ...data, size: -1 }), /bad size -1/);
    assert.throws(() => IntervalTable.fromData(withV4([0, 1] as unknown as Uint32Array)), /IPv4 records must be a Uint32Array/);
    // A forged index is not trusted: fromData builds its own.
    const forged = { ...data, v4: { records: data.v4.records, index: new Uint32Array(257) } };
    assert.equal(IntervalTable.fromData(forged).lookup(address('10.1.2.3')), 2);
  });

  it('lists the buffers to transfer, which detaches them', () => {
    const table = IntervalTable.compile([entry('192.0.2.0/24', 1), entry('2001:db8::/32', 2)]);
    const data = table.toData();
    const buffers = intervalTableTransferList(data);
    assert.equal(buffers.length, 2, 'one array of records per family, no index for a small table');
    assert.equal(new Set(buffers).size, 2);
    const moved = structuredClone(data, { transfer: buffers });
    assert.equal(data.v4.records.length, 0, 'detached');
    assert.equal(IntervalTable.fromData(moved).lookup(address('192.0.2.1')), 1);
  });
});

describe('compileTable', () => {
  it('compiles in a worker thread the same table as inline', async () => {
    const entries = fc.sample(entriesArbitrary, { numRuns: 30, seed: 42 }).flat();
    const inline = IntervalTable.compile(entries);
    const [viaWorker, small] = await Promise.all([compileTable(entries, { workerThreshold: 1 }), compileTable(entries)]);
    assert.deepEqual(viaWorker.toData(), inline.toData());
    assert.deepEqual(small.toData(), inline.toData());
    assertMatchesNaive(viaWorker, entries, []);
  });

  it('uses a worker for large inputs and still answers like a linear scan', async () => {
    const entries: TableEntry[] = [];
    for (let i = 0; i < 60_000; i++) {
      const a = new Uint8Array([10, (i * 7) & 0xff, (i >> 4) & 0xff, i & 0xff]);
      entries.push({ range: prefixRange(a, 16 + (i % 17)), value: i % 100 });
    }
    const table = await compileTable(entries); // default threshold 50,000
    assert.equal(table.size, entries.length);
    assert.deepEqual(table.toData(), IntervalTable.compile(entries).toData());
    const sample = entries.filter((_, i) => i % 600 === 0);
    for (const { range } of sample) assert.equal(table.lookup(range.start), naiveLookup(entries, range.start));
  });

  it('compiles nothing in a worker', async () => {
    const table = await compileTable([], { workerThreshold: 0 });
    assert.equal(table.intervals, 0);
    assert.equal(table.lookup(address('192.0.2.1')), -1);
  });

  it('rejects bad entries in either mode', async () => {
    const bad = [entry('192.0.2.0/24', 1), { range: parseRange('192.0.2.0/24'), value: -3 }];
    await assert.rejects(compileTable(bad), /table entry 1: value -3/);
    await assert.rejects(compileTable(bad, { workerThreshold: 0 }), /table entry 1: value -3/);
  });

  it('leaves the caller its entries (they are copied, not transferred)', async () => {
    const entries = [entry('192.0.2.0/24', 1)];
    await compileTable(entries, { workerThreshold: 0 });
    assert.equal(entries[0]?.range.start.length, 4);
  });
});

function wordsToBytes(words: Uint32Array, at: number, w: number): Uint8Array {
  const bytes = new Uint8Array(w * 4);
  const view = new DataView(bytes.buffer);
  for (let k = 0; k < w; k++) view.setUint32(k * 4, words[at + k] as number);
  return bytes;
}
