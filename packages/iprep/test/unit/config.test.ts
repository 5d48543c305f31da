import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { ConfigError, defaultConfig, loadConfigFile, parseConfig, parseDuration } from '../../src/config/index.js';
import { formatDuration } from '../../src/config/duration.js';
import type { IprepConfig } from '../../src/types.js';

const FILE = '/etc/iprep/iprep.yaml';
const EXAMPLE = fileURLToPath(new URL('../../../../examples/iprep.yaml', import.meta.url));
const DOCS = fileURLToPath(new URL('../../../../docs/configuration.md', import.meta.url));

/** The value at a dotted path (`listen.port`, `lists.0.name`) of the config. */
function at(config: IprepConfig, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown>)[key], config);
}

describe('parseDuration', () => {
  const valid: [string | number, number][] = [
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
    ['1w', 604_800_000],
    ['2w3d', 1_468_800_000],
    ['52w1d', 365 * 86_400_000],
    ['1h30m', 5_400_000],
    ['1d2h3m4s5ms', 93_784_005],
    ['1h 30m', 5_400_000],
    [' 2s ', 2000],
    ['1.5s', 1500],
    ['0s', 0],
    ['1500', 1500],
    [1500, 1500],
    [0, 0],
    [2.4, 2],
  ];
  for (const [text, ms] of valid) {
    it(`${JSON.stringify(text)} is ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }

  const invalid: (string | number)[] = [
    '',
    ' ',
    's',
    '10x',
    '1H',
    '-1s',
    '1m1h',
    '1s1s',
    '1d1w',
    '1w1w',
    '1W',
    '1h30',
    'ms',
    '1.s',
    '5 seconds',
    -1,
    Number.NaN,
    Number.POSITIVE_INFINITY,
  ];
  for (const value of invalid) {
    it(`${JSON.stringify(value)} is not a duration`, () => {
      assert.throws(
        () => parseDuration(value),
        (e: unknown) => e instanceof TypeError && /not a duration/.test(e.message),
      );
    });
  }

  it('formats durations as the shortest compound it reads back', () => {
    const cases: [number, string][] = [
      [0, '0s'],
      [1, '1ms'],
      [1500, '1s500ms'],
      [5_400_000, '1h30m'],
      [86_400_000, '1d'],
      [93_784_005, '1d2h3m4s5ms'],
    ];
    for (const [ms, text] of cases) assert.equal(formatDuration(ms), text);
    fc.assert(fc.property(fc.nat(), (ms) => assert.equal(parseDuration(formatDuration(ms)), ms)));
  });

  it('reads back what a compound of units writes', () => {
    const units = [
      ['w', 604_800_000],
      ['d', 86_400_000],
      ['h', 3_600_000],
      ['m', 60_000],
      ['s', 1000],
      ['ms', 1],
    ] as const;
    const amounts = fc.tuple(...units.map(() => fc.option(fc.nat({ max: 1000 }), { nil: undefined })));
    fc.assert(
      fc.property(amounts, (parts) => {
        const used = units.flatMap(([unit, ms], i) => (parts[i] === undefined ? [] : [{ text: `${parts[i]}${unit}`, ms: (parts[i] as number) * ms }]));
        fc.pre(used.length > 0);
        const text = used.map((u) => u.text).join('');
        const total = used.reduce((sum, u) => sum + u.ms, 0);
        if (total > 365 * 86_400_000) assert.throws(() => parseDuration(text), /longer than 365d/);
        else assert.equal(parseDuration(text), total);
      }),
    );
  });
});

describe('defaultConfig', () => {
  it('is random mode with the documented defaults', () => {
    const d = defaultConfig();
    assert.equal(d.source, '<defaults>');
    assert.equal(d.mode, 'random');
    assert.deepEqual(d.listen, {
      host: '127.0.0.1',
      port: 12345,
      socket: undefined,
      workers: 5,
      supervise: false,
      allowFrom: [],
      maxConnections: 1000,
      idleTimeoutMs: 30000,
    });
    assert.deepEqual(d.agent, { maxFrameSize: undefined, maxInFlight: 20, handlerTimeoutMs: 1000, shutdownTimeoutMs: 5000 });
    assert.deepEqual(d.messages, ['check-client-ip']);
    assert.deepEqual(d.variables, { scope: 'sess', score: 'ip_score', action: 'ip_action', category: 'ip_category', source: 'ip_source' });
    assert.deepEqual(d.thresholds, { deny: 20, tarpit: 40, captcha: 60, log: 80 });
    assert.deepEqual(d.special, { enabled: true, internalAction: 'allow', bogonScore: 10 });
    assert.deepEqual(d.allowlist, { entries: [], files: [] });
    assert.deepEqual(d.lists, []);
    assert.deepEqual(d.behaviour, {
      enabled: true,
      ipv6PrefixLength: 64,
      windowMs: 60_000,
      rateThreshold: 120,
      ratePenalty: 30,
      banThreshold: 600,
      banMs: 600_000,
      banGrowth: 2,
      maxBanMs: 86_400_000,
      banAction: 'deny',
      decayPoints: 10,
      decayIntervalMs: 60_000,
      statusArgument: 'status',
      rateArgument: undefined,
      maxRate: 600,
      errorWeight: 5,
      maxClients: 100_000,
      doorkeeper: true,
    });
    assert.deepEqual(d.decisions, {
      defaultDurationMs: 4 * 3_600_000,
      defaultAction: 'deny',
      file: resolve('.cache/iprep/decisions.jsonl'),
      minPrefixV4: 8,
      minPrefixV6: 32,
    });
    assert.equal(d.cacheDir, resolve('.cache/iprep'));
    assert.deepEqual(d.store, { type: 'memory' });
    assert.deepEqual(d.admin, { enabled: false, host: '127.0.0.1', port: 9090, token: undefined, allowedHosts: [] });
  });

  it('returns a fresh object each time', () => {
    assert.notEqual(defaultConfig(), defaultConfig());
    assert.deepEqual(defaultConfig(), defaultConfig());
  });
});

describe('parseConfig: valid files', () => {
  it('an empty file (or comments only) is the defaults in reputation mode: admin on, one worker', () => {
    for (const text of ['', '# nothing\n', '---\n', 'listen:\nlists:\n']) {
      const config = parseConfig(text, FILE);
      const expected = defaultConfig();
      assert.deepEqual(config, {
        ...expected,
        source: FILE,
        mode: 'reputation',
        cacheDir: '/etc/iprep/.cache/iprep',
        decisions: { ...expected.decisions, file: '/etc/iprep/.cache/iprep/decisions.jsonl' },
        listen: { ...expected.listen, workers: 1 },
        admin: { ...expected.admin, enabled: true },
      });
    }
  });

  const table: [yaml: string, expected: Record<string, unknown>][] = [
    ['mode: random', { mode: 'random', 'admin.enabled': false }],
    ['mode: random\nadmin: { enabled: true }', { mode: 'random', 'admin.enabled': true }],
    ['mode: reputation', { mode: 'reputation', 'admin.enabled': true }],
    ['listen: { host: 0.0.0.0, port: 12346, workers: 2 }', { 'listen.host': '0.0.0.0', 'listen.port': 12346, 'listen.workers': 2, 'listen.socket': undefined }],
    ['listen: { host: "::" }', { 'listen.host': '::', 'listen.port': 12345 }],
    ['listen: { socket: /run/spoa.sock }', { 'listen.socket': '/run/spoa.sock' }],
    ['listen: {}', { 'listen.host': '127.0.0.1', 'listen.allowFrom': [], 'listen.maxConnections': 1000, 'listen.idleTimeoutMs': 30000 }],
    [
      'listen: { host: 0.0.0.0, allow-from: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32"], max-connections: 50, idle-timeout: 2m }',
      { 'listen.allowFrom': ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32'], 'listen.maxConnections': 50, 'listen.idleTimeoutMs': 120000 },
    ],
    ['listen: { idle-timeout: 0 }', { 'listen.idleTimeoutMs': 0 }],
    ['agent: { max-frame-size: 268435436 }', { 'agent.maxFrameSize': 268435436 }],
    ['listen: { socket: run/spoa.sock }', { 'listen.socket': '/etc/iprep/run/spoa.sock' }],
    ['listen: { port: 0 }', { 'listen.port': 0 }],
    [
      'agent: { max-frame-size: 16380, max-in-flight: 10, handler-timeout: 250ms, shutdown-timeout: 0 }',
      { 'agent.maxFrameSize': 16380, 'agent.maxInFlight': 10, 'agent.handlerTimeoutMs': 250, 'agent.shutdownTimeoutMs': 0 },
    ],
    ['agent: { handler-timeout: 1500 }', { 'agent.handlerTimeoutMs': 1500 }],
    ['messages: [check-client-ip, on-request]', { messages: ['check-client-ip', 'on-request'] }],
    [
      'variables: { scope: txn, score: s, action: a, category: c, source: src.x }',
      { variables: { scope: 'txn', score: 's', action: 'a', category: 'c', source: 'src.x' } },
    ],
    ['thresholds: { deny: 10 }', { thresholds: { deny: 10, tarpit: 40, captcha: 60, log: 80 } }],
    ['thresholds: { deny: 0, tarpit: 0, captcha: 0, log: 100 }', { thresholds: { deny: 0, tarpit: 0, captcha: 0, log: 100 } }],
    ['thresholds: { deny: 50, tarpit: 50, captcha: 70, log: 90 }', { 'thresholds.tarpit': 50 }],
    ['special: { enabled: false, internal-action: log, bogon-score: 0 }', { special: { enabled: false, internalAction: 'log', bogonScore: 0 } }],
    [
      'allowlist:\n  - 10.0.0.0/8\n  - " 192.0.2.1 "\n  - 2001:db8::/32\n  - 198.51.100.1-198.51.100.9\n  - file: allow.txt\n  - file: /srv/allow.txt',
      {
        'allowlist.entries': ['10.0.0.0/8', '192.0.2.1', '2001:db8::/32', '198.51.100.1-198.51.100.9'],
        'allowlist.files': ['/etc/iprep/allow.txt', '/srv/allow.txt'],
      },
    ],
    [
      'lists:\n  - name: drop\n    url: https://example.com/drop.txt',
      {
        'lists.0': {
          name: 'drop',
          format: 'netset',
          path: undefined,
          url: 'https://example.com/drop.txt',
          refreshMs: 3_600_000,
          score: undefined,
          penalty: 50,
          category: 'drop',
          action: undefined,
          minEntries: 1,
          maxShrink: 0.5,
          maxBytes: 64 * 2 ** 20,
          maxEntries: 2_000_000,
        },
      },
    ],
    [
      'lists:\n  - { name: mine, path: lists/drop.txt, score: 0, category: manual, action: deny, min-entries: 5, max-shrink: 0.1, format: csv, max-bytes: 1.5MiB, max-entries: 10 }',
      {
        'lists.0': {
          name: 'mine',
          format: 'csv',
          path: '/etc/iprep/lists/drop.txt',
          url: undefined,
          refreshMs: 3_600_000,
          score: 0,
          penalty: undefined,
          category: 'manual',
          action: 'deny',
          minEntries: 5,
          maxShrink: 0.1,
          maxBytes: 1.5 * 2 ** 20,
          maxEntries: 10,
        },
      },
    ],
    [
      'list-defaults: { max-bytes: 8MiB, max-entries: 1000 }\nwait-for-lists: true\nlists:\n  - { name: a, path: a.txt }\n  - { name: b, path: b.txt, max-bytes: 4096 }',
      {
        listDefaults: { maxBytes: 8 * 2 ** 20, maxEntries: 1000 },
        waitForLists: true,
        'lists.0.maxBytes': 8 * 2 ** 20,
        'lists.0.maxEntries': 1000,
        'lists.1.maxBytes': 4096,
      },
    ],
    ['lists: [{ name: p, path: p.txt }]', { 'lists.0.minEntries': 0, 'lists.0.penalty': 50 }],
    ['log: { level: debug, format: json }', { log: { level: 'debug', format: 'json' } }],
    ['log: { format: json }', { log: { level: 'info', format: 'json' } }],
    [
      'lists: [{ name: tor, url: "http://x/t", penalty: 30, refresh: 10m, format: tor-exits }]',
      { 'lists.0.penalty': 30, 'lists.0.refreshMs': 600_000, 'lists.0.format': 'tor-exits' },
    ],
    ['lists: [{ name: a, path: a }, { name: b, path: b }]', { 'lists.1.name': 'b', 'lists.1.path': '/etc/iprep/b' }],
    [
      'behaviour: { enabled: false, ipv6-prefix-length: 56, window: 30s, ban-time: 1h, max-ban-time: 7d, ban-growth: 1.5, status-argument: code, error-weight: 0 }',
      {
        'behaviour.enabled': false,
        'behaviour.ipv6PrefixLength': 56,
        'behaviour.windowMs': 30_000,
        'behaviour.banMs': 3_600_000,
        'behaviour.maxBanMs': 604_800_000,
        'behaviour.banGrowth': 1.5,
        'behaviour.statusArgument': 'code',
        'behaviour.errorWeight': 0,
        'behaviour.rateThreshold': 120,
      },
    ],
    ['behaviour: { status-argument: null }', { 'behaviour.statusArgument': undefined }],
    ['behaviour: { doorkeeper: false }', { 'behaviour.doorkeeper': false, 'behaviour.maxClients': 100_000 }],
    ['behaviour: { rate-argument: rate }', { 'behaviour.rateArgument': 'rate', 'behaviour.maxRate': 600 }],
    ['behaviour: { rate-argument: rate, ban-threshold: 50 }', { 'behaviour.maxRate': 50 }],
    ['behaviour: { rate-argument: rate, max-rate: 100 }', { 'behaviour.maxRate': 100 }],
    [
      'decisions: { default-duration: 1d, default-action: captcha }',
      {
        decisions: {
          defaultDurationMs: 86_400_000,
          defaultAction: 'captcha',
          file: '/etc/iprep/.cache/iprep/decisions.jsonl',
          minPrefixV4: 8,
          minPrefixV6: 32,
        },
      },
    ],
    ['{ cache-dir: /var/cache/iprep, decisions: {} }', { 'decisions.file': '/var/cache/iprep/decisions.jsonl' }],
    ['decisions: { file: state/bans.jsonl }', { 'decisions.file': '/etc/iprep/state/bans.jsonl' }],
    ['decisions: { file: null }', { 'decisions.file': null }],
    ['cache-dir: cache', { cacheDir: '/etc/iprep/cache' }],
    ['cache-dir: /var/cache/iprep', { cacheDir: '/var/cache/iprep' }],
    ['store: { type: memory }', { store: { type: 'memory' } }],
    [
      'store: { type: redis }',
      { store: { type: 'redis', url: 'redis://127.0.0.1:6379', prefix: 'iprep', commandTimeoutMs: 1000, maxSyncAgeMs: 5000, maxDecisions: 200_000 } },
    ],
    [
      'store: { type: redis, url: "rediss://:pw@r:6380/2", prefix: "a:b" }',
      { store: { type: 'redis', url: 'rediss://:pw@r:6380/2', prefix: 'a:b', commandTimeoutMs: 1000, maxSyncAgeMs: 5000, maxDecisions: 200_000 } },
    ],
    [
      'store: { type: redis, nodes: [redis://h1:7000, redis://h2:7000] }',
      {
        store: {
          type: 'redis',
          nodes: ['redis://h1:7000', 'redis://h2:7000'],
          prefix: 'iprep',
          commandTimeoutMs: 1000,
          maxSyncAgeMs: 5000,
          maxDecisions: 200_000,
        },
      },
    ],
    [
      'store: { type: redis, command-timeout: 250ms, max-sync-age: 30s, max-decisions: 1000 }',
      { 'store.commandTimeoutMs': 250, 'store.maxSyncAgeMs': 30_000, 'store.maxDecisions': 1000 },
    ],
    ['admin: { host: ::1, port: 9191, token: s3cret }', { admin: { enabled: true, host: '::1', port: 9191, token: 's3cret', allowedHosts: [] } }],
    ['admin: { allowed-hosts: [Admin.Example.org., iprep-admin] }', { 'admin.allowedHosts': ['admin.example.org', 'iprep-admin'] }],
    ['decisions: { min-prefix-v4: 16, min-prefix-v6: 0 }', { 'decisions.minPrefixV4': 16, 'decisions.minPrefixV6': 0 }],
    ['admin: { host: 0.0.0.0, token: s3cret }', { 'admin.host': '0.0.0.0' }],
    ['admin: { enabled: false, host: 0.0.0.0 }', { 'admin.enabled': false }],
    ['admin: { host: localhost }', { 'admin.host': 'localhost', 'admin.token': undefined }],
  ];
  for (const [yaml, expected] of table) {
    it(yaml.replace(/\n\s*/g, ' '), () => {
      const config = parseConfig(yaml, FILE);
      for (const [path, value] of Object.entries(expected)) assert.deepEqual(at(config, path), value, path);
    });
  }

  it('follows aliases', () => {
    const config = parseConfig('thresholds: &t { deny: 5 }\nlists:\n  - { name: a, path: a, score: &s 7 }\n  - { name: b, path: b, score: *s }', FILE);
    assert.equal(config.thresholds.deny, 5);
    assert.equal(config.lists[1]?.score, 7);
  });

  it('resolves relative paths against the directory of a relative file name', () => {
    const config = parseConfig('lists: [{ name: a, path: lists/a.txt }]\nallowlist: [{ file: ../allow.txt }]', 'conf/iprep.yaml');
    assert.equal(config.lists[0]?.path, resolve('conf/lists/a.txt'));
    assert.deepEqual(config.allowlist.files, [resolve('allow.txt')]);
    assert.equal(config.cacheDir, resolve('conf/.cache/iprep'));
    assert.equal(config.source, 'conf/iprep.yaml');
  });
});

describe('loadConfigFile', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'iprep-config-'));
    dirs.push(dir);
    return dir;
  }

  it('loads examples/iprep.yaml, which uses every section', async () => {
    const config = await loadConfigFile(EXAMPLE);
    const dir = resolve(EXAMPLE, '..');
    assert.equal(config.mode, 'reputation');
    assert.equal(config.source, EXAMPLE);
    assert.equal(config.listen.host, '127.0.0.1');
    assert.equal(config.agent.maxFrameSize, 16380);
    assert.deepEqual(config.allowlist.files, [join(dir, 'lists/allow.txt')]);
    assert.equal(config.allowlist.entries.length, 3);
    assert.ok(config.lists.length >= 6);
    const formats = new Set(config.lists.map((l) => l.format));
    for (const format of ['netset', 'csv', 'spamhaus-json', 'tor-exits', 'aws-json', 'gcp-json']) assert.ok(formats.has(format as never), format);
    assert.equal(config.lists.find((l) => l.name === 'local-drop')?.path, join(dir, 'lists/drop.txt'));
    assert.equal(config.cacheDir, join(dir, '.cache/iprep'));
    assert.deepEqual(config.store, { type: 'memory' });
    assert.deepEqual(config.admin, { enabled: true, host: '127.0.0.1', port: 9090, token: undefined, allowedHosts: [] });
  });

  it('reads a file from disk', async () => {
    const dir = await tempDir();
    const file = join(dir, 'iprep.yaml');
    await writeFile(file, 'mode: random\nlisten: { port: 4000 }\n');
    const config = await loadConfigFile(file);
    assert.equal(config.listen.port, 4000);
    assert.equal(config.cacheDir, join(dir, '.cache/iprep'));
  });

  it('reads the admin token from token-file, relative to the config file', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'token'), 's3cret\n');
    const file = join(dir, 'iprep.yaml');
    await writeFile(file, 'admin: { host: 0.0.0.0, token-file: token }\n');
    assert.equal((await loadConfigFile(file)).admin.token, 's3cret');
  });

  it('names the file when it cannot be read', async () => {
    const file = join(await tempDir(), 'missing.yaml');
    await assert.rejects(loadConfigFile(file), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.file, file);
      assert.equal(e.line, undefined);
      assert.match(e.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read the configuration: ENOENT`));
      return true;
    });
  });

  it('reports problems with the path it was given', async () => {
    const dir = await tempDir();
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'mode: fast\n');
    await assert.rejects(loadConfigFile(file), { message: `${file}:1:7: mode must be one of random, reputation; got "fast"` });
  });
});

