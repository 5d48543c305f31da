import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compareAddress, formatRange, type IpRange } from '../../src/net/address.js';
import { ListFormatError, MAX_WARNINGS, PackedListEntries, parseList, runListJob } from '../../src/sources/index.js';
import { readBoundedFile } from '../../src/sources/list-cache.js';
import { listJobResultTransferList } from '../../src/sources/list-job.js';
import { IntervalTable } from '../../src/table/index.js';
import type { ListEntry, ListFormat } from '../../src/types.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/lists/${name}`, import.meta.url), 'utf8');

/** Entries as text, easy to compare: `range`, `range score`, `range | note`, `range score | note`. */
function show(entries: readonly ListEntry[]): string[] {
  return entries.map((e) => formatRange(e.range) + (e.score === undefined ? '' : ` ${e.score}`) + (e.note === undefined ? '' : ` | ${e.note}`));
}

interface FixtureCase {
  readonly file: string;
  readonly format: ListFormat;
  readonly entries: string[];
  readonly warnings?: string[];
}

const FIXTURES: FixtureCase[] = [
  {
    file: 'firehol_level1.netset',
    format: 'netset',
    entries: ['192.0.2.0/25', '192.0.2.200', '198.51.100.0/24', '203.0.113.10-203.0.113.20', '2001:db8::/32', '3fff:100::/24', '203.0.113.99', '2001:db8:1::7'],
  },
  {
    file: 'scores.csv',
    format: 'csv',
    entries: [
      '192.0.2.1 10 | brute force ssh',
      '198.51.100.0/24 0',
      '203.0.113.5 55 | note, with a comma',
      '203.0.113.64/26 100 | partner "blue" range',
      '2001:db8::1 20 | ipv6 host',
    ],
  },
  {
    file: 'drop_v4.json',
    format: 'spamhaus-json',
    entries: ['192.0.2.0/24 | SBL000001', '198.51.100.0/25 | SBL000002', '203.0.113.128/26 | SBL000003'],
  },
  { file: 'drop_v6.json', format: 'spamhaus-json', entries: ['2001:db8:100::/40 | SBL000010', '3fff:200::/24 | SBL000011'] },
  {
    file: 'drop.txt',
    format: 'spamhaus-text',
    entries: ['192.0.2.0/24 | SBL000001', '198.51.100.0/25 | SBL000002', '203.0.113.128/26 | SBL000003'],
  },
  { file: 'torbulkexitlist.txt', format: 'tor-exits', entries: ['192.0.2.5', '192.0.2.77', '198.51.100.23', '2001:db8::dead:beef'] },
  {
    file: 'exit-addresses.txt',
    format: 'tor-exits',
    entries: [
      '192.0.2.5 | 0011BD2485AD45D984EC4159C88FC066E5E3300E',
      '198.51.100.23 | 0111BA9B604669E636FFD5B503F382A4B7AD6E80',
      '203.0.113.44 | 0111BA9B604669E636FFD5B503F382A4B7AD6E80',
    ],
  },
  {
    file: 'aws-ip-ranges.json',
    format: 'aws-json',
    entries: [
      '192.0.2.0/24 | us-east-1 AMAZON',
      '198.51.100.0/26 | eu-west-3 EC2',
      '203.0.113.0/28 | GLOBAL CLOUDFRONT',
      '2001:db8:aa00::/40 | us-west-2 AMAZON',
      '3fff:10::/32 | ap-south-1 S3',
    ],
  },
  {
    file: 'gcp-cloud.json',
    format: 'gcp-json',
    entries: ['192.0.2.64/26 | us-central1 Google Cloud', '2001:db8:ff00::/40 | europe-west1 Google Cloud', '203.0.113.32/27 | asia-east1 Google Cloud'],
  },
  { file: 'goog.json', format: 'gcp-json', entries: ['198.51.100.128/25', '3fff:800::/21'] },
];

