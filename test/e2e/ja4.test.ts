/**
 * TLS fingerprints end to end: the recipe of examples/recipes/ja4 (haproxy.cfg, spoe-ja4.conf,
 * iprep.yaml) with real HAProxy 3.2 terminating TLS with a certificate made here, in front of
 * `spoa`. Four TLS stacks (curl, Node, Python, openssl s_client) connect; what HAProxy answers with
 * (the ja4 and ja3 variables, read back from the response) is checked against the fingerprints
 * computed independently from each client's ClientHello as captured on the wire. Then one
 * fingerprint goes on the deny list: that client gets 403, the others are served.
 * HAProxy 2.6 and 3.0 (spoe-ja3-only.conf): JA3 only.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { captureClientHello, parseClientHello, wireJa3, wireJa4 } from 'test-support/client-hello';
import {
  type HaproxyHandle,
  type HaproxyVersion,
  type ManagedProcess,
  examplesDir,
  freePort,
  makeTempDir,
  removeTempDir,
  requireHaproxy,
  spoaBin,
  startHaproxy,
  startProcess,
  waitServerStatus,
} from 'test-support';

const recipeDir = join(examplesDir, 'recipes', 'ja4');
const OPENSSL = '/usr/bin/openssl';

/** A TLS client: the command that makes one HTTPS GET to localhost:<port> and prints the response (status line and body). */
interface Client {
  readonly name: string;
  command(port: number): [string, string[]];
}

const REQUEST = 'GET / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n';