describe('docs/configuration.md', () => {
  it('ends with examples/iprep.yaml, unchanged', async () => {
    const [docs, example] = await Promise.all([readFile(DOCS, 'utf8'), readFile(EXAMPLE, 'utf8')]);
    assert.ok(
      docs.endsWith(`## Full example\n\n<!-- This is examples/iprep.yaml; a test checks that they are the same. -->\n\n\`\`\`yaml\n${example}\`\`\`\n`),
    );
  });

  it('documents exactly the keys the configuration accepts, in each section', async () => {
    const docs = await readFile(DOCS, 'utf8');
    // Each "### `section`" heading has a table (its first one) whose first column names the keys.
    const documented = new Map<string, string[]>();
    for (const part of docs.split(/^### /m).slice(1)) {
      const section = /^`([a-z-]+)`/.exec(part)?.[1] as string;
      const table = /^\| (?:Key|Item) \|.*\n(?:\|.*\n)+/m.exec(part)?.[0] ?? '';
      documented.set(
        section,
        [...table.matchAll(/^\| `([a-z0-9-]+)` \|/gm)].map((m) => m[1] as string),
      );
    }
    // An unknown key's message lists the keys a section accepts.
    const accepted = (yaml: string): string[] => {
      try {
        parseConfig(yaml, FILE);
      } catch (e) {
        const known = /known keys: ([^)]*)\)/.exec((e as Error).message)?.[1];
        if (known !== undefined) return known.split(', ');
      }
      assert.fail(`no known keys for ${yaml}`);
    };
    const topLevel = accepted('x-unknown: 1');
    assert.deepEqual([...documented.keys()], topLevel);
    for (const section of topLevel) {
      const keys = documented.get(section);
      if (['mode', 'messages', 'cache-dir', 'wait-for-lists'].includes(section)) assert.deepEqual(keys, [section]);
      else if (section === 'allowlist') assert.deepEqual(keys, ['file']);
      else if (section === 'lists') assert.deepEqual(keys, accepted('lists: [{ name: a, path: a, x-unknown: 1 }]'));
      else if (section === 'store') assert.deepEqual(keys, ['type', ...accepted('store: { type: redis, x-unknown: 1 }').filter((k) => k !== 'type')]);
      else assert.deepEqual(keys, accepted(`${section}: { x-unknown: 1 }`), section);
    }
  });
});
