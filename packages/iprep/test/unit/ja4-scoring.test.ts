/**
 * TLS fingerprints in the verdict: fingerprint lists (deny, allow), behaviour counted per
 * fingerprint, the ja4/ja3 variables in the answer, and the address's allowlist still deciding alone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from 'test-support/wait';
import { Message, type MessageArg, type SetVarAction, consoleLogger } from 'spop';
import { defaultConfig, loadConfigFile } from '../../src/config/index.js';
import { DecisionIndex } from '../../src/decisions/index.js';
import { ReputationEngine } from '../../src/engine/engine.js';
import { reputationHandler } from '../../src/engine/handler.js';
import { FingerprintCache, TlsScorer, computeJa3, computeJa4, emptyHello, parseFingerprintList } from '../../src/ja4/index.js';
import { parseRange } from '../../src/net/address.js';
import { IprepService } from '../../src/service.js';
import { IntervalTable } from '../../src/table/index.js';
import type { FingerprintListConfig, IprepConfig, TlsConfig } from '../../src/types.js';

const NOW = Date.UTC(2026, 10, 30, 12);
const hex = (values: string): Uint8Array => Buffer.from(values.replaceAll(',', ''), 'hex');

/** Two TLS stacks, as HAProxy's fetches give them (GREASE included in the first). */
const STACK_A = {
  tls_version: 0x0303,
  tls_ciphers: hex('5a5a,1301,1302,1303,c02b,c02f'),
  tls_extensions: hex('4a4a,0000,0010,000a,000b,000d,002b,0033'),
  tls_groups: hex('001d,0017'),
  tls_point_formats: Uint8Array.of(0),
  tls_sigalgs: hex('0403,0804'),
  tls_versions: hex('0304,0303'),
  tls_alpn: 'h2',
};
const STACK_B = { ...STACK_A, tls_ciphers: hex('1301,c02c'), tls_alpn: '' };

function fieldsOf(stack: typeof STACK_A) {
  return {
    ...emptyHello(),
    helloVersion: stack.tls_version,
    ciphers: stack.tls_ciphers,
    extensions: stack.tls_extensions,
    groups: stack.tls_groups,
    pointFormats: stack.tls_point_formats,
    sigalgs: stack.tls_sigalgs,
    supportedVersions: stack.tls_versions,
    alpn: stack.tls_alpn,
  };
}
const JA4_A = computeJa4(fieldsOf(STACK_A)) as string;
const JA3_A = computeJa3(fieldsOf(STACK_A)) as string;
const JA4_B = computeJa4(fieldsOf(STACK_B)) as string;

function args(address: string, stack?: typeof STACK_A): MessageArg[] {
  const out: MessageArg[] = [{ name: 'ip', value: { type: 'ipv4', value: address, bytes: parseRange(address).start } }];
  if (stack === undefined) return out;
  for (const [name, value] of Object.entries(stack)) {
    if (typeof value === 'number') out.push({ name, value: { type: 'int32', value } });
    else if (typeof value === 'string') out.push({ name, value: { type: 'str', value } });
    else out.push({ name, value: { type: 'bin', value } });
  }
  return out;
}

function tlsConfig(overrides: Partial<TlsConfig> = {}): TlsConfig {
  return { ...defaultConfig().tls, ...overrides };
}

function fingerprintList(config: Partial<FingerprintListConfig> & { name: string }, text: string) {
  const full: FingerprintListConfig = { path: `${config.name}.txt`, category: config.name, maxBytes: 2 ** 20, maxEntries: 1000, ...config };
  return { config: full, ...parseFingerprintList(text, full.path, full.maxEntries), loadedAt: NOW };
}

function setup(options: { tls?: Partial<TlsConfig>; allow?: string[]; lists?: ReturnType<typeof fingerprintList>[] } = {}) {
  const config = defaultConfig();
  const engine = new ReputationEngine({ thresholds: config.thresholds, special: { ...config.special, enabled: false } }, { decisions: new DecisionIndex() });
  const ranges = (options.allow ?? []).map((t) => parseRange(t));
  engine.setAllowlist({ ranges, table: IntervalTable.compile(ranges.map((range, value) => ({ range, value }))) });
  const tls = new TlsScorer(tlsConfig(options.tls), 'sess', { now: () => NOW });
  tls.setLists(options.lists ?? []);
  const handler = reputationHandler({ engine, variables: config.variables, tls, now: () => NOW });
  const send = (address: string, stack?: typeof STACK_A) => {
    const actions = handler(new Message('check-client-ip', args(address, stack)), undefined as never) as SetVarAction[];
    return Object.fromEntries(actions.map((a) => [a.name, a.value.type === 'null' ? null : a.value.value]));
  };
  return { send, tls, engine };
}