const clients: readonly Client[] = [
  {
    name: 'curl',
    command: (port) => ['curl', ['-sk', '-D', '-', '--max-time', '10', '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/`]],
  },
  {
    name: 'node',
    command: (port) => [
      process.execPath,
      [
        '-e',
        `require('https').get({ host: '127.0.0.1', port: ${port}, servername: 'localhost', rejectUnauthorized: false }, (r) => {
          let body = ''; r.on('data', (c) => (body += c)); r.on('end', () => console.log('HTTP/1.1 ' + r.statusCode + '\\n' + body));
        }).on('error', (e) => { console.error(e.message); process.exit(1); });`,
      ],
    ],
  },
  {
    name: 'python',
    command: (port) => [
      'python3',
      [
        '-c',
        [
          'import ssl, urllib.request, urllib.error',
          'try:',
          `    r = urllib.request.urlopen('https://localhost:${port}/', context=ssl._create_unverified_context(), timeout=10)`,
          "    print('HTTP/1.1', r.status); print(r.read().decode())",
          'except urllib.error.HTTPError as e:',
          "    print('HTTP/1.1', e.code); print(e.read().decode())",
        ].join('\n'),
      ],
    ],
  },
  {
    name: 'openssl',
    command: (port) => ['sh', ['-c', `printf '${REQUEST}' | ${OPENSSL} s_client -connect 127.0.0.1:${port} -servername localhost -quiet 2>/dev/null`]],
  },
];

interface Answer {
  readonly status: number;
  readonly ja4: string;
  readonly ja3: string;
}

/** Runs the client against HAProxy and reads the status and the fingerprints the response shows. */
async function ask(client: Client, port: number): Promise<Answer> {
  const [cmd, args] = client.command(port);
  const proc = startProcess(cmd, args, { name: client.name, processGroup: true });
  const timer = setTimeout(() => void proc.stop(), 20_000);
  await proc.exited;
  clearTimeout(timer);
  const output = proc.output();
  const status = /HTTP\/[\d.]+ (\d{3})/.exec(output)?.[1];
  assert.ok(status, `${client.name}: no HTTP status in its output:\n${output}`);
  return { status: Number(status), ja4: /^ja4: (.*)$/m.exec(output)?.[1] ?? '', ja3: /^ja3: (.*)$/m.exec(output)?.[1] ?? '' };
}

/** The client's ClientHello, captured on a plain TCP port, and the fingerprints computed from it independently. */
async function fromTheWire(client: Client): Promise<{ ja4: string; ja3: string }> {
  let proc: ManagedProcess | undefined;
  const record = await captureClientHello((port) => {
    const [cmd, args] = client.command(port);
    proc = startProcess(cmd, args, { name: `${client.name} (capture)`, processGroup: true });
  });
  await proc?.stop(2_000);
  const hello = parseClientHello(record);
  return { ja4: wireJa4(hello), ja3: wireJa3(hello) };
}

function replaceOnce(text: string, pattern: RegExp, replacement: string, what: string): string {
  assert.match(text, pattern, `the recipe no longer contains the ${what} the test rewrites`);
  return text.replace(pattern, replacement);
}

/** A self-signed certificate for localhost with its key, as HAProxy's `crt` wants it (one PEM file). */
function makeCertificate(dir: string): string {
  const made = spawnSync(
    OPENSSL,
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'key.pem',
      '-out',
      'cert.pem',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
    ],
    { cwd: dir, encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(made.status, 0, `openssl req failed (is ${OPENSSL} installed?): ${made.stderr}`);
  return readFileSync(join(dir, 'cert.pem'), 'utf8') + readFileSync(join(dir, 'key.pem'), 'utf8');
}

interface Stack {
  readonly dir: string;
  readonly agent: ManagedProcess;
  readonly haproxy: HaproxyHandle;
  readonly port: number;
}

async function startStack(version: HaproxyVersion, spoeFile: string): Promise<Stack> {
  requireHaproxy(version);
  const dir = makeTempDir('iprep-ja4-');
  cpSync(recipeDir, dir, { recursive: true });
  const pem = makeCertificate(dir);
  const agentPort = await freePort();
  const agent = startProcess(process.execPath, [spoaBin, '--config', join(dir, 'iprep.yaml'), '-p', String(agentPort), '-n', '1', '--host', '127.0.0.1'], {
    name: 'spoa',
  });
  await agent.waitForOutput(/agent listening/);
  const port = await freePort();
  let config = readFileSync(join(recipeDir, 'haproxy.cfg'), 'utf8');
  config = replaceOnce(config, /^(\s*server\s+\S+\s+127\.0\.0\.1:)12345\b/m, `$1${agentPort}`, 'agent `server ... 127.0.0.1:12345`');
  config = replaceOnce(config, /^(\s*bind\s+):8443\b/m, `$1127.0.0.1:${port}`, '`bind :8443`');
  config = replaceOnce(config, /spoe-ja4\.conf/, spoeFile, 'SPOE file name');
  const spoe = replaceOnce(readFileSync(join(recipeDir, spoeFile), 'utf8'), /^(\s*timeout\s+processing\s+)\S+/m, '$1500ms', '`timeout processing`');
  const haproxy = await startHaproxy({ version, config, files: { [spoeFile]: spoe, 'site.pem': pem }, port });
  assert.doesNotMatch(haproxy.checkOutput, /WARNING|ALERT/, 'haproxy -c on the recipe');
  await waitServerStatus(haproxy, 'iprep-backend', 'iprep-srv', 'UP', 10_000);
  return { dir, agent, haproxy, port };
}

async function stopStack(stack: Stack | undefined): Promise<void> {
  if (stack === undefined) return;
  await stack.haproxy.stop();
  await stack.agent.stop();
  removeTempDir(stack.dir);
}

/** Sets the deny list and has the agent reload it (SIGHUP), waiting for the reload to finish. */
async function denyFingerprints(stack: Stack, lines: readonly string[]): Promise<void> {
  const mark = stack.agent.outputLength();
  writeFileSync(join(stack.dir, 'lists', 'ja4-deny.txt'), `${lines.join('\n')}\n`);
  process.kill(stack.agent.pid, 'SIGHUP');
  const deadline = Date.now() + 10_000;
  while (!/msg=reloaded/.test(stack.agent.outputSince(mark))) {
    assert.ok(Date.now() < deadline, `the agent did not reload:\n${stack.agent.outputSince(mark)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('JA4 recipe through HAProxy 3.2 terminating TLS', () => {
  let stack: Stack | undefined;
  const seen = new Map<string, Answer>();

  before(async () => {
    stack = await startStack('3.2', 'spoe-ja4.conf');
  });
  after(() => stopStack(stack));

  it('curl, Node, Python and openssl s_client each get their own JA4 and JA3, the ones their ClientHello gives on the wire', async () => {
    const { port } = stack as Stack;
    for (const client of clients) {
      const answer = await ask(client, port);
      assert.equal(answer.status, 200, client.name);
      assert.match(answer.ja4, /^t1[23][di]\d{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$/, `${client.name}'s ja4`);
      assert.match(answer.ja3, /^[0-9a-f]{32}$/, `${client.name}'s ja3`);
      const wire = await fromTheWire(client);
      assert.deepEqual({ ja4: answer.ja4, ja3: answer.ja3 }, wire, `${client.name}: HAProxy's fetches and the wire agree`);
      seen.set(client.name, answer);
      console.log(`# ${client.name}: ${answer.ja4} ${answer.ja3}`);
    }
    assert.equal(new Set([...seen.values()].map((a) => a.ja4)).size, clients.length, 'four different JA4');
  });

  it('a denied fingerprint gets 403, the other clients are served', async () => {
    const s = stack as Stack;
    const curl = seen.get('curl');
    assert.ok(curl, 'the first test saw curl');
    await denyFingerprints(s, [`${curl.ja4} curl`]);
    for (const client of clients) {
      const answer = await ask(client, s.port);
      assert.equal(answer.status, client.name === 'curl' ? 403 : 200, client.name);
    }
    // JA3 entries work the same.
    await denyFingerprints(s, [(seen.get('python') as Answer).ja3]);
    assert.equal((await ask(clients[0] as Client, s.port)).status, 200, 'curl, no longer listed');
    assert.equal((await ask(clients[2] as Client, s.port)).status, 403, 'python, by its JA3');
  });
});

for (const version of ['2.6', '3.0'] as const) {
  describe(`HAProxy ${version}: JA3 only (spoe-ja3-only.conf)`, () => {
    let stack: Stack | undefined;
    before(async () => {
      stack = await startStack(version, 'spoe-ja3-only.conf');
    });
    after(() => stopStack(stack));

    it('curl gets its JA3 (the same as on the wire) and no JA4; a denied JA3 gets 403', async () => {
      const s = stack as Stack;
      const curl = clients[0] as Client;
      const answer = await ask(curl, s.port);
      assert.equal(answer.status, 200);
      assert.equal(answer.ja4, '');
      assert.equal(answer.ja3, (await fromTheWire(curl)).ja3);
      await denyFingerprints(s, [answer.ja3]);
      assert.equal((await ask(curl, s.port)).status, 403);
      assert.equal((await ask(clients[1] as Client, s.port)).status, 200, 'node');
    });
  });
}