describe('list formats: fixtures', () => {
  for (const c of FIXTURES) {
    it(`${c.format}: ${c.file}`, () => {
      const parsed = parseList(c.format, fixture(c.file), c.file);
      assert.deepEqual(show(parsed.entries), c.entries);
      assert.deepEqual(parsed.warnings, c.warnings ?? []);
    });
  }

  it('the list job (worker thread) packs the same entries, scores and notes, with a table of their indexes', () => {
    for (const c of FIXTURES) {
      const bytes = new TextEncoder().encode(fixture(c.file));
      // Blocks split anywhere, even inside a UTF-8 sequence or a line.
      const body = [bytes.slice(0, 7), bytes.slice(7, 100), bytes.slice(100)];
      const result = runListJob({ format: c.format, origin: c.file, body, maxEntries: 1000 });
      assert.ok(result.ok && result.unchanged !== true, result.ok ? 'unchanged' : result.error);
      const entries = new PackedListEntries(result.entries);
      assert.deepEqual(show([...entries]), c.entries, c.file);
      const table = IntervalTable.fromData(result.table);
      for (let i = 0; i < entries.length; i++) {
        const entry = entries.at(i)!;
        assert.equal(entries.scoreAt(i), entry.score ?? -1);
        // The most specific entry covering this entry's first address: this one, or one inside it.
        const found = entries.at(table.lookup(entry.range.start))!;
        const inside = (a: IpRange, b: IpRange): boolean => compareAddress(a.start, b.start) >= 0 && compareAddress(a.end, b.end) <= 0;
        assert.ok(inside(found.range, entry.range) && compareAddress(found.range.start, entry.range.start) === 0, `${c.file}: entry ${i}`);
      }
      assert.equal(result.body, body, 'the body comes back (for the cache)');
    }
  });

  it('the result transfers every buffer it holds: nothing large is copied back to the main thread', () => {
    const bytes = new TextEncoder().encode(fixture('scores.csv'));
    for (const result of [
      runListJob({ format: 'csv', origin: 'scores.csv', body: [bytes.slice()], maxEntries: 1000 }),
      runListJob({ format: 'netset', origin: 'feed', body: [new TextEncoder().encode('192.0.2.1\n192.0.2.2\n')], maxEntries: 1 }),
    ]) {
      const held = new Set<ArrayBufferLike>();
      const walk = (value: unknown): void => {
        if (ArrayBuffer.isView(value)) held.add(value.buffer);
        else if (typeof value === 'object' && value !== null) for (const item of Object.values(value)) walk(item);
      };
      walk(result);
      const transferred = new Set<ArrayBufferLike>(listJobResultTransferList(result));
      // A SharedArrayBuffer (the table's records, the scores) is shared with the thread, not cloned.
      for (const buffer of held) {
        assert.ok(transferred.has(buffer) || buffer instanceof SharedArrayBuffer, `a buffer of ${buffer.byteLength} bytes would be cloned`);
      }
    }
  });

  it('a file job reads and hashes the file in the job itself; its bytes never come back', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'iprep-list-job-'));
    try {
      const file = path.join(dir, 'list.netset');
      writeFileSync(file, '192.0.2.1\n198.51.100.0/24\n');
      const job = { format: 'netset', origin: file, body: [], maxEntries: 10 } as const;
      const result = runListJob({ ...job, file: { path: file, maxBytes: 1000 } });
      assert.ok(result.ok && result.unchanged !== true, result.ok ? 'unchanged' : result.error);
      assert.deepEqual(show([...new PackedListEntries(result.entries)]), ['192.0.2.1', '198.51.100.0/24']);
      assert.deepEqual(result.body, [], 'the bytes stay in the job');
      const { digest } = await readBoundedFile(file, 1000);
      assert.equal(result.digest, digest, 'the same digest as a body read on the main thread');
      // Unchanged content is not parsed again.
      assert.deepEqual(runListJob({ ...job, file: { path: file, maxBytes: 1000, unchangedDigest: digest } }), { ok: true, unchanged: true, digest, body: [] });
      const over = runListJob({ ...job, file: { path: file, maxBytes: 10 } });
      assert.equal(
        over.ok ? 'ok' : over.error,
        `${file}: the file is 26 bytes, more than 10 bytes: raise max-bytes (of the list, or list-defaults.max-bytes) to accept it`,
      );
      const missing = runListJob({ ...job, file: { path: path.join(dir, 'none'), maxBytes: 10 } });
      assert.match(missing.ok ? 'ok' : missing.error, /^cannot read .*none: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the list job stops at maxEntries with an error naming the origin and the key', () => {
    const body = [new TextEncoder().encode('192.0.2.1\n192.0.2.2\n192.0.2.3\n')];
    const result = runListJob({ format: 'netset', origin: 'feed', body, maxEntries: 2 });
    assert.deepEqual(result.ok ? 'ok' : result.error, 'feed: more than 2 entries (max-entries)');
  });
});