describe('TLS fingerprints in the verdict', () => {
  it('sets ja4 and ja3 beside the verdict, and nothing more without TLS arguments', () => {
    const { send } = setup();
    assert.deepEqual(send('198.51.100.1', STACK_A), {
      ip_score: 100,
      ip_action: 'allow',
      ip_category: 'none',
      ip_source: 'default',
      ja4: JA4_A,
      ja3: JA3_A,
    });
    assert.deepEqual(Object.keys(send('198.51.100.1')), ['ip_score', 'ip_action', 'ip_category', 'ip_source']);
  });

  it('sets no ja3 with tls.ja3 off, and names the variables as configured', () => {
    const { send } = setup({ tls: { ja3: false, variables: { ja4: 'tls_ja4', ja3: 'tls_ja3' } } });
    assert.deepEqual(Object.keys(send('198.51.100.1', STACK_A)), ['ip_score', 'ip_action', 'ip_category', 'ip_source', 'tls_ja4']);
  });

  it('sets no fingerprint from malformed pieces (odd length), and still answers the verdict', () => {
    const { send } = setup();
    assert.deepEqual(Object.keys(send('198.51.100.1', { ...STACK_A, tls_ciphers: Uint8Array.of(0x13, 0x01, 0x13) })), [
      'ip_score',
      'ip_action',
      'ip_category',
      'ip_source',
    ]);
  });

  it('denies a fingerprint on a deny list, whatever the address, and serves the others', () => {
    const deny = fingerprintList({ name: 'tools', score: 0, action: 'deny', category: 'tool' }, `# known tools\n${JA4_A} scanner 1.0\n`);
    const { send } = setup({ lists: [deny] });
    const denied = send('198.51.100.1', STACK_A);
    assert.deepEqual([denied.ip_action, denied.ip_category, denied.ip_source, denied.ja4], ['deny', 'tool', 'tools', JA4_A]);
    assert.equal(send('203.0.113.9', STACK_A).ip_action, 'deny');
    assert.equal(send('198.51.100.1', STACK_B).ip_action, 'allow');
  });

  it('matches JA3 entries too (what HAProxy 2.6 and 3.0 can give)', () => {
    const deny = fingerprintList({ name: 'ja3-tools', score: 0, action: 'deny' }, `${JA3_A}\n`);
    const { send } = setup({ lists: [deny] });
    assert.equal(send('198.51.100.1', STACK_A).ip_action, 'deny');
  });

  it('never overrides the address allowlist: an allowlisted address with a denied fingerprint is allowed', () => {
    const deny = fingerprintList({ name: 'tools', score: 0, action: 'deny' }, `${JA4_A}\n`);
    const { send } = setup({ lists: [deny], allow: ['198.51.100.0/24'] });
    assert.equal(send('198.51.100.1', STACK_A).ip_action, 'allow');
    assert.equal(send('203.0.113.1', STACK_A).ip_action, 'deny');
  });

  it('counts messages per fingerprint across addresses, and an allow list exempts a fingerprint', () => {
    const behaviour = { ...defaultConfig().tls.behaviour, enabled: true, rateThreshold: 5, ratePenalty: 30, banThreshold: 10 };
    const allow = fingerprintList({ name: 'browsers', action: 'allow' }, `${JA4_B} a browser\n`);
    const { send } = setup({ tls: { behaviour }, lists: [allow] });
    const sources: string[] = [];
    for (let i = 1; i <= 12; i++) sources.push(String(send(`198.51.100.${i}`, STACK_A).ip_source));
    assert.deepEqual(sources.slice(0, 5), ['default', 'default', 'default', 'default', 'default']);
    assert.equal(sources[5], 'tls-behaviour:rate', '6 messages of one fingerprint from 6 addresses');
    assert.equal(sources[10], 'tls-behaviour:ban');
    const last = send('198.51.100.200', STACK_A);
    assert.deepEqual([last.ip_action, last.ip_score], ['deny', 0]);
    for (let i = 1; i <= 20; i++) assert.equal(send(`203.0.113.${i}`, STACK_B).ip_source, 'default', 'allowed fingerprint');
  });

  it('judges a penalised or banned fingerprint with matches built once, and explains it with detail', () => {
    const behaviour = { ...defaultConfig().tls.behaviour, enabled: true, rateThreshold: 2, ratePenalty: 30, banThreshold: 6 };
    const { tls } = setup({ tls: { behaviour } });
    const judged = () => {
      const judgement = tls.judge(new Message('check-client-ip', args('198.51.100.1', STACK_A)), NOW);
      return [...(judgement?.matches ?? [])];
    };
    for (let i = 0; i < 3; i++) judged();
    const [penalised] = judged();
    assert.deepEqual([penalised?.source, penalised?.penalty, Object.isFrozen(penalised)], ['tls-behaviour:rate', 30, true]);
    assert.equal(judged()[0], penalised, 'the same match object, no new one per message');
    assert.match(String(tls.explain(JA4_A, NOW)[0]?.detail), /of this fingerprint/);
    for (let i = 0; i < 4; i++) judged();
    const [banned] = judged();
    assert.deepEqual([banned?.source, Object.isFrozen(banned)], ['tls-behaviour:ban', true]);
    assert.equal(judged()[0], banned);
  });

  it('explains a fingerprint with the entry it hit', () => {
    const deny = fingerprintList({ name: 'tools', score: 0, action: 'deny', category: 'tool' }, `${JA4_A} scanner 1.0\n`);
    const { tls } = setup({ lists: [deny] });
    assert.deepEqual(
      tls.explain(JA4_A.toUpperCase(), NOW).map((m) => [m.source, m.detail]),
      [['tools', `${JA4_A} scanner 1.0`]],
    );
    assert.deepEqual(tls.explain(JA4_B, NOW), []);
  });
});

