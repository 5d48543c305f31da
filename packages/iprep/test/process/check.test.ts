import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type Finding, type HaproxyVersion, checkHaproxySetup } from '../../src/check/haproxy-checks.js';
import { parseHaproxyConfig, parseHaproxyTime, parseSpoeConfig, splitWords } from '../../src/check/haproxy-config.js';
import type { RoundTrip } from '../../src/check/machine.js';
import { runCheck } from '../../src/check/run.js';
import { defaultConfig } from '../../src/config/index.js';
import type { IprepConfig } from '../../src/types.js';

describe('splitWords: haproxy.cfg lines', () => {
  it('splits on blanks, drops comments, keeps quoted text and escapes, leaves ${VAR} as is', () => {
    assert.deepEqual(splitWords('    server s1 127.0.0.1:12345 check   # the agent'), ['server', 's1', '127.0.0.1:12345', 'check']);
    assert.deepEqual(splitWords('http-request return string "hello # not a comment" if x'), [
      'http-request',
      'return',
      'string',
      'hello # not a comment',
      'if',
      'x',
    ]);
    assert.deepEqual(splitWords("acl a path_reg '^/a b'"), ['acl', 'a', 'path_reg', '^/a b']);
    assert.deepEqual(splitWords('set-var-fmt proc.k "${KEY}" a\\ b'), ['set-var-fmt', 'proc.k', '${KEY}', 'a b']);
    assert.deepEqual(splitWords('   # only a comment'), []);
    assert.deepEqual(splitWords('bind :8080\r'), ['bind', ':8080']);
  });

  it('groups sections and skips .if directives', () => {
    const sections = parseHaproxyConfig('global\n.if defined(X)\n    maxconn 10\n.endif\nbackend b\n    mode tcp\n', 'h.cfg');
    assert.deepEqual(
      sections.map((s) => [s.kind, s.name, s.line, s.lines.map((l) => [l.line, ...l.words])]),
      [
        ['global', '', 1, [[3, 'maxconn', '10']]],
        ['backend', 'b', 5, [[6, 'mode', 'tcp']]],
      ],
    );
  });

  it('reads the SPOE scope of the engine only', () => {
    const text = '[a]\nspoe-agent x\n  messages m\n[b]\nspoe-agent y\n';
    assert.deepEqual(
      parseSpoeConfig(text, 's.conf', 'b').map((s) => [s.kind, s.name, s.line]),
      [['spoe-agent', 'y', 5]],
    );
    assert.deepEqual(
      parseSpoeConfig('spoe-agent z\n', 's.conf', undefined).map((s) => s.name),
      ['z'],
    );
  });

  it('reads HAProxy times', () => {
    assert.equal(parseHaproxyTime('100ms'), 100);
    assert.equal(parseHaproxyTime('30s'), 30_000);
    assert.equal(parseHaproxyTime('15'), 15);
    assert.equal(parseHaproxyTime('1m'), 60_000);
    assert.equal(parseHaproxyTime('500us'), 0.5);
    assert.equal(parseHaproxyTime('${T}'), undefined);
  });
});

const CFG = '/etc/haproxy/haproxy.cfg';
const SPOE = '/etc/haproxy/spoe-iprep.conf';

const GOOD_CFG = `defaults
    mode http
    timeout client 30s

frontend web
    bind :8080
    filter spoe engine ip-reputation config spoe-iprep.conf
    http-request deny if { var(sess.iprep.ip_action) -m str deny }

backend iprep-backend
    mode tcp
    option spop-check
    server s1 127.0.0.1:12345 check
`;

const GOOD_SPOE = `[ip-reputation]
spoe-agent iprep-agent
    messages check-client-ip
    option var-prefix iprep
    timeout hello 100ms
    timeout idle 30s
    timeout processing 50ms
    use-backend iprep-backend

spoe-message check-client-ip
    args src
    event on-client-session
`;

function reputation(change: (c: IprepConfig) => IprepConfig = (c) => c): IprepConfig {
  const base = defaultConfig();
  return change({ ...base, mode: 'reputation', agent: { ...base.agent, handlerTimeoutMs: 20 } });
}

interface Setup {
  cfg?: string;
  spoe?: string;
  config?: IprepConfig;
  version?: HaproxyVersion;
  cwd?: string;
  files?: Record<string, string>;
  roundTrip?: RoundTrip;
}