interface InlineCase {
  readonly name: string;
  readonly format: ListFormat;
  readonly text: string;
  readonly entries: string[];
  readonly warnings: string[];
}

/** Edge cases: what is skipped, with which warning and line number. Origin is always `t`. */
const INLINE: InlineCase[] = [
  { name: 'netset: empty file', format: 'netset', text: '', entries: [], warnings: [] },
  { name: 'netset: comments only', format: 'netset', text: '# a\n; b\n\n   \n', entries: [], warnings: [] },
  {
    name: 'netset: CRLF line ends and a byte order mark',
    format: 'netset',
    text: '\uFEFF# header\r\n192.0.2.1\r\n198.51.100.0/24\r\n',
    entries: ['192.0.2.1', '198.51.100.0/24'],
    warnings: [],
  },
  {
    name: 'netset: host bits are cleared, whitespace around lines ignored',
    format: 'netset',
    text: '  192.0.2.77/24  \n\t2001:db8::1/32\n',
    entries: ['192.0.2.0/24', '2001:db8::/32'],
    warnings: [],
  },
  {
    name: 'netset: bad lines are skipped with their line numbers',
    format: 'netset',
    text: '# header\n192.0.2.1\n192.0.2.256\n198.51.100.0/33\n203.0.113.9-203.0.113.1\n192.0.2.1-2001:db8::1\n203.0.113.7 junk\n2001:db8::2\n',
    entries: ['192.0.2.1', '2001:db8::2'],
    warnings: [
      't:3: not an address or prefix: "192.0.2.256"',
      't:4: bad prefix length /33 in "198.51.100.0/33"',
      't:5: range ends before it starts: "203.0.113.9-203.0.113.1"',
      't:6: range mixes IPv4 and IPv6: "192.0.2.1-2001:db8::1"',
      't:7: unexpected text after the address: "junk"',
    ],
  },
  {
    name: 'csv: no header, note with spaces, range',
    format: 'csv',
    text: '192.0.2.0/24,5,  scanner  \n203.0.113.1-203.0.113.3,70\n',
    entries: ['192.0.2.0/24 5 | scanner', '203.0.113.1-203.0.113.3 70'],
    warnings: [],
  },
  {
    name: 'csv: bad scores and fields are skipped',
    format: 'csv',
    text: [
      'address,score',
      '192.0.2.1,101',
      '192.0.2.2,-1',
      '192.0.2.3,5.5',
      '192.0.2.4',
      '192.0.2.5,',
      'not_an_ip,5',
      '"192.0.2.6,5',
      '"192.0.2.7"x,5',
      '192.0.2.8,42',
    ].join('\n'),
    entries: ['192.0.2.8 42'],
    warnings: [
      't:2: score must be an integer 0..100, not "101"',
      't:3: score must be an integer 0..100, not "-1"',
      't:4: score must be an integer 0..100, not "5.5"',
      't:5: expected address,score[,note]',
      't:6: score must be an integer 0..100, not ""',
      't:7: not an address or prefix: "not_an_ip"',
      't:8: unterminated quoted field',
      't:9: text after a closing quote',
    ],
  },
  { name: 'csv: a header alone is an empty list', format: 'csv', text: 'ip,score,note\n', entries: [], warnings: [] },
  {
    name: 'csv: only the first data line can be a header',
    format: 'csv',
    text: '192.0.2.1,1\nip,score\n',
    entries: ['192.0.2.1 1'],
    warnings: ['t:2: score must be an integer 0..100, not "score"'],
  },
  {
    name: 'spamhaus-json: bad lines skipped; no metadata line is fine',
    format: 'spamhaus-json',
    text: '{"cidr":"192.0.2.0/24","sblid":"SBL1"}\n{"cidr":"192.0.2.0/40"}\nnot json\n[1]\n{"sblid":"SBL3"}\n{"cidr":"198.51.100.0/24"}\n',
    entries: ['192.0.2.0/24 | SBL1', '198.51.100.0/24'],
    warnings: ['t:2: bad prefix length /40 in "192.0.2.0/40"', 't:3: not a JSON object: "not json"', 't:4: not a JSON object', 't:5: no "cidr" string'],
  },
  {
    name: 'spamhaus-json: metadata records counts skipped lines too',
    format: 'spamhaus-json',
    text: '{"cidr":"192.0.2.0/24"}\n{"cidr":"bad"}\n{"type":"metadata","records":2}\n',
    entries: ['192.0.2.0/24'],
    warnings: ['t:2: not an address or prefix: "bad"'],
  },
  {
    name: 'spamhaus-text: no SBL id, comments, bad line',
    format: 'spamhaus-text',
    text: '; head\n192.0.2.0/24\n198.51.100.0/24 ;\nnope ; SBL9\n# hash comment\n',
    entries: ['192.0.2.0/24', '198.51.100.0/24'],
    warnings: ['t:4: not an address or prefix: "nope"'],
  },
  {
    name: 'tor-exits: prefixes and unknown lines are not exit addresses',
    format: 'tor-exits',
    text: '192.0.2.1\n192.0.2.0/24\nFooBar 1 2\nExitAddress\nExitAddress 203.0.113.999 2026-11-30 00:00:00\n2001:db8::9\n',
    entries: ['192.0.2.1', '2001:db8::9'],
    warnings: ['t:2: not an address: "192.0.2.0/24"', 't:3: unexpected line: "FooBar 1 2"', 't:4: not an address: ""', 't:5: not an address: "203.0.113.999"'],
  },
  {
    name: 'aws-json: bad elements are named by index; ipv6_prefixes optional',
    format: 'aws-json',
    text: JSON.stringify({ prefixes: [{ ip_prefix: '192.0.2.0/24' }, { ip_prefix: 'x' }, 7, { region: 'r' }] }),
    entries: ['192.0.2.0/24'],
    warnings: ['t:prefixes[1]: not an address or prefix: "x"', 't:prefixes[2]: not an object', 't:prefixes[3]: no "ip_prefix" string'],
  },
  {
    name: 'aws-json: empty arrays',
    format: 'aws-json',
    text: '{"prefixes":[],"ipv6_prefixes":[]}',
    entries: [],
    warnings: [],
  },
  {
    name: 'gcp-json: scope without service, bad element',
    format: 'gcp-json',
    text: JSON.stringify({
      prefixes: [{ ipv4Prefix: '192.0.2.0/24', scope: 'us-east1' }, { ipv6Prefix: 3 }, { ipv6Prefix: '2001:db8::/48', service: '' }],
    }),
    entries: ['192.0.2.0/24 | us-east1', '2001:db8::/48'],
    warnings: ['t:prefixes[1]: no "ipv4Prefix" or "ipv6Prefix" string'],
  },
];