describe('Fingerprint cache and lists', () => {
  it('hashes a ClientHello once, and never answers from an entry of other bytes', () => {
    const cache = new FingerprintCache({ maxEntries: 2 });
    const a = fieldsOf(STACK_A);
    const first = cache.get(a);
    assert.equal(cache.get({ ...a, ciphers: Uint8Array.from(STACK_A.tls_ciphers) }), first, 'same bytes, another buffer');
    assert.deepEqual([cache.hits, cache.misses], [1, 1]);
    assert.equal(cache.get(fieldsOf(STACK_B))?.ja4, JA4_B);
    cache.get({ ...a, alpn: 'http/1.1' });
    assert.equal(cache.size, 2, 'bounded');
  });

  it('keeps its copies: a reused message buffer does not change a cached fingerprint', () => {
    const cache = new FingerprintCache();
    const buffer = Uint8Array.from(STACK_A.tls_ciphers);
    const a = { ...fieldsOf(STACK_A), ciphers: buffer };
    assert.equal(cache.get(a)?.ja4, JA4_A);
    buffer.fill(0x13);
    assert.notEqual(cache.get(a)?.ja4, JA4_A);
  });

  it('skips bad lines with a warning, lower-cases entries, and refuses more than max-entries', () => {
    const parsed = parseFingerprintList(`${JA4_A.toUpperCase()}\nnot-a-fingerprint\n${JA3_A} note\n`, 'f.txt', 10);
    assert.deepEqual([...parsed.entries.keys()], [JA4_A, JA3_A]);
    assert.deepEqual(parsed.warnings, ['f.txt:2: not a JA4 or JA3 fingerprint: "not-a-fingerprint"']);
    assert.throws(() => parseFingerprintList(`${JA4_A}\n${JA3_A}\n`, 'f.txt', 1), /more than 1 fingerprints/);
  });
});

