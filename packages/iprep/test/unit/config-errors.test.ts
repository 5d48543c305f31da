import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError, parseConfig } from '../../src/config/index.js';

const FILE = 'conf/iprep.yaml';

/** The message of the ConfigError that parsing `yaml` throws. */
function problemsOf(yaml: string): string {
  try {
    parseConfig(yaml, FILE);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `not a ConfigError: ${String(e)}`);
    return e.message;
  }
  assert.fail(`accepted: ${yaml}`);
}

describe('parseConfig: invalid files', () => {
  const table: [yaml: string, message: string][] = [
    // YAML itself
    ['listen: [1, 2\n', 'conf/iprep.yaml:2:1: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]'],
    ['mode: random\nmode: reputation', 'conf/iprep.yaml:2:1: YAML: Map keys must be unique'],
    ['mode: !fancy random', 'conf/iprep.yaml:1:7: YAML: Unresolved tag: !fancy'],
    ['- mode: random', 'conf/iprep.yaml:1:1: the configuration must be a map of sections (mode:, listen:, lists: ...)'],
    ['just text', 'conf/iprep.yaml:1:1: the configuration must be a map of sections (mode:, listen:, lists: ...)'],
    // unknown keys
    ['modes: random', 'conf/iprep.yaml:1:1: unknown key modes (did you mean mode?)'],
    ['listen:\n  prot: 1', 'conf/iprep.yaml:2:3: unknown key listen.prot (did you mean listen.port?)'],
    ['agent: { maxFrameSize: 1024 }', 'conf/iprep.yaml:1:10: unknown key agent.maxFrameSize (did you mean agent.max-frame-size?)'],
    ['behaviour: { ban_time: 1h }', 'conf/iprep.yaml:1:14: unknown key behaviour.ban_time (did you mean behaviour.ban-time?)'],
    [
      'listen: { color: red }',
      'conf/iprep.yaml:1:11: unknown key listen.color (known keys: host, port, socket, workers, supervise, allow-from, max-connections, idle-timeout)',
    ],
    [
      'lists: [{ name: a, path: a, weight: 3 }]',
      'conf/iprep.yaml:1:29: unknown key lists[0].weight (known keys: name, format, path, url, refresh, score, penalty, category, action, min-entries, max-shrink, max-bytes, max-entries)',
    ],
    [
      'colour: red',
      'conf/iprep.yaml:1:1: unknown key colour (known keys: mode, listen, agent, log, messages, variables, thresholds, special, allowlist, list-defaults, lists, geo, wait-for-lists, behaviour, tls, decisions, cache-dir, store, admin)',
    ],
    // wrong types
    ['listen: 12345', 'conf/iprep.yaml:1:9: listen must be a map of keys, got 12345'],
    ['listen: { port: "12345" }', 'conf/iprep.yaml:1:17: listen.port must be an integer from 0 to 65535, got "12345"'],
    ['listen: { port: }', 'conf/iprep.yaml:1:17: listen.port has no value: it must be an integer from 0 to 65535'],
    ['listen: { host: [a] }', 'conf/iprep.yaml:1:17: listen.host must be a non-empty string, got a list'],
    ['admin: { token: 12345 }', 'conf/iprep.yaml:1:17: admin.token must be a non-empty string, got 12345 (quote it to make it text)'],
    ['special: { enabled: yes }', 'conf/iprep.yaml:1:21: special.enabled must be true or false, got "yes"'],
    ['messages: check-client-ip', 'conf/iprep.yaml:1:11: messages must be a list, got "check-client-ip"'],
    ['lists: { name: a }', 'conf/iprep.yaml:1:8: lists must be a list, got a map'],
    ['lists: [drop.txt]', 'conf/iprep.yaml:1:9: lists[0] must be a map of keys, got "drop.txt"'],
    ['lists:\n  -\n  - { name: a, path: a }', 'conf/iprep.yaml:2:4: lists[0] has no value: it must be a map of keys'],
    // out of range
    ['listen: { port: 70000 }', 'conf/iprep.yaml:1:17: listen.port must be an integer from 0 to 65535, got 70000'],
    ['listen: { workers: 0 }', 'conf/iprep.yaml:1:20: listen.workers must be an integer from 1 to 256, got 0'],
    ['listen: { workers: 2.5 }', 'conf/iprep.yaml:1:20: listen.workers must be an integer from 1 to 256, got 2.5'],
    ['agent: { max-frame-size: 100 }', 'conf/iprep.yaml:1:26: agent.max-frame-size must be an integer from 256 to 268435436, got 100'],
    ['agent: { max-frame-size: 4294967295 }', 'conf/iprep.yaml:1:26: agent.max-frame-size must be an integer from 256 to 268435436, got 4294967295'],
    ['listen: { max-connections: 0 }', 'conf/iprep.yaml:1:28: listen.max-connections must be an integer from 1 to 1000000, got 0'],
    ['listen: { allow-from: [10.0.0.0/8, 10.0.0.300] }', 'conf/iprep.yaml:1:36: listen.allow-from[1]: not an address or prefix: "10.0.0.300"'],
    ['listen: { allow-from: 10.0.0.0/8 }', 'conf/iprep.yaml:1:23: listen.allow-from must be a list, got "10.0.0.0/8"'],
    [
      'listen: { socket: /run/s.sock, allow-from: [127.0.0.1] }',
      'conf/iprep.yaml:1:44: listen.allow-from applies to TCP only: a Unix socket is guarded by its file permissions',
    ],
    [
      'listen: { idle-timeout: forever }',
      'conf/iprep.yaml:1:25: listen.idle-timeout: not a duration: "forever" (use e.g. 500ms, 30s, 10m, 1h, 7d, 1h30m, or a number of milliseconds)',
    ],
    ['agent: { max-in-flight: 0 }', 'conf/iprep.yaml:1:25: agent.max-in-flight must be an integer >= 1, got 0'],
    ['thresholds: { log: 101 }', 'conf/iprep.yaml:1:20: thresholds.log must be an integer from 0 to 100, got 101'],
    ['lists: [{ name: a, path: a, max-shrink: 1.5 }]', 'conf/iprep.yaml:1:41: lists[0].max-shrink must be a number from 0 to 1, got 1.5'],
    [
      'lists: [{ name: a, path: a, max-bytes: 1TB }]',
      'conf/iprep.yaml:1:40: lists[0].max-bytes must be a size from 1B to 512MiB (use e.g. 512KiB, 64MiB, 1GiB, 10MB, or a number of bytes), got "1TB"',
    ],
    [
      'list-defaults: { max-bytes: lots }',
      'conf/iprep.yaml:1:29: list-defaults.max-bytes must be a size from 1B to 512MiB (use e.g. 512KiB, 64MiB, 1GiB, 10MB, or a number of bytes), got "lots"',
    ],
    ['list-defaults: { max-entries: 0 }', 'conf/iprep.yaml:1:31: list-defaults.max-entries must be an integer >= 1, got 0'],
    ['wait-for-lists: yes', 'conf/iprep.yaml:1:17: wait-for-lists must be true or false, got "yes"'],
    ['behaviour: { doorkeeper: 1 }', 'conf/iprep.yaml:1:26: behaviour.doorkeeper must be true or false, got 1'],
    ['behaviour: { ban-growth: 0.5 }', 'conf/iprep.yaml:1:26: behaviour.ban-growth must be a number >= 1, got 0.5'],
    ['behaviour: { ipv6-prefix-length: 65 }', 'conf/iprep.yaml:1:34: behaviour.ipv6-prefix-length must be an integer from 1 to 64, got 65'],
    // enums
    ['mode: fast', 'conf/iprep.yaml:1:7: mode must be one of random, reputation; got "fast"'],
    ['log: { level: loud }', 'conf/iprep.yaml:1:15: log.level must be one of debug, info, warn, error; got "loud"'],
    ['log: { format: xml }', 'conf/iprep.yaml:1:16: log.format must be one of text, json; got "xml"'],
    ['mode: reputaton', 'conf/iprep.yaml:1:7: mode must be one of random, reputation; got "reputaton" (did you mean reputation?)'],
    ['variables: { scope: session }', 'conf/iprep.yaml:1:21: variables.scope must be one of proc, sess, txn, req, res; got "session"'],
    ['special: { internal-action: block }', 'conf/iprep.yaml:1:29: special.internal-action must be one of allow, log, captcha, tarpit, deny; got "block"'],
    [
      'decisions: { default-action: dney }',
      'conf/iprep.yaml:1:30: decisions.default-action must be one of allow, log, captcha, tarpit, deny; got "dney" (did you mean deny?)',
    ],
    [
      'lists: [{ name: a, path: a, format: netsets }]',
      'conf/iprep.yaml:1:37: lists[0].format must be one of netset, csv, spamhaus-json, spamhaus-text, tor-exits, aws-json, gcp-json, asn, asn-drop; got "netsets" (did you mean netset?)',
    ],
    ['store: { type: postgres }', 'conf/iprep.yaml:1:16: store.type must be one of memory, redis; got "postgres"'],
    // durations
    [
      'agent: { handler-timeout: 5 seconds }',
      'conf/iprep.yaml:1:27: agent.handler-timeout: not a duration: "5 seconds" (use e.g. 500ms, 30s, 10m, 1h, 7d, 1h30m, or a number of milliseconds)',
    ],
    ['agent: { handler-timeout: 0 }', 'conf/iprep.yaml:1:27: agent.handler-timeout must be from 1ms to 24d, got 0'],
    ['agent: { shutdown-timeout: 30d }', 'conf/iprep.yaml:1:28: agent.shutdown-timeout must be from 0s to 24d, got "30d"'],
    ['behaviour: { window: 10ms }', 'conf/iprep.yaml:1:22: behaviour.window must be at least 1s, got "10ms"'],
    [
      'decisions: { default-duration: -1h }',
      'conf/iprep.yaml:1:32: decisions.default-duration: not a duration: "-1h" (use e.g. 500ms, 30s, 10m, 1h, 7d, 1h30m, or a number of milliseconds)',
    ],
    [
      'lists: [{ name: a, url: "http://x/", refresh: soon }]',
      'conf/iprep.yaml:1:47: lists[0].refresh: not a duration: "soon" (use e.g. 500ms, 30s, 10m, 1h, 7d, 1h30m, or a number of milliseconds)',
    ],
    // consistency between values
    ['thresholds: { deny: 50 }', 'conf/iprep.yaml:1:21: thresholds must not decrease from deny to log: tarpit (40) is below deny (50)'],
    ['thresholds: { captcha: 90 }', 'conf/iprep.yaml:1:24: thresholds must not decrease from deny to log: log (80) is below captcha (90)'],
    ['thresholds: { tarpit: 60, captcha: 50 }', 'conf/iprep.yaml:1:36: thresholds must not decrease from deny to log: captcha (50) is below tarpit (60)'],
    ['behaviour: { ban-time: 2d }', 'conf/iprep.yaml:1:24: behaviour.max-ban-time (1d) is shorter than behaviour.ban-time (2d)'],
    ['variables: { action: ip_score }', 'conf/iprep.yaml:1:22: variables.action and variables.score name the same variable "ip_score"'],
    ['variables: { score: "ip score" }', "conf/iprep.yaml:1:21: variables.score must be a variable name (letters, digits, '_' and '.'), got \"ip score\""],
    ['listen: { host: 0.0.0.0, socket: /run/s.sock }', 'conf/iprep.yaml:1:34: listen.socket and listen.host exclude each other: give one'],
    ['listen: { socket: /run/s.sock, port: 1 }', 'conf/iprep.yaml:1:19: listen.socket and listen.port exclude each other: give one'],
    ['messages: []', 'conf/iprep.yaml:1:11: messages must name at least one SPOE message'],
    ['messages: [a, b, a]', 'conf/iprep.yaml:1:18: messages[2] repeats "a"'],
    // allowlist
    ['allowlist: [10.0.0.0/33]', 'conf/iprep.yaml:1:13: allowlist[0]: bad prefix length /33 in "10.0.0.0/33"'],
    ['allowlist:\n  - 10.0.0.0/8\n  - 10.0.0.300', 'conf/iprep.yaml:3:5: allowlist[1]: not an address or prefix: "10.0.0.300"'],
    ['allowlist: [10.0.0.9-10.0.0.1]', 'conf/iprep.yaml:1:13: allowlist[0]: range ends before it starts: "10.0.0.9-10.0.0.1"'],
    [
      'allowlist: [{ path: a.txt }]',
      'conf/iprep.yaml:1:13: allowlist[0] needs file: <path> (or is an address, a CIDR prefix or a range)\nconf/iprep.yaml:1:15: unknown key allowlist[0].path (known keys: file)',
    ],
    ['allowlist: [8]', 'conf/iprep.yaml:1:13: allowlist[0] must be an address, a CIDR prefix or a range, or {file: <path>}, got 8 (quote it to make it text)'],
    // lists
    ['lists:\n  - name: a', 'conf/iprep.yaml:2:5: lists[0] needs a path or a url'],
    ['lists:\n  - path: a', 'conf/iprep.yaml:2:5: lists[0] needs a name'],
    ['lists:\n  - { name: a, path: a, url: "https://x/" }', 'conf/iprep.yaml:2:5: lists[0] has both path and url: give one'],
    ['lists:\n  - { name: a, path: a, score: 0, penalty: 10 }', 'conf/iprep.yaml:2:5: lists[0] has both score and penalty: give one'],
    ['lists:\n  - { name: a, path: a }\n  - { name: a, path: b }', 'conf/iprep.yaml:3:13: lists[1].name "a" is already the name of lists[0]'],
    ['lists: [{ name: "my list", path: a }]', "conf/iprep.yaml:1:17: lists[0].name must be a name of letters, digits, '.', '_', ':' and '-', got \"my list\""],
    ['lists: [{ name: a, url: "ftp://x/a" }]', 'conf/iprep.yaml:1:25: lists[0].url must be an http or https URL, got "ftp://x/a"'],
    ['lists: [{ name: a, path: a, refresh: 1h }]', 'conf/iprep.yaml:1:38: lists[0].refresh applies to url lists only: files are reloaded when they change'],
    ['lists: [{ name: a, path: a, score: 101 }]', 'conf/iprep.yaml:1:36: lists[0].score must be an integer from 0 to 100, got 101'],
    ['lists: [{ name: a, path: a, action: ban }]', 'conf/iprep.yaml:1:37: lists[0].action must be one of allow, log, captcha, tarpit, deny; got "ban"'],
    // store
    ['store: { url: "redis://x" }', 'conf/iprep.yaml:1:15: store.url applies to store type redis only'],
    ['store: { type: redis, url: "http://x" }', 'conf/iprep.yaml:1:28: store.url must be a redis:// or rediss:// URL, got "http://x"'],
    ['store: { type: redis, url: "redis://a", nodes: ["redis://b"] }', 'conf/iprep.yaml:1:8: store has both url (one server) and nodes (a cluster): give one'],
    ['store: { type: redis, nodes: [] }', 'conf/iprep.yaml:1:30: store.nodes must list at least one cluster node'],
    ['store: { type: redis, nodes: ["redis://a", "b:7000"] }', 'conf/iprep.yaml:1:44: store.nodes[1] must be a redis:// or rediss:// URL, got "b:7000"'],
    ['store: { command-timeout: 1s }', 'conf/iprep.yaml:1:27: store.command-timeout applies to store type redis only'],
    ['store: { type: redis, command-timeout: 2m }', 'conf/iprep.yaml:1:40: store.command-timeout must be from 10ms to 1m, got "2m"'],
    ['store: { type: redis, max-decisions: 0 }', 'conf/iprep.yaml:1:38: store.max-decisions must be an integer from 1 to 10000000, got 0'],
    ['store: { type: redis, max-sync-age: 1s }', 'conf/iprep.yaml:1:37: store.max-sync-age must be from 2s to 24d, got "1s"'],
    ['store: { type: redis, prefix: "a b" }', "conf/iprep.yaml:1:31: store.prefix must be a key prefix of letters, digits, ':', '_', '.' and '-', got \"a b\""],
    // admin
    ['admin: { host: 0.0.0.0 }', 'conf/iprep.yaml:1:16: admin.host 0.0.0.0 is reachable from other machines: set admin.token or admin.token-file'],
    ['admin: { token: a, token-file: b }', 'conf/iprep.yaml:1:8: admin has both token and token-file: give one'],
    [
      'admin: { allowed-hosts: ["evil.example:80"] }',
      "conf/iprep.yaml:1:26: admin.allowed-hosts[0] must be a host name as browsers send it in Host (letters, digits, '-', '_' and dots, no port), got \"evil.example:80\"",
    ],
    [
      'decisions: { default-duration: 300000000w }',
      'conf/iprep.yaml:1:32: decisions.default-duration: duration "300000000w" is longer than 365d, the longest accepted',
    ],
    [
      'decisions: { default-duration: 1d1w }',
      'conf/iprep.yaml:1:32: decisions.default-duration: not a duration: "1d1w" (use e.g. 500ms, 30s, 10m, 1h, 7d, 1h30m, or a number of milliseconds)',
    ],
    ['decisions: { default-duration: 400d }', 'conf/iprep.yaml:1:32: decisions.default-duration: duration "400d" is longer than 365d, the longest accepted'],
    ['behaviour: { max-ban-time: 1e300 }', 'conf/iprep.yaml:1:28: behaviour.max-ban-time: duration 1e+300 is longer than 365d, the longest accepted'],
    ['decisions: { min-prefix-v4: 33 }', 'conf/iprep.yaml:1:29: decisions.min-prefix-v4 must be an integer from 0 to 32, got 33'],
  ];
  for (const [yaml, message] of table) {
    it(yaml.replace(/\n\s*/g, ' '), () => assert.equal(problemsOf(yaml), message));
  }

  it('takes IPv4-mapped loopback addresses as loopback', () => {
    assert.equal(parseConfig('admin: { host: "::ffff:127.0.0.1" }', FILE).admin.host, '::ffff:127.0.0.1');
    assert.equal(
      problemsOf('admin: { host: "::ffff:192.0.2.1" }'),
      'conf/iprep.yaml:1:16: admin.host ::ffff:192.0.2.1 is reachable from other machines: set admin.token or admin.token-file',
    );
  });

  it('reports a token-file it cannot read, with its absolute path', () => {
    assert.match(
      problemsOf('admin: { token-file: missing-token }'),
      /^conf\/iprep\.yaml:1:22: admin\.token-file cannot be read: ENOENT: .*conf\/missing-token/,
    );
  });

  it('reports every problem of the file, one per line in file order, and the first in line/column', () => {
    const yaml = [
      'mode: fast',
      'listen:',
      '  port: -1',
      '  hots: a',
      'lists:',
      '  - name: a',
      '  - { name: a, path: b, score: x }',
      'admin: { port: 1e9 }',
    ].join('\n');
    let error: unknown;
    try {
      parseConfig(yaml, FILE);
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof ConfigError);
    assert.equal(error.file, FILE);
    assert.equal(error.line, 1);
    assert.equal(error.column, 7);
    assert.equal(
      error.message,
      [
        'conf/iprep.yaml:1:7: mode must be one of random, reputation; got "fast"',
        'conf/iprep.yaml:3:9: listen.port must be an integer from 0 to 65535, got -1',
        'conf/iprep.yaml:4:3: unknown key listen.hots (did you mean listen.host?)',
        'conf/iprep.yaml:6:5: lists[0] needs a path or a url',
        'conf/iprep.yaml:7:13: lists[1].name "a" is already the name of lists[0]',
        'conf/iprep.yaml:7:32: lists[1].score must be an integer from 0 to 100, got "x"',
        'conf/iprep.yaml:8:16: admin.port must be an integer from 0 to 65535, got 1000000000',
      ].join('\n'),
    );
    assert.equal(error.problems.length, 7);
    assert.deepEqual(error.problems[1], { line: 3, column: 9, message: 'listen.port must be an integer from 0 to 65535, got -1' });
  });

  it('never throws anything but a ConfigError, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          parseConfig(text, FILE);
        } catch (e) {
          assert.ok(e instanceof ConfigError, `${String(e)} for ${JSON.stringify(text)}`);
          assert.match(e.message, /^conf\/iprep\.yaml(:\d+:\d+)?: /);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never throws anything but a ConfigError for any YAML value in any section', () => {
    const sections = [
      'mode',
      'listen',
      'agent',
      'messages',
      'variables',
      'thresholds',
      'special',
      'allowlist',
      'lists',
      'behaviour',
      'decisions',
      'cache-dir',
      'store',
      'admin',
    ];
    const keys = fc.constantFrom('name', 'path', 'url', 'port', 'host', 'type', 'nodes', 'score', 'file', 'refresh', 'enabled', 'deny', 'window', 'token');
    const scalar = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.string({ maxLength: 12 }),
      fc.constantFrom('1h', 'redis://a', 'http://a/', '10.0.0.0/8', 'deny'),
    );
    const value = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(keys, tie('value'), { maxKeys: 3 })),
    })).value;
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...sections), value, { maxKeys: 4 }), (doc) => {
        try {
          parseConfig(JSON.stringify(doc), FILE);
        } catch (e) {
          assert.ok(e instanceof ConfigError, `${String(e)} for ${JSON.stringify(doc)}`);
        }
      }),
      { numRuns: 500 },
    );
  });
});