describe('list formats: edge cases and warnings', () => {
  for (const c of INLINE) {
    it(c.name, () => {
      const parsed = parseList(c.format, c.text, 't');
      assert.deepEqual(show(parsed.entries), c.entries);
      assert.deepEqual(parsed.warnings, c.warnings);
    });
  }
});

interface ErrorCase {
  readonly name: string;
  readonly format: ListFormat;
  readonly text: string;
  readonly message: RegExp;
}

const ERRORS: ErrorCase[] = [
  {
    name: 'netset: an HTML page (no valid entry at all)',
    format: 'netset',
    text: '<html>\n<body>Not found</body>\n</html>\n',
    message: /^t: no valid entry in 3 data items; first problem: t:1: not an address or prefix: "<html>"$/,
  },
  {
    name: 'csv: a header, then no valid entry',
    format: 'csv',
    text: 'ip,score\nfoo,bar\n',
    message: /^t: no valid entry in 1 data item;/,
  },
  { name: 'tor-exits: wrong format configured', format: 'tor-exits', text: '192.0.2.0/24 ; SBL1\n', message: /^t: no valid entry/ },
  { name: 'aws-json: not JSON', format: 'aws-json', text: '{"prefixes": [', message: /^t: not a JSON document \(/ },
  { name: 'aws-json: empty body', format: 'aws-json', text: '', message: /^t: not a JSON document/ },
  {
    name: 'aws-json: no prefixes',
    format: 'aws-json',
    text: '{"syncToken":"1"}',
    message: /^t: not an AWS ip-ranges.json document \(no "prefixes" array\)$/,
  },
  {
    name: 'aws-json: ipv6_prefixes not an array',
    format: 'aws-json',
    text: '{"prefixes":[],"ipv6_prefixes":{}}',
    message: /no "ipv6_prefixes" array/,
  },
  {
    name: 'gcp-json: a JSON array',
    format: 'gcp-json',
    text: '[]',
    message: /^t: not a Google cloud.json \/ goog.json document \(not a JSON object\)$/,
  },
  {
    name: 'gcp-json: every element bad',
    format: 'gcp-json',
    text: '{"prefixes":[{"ipv4Prefix":"1.2.3"}]}',
    message: /^t: no valid entry in 1 data item; first problem: t:prefixes\[0\]:/,
  },
  {
    name: 'spamhaus-json: truncated download (metadata count disagrees)',
    format: 'spamhaus-json',
    text: '{"cidr":"192.0.2.0/24"}\n{"type":"metadata","timestamp":1,"size":10,"records":5}\n',
    message: /^t:2: the metadata says 5 records, the file has 1$/,
  },
  {
    name: 'spamhaus-json: ASN-DROP is not a CIDR list',
    format: 'spamhaus-json',
    text: '{"asn":64496,"rir":"arin"}\n',
    message: /first problem: t:1: no "cidr" string/,
  },
];

describe('list formats: structural errors', () => {
  for (const c of ERRORS) {
    it(c.name, () => {
      assert.throws(
        () => parseList(c.format, c.text, 't'),
        (err: unknown) => {
          assert.ok(err instanceof ListFormatError, `expected a ListFormatError, got ${String(err)}`);
          assert.match(err.message, c.message);
          return true;
        },
      );
    });
  }
});

describe('list formats: limits', () => {
  it('an unknown format (an unchecked config) is a ListFormatError, not a crash', () => {
    assert.throws(
      () => parseList('xml' as ListFormat, '<a/>', 't'),
      (err: unknown) => err instanceof ListFormatError && err.message === 't: unknown list format "xml"',
    );
  });

  it('skips bad lines of every line format without constructing an error per line', () => {
    // A thrown error costs tens of microseconds: a million garbage lines stalled the agent for seconds.
    const garbage: Record<string, string> = {
      netset: '192.0.2.1\n' + 'not an address\n198.51.100.0/33\n192.0.2.9-192.0.2.1\n'.repeat(300),
      csv: 'ip,score\n192.0.2.1,5\n' + 'nope,5\n192.0.2.2,500\n'.repeat(300),
      'spamhaus-text': '192.0.2.0/24 ; SBL1\n' + 'junk ; SBL2\n'.repeat(300),
      'spamhaus-json': '{"cidr":"192.0.2.0/24"}\n' + 'not json\n{"cidr":"x"}\n'.repeat(300),
      'tor-exits': '192.0.2.5\n' + 'ExitAddress nope 2026-01-01 00:00:00\nbogus\n'.repeat(300),
    };
    for (const [format, text] of Object.entries(garbage)) {
      const constructed = countErrorsConstructed(() => parseList(format as ListFormat, text, 't'));
      assert.equal(constructed, 0, `${format}: errors constructed while parsing`);
    }
  });

  it('keeps at most MAX_WARNINGS warnings, then says how many more were skipped', () => {
    const bad = Array.from({ length: MAX_WARNINGS + 25 }, () => 'bad').join('\n');
    const parsed = parseList('netset', `192.0.2.1\n${bad}\n`, 't');
    assert.equal(parsed.entries.length, 1);
    assert.equal(parsed.warnings.length, MAX_WARNINGS + 1);
    assert.equal(parsed.warnings[0], 't:2: not an address or prefix: "bad"');
    assert.equal(parsed.warnings[MAX_WARNINGS - 1], `t:${MAX_WARNINGS + 1}: not an address or prefix: "bad"`);
    assert.equal(parsed.warnings[MAX_WARNINGS], 't: 25 more invalid items not listed');
  });
});

/** How many TypeError, RangeError, SyntaxError and Error objects `run` constructs through the global constructors. */
function countErrorsConstructed(run: () => void): number {
  const names = ['Error', 'TypeError', 'RangeError', 'SyntaxError'] as const;
  const saved = names.map((name) => globalThis[name]);
  let count = 0;
  for (const [i, name] of names.entries()) {
    const Original = saved[i] as ErrorConstructor;
    const Counting = function (this: unknown, ...args: [string?, ErrorOptions?]) {
      count++;
      return new Original(...args);
    } as unknown as ErrorConstructor;
    Object.setPrototypeOf(Counting, Original);
    Object.defineProperty(Counting, 'prototype', { value: Original.prototype });
    (globalThis as Record<string, unknown>)[name] = Counting;
  }
  try {
    run();
  } finally {
    for (const [i, name] of names.entries()) (globalThis as Record<string, unknown>)[name] = saved[i];
  }
  return count;
}

// ---------------------------------------------------------------------------
// Properties: whatever ranges a list holds, written in each line format, come back unchanged.

const v4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
const v6 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const arbitraryRange: fc.Arbitrary<IpRange> = fc.oneof(v4, v6).chain((a) =>
  fc.uint8Array({ minLength: a.length, maxLength: a.length }).map((b) => {
    const [start, end] = Buffer.compare(Buffer.from(a), Buffer.from(b)) <= 0 ? [a, b] : [b, a];
    return { family: a.length === 4 ? 4 : 6, start, end } as IpRange;
  }),
);
const note = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9 ,."-]{0,20}[A-Za-z0-9]$/);

describe('list formats: round trips (fast-check)', () => {
  it('netset: formatted ranges parse back to the same ranges', () => {
    fc.assert(
      fc.property(fc.array(arbitraryRange, { maxLength: 30 }), (ranges) => {
        const text = '# generated\n' + ranges.map((r) => `${formatRange(r)}  # c`).join('\n');
        const parsed = parseList('netset', text, 'p');
        assert.deepEqual(show(parsed.entries), ranges.map(formatRange));
        assert.deepEqual(parsed.warnings, []);
      }),
    );
  });

  it('csv: ranges, scores and quoted notes parse back', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(arbitraryRange, fc.integer({ min: 0, max: 100 }), note), { maxLength: 30 }), (rows) => {
        const text = 'network,score,note\n' + rows.map(([r, s, n]) => `${formatRange(r)},${s},"${n.replaceAll('"', '""')}"`).join('\n');
        const parsed = parseList('csv', text, 'p');
        assert.deepEqual(
          show(parsed.entries),
          rows.map(([r, s, n]) => `${formatRange(r)} ${s} | ${n}`),
        );
      }),
    );
  });

  it('never throws anything but ListFormatError on arbitrary text', () => {
    const formats: ListFormat[] = ['netset', 'csv', 'spamhaus-json', 'spamhaus-text', 'tor-exits', 'aws-json', 'gcp-json'];
    fc.assert(
      fc.property(fc.constantFrom(...formats), fc.string({ maxLength: 200 }), (format, text) => {
        try {
          parseList(format, text, 'p');
        } catch (err) {
          assert.ok(err instanceof ListFormatError, String(err));
        }
      }),
    );
  });
});

describe('the example lists (examples/lists)', () => {
  const dir = new URL('../../../../examples/lists/', import.meta.url);
  for (const [name, format, count] of [
    ['allow.txt', 'netset', 3],
    ['drop.txt', 'netset', 3],
    ['scores.csv', 'csv', 3],
  ] as const) {
    it(`${name} parses as ${format} without a warning`, () => {
      const parsed = parseList(format, readFileSync(new URL(name, dir), 'utf8'), name);
      assert.deepEqual(parsed.warnings, []);
      assert.equal(parsed.entries.length, count);
    });
  }
});