describe('The tls section and the service', () => {
  it('reads tls from the YAML, loads its lists, reloads them, and explains a fingerprint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iprep-tls-'));
    try {
      writeFileSync(join(dir, 'deny.txt'), `${JA4_A} scanner\n`);
      writeFileSync(
        join(dir, 'iprep.yaml'),
        [
          'mode: reputation',
          'special: { enabled: false }',
          `cache-dir: ${join(dir, 'cache')}`,
          'tls:',
          '  variables: { ja4: tls_ja4 }',
          '  lists:',
          '    - { name: tools, path: deny.txt, score: 0, action: deny, category: tool }',
          '  behaviour: { enabled: true, rate-threshold: 100 }',
        ].join('\n'),
      );
      const config: IprepConfig = await loadConfigFile(join(dir, 'iprep.yaml'));
      assert.equal(config.tls.variables.ja4, 'tls_ja4');
      assert.equal(config.tls.variables.ja3, 'ja3');
      assert.deepEqual(
        config.tls.lists.map((l) => [l.name, l.path, l.score, l.action]),
        [['tools', join(dir, 'deny.txt'), 0, 'deny']],
      );
      const service = new IprepService(config, { configPath: join(dir, 'iprep.yaml'), logger: consoleLogger('silent') });
      await service.start();
      try {
        assert.ok(service.tls);
        assert.equal(service.explain('198.51.100.1', { fingerprint: JA4_A }).action, 'deny');
        assert.equal(service.explain('198.51.100.1', { fingerprint: JA4_B }).action, 'allow');
        writeFileSync(join(dir, 'deny.txt'), `${JA4_B}\n`);
        assert.equal((await service.reload()).ok, true);
        assert.equal(service.explain('198.51.100.1', { fingerprint: JA4_A }).action, 'allow');
        assert.equal(service.explain('198.51.100.1', { fingerprint: JA4_B }).source, 'tools');
        writeFileSync(join(dir, 'deny.txt'), 'x'.repeat(2 ** 20 + 1));
        assert.equal((await service.reload()).ok, false, 'over max-bytes: the last good copy stays');
        assert.equal(service.explain('198.51.100.1', { fingerprint: JA4_B }).source, 'tools');
      } finally {
        await service.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reloads a fingerprint list file when it changes, and keeps the last good copy when the new one is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iprep-tls-'));
    try {
      writeFileSync(join(dir, 'deny.txt'), `${JA4_A}\n`);
      writeFileSync(
        join(dir, 'iprep.yaml'),
        `mode: reputation\nspecial: { enabled: false }\ncache-dir: ${join(dir, 'cache')}\ntls:\n  lists: [{ name: tools, path: deny.txt, score: 0, action: deny, max-entries: 1 }]\n`,
      );
      const service = new IprepService(await loadConfigFile(join(dir, 'iprep.yaml')), { logger: consoleLogger('silent') });
      await service.start();
      try {
        const source = (fingerprint: string) => service.explain('198.51.100.1', { fingerprint }).source;
        assert.equal(source(JA4_A), 'tools');
        writeFileSync(join(dir, 'deny.txt'), `${JA4_B}\n`);
        await waitFor('the changed list in service', () => source(JA4_B) === 'tools', 5_000);
        assert.equal(source(JA4_A), 'default');
        writeFileSync(join(dir, 'deny.txt'), `${JA4_A}\n${JA4_B}\n`);
        await sleep(1_000);
        assert.equal(source(JA4_B), 'tools', 'over max-entries: the last good copy stays');
        assert.equal(source(JA4_A), 'default');
      } finally {
        await service.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says a change of tls variables, ja3, behaviour or cache-size waits for a restart, and reloads tls.lists', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iprep-tls-'));
    const warnings: string[] = [];
    const silent = consoleLogger('silent');
    const logger = { ...silent, warn: (message: string, fields?: Record<string, unknown>) => warnings.push(`${message} ${JSON.stringify(fields)}`) };
    try {
      writeFileSync(join(dir, 'a.txt'), `${JA4_A}\n`);
      const yaml = (tls: string) => `mode: reputation\nspecial: { enabled: false }\ncache-dir: ${join(dir, 'cache')}\ntls:\n${tls}`;
      writeFileSync(join(dir, 'iprep.yaml'), yaml('  lists: []\n'));
      const configPath = join(dir, 'iprep.yaml');
      const service = new IprepService(await loadConfigFile(configPath), { configPath, logger });
      await service.start();
      try {
        writeFileSync(configPath, yaml('  lists: [{ name: a, path: a.txt, score: 0 }]\n'));
        assert.equal((await service.reload()).ok, true);
        assert.deepEqual(warnings, [], 'lists reload');
        assert.equal(service.explain('198.51.100.1', { fingerprint: JA4_A }).source, 'a');
        writeFileSync(configPath, yaml('  lists: [{ name: a, path: a.txt, score: 0 }]\n  variables: { ja4: other }\n'));
        assert.equal((await service.reload()).ok, true);
        assert.deepEqual(warnings, ['changed settings apply at the next restart {"sections":"tls"}']);
      } finally {
        await service.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports errors in the tls section with their place', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iprep-tls-'));
    try {
      writeFileSync(join(dir, 'iprep.yaml'), 'tls:\n  lists:\n    - { name: a, path: a.txt, score: 0, penalty: 5 }\n  bogus: 1\n');
      await assert.rejects(loadConfigFile(join(dir, 'iprep.yaml')), (err: Error) => {
        assert.match(err.message, /has both score and penalty/);
        assert.match(err.message, /iprep\.yaml:4:\d+.*bogus/);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
