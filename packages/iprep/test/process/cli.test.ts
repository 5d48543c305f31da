import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { AckFrame } from 'spop';
import { FakeHaproxy, freePort } from 'spop/testkit';
import { repoRoot, spoaBin } from 'test-support/paths';
import { type CliFlags, USAGE, parseCli, resolveConfig } from '../../src/cli.js';
import { ConfigError } from '../../src/config/index.js';
import { randomScoreHandler } from '../../src/random-score.js';
import { Message } from 'spop';

const bin = spoaBin;
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

/** Starts `spoa` and collects its log lines; resolves once `count` workers listen. */
async function startSpoa(args: string[], workers: number): Promise<{ child: ChildProcess; log: () => string }> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 10_000;
  while ((log.match(/agent listening/g) ?? []).length < workers) {
    if (child.exitCode !== null) throw new Error(`spoa exited ${child.exitCode}: ${log}`);
    if (Date.now() > deadline) throw new Error(`spoa did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, log: () => log };
}

/** A FakeHaproxy connected once something listens on `port` (within 10 s). */
async function connectWhenListening(port: number): Promise<FakeHaproxy> {
  for (const deadline = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 50))) {
    try {
      return await FakeHaproxy.connect({ port });
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
  }
}

const checkClientIp = (type: 'ipv4' | 'ipv6', value: string) => [{ name: 'check-client-ip', args: [{ name: '', value: { type, value } as const }] }];

function score(ack: AckFrame): number {
  assert.equal(ack.actions.length, 1);
  const action = ack.actions[0]!;
  assert.equal(action.type, 'set-var');
  assert.ok(action.type === 'set-var');
  assert.equal(action.scope, 'sess');
  assert.equal(action.name, 'ip_score');
  assert.equal(action.value.type, 'uint32');
  return action.value.value as number;
}

describe('parseCli', () => {
  it('has the seed defaults: random mode, port 12345, 5 workers', async () => {
    const flags = parseCli([]);
    assert.ok(flags !== 'help' && flags !== 'version');
    const config = await resolveConfig(flags);
    assert.equal(config.mode, 'random');
    assert.deepEqual(config.listen, {
      host: '127.0.0.1',
      port: 12345,
      socket: undefined,
      workers: 5,
      supervise: false,
      allowFrom: [],
      maxConnections: 1000,
      idleTimeoutMs: 30000,
    });
    assert.equal(config.agent.shutdownTimeoutMs, 5000);
    assert.equal(config.admin.enabled, false);
    assert.deepEqual(config.messages, ['check-client-ip']);
  });
  it('flags override the configuration file', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'spoa-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'iprep.yaml');
    writeFileSync(file, 'listen: { socket: spoa.sock, workers: 2 }\nstore: { type: redis, url: redis://127.0.0.1:1 }\nadmin: { port: 9191 }\n');
    const fromFile = await resolveConfig(parseCli(['-c', file]) as CliFlags);
    assert.equal(fromFile.mode, 'reputation', 'a configuration file means reputation mode');
    assert.deepEqual([fromFile.listen.socket, fromFile.listen.workers, fromFile.admin.port], [join(dir, 'spoa.sock'), 2, 9191]);
    const flagged = await resolveConfig(parseCli(['-c', file, '-p', '7000', '-n', '3', '--admin-port', '0', '--mode', 'random']) as CliFlags);
    assert.deepEqual(
      [flagged.mode, flagged.listen.port, flagged.listen.socket, flagged.listen.workers, flagged.admin.enabled],
      ['random', 7000, undefined, 3, false],
    );
    assert.equal(fromFile.waitForLists, false, 'URL lists load in the background by default');
    assert.equal((await resolveConfig(parseCli(['-c', file, '--wait-for-lists']) as CliFlags)).waitForLists, true);
  });
  it("reputation mode runs one process unless asked for more workers (they share the primary's state)", async () => {
    const byDefault = await resolveConfig(parseCli(['--mode', 'reputation']) as CliFlags);
    assert.equal(byDefault.store.type, 'memory');
    assert.equal(byDefault.listen.workers, 1, 'one process by default in reputation mode');
    assert.equal(byDefault.admin.enabled, true, '--mode reputation alone gets the admin API');
    const two = await resolveConfig(parseCli(['--mode', 'reputation', '-n', '2']) as CliFlags);
    assert.equal(two.listen.workers, 2);
  });
  it('refuses --admin-host on a non-loopback address without a token, as the file does', async () => {
    await assert.rejects(
      resolveConfig(parseCli(['--mode', 'reputation', '--admin-host', '0.0.0.0']) as CliFlags),
      (e: unknown) =>
        e instanceof ConfigError && e.message === '--admin-host: admin.host 0.0.0.0 is reachable from other machines: set admin.token or admin.token-file',
    );
    // The admin API off: nothing listens there, nothing to refuse.
    await resolveConfig(parseCli(['--mode', 'reputation', '--admin-host', '0.0.0.0', '--admin-port', '0']) as CliFlags);
    for (const loopback of ['127.0.0.2', '::1', '::ffff:127.0.0.1', 'localhost']) {
      const config = await resolveConfig(parseCli(['--mode', 'reputation', '--admin-host', loopback]) as CliFlags);
      assert.equal(config.admin.host, loopback);
    }
  });
  it('checks the merged configuration: a flag enabling an admin API the file left on 0.0.0.0 names the file line', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'spoa-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'iprep.yaml');
    writeFileSync(file, 'admin:\n  enabled: false\n  host: 0.0.0.0\n');
    await resolveConfig(parseCli(['-c', file]) as CliFlags);
    await assert.rejects(
      resolveConfig(parseCli(['-c', file, '--admin-port', '9191']) as CliFlags),
      (e: unknown) =>
        e instanceof ConfigError && e.message === `${file}:3:9: admin.host 0.0.0.0 is reachable from other machines: set admin.token or admin.token-file`,
    );
    // The merged configuration is what runs: a flag may also make a file's setting safe.
    writeFileSync(file, 'admin: { host: 0.0.0.0 }\n');
    const onLoopback = await resolveConfig(parseCli(['-c', file, '--admin-host', '127.0.0.1']) as CliFlags);
    assert.equal(onLoopback.admin.host, '127.0.0.1');
    writeFileSync(file, 'admin: { token: s3cret }\n');
    const withToken = await resolveConfig(parseCli(['-c', file, '--admin-host', '0.0.0.0']) as CliFlags);
    assert.equal(withToken.admin.host, '0.0.0.0');
  });
  it('reads the seed flags and their long forms', () => {
    const o = parseCli(['-d', '-p', '9000', '-n', '2']);
    assert.ok(o !== 'help' && o !== 'version');
    assert.equal(o.debug, true);
    assert.equal(o.port, 9000);
    assert.equal(o.workers, 2);
    const l = parseCli(['--debug', '--port=9001', '--num-workers', '3', '--host', '::1']);
    assert.ok(l !== 'help' && l !== 'version');
    assert.deepEqual([l.debug, l.port, l.workers, l.host], [true, 9001, 3, '::1']);
    assert.equal(parseCli(['-h']), 'help');
  });
  it('rejects bad values with a message naming the option', () => {
    assert.throws(() => parseCli(['-p', '70000']), /port must be an integer from 0 to 65535: 70000/);
    assert.throws(() => parseCli(['-n', '0']), /num-workers/);
    assert.throws(() => parseCli(['-p', '1x']), /port/);
    assert.throws(() => parseCli(['--bogus']), /bogus/);
    assert.throws(() => parseCli(['--mode', 'fancy']), /mode must be random or reputation: fancy/);
    assert.throws(() => parseCli(['--max-frame-size', '4294967295']), /max-frame-size must be an integer from 256 to 268435436: 4294967295/);
    assert.throws(() => parseCli(['--max-connections', '0']), /max-connections must be an integer from 1 to 1000000: 0/);
    assert.throws(() => parseCli(['--allow-from', '10.0.0.0/8,nope']), /allow-from: not an address or prefix: "nope"/);
  });
  it('--version, --log-level and --log-format: flags override the log section, -d means debug', async (t) => {
    assert.equal(parseCli(['--version']), 'version');
    const dir = mkdtempSync(join(tmpdir(), 'spoa-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'iprep.yaml');
    writeFileSync(file, 'log: { level: warn, format: json }\n');
    assert.deepEqual((await resolveConfig(parseCli([]) as CliFlags)).log, { level: 'info', format: 'text' });
    assert.deepEqual((await resolveConfig(parseCli(['-c', file]) as CliFlags)).log, { level: 'warn', format: 'json' });
    const flagged = await resolveConfig(parseCli(['-c', file, '--log-level', 'error', '--log-format', 'text']) as CliFlags);
    assert.deepEqual(flagged.log, { level: 'error', format: 'text' });
    assert.equal((await resolveConfig(parseCli(['-c', file, '-d']) as CliFlags)).log.level, 'debug');
    assert.throws(() => parseCli(['--log-level', 'loud']), /log-level must be one of debug, info, warn, error: loud/);
    assert.throws(() => parseCli(['--log-format', 'xml']), /log-format must be one of text, json: xml/);
  });
  it("--allow-from and --max-connections replace the file's values", async () => {
    const flags = parseCli(['--allow-from', '10.0.0.0/8, 192.0.2.7', '--allow-from', '::1', '--max-connections', '64', '--host', '0.0.0.0']);
    assert.ok(flags !== 'help' && flags !== 'version');
    const config = await resolveConfig(flags);
    assert.deepEqual(config.listen.allowFrom, ['10.0.0.0/8', '192.0.2.7', '::1']);
    assert.equal(config.listen.maxConnections, 64);
    assert.equal(config.listen.host, '0.0.0.0');
  });
});

describe('randomScoreHandler', () => {
  it('scores the first argument, named or not, IPv4 or IPv6, in 0..100', () => {
    const seen = new Set<number>();
    let r = 0;
    const handler = randomScoreHandler({ random: () => (r = (r + 0.37) % 1) });
    for (let i = 0; i < 200; i++) {
      const m = new Message('check-client-ip', [{ name: i % 2 ? 'ip' : '', value: { type: i % 3 ? 'ipv4' : 'ipv6', value: '::1' } }]);
      const action = handler(m, undefined as never);
      assert.ok(action && !Array.isArray(action) && 'value' in action && action.value.type === 'uint32');
      const v = action.value.value as number;
      assert.ok(Number.isInteger(v) && v >= 0 && v <= 100, `score ${v}`);
      seen.add(v);
    }
    assert.ok(seen.size > 2);
    const extremes = [0, 0.999999].map((x) => randomScoreHandler({ random: () => x }));
    const m = new Message('check-client-ip', [{ name: '', value: { type: 'ipv4', value: '1.2.3.4' } }]);
    assert.deepEqual(
      extremes.map((h) => (h(m, undefined as never) as { value: { value: number } }).value.value),
      [0, 100],
    );
  });
  it('sets nothing when the argument is not an address', () => {
    const h = randomScoreHandler();
    assert.equal(h(new Message('check-client-ip', [{ name: '', value: { type: 'str', value: 'x' } }]), undefined as never), undefined);
    assert.equal(h(new Message('check-client-ip', []), undefined as never), undefined);
  });
});

describe('spoa command', () => {
  it('-h prints the usage and exits 0', () => {
    const r = spawnSync(process.execPath, [bin, '-h'], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.equal(r.stdout, USAGE);
    assert.match(r.stdout, /spoa \[-h\] \[-d\] \[-p <port>\] \[-n <num-workers>\]/);
  });

  it('a bad configuration file exits 2 naming the file, line and problem', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'spoa-cli-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'mode: reputation\nthresholds:\n  deny: 200\n');
    const r = spawnSync(process.execPath, [bin, '--config', file], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:9: .*100`));
    assert.doesNotMatch(r.stderr, /Usage:/, 'a configuration problem is not a usage problem');
  });

  it('check is a subcommand: its own usage, exit 0 when fine, 2 on a bad option; other words are still refused', () => {
    assert.match(USAGE, /spoa check \[--config <file>\] \[--haproxy <haproxy.cfg>\]/);
    const help = spawnSync(process.execPath, [bin, 'check', '-h'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage: spoa check/);
    const fine = spawnSync(process.execPath, [bin, 'check'], { encoding: 'utf8', env: { ...process.env, HAPROXY_BIN: '' } });
    assert.equal(fine.status, 0, fine.stderr);
    assert.equal(fine.stdout, 'ok: 0 error(s), 0 warning(s)\n');
    const bad = spawnSync(process.execPath, [bin, 'check', '--port', '1'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /Usage: spoa check/);
    const other = spawnSync(process.execPath, [bin, 'chek'], { encoding: 'utf8' });
    assert.equal(other.status, 2);
    assert.match(other.stderr, /Unexpected argument 'chek'/);
  });

  it('a bad option exits 2 with the reason and the usage', () => {
    const r = spawnSync(process.execPath, [bin, '-n', 'many'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /num-workers must be an integer/);
    assert.match(r.stderr, /Usage: spoa/);
  });

  it('answers check-client-ip from several workers, restarts a dead one, stops on SIGTERM', async () => {
    const port = await freePort();
    const { child, log } = await startSpoa(['-p', String(port), '-n', '2', '--host', '127.0.0.1'], 2);
    const pids = [...log().matchAll(/agent listening\b.*pid=(\d+)/g)].map((m) => Number(m[1]));
    assert.equal(new Set(pids).size, 2);

    const client = await FakeHaproxy.connect({ port });
    const hello = await client.hello();
    assert.equal(hello.type, 'agent-hello');
    for (let sid = 0; sid < 50; sid++) {
      const ack = await client.notify(sid, 1, checkClientIp(sid % 2 ? 'ipv4' : 'ipv6', sid % 2 ? '10.0.0.1' : '2001:db8::1'));
      const s = score(ack);
      assert.ok(Number.isInteger(s) && s >= 0 && s <= 100);
    }
    client.close();

    process.kill(pids[0]!, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while ((log().match(/agent listening/g) ?? []).length < 3) {
      assert.ok(Date.now() < deadline, `no worker restarted: ${log()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(log(), /worker died: restarting it/);

    const again = await FakeHaproxy.connect({ port });
    assert.equal((await again.hello()).type, 'agent-hello');
    score(await again.notify(1, 1, checkClientIp('ipv4', '192.0.2.7')));
    again.close();

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
    const workerPids = [...log().matchAll(/agent listening\b.*pid=(\d+)/g)].map((m) => Number(m[1]));
    for (const pid of workerPids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} still running`);
  });

  it('random mode survives SIGHUP (nothing to reload)', async () => {
    const port = await freePort();
    const { child, log } = await startSpoa(['-p', String(port), '-n', '1', '--host', '127.0.0.1'], 1);
    child.kill('SIGHUP');
    const deadline = Date.now() + 5000;
    while (!/nothing to reload/.test(log())) {
      assert.ok(Date.now() < deadline, `no answer to SIGHUP: ${log()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(child.exitCode, null);
    const client = await FakeHaproxy.connect({ port });
    await client.hello();
    score(await client.notify(1, 1, checkClientIp('ipv4', '192.0.2.8')));
    client.close();
    child.kill('SIGTERM');
    await once(child, 'exit');
  });

  it('--version prints the version and node, and -h lists it with the log options', () => {
    const r = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'packages/iprep/package.json'), 'utf8')) as { version: string };
    assert.equal(r.stdout, `spoa ${version} (node ${process.version})\n`);
    for (const option of ['--version', '--log-level <level>', '--log-format <format>']) assert.ok(USAGE.includes(option), option);
  });

  it('--log-format json writes every line, primary and workers, as one JSON object', async () => {
    const port = await freePort();
    const { child, log } = await startSpoa(['--log-format', 'json', '-p', String(port), '-n', '2'], 2);
    child.kill('SIGTERM');
    await once(child, 'exit');
    const lines = log()
      .split('\n')
      .filter((l) => l !== '');
    assert.ok(lines.length >= 3, log());
    const records = lines.map((l) => JSON.parse(l) as { time: string; level: string; msg: string; pid?: number });
    for (const r of records) {
      assert.ok(!Number.isNaN(Date.parse(r.time)), r.time);
      assert.ok(['debug', 'info', 'warn', 'error'].includes(r.level), r.level);
      assert.equal(typeof r.msg, 'string');
    }
    assert.equal(records.filter((r) => r.msg === 'agent listening' && typeof r.pid === 'number').length, 2);
    assert.ok(records.some((r) => r.msg === 'starting workers'));
  });

  it('--log-level warn leaves info lines out', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [bin, '--log-level', 'warn', '-p', String(port), '-n', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let log = '';
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const client = await connectWhenListening(port);
    await client.hello();
    client.close();
    child.kill('SIGTERM');
    await once(child, 'exit');
    assert.doesNotMatch(log, /agent listening/);
  });

  it('-d logs every decoded frame readably', async () => {
    const port = await freePort();
    const { child, log } = await startSpoa(['-d', '-p', String(port), '-n', '1', '--host', '127.0.0.1'], 1);
    const client = await FakeHaproxy.connect({ port });
    await client.hello();
    score(await client.notify(20, 1, checkClientIp('ipv4', '127.0.0.1')));
    client.close();
    child.kill('SIGTERM');
    await once(child, 'exit');
    assert.match(log(), /<- HAPROXY-HELLO flags=0x00000001 sid=0 fid=0 supported-versions=str:\\"2\.0\\"/);
    assert.match(log(), /<- NOTIFY flags=0x00000001 sid=20 fid=1 check-client-ip\(ipv4:127\.0\.0\.1\)/);
    assert.match(log(), /-> ACK flags=0x00000001 sid=20 fid=1 set-var sess\.ip_score=uint32:\d+/);
  });
});
