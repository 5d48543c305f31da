/** The operator commands' parts that need no agent: import parsing, formatting, target and client bounds. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AdminClient, AgentRefusedError, AgentUnreachableError } from '../../src/ctl/client.js';
import { expiresIn, printable, shortDuration, table, useColour } from '../../src/ctl/format.js';
import { ImportFileError, csvCells, formatOfPath, parseImport } from '../../src/ctl/import-file.js';
import { type CommandIo, runOperatorCommand } from '../../src/ctl/index.js';
import { TargetError, parseAdminAddress, resolveTarget } from '../../src/ctl/target.js';
import { spoaBin } from 'test-support/paths';

describe('import parsing', () => {
  it('CSV: RFC 4180 quoting, a header in any order, empty cells absent, "never"', () => {
    assert.deepEqual(csvCells('a,"b, c","say ""hi""",'), ['a', 'b, c', 'say "hi"', '']);
    assert.throws(() => csvCells('a,"b'), /unterminated/);
    assert.throws(() => csvCells('a,b"c'), /quote inside/);
    const {
      rows,
      problems: { kept: problems },
    } = parseImport('reason,value,duration\n"x, y",192.0.2.1,never\n,192.0.2.2,\n', 'csv');
    assert.deepEqual(problems, []);
    assert.deepEqual(
      rows.map((r) => [r.where, r.body]),
      [
        ['line 2', { value: '192.0.2.1', reason: 'x, y', duration: null }],
        ['line 3', { value: '192.0.2.2' }],
      ],
    );
  });

  it('CSV without a header is value,action,duration,reason; bad lines are reported, not fatal', () => {
    const text = '192.0.2.1,deny,1h,scan\n192.0.2.2,eat,1h\n192.0.2.3,deny,soon\n"open\n10.0.0.1,deny,1h,x,extra\n2001:db8::/32,captcha\n';
    const {
      rows,
      problems: { kept: problems },
    } = parseImport(text, 'csv');
    assert.deepEqual(
      rows.map((r) => r.body.value),
      ['192.0.2.1', '2001:db8::/32'],
    );
    assert.deepEqual(
      problems.map((p) => p.where),
      ['line 2', 'line 3', 'line 4', 'line 5'],
    );
    assert.match(problems[0]!.message, /"action" must be one of/);
    assert.match(problems[1]!.message, /not a duration/);
    assert.match(problems[2]!.message, /unterminated/);
    assert.match(problems[3]!.message, /5 fields/);
  });

  it('CSV: an unknown header column stops the import (exit 2), naming it', () => {
    assert.throws(
      () => parseImport('value,colour\n192.0.2.1,red\n', 'csv'),
      (e: unknown) => e instanceof ImportFileError && /colour/.test(e.message),
    );
  });

  it('plain: one value a line, comments and blank lines skipped, bad addresses named; defaults applied', () => {
    const {
      rows,
      problems: { kept: problems },
    } = parseImport('# feed\n192.0.2.1  # noisy\n\n999.1.1.1\n', 'plain', { action: 'tarpit', duration: '1h' });
    assert.deepEqual(rows, [{ where: 'line 2', body: { value: '192.0.2.1', action: 'tarpit', duration: '1h' } }]);
    assert.deepEqual(
      problems.map((p) => p.where),
      ['line 4'],
    );
    assert.match(problems[0]!.message, /999\.1\.1\.1/);
  });

  it('JSON: an array of values and objects (items numbered), or JSON Lines (lines numbered)', () => {
    const array = parseImport('["192.0.2.1", {"value": "192.0.2.2", "action": "deny", "duration": "2h"}, {"value": "192.0.2.3", "colour": 1}, 7]', 'json');
    assert.deepEqual(
      array.rows.map((r) => [r.where, r.body.value]),
      [
        ['item 1', '192.0.2.1'],
        ['item 2', '192.0.2.2'],
      ],
    );
    assert.deepEqual(
      array.problems.kept.map((p) => p.where),
      ['item 3', 'item 4'],
    );
    assert.match(array.problems.kept[0]!.message, /unknown field "colour"/);
    const lines = parseImport('{"value": "192.0.2.1"}\n{oops\n\n"192.0.2.4"\n', 'json');
    assert.deepEqual(
      lines.rows.map((r) => [r.where, r.body.value]),
      [
        ['line 1', '192.0.2.1'],
        ['line 4', '192.0.2.4'],
      ],
    );
    assert.deepEqual(
      lines.problems.kept.map((p) => p.where),
      ['line 2'],
    );
    assert.throws(() => parseImport('[1, 2', 'json'), ImportFileError);
  });

  it('bounded: more than 1,000,000 lines is refused whole; garbage keeps 1000 messages and counts the rest', () => {
    assert.throws(
      () => parseImport('192.0.2.1\n'.repeat(1_000_000), 'plain'),
      (e: unknown) => e instanceof ImportFileError && /more than 1000000 lines/.test(e.message),
    );
    const garbage = parseImport('x\n'.repeat(200_000), 'plain');
    assert.equal(garbage.rows.length, 0);
    assert.equal(garbage.problems.count, 200_000);
    assert.equal(garbage.problems.kept.length, 1000);
  });

  it('the format follows the extension', () => {
    assert.deepEqual(['a.csv', 'b.JSON', 'c.jsonl', 'd.ndjson', 'e.txt', 'f'].map(formatOfPath), ['csv', 'json', 'json', 'json', 'plain', 'plain']);
  });
});

describe('formatting', () => {
  it('durations to their two largest units; expiries', () => {
    assert.equal(shortDuration(3 * 3_600_000 + 12 * 60_000 + 5000), '3h12m');
    assert.equal(shortDuration(2 * 86_400_000 + 3_600_000 * 4 + 999), '2d4h');
    assert.equal(shortDuration(3_600_000 + 30_000), '1h');
    assert.equal(shortDuration(45_000), '45s');
    assert.equal(shortDuration(20), '<1s');
    assert.equal(expiresIn(null, 0), 'never');
    assert.equal(expiresIn(1000, 2000), 'expired');
    assert.equal(expiresIn(90_000 + 5, 5), '1m30s');
  });

  it('tables align columns, ignoring colour codes; control characters are escaped', () => {
    assert.equal(
      table(
        ['A', 'BB'],
        [
          ['\x1b[31mxyz\x1b[0m', '1'],
          ['q', '22'],
        ],
      ),
      'A    BB\n\x1b[31mxyz\x1b[0m  1\nq    22\n',
    );
    assert.equal(printable('a\x1b[2Jb\n'), 'a\\x1b[2Jb\\x0a');
  });

  it('colour only on a terminal without NO_COLOR', () => {
    assert.equal(useColour(true, {}), true);
    assert.equal(useColour(false, {}), false);
    assert.equal(useColour(undefined, {}), false);
    assert.equal(useColour(true, { NO_COLOR: '1' }), false);
  });
});

describe('target: flags > environment > configuration > defaults', () => {
  const dir = mkdtempSync(join(tmpdir(), 'spoa-ctl-target-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'token'), 'file-token\n');
  const config = join(dir, 'iprep.yaml');
  writeFileSync(config, 'mode: reputation\nadmin: { host: 0.0.0.0, port: 9191, token-file: token }\n');

  it('parses host:port, [v6]:port and :port', () => {
    assert.deepEqual(parseAdminAddress('10.1.2.3:9090', 'x'), { host: '10.1.2.3', port: 9090 });
    assert.deepEqual(parseAdminAddress('[::1]:9191', 'x'), { host: '::1', port: 9191 });
    assert.deepEqual(parseAdminAddress(':9191', 'x'), { host: '127.0.0.1', port: 9191 });
    for (const bad of ['9090', 'host:0', 'host:70000', '::1:9090']) assert.throws(() => parseAdminAddress(bad, '--admin'), TargetError);
  });

  it('each source in its order', async () => {
    assert.deepEqual(await resolveTarget({}, {}), { host: '127.0.0.1', port: 9090, token: undefined });
    // bound to every address: reached on loopback
    assert.deepEqual(await resolveTarget({ config }, {}), { host: '127.0.0.1', port: 9191, token: 'file-token' });
    assert.deepEqual(await resolveTarget({ config }, { SPOA_ADMIN: '127.0.0.2:1', SPOA_TOKEN: 'env' }), { host: '127.0.0.2', port: 1, token: 'env' });
    assert.deepEqual(await resolveTarget({ config, admin: '127.0.0.3:2', tokenFile: join(dir, 'token') }, { SPOA_ADMIN: '127.0.0.2:1', SPOA_TOKEN: 'env' }), {
      host: '127.0.0.3',
      port: 2,
      token: 'file-token',
    });
    await assert.rejects(resolveTarget({ token: 'a', tokenFile: 'b' }, {}), TargetError);
    await assert.rejects(resolveTarget({ tokenFile: join(dir, 'missing') }, {}), /cannot be read/);
  });

  it('a configuration whose admin API is off (enabled: false, or port 0) is an error naming it, not a connection to port 0', async () => {
    const off = join(dir, 'off.yaml');
    writeFileSync(off, 'mode: reputation\nadmin: { port: 0 }\n');
    await assert.rejects(resolveTarget({ config: off }, {}), (e: unknown) => e instanceof TargetError && /does not enable the admin API/.test(e.message));
    writeFileSync(off, 'mode: reputation\nadmin: { enabled: false }\n');
    await assert.rejects(resolveTarget({ config: off }, {}), TargetError);
  });
});

describe('AdminClient bounds', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });
  async function serve(handler: Parameters<typeof createServer>[1]): Promise<number> {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  }

  it('an agent that never answers: unreachable after the timeout, not a hang', async () => {
    const port = await serve(() => {});
    const started = Date.now();
    await assert.rejects(
      new AdminClient({ host: '127.0.0.1', port }, { timeoutMs: 200 }).lists(),
      (e: unknown) => e instanceof AgentUnreachableError && /no answer within 200 ms/.test(e.message),
    );
    assert.ok(Date.now() - started < 2000);
  });

  it('an agent that trickles its answer: unreachable once the whole request took longer than the timeout', async () => {
    const port = await serve((_req, res) => {
      res.write('[');
      const timer = setInterval(() => res.write(' '), 50);
      setTimeout(() => {
        clearInterval(timer);
        res.end(']');
      }, 3000);
    });
    const started = Date.now();
    await assert.rejects(new AdminClient({ host: '127.0.0.1', port }, { timeoutMs: 300 }).lists(), AgentUnreachableError);
    assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
  });

  it('an answer larger than the bound is refused, not held', async () => {
    const port = await serve((_req, res) => {
      res.write('[' + '{"a":1},'.repeat(10_000));
      // never ends: the bound, not the end, stops the client
    });
    await assert.rejects(
      new AdminClient({ host: '127.0.0.1', port }, { maxResponseBytes: 10_000 }).lists(),
      (e: unknown) => e instanceof AgentRefusedError && /larger than 10000 bytes/.test(e.message),
    );
  });

  it("sends the Bearer token and a Host header; the agent's error text comes back, not the token", async () => {
    let seen: { authorization?: string; host?: string } = {};
    const port = await serve((req, res) => {
      seen = { authorization: req.headers.authorization, host: req.headers.host };
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"\\"value\\" must be an address or CIDR"}');
    });
    await assert.rejects(
      new AdminClient({ host: '127.0.0.1', port, token: 's3cret' }).addDecision({ value: 'x' }),
      (e: unknown) => e instanceof AgentRefusedError && e.status === 400 && /must be an address/.test(e.message) && !e.message.includes('s3cret'),
    );
    assert.deepEqual(seen, { authorization: 'Bearer s3cret', host: `127.0.0.1:${port}` });
  });

  it('output into a pipe closed early (| head) ends the command quietly, without a stack trace', async () => {
    const lists = JSON.stringify(
      Array.from({ length: 20_000 }, (_, i) => ({ name: `l${i}`, format: 'netset', origin: '/x', entries: i, loadedAt: 0, lastError: null })),
    );
    const port = await serve((_req, res) => res.end(lists));
    const child = spawn(process.execPath, [spoaBin, 'lists', '--json', '--admin', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });

  it('usage mistakes exit 2 before any request: --parallel out of range, an unknown --format, two targets', async () => {
    let err = '';
    const io: CommandIo = { stdout: { write: () => true }, stderr: { write: (t: string) => (err += t) }, env: {}, readStdin: async () => '192.0.2.1\n' };
    const agent = ['--admin', '127.0.0.1:1'];
    assert.equal(await runOperatorCommand('decisions', ['import', '-', '--parallel', '0', ...agent], io), 2);
    assert.match(err, /--parallel must be an integer from 1 to 32/);
    assert.equal(await runOperatorCommand('decisions', ['import', '-', '--format', 'xml', ...agent], io), 2);
    assert.equal(await runOperatorCommand('decisions', ['add', '192.0.2.1', '--action', 'ban', ...agent], io), 2);
    assert.equal(await runOperatorCommand('lists', ['--token', 'a', '--token-file', 'b', ...agent], io), 2);
    assert.doesNotMatch(err, /cannot reach/);
    assert.match(err, /warning: --token shows in the process list; prefer --token-file or SPOA_TOKEN/);
  });

  it('colour on a terminal, none with NO_COLOR', async () => {
    const decisions = JSON.stringify([
      {
        key: 'ip:192.0.2.1',
        scope: 'ip',
        value: '192.0.2.1',
        action: 'deny',
        score: 0,
        category: 'manual',
        reason: 'r',
        origin: 'api',
        createdAt: 0,
        expiresAt: null,
      },
    ]);
    const port = await serve((_req, res) => res.end(decisions));
    const run = async (env: NodeJS.ProcessEnv): Promise<string> => {
      let out = '';
      const io: CommandIo = { stdout: { write: (t: string) => (out += t), isTTY: true }, stderr: { write: () => true }, env, readStdin: async () => '' };
      assert.equal(await runOperatorCommand('decisions', ['list', '--admin', `127.0.0.1:${port}`], io), 0);
      return out;
    };
    assert.match(await run({}), /\x1b\[31mdeny\x1b\[0m/);
    assert.doesNotMatch(await run({ NO_COLOR: '1' }), /\x1b/);
  });

  it('a command against a non-JSON answer exits 1 with a message, it does not crash', async () => {
    const port = await serve((_req, res) => res.end('<html>'));
    let out = '';
    let err = '';
    const io: CommandIo = { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) }, env: {}, readStdin: async () => '' };
    assert.equal(await runOperatorCommand('lists', ['--admin', `127.0.0.1:${port}`], io), 1);
    assert.equal(out, '');
    assert.match(err, /unexpected answer from \/lists/);
  });
});