function check(setup: Setup = {}): Finding[] {
  const files: Record<string, string> = { [CFG]: setup.cfg ?? GOOD_CFG, [SPOE]: setup.spoe ?? GOOD_SPOE, ...setup.files };
  return checkHaproxySetup({
    config: setup.config ?? reputation(),
    haproxyFile: CFG,
    cwd: setup.cwd ?? '/etc/haproxy',
    version: setup.version,
    readText: (path) => files[path],
    roundTrip: setup.roundTrip,
  });
}

const lines = (findings: readonly Finding[], severity?: Finding['severity']): string[] =>
  findings.filter((f) => severity === undefined || f.severity === severity).map((f) => `${f.severity}: ${f.where}: ${f.message}`);

function assertFinding(findings: readonly Finding[], severity: Finding['severity'], where: string, pattern: RegExp): void {
  assert.ok(
    findings.some((f) => f.severity === severity && f.where === where && pattern.test(f.message)),
    `no ${severity} at ${where} matching ${pattern}:\n${lines(findings).join('\n')}`,
  );
}

describe('checkHaproxySetup', () => {
  it('finds nothing wrong with a configuration that fits the agent', () => {
    assert.deepEqual(lines(check()), []);
    assert.deepEqual(lines(check({ version: { major: 3, minor: 2 }, cfg: GOOD_CFG.replace('mode tcp', 'mode spop') })), []);
  });

  it('a spoe-group that no send-spoe-group sends is an error; a rule that sends it is fine', () => {
    const spoe = GOOD_SPOE.replace('messages check-client-ip\n    option', 'groups check-ip\n    option').replace(
      '    event on-client-session\n',
      '\nspoe-group check-ip\n    messages check-client-ip\n',
    );
    assertFinding(check({ spoe }), 'error', `${SPOE}:13`, /spoe-group check-ip is never sent: no `send-spoe-group ip-reputation check-ip` rule/);
    const cfg = GOOD_CFG.replace('    http-request deny', '    http-request send-spoe-group ip-reputation check-ip\n    http-request deny');
    assert.deepEqual(lines(check({ spoe, cfg })), []);
    const wrongEngine = GOOD_CFG.replace('    http-request deny', '    http-request send-spoe-group other check-ip\n    http-request deny');
    assertFinding(check({ spoe, cfg: wrongEngine }), 'error', `${SPOE}:13`, /never sent/);
  });

  it('the TLS fingerprint variables (tls.variables) are ones the agent sets in reputation mode', () => {
    const cfg = GOOD_CFG.replace(
      '    http-request deny',
      '    http-request set-header x-ja4 %[var(sess.iprep.ja4)]\n    http-request set-header x-ja3 %[var(sess.iprep.ja3)]\n    http-request deny',
    );
    assert.deepEqual(lines(check({ cfg })), []);
    assertFinding(check({ cfg, config: defaultConfig() }), 'error', `${CFG}:8`, /sess\.iprep\.ja4 is not a variable the agent sets/);
  });

  it('a variable read with a wrong name or scope is an error; none read at all is a warning', () => {
    const typo = check({ cfg: GOOD_CFG.replace('sess.iprep.ip_action', 'sess.iprep.ip_actoin') });
    assertFinding(typo, 'error', `${CFG}:8`, /sess\.iprep\.ip_actoin is not a variable the agent sets: it sets sess\.iprep\.ip_score, sess\.iprep\.ip_action/);
    assertFinding(check({ cfg: GOOD_CFG.replace('sess.iprep.ip_action', 'txn.iprep.ip_action') }), 'error', `${CFG}:8`, /scope sess/);
    assertFinding(
      check({ cfg: GOOD_CFG.replace(/^ {4}http-request deny.*$/m, '') }),
      'warning',
      CFG,
      /no rule reads the agent's variables \(sess\.iprep\.\*\)/,
    );
    // Variables HAProxy sets itself under the prefix, in txn scope.
    const onError = GOOD_SPOE.replace('    option var-prefix iprep\n', '    option var-prefix iprep\n    option set-on-error err\n');
    assert.deepEqual(
      lines(
        check({
          spoe: onError,
          cfg: GOOD_CFG.replace('    http-request deny', '    http-request set-header x-spoe-error %[var(txn.iprep.err)]\n    http-request deny'),
        }),
      ),
      [],
    );
    assertFinding(
      check({ cfg: GOOD_CFG.replace('    http-request deny', '    http-request set-header x-spoe-error %[var(txn.iprep.err)]\n    http-request deny') }),
      'error',
      `${CFG}:8`,
      /txn\.iprep\.err is not a variable the agent sets/,
    );
    // Random mode sets ip_score alone.
    assertFinding(
      check({ config: defaultConfig() }),
      'error',
      `${CFG}:8`,
      /sess\.iprep\.ip_action is not a variable the agent sets: it sets sess\.iprep\.ip_score$/,
    );
    // Without var-prefix, HAProxy prefixes with the agent's name.
    const unprefixed = check({ spoe: GOOD_SPOE.replace('    option var-prefix iprep\n', '') });
    assertFinding(unprefixed, 'warning', CFG, /sess\.iprep-agent\.\*/);
  });

  it("the agent's backend: exists, mode tcp or spop (3.1+), a health check that speaks SPOP", () => {
    assertFinding(
      check({ cfg: GOOD_CFG.replace('mode tcp', 'mode http') }),
      'error',
      `${CFG}:10`,
      /backend iprep-backend is in mode http: the agent's backend must be mode tcp/,
    );
    // The mode from defaults counts when the backend sets none.
    assertFinding(check({ cfg: GOOD_CFG.replace('    mode tcp\n', '') }), 'error', `${CFG}:10`, /mode http \(from defaults\)/);
    assertFinding(
      check({ cfg: GOOD_CFG.replace('mode tcp', 'mode spop'), version: { major: 2, minor: 6 } }),
      'error',
      `${CFG}:10`,
      /mode spop, which HAProxy 2\.6 does not have/,
    );
    assertFinding(check({ spoe: GOOD_SPOE.replace('use-backend iprep-backend', 'use-backend nowhere') }), 'error', `${SPOE}:8`, /no backend nowhere/);
    assertFinding(check({ cfg: GOOD_CFG.replace(' check\n', '\n') }), 'warning', `${CFG}:13`, /has no `check`/);
    assertFinding(check({ cfg: GOOD_CFG.replace('    option spop-check\n', '') }), 'warning', `${CFG}:12`, /no `option spop-check`/);
    // `check` on default-server counts.
    assert.deepEqual(
      lines(check({ cfg: GOOD_CFG.replace(' check\n', '\n').replace('    option spop-check\n', '    option spop-check\n    default-server check\n') })),
      [],
    );
  });

  it("servers must reach the agent's listen address and port", () => {
    assertFinding(check({ cfg: GOOD_CFG.replace(':12345', ':12346') }), 'error', `${CFG}:13`, /the agent listens on port 12345/);
    assertFinding(check({ cfg: GOOD_CFG.replace('127.0.0.1:', '10.0.0.5:') }), 'error', `${CFG}:13`, /listens on 127\.0\.0\.1 only/);
    const everywhere = reputation((c) => ({ ...c, listen: { ...c.listen, host: '0.0.0.0' } }));
    assert.deepEqual(lines(check({ cfg: GOOD_CFG.replace('127.0.0.1:', '10.0.0.5:'), config: everywhere }), 'error'), []);
    const socket = reputation((c) => ({ ...c, listen: { ...c.listen, socket: '/run/spoa.sock' } }));
    assertFinding(check({ config: socket }), 'error', `${CFG}:13`, /Unix socket \/run\/spoa\.sock/);
    assert.deepEqual(lines(check({ config: socket, cfg: GOOD_CFG.replace('127.0.0.1:12345', 'unix@/run/spoa.sock') })), []);
  });

  it('messages the agent does not answer and arguments that are not the address are errors', () => {
    assertFinding(check({ spoe: GOOD_SPOE.replaceAll('check-client-ip', 'check-ip') }), 'error', `${SPOE}:10`, /the agent does not answer message check-ip/);
    assertFinding(check({ spoe: GOOD_SPOE.replaceAll('check-client-ip', 'check-ip') }), 'warning', `${SPOE}:2`, /never sends check-client-ip/);
    assertFinding(check({ spoe: GOOD_SPOE.replace('args src', 'args path') }), 'error', `${SPOE}:11`, /is path, not an address fetch/);
    assert.deepEqual(lines(check({ spoe: GOOD_SPOE.replace('args src', 'args id=unique-id ip=req.hdr_ip(x-forwarded-for,-1)') })), []);
    assertFinding(
      check({ spoe: GOOD_SPOE.replace('args src', 'args ip=src code=status') }),
      'warning',
      `${SPOE}:11`,
      /argument code carries the HTTP status, but the agent reads it from status/,
    );
    assertFinding(check({ spoe: GOOD_SPOE.replace('    event on-client-session\n', '') }), 'warning', `${SPOE}:10`, /has no `event`/);
  });

  it('the SPOE file is found where HAProxy looks: its working directory', () => {
    assertFinding(check({ cwd: '/' }), 'error', `${CFG}:7`, /not in the working directory \(\/\).*beside haproxy\.cfg.*run haproxy from \/etc\/haproxy/);
    assertFinding(check({ files: { [SPOE]: undefined as unknown as string } }), 'error', `${CFG}:7`, /cannot read the SPOE file spoe-iprep\.conf/);
    assertFinding(check({ cfg: GOOD_CFG.replace('engine ip-reputation', 'engine other') }), 'error', SPOE, /no \[other\] scope/);
    assertFinding(check({ cfg: GOOD_CFG.replace('config spoe-iprep.conf', 'config "${SPOE_FILE}"') }), 'note', `${CFG}:7`, /environment variable: not checked/);
  });

  it('SPOE timeouts: missing or tight is a warning; a handler timeout longer than HAProxy waits, a note', () => {
    assertFinding(check({ spoe: GOOD_SPOE.replace('    timeout processing 50ms\n', '') }), 'warning', `${SPOE}:2`, /no `timeout processing`/);
    assertFinding(check({ spoe: GOOD_SPOE.replace('processing 50ms', 'processing 2ms') }), 'warning', `${SPOE}:7`, /timeout processing 2ms is under 5ms/);
    const slow = reputation((c) => ({ ...c, agent: { ...c.agent, handlerTimeoutMs: 1000 } }));
    assertFinding(
      check({ config: slow }),
      'note',
      `${SPOE}:7`,
      /agent\.handler-timeout \(1000ms\) is longer than timeout processing \(50ms\): HAProxy gives up first/,
    );
    // hello and idle matter on 2.x only (3.x ignores them).
    const noHello = GOOD_SPOE.replace('    timeout hello 100ms\n', '');
    assert.deepEqual(lines(check({ spoe: noHello, version: { major: 3, minor: 0 } })), []);
    assertFinding(check({ spoe: noHello, version: { major: 2, minor: 6 } }), 'warning', `${SPOE}:2`, /no `timeout hello`/);
  });

  it('timeout processing against the round trips measured on this machine: tight under 3x the p99', () => {
    const trip = (p99Ms: number, maxMs: number): RoundTrip => ({ count: 1000, p50Ms: 0.05, p99Ms, maxMs });
    assertFinding(
      check({ roundTrip: trip(20, 40) }),
      'warning',
      `${SPOE}:7`,
      /timeout processing 50ms is tight for this machine: a NOTIFY round trip over loopback took p50 0\.05ms, p99 20ms, max 40ms \(1000 timed/,
    );
    assertFinding(check({ roundTrip: trip(1, 80) }), 'note', `${SPOE}:7`, /timeout processing 50ms: .*max 80ms.*the slowest exceeded it/);
    assertFinding(check({ roundTrip: trip(0.3, 2) }), 'note', `${SPOE}:7`, /timeout processing 50ms fits this machine: .*p99 0\.3ms/);
    assert.deepEqual(lines(check({ roundTrip: trip(0.3, 2) }), 'warning'), []);
  });

  it('a haproxy.cfg without filter spoe never asks the agent', () => {
    assertFinding(check({ cfg: 'frontend f\n    bind :80\n' }), 'error', CFG, /no `filter spoe` line/);
  });
});

describe('runCheck', () => {
  const dir = mkdtempSync(join(tmpdir(), 'spoa-check-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function run(argv: string[]): Promise<{ code: number; output: string }> {
    let output = '';
    const write = (t: string): void => void (output += t);
    const code = await runCheck(argv, { out: { write }, err: { write } }, {});
    return { code, output };
  }

  it('exits 2 on a usage error, 0 with the defaults', async () => {
    const usage = await run(['--bogus']);
    assert.equal(usage.code, 2);
    assert.match(usage.output, /Usage: spoa check/);
    assert.deepEqual(await run([]), { code: 0, output: 'ok: 0 error(s), 0 warning(s)\n' });
  });

  it('reports configuration problems at file:line:column and exits 1', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'mode: reputation\nlisten:\n  prot: 1\n');
    const { code, output } = await run(['--config', file]);
    assert.equal(code, 1);
    assert.match(output, new RegExp(`^error: ${file}:3:3: unknown key listen.prot`, 'm'));
  });

  it('a HAProxy binary that does not run is one error, and no haproxy -c is tried', async () => {
    const cfg = join(dir, 'haproxy.cfg');
    // The defaults: random mode, which sets ip_score alone.
    writeFileSync(
      cfg,
      GOOD_CFG.replace('spoe-iprep.conf', join(dir, 'spoe.conf')).replace('var(sess.iprep.ip_action) -m str deny', 'var(sess.iprep.ip_score) -m int lt 20'),
    );
    writeFileSync(join(dir, 'spoe.conf'), GOOD_SPOE);
    const { code, output } = await run(['--haproxy', cfg, '--haproxy-bin', join(dir, 'no-such-haproxy')]);
    assert.equal(code, 1, output);
    assert.match(output, /^error: .*no-such-haproxy: cannot run `.*no-such-haproxy -v`: spawn .* ENOENT$/m);
    assert.match(output, /^problems found: 1 error\(s\)/m);
  });

  it('times NOTIFY round trips on this machine for timeout processing, unless --no-measure', async () => {
    const cfg = join(dir, 'timed.cfg');
    writeFileSync(
      cfg,
      GOOD_CFG.replace('spoe-iprep.conf', join(dir, 'spoe.conf')).replace('var(sess.iprep.ip_action) -m str deny', 'var(sess.iprep.ip_score) -m int lt 20'),
    );
    writeFileSync(join(dir, 'spoe.conf'), GOOD_SPOE);
    const measured = await run(['--haproxy', cfg]);
    assert.match(
      measured.output,
      /^(note|warning): .*spoe\.conf:7: timeout processing 50ms.*round trip over loopback took p50 [\d.]+ms, p99 [\d.]+ms, max [\d.]+ms \(1000 timed/m,
    );
    const skipped = await run(['--haproxy', cfg, '--no-measure']);
    assert.doesNotMatch(skipped.output, /round trip/);
    assert.equal(skipped.code, 0, skipped.output);
  });

  it('loads list files dry: counts entries, reports bad lines, fails an unreadable one', async () => {
    writeFileSync(join(dir, 'drop.netset'), '192.0.2.0/24\nnot-an-address\n198.51.100.7\n10.9.8.7\n');
    const file = join(dir, 'lists.yaml');
    writeFileSync(file, 'lists:\n  - { name: drop, path: drop.netset, score: 0 }\n  - { name: gone, path: missing.netset, score: 0 }\n');
    const { code, output } = await run(['--config', file]);
    assert.equal(code, 1, output);
    assert.match(output, /warning: .*drop\.netset: list drop: skipped .*drop\.netset:2/);
    assert.match(output, /note: .*drop\.netset: list drop: 3 entries/);
    assert.match(
      output,
      /warning: .*drop\.netset: list drop: 1 entry falls inside internal ranges, which special decides first: they never apply \(e\.g\. 10\.9\.8\.7 \(private, RFC 1918\)\)/,
    );
    assert.match(output, /error: .*missing\.netset: list gone: cannot read it/);
  });

  it('loads fingerprint lists (tls.lists) dry too', async () => {
    writeFileSync(join(dir, 'tools.ja4'), 't13d1516h2_8daaf6152771_e5627efa2ab1 scanner\nnot-a-fingerprint\n');
    const file = join(dir, 'tls.yaml');
    writeFileSync(file, 'tls:\n  lists:\n    - { name: tools, path: tools.ja4, score: 0 }\n    - { name: gone, path: missing.ja4 }\n');
    const { code, output } = await run(['--config', file]);
    assert.equal(code, 1, output);
    assert.match(output, /warning: .*tools\.ja4: fingerprint list tools: skipped .*tools\.ja4:2: not a JA4 or JA3 fingerprint/);
    assert.match(output, /note: .*tools\.ja4: fingerprint list tools: 1 fingerprints/);
    assert.match(output, /error: .*missing\.ja4: fingerprint list gone: cannot read it/);
  });
});
