/**
 * Lists under stress: a huge download, a big list swapped under load, a feed that hangs at start.
 * `--root` runs the `spoa` of another checkout (built), to compare with an older commit.
 *
 *   node --import tsx bench/lists.ts big [--bytes 2147483648] [--no-length]   # RSS peak and outcome
 *   node --import tsx bench/lists.ts swap [--lines 1000000] [--garbage]       # longest answer during a swap
 *   node --import tsx bench/lists.ts start-hang                               # time until the SPOP port accepts
 *   node --import tsx bench/lists.ts main-thread [--lines 1000000] [--garbage] # GC pauses and longest gap on the main thread, one reload
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { runLoad, spawnAgent } from 'spop-bench';
import { watchEventLoop } from 'test-support/event-loop';
import { freePort } from 'test-support/ports';
import { delay as sleep } from 'test-support/wait';
import { FakeHaproxy } from 'spop/testkit';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    root: { type: 'string', default: '.' },
    bytes: { type: 'string', default: String(2 ** 31) },
    'no-length': { type: 'boolean', default: false },
    lines: { type: 'string', default: '1000000' },
    garbage: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '12' },
    rate: { type: 'string', default: '2000' },
    timeout: { type: 'string', default: '180' },
  },
});
const spoa = resolve(values.root, 'packages/iprep/bin/spoa.js');
const dir = mkdtempSync(join(tmpdir(), 'iprep-bench-lists-'));
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);

/** `count` distinct IPv4 /32s from `first` (a 32-bit number), one per line. */
function addresses(count: number, first: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const a = (first + i) >>> 0;
    out.push(`${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`);
  }
  return out.join('\n') + '\n';
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

async function health(adminPort: number): Promise<string> {
  try {
    const response = await fetch(`http://127.0.0.1:${adminPort}/health`, { signal: AbortSignal.timeout(2000) });
    return await response.text();
  } catch (err) {
    return `unreachable (${(err as Error).message})`;
  }
}

/** A list server on port 0: `/big` streams `bytes` of netset lines made on the fly (1 MiB block repeated), `/hang` never answers. */
async function listServer(bytes: number, withLength: boolean): Promise<{ server: Server; base: string }> {
  const block = Buffer.from(addresses(80_000, 0x01000000).slice(0, 2 ** 20 - 1) + '\n');
  const server = createServer((req, res) => {
    if (req.url === '/hang') return;
    res.writeHead(200, { 'content-type': 'text/plain', ...(withLength ? { 'content-length': String(bytes) } : {}) });
    let left = bytes;
    const pump = (): void => {
      while (left > 0) {
        const chunk = left >= block.length ? block : block.subarray(0, left);
        left -= chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.on('close', () => (left = 0));
    pump();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function startSpoa(config: string, port: number, adminPort: number, timed: boolean): { child: ChildProcess; log: () => string } {
  const argv = ['node', spoa, '-c', config, '-n', '1', '-p', String(port), '--admin-port', String(adminPort)];
  const child = spawn(timed ? '/usr/bin/time' : argv[0]!, timed ? ['-v', '-o', join(dir, 'time.txt'), ...argv] : argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-200_000)));
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-200_000)));
  return { child, log: () => log };
}

async function big(): Promise<void> {
  const bytes = Number(values.bytes);
  const { server, base } = await listServer(bytes, !values['no-length']);
  const [port, adminPort] = [await freePort(), await freePort()];
  const config = join(dir, 'iprep.yaml');
  writeFileSync(config, `lists:\n  - { name: big, url: ${base}/big, penalty: 10 }\ncache-dir: ${join(dir, 'cache')}\n`);
  const started = Date.now();
  const { child, log } = startSpoa(config, port, adminPort, true);
  const closed = once(child, 'close');
  let exit: string | undefined;
  child.on('exit', (code, signal) => (exit = `exited code=${code} signal=${signal}`));
  let listening: number | undefined;
  const deadline = started + Number(values.timeout) * 1000;
  // Done when the agent died, or listens and said something about the list.
  while (exit === undefined && Date.now() < deadline) {
    if (listening === undefined && (await portOpen(port))) listening = Date.now() - started;
    if (listening !== undefined && /list (big|unavailable)|list=big/.test(log())) break;
    await sleep(100);
  }
  const elapsed = Date.now() - started;
  const healthText = exit === undefined ? await health(adminPort) : '-';
  if (exit === undefined) {
    // /usr/bin/time passes no signal on: stop the agent by its own pid, and time reports when it ends.
    const pid = /agent listening\b.*pid=(\d+)/.exec(log())?.[1];
    if (pid !== undefined) process.kill(Number(pid), 'SIGTERM');
    else child.kill('SIGTERM');
  }
  await closed;
  server.closeAllConnections();
  server.close();
  const times = readFileSync(join(dir, 'time.txt'), 'utf8');
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(times)?.[1] ?? NaN) * 1024;
  const status = /Exit status: (\d+)|Command terminated by signal (\d+)/.exec(times)?.[0];
  console.log(`body ${mib(bytes)} MiB${values['no-length'] ? ' (no Content-Length)' : ''}: max RSS ${mib(rss)} MiB, ${exit ?? 'still running'} (${status})`);
  console.log(`  SPOP port accepted after ${listening ?? '-'} ms; observed for ${elapsed} ms; /health: ${healthText}`);
  console.log(
    '  log: ' +
      log()
        .split('\n')
        .filter((l) => /big|error|warn|FATAL|heap/i.test(l))
        .slice(0, 6)
        .map((l) => l.slice(0, 300))
        .join('\n       '),
  );
}

/**
 * The longest wait for one answer: a connection of its own sends one NOTIFY at a time (1 ms apart)
 * and times each round trip; the frame sent just before a stall waits for all of it.
 */
async function longestAnswer(port: number, done: () => boolean): Promise<{ maxMs: number; answers: number }> {
  const client = await FakeHaproxy.connect({ port });
  await client.hello();
  let maxMs = 0;
  let answers = 0;
  for (let id = 1; !done(); id++) {
    const sent = performance.now();
    await client.notify(id, 1, [{ name: 'check-client-ip', args: [{ name: '', value: { type: 'ipv4', value: '192.0.2.1' } }] }], 60_000);
    maxMs = Math.max(maxMs, performance.now() - sent);
    answers++;
    await sleep(1);
  }
  client.close();
  return { maxMs, answers };
}

async function swap(): Promise<void> {
  const lines = Number(values.lines);
  const list = join(dir, 'big.netset');
  writeFileSync(list, addresses(lines, 0x01000000));
  const next = values.garbage ? '192.0.2.1\n' + 'not-an-address\n'.repeat(lines) : addresses(lines, 0x20000000);
  const config = join(dir, 'iprep.yaml');
  writeFileSync(config, `lists:\n  - { name: big, path: ${list}, penalty: 10, max-shrink: 1 }\nadmin: { enabled: false }\n`);
  const port = await freePort();
  const agent = await spawnAgent(['node', spoa, '-c', config, '-n', '1', '-p', String(port)], { port, startTimeoutMs: 120_000 });
  try {
    const seconds = Number(values.seconds);
    let swappedAt = 0;
    const written = (async () => {
      await sleep(1000 + 3000); // warm-up, then 3 s of the window
      swappedAt = Date.now();
      await writeFile(list, next);
    })();
    let loadDone = false;
    const probe = longestAnswer(port, () => loadDone);
    const result = await runLoad({ target: { port }, rate: Number(values.rate), connections: 4, depth: 16, durationMs: seconds * 1000, warmupMs: 1000 });
    loadDone = true;
    const gaps = await probe;
    await written;
    const updated = /list updated|keeping the last good copy|invalid items/.test(agent.output());
    const l = result.latency;
    console.log(
      `${lines} ${values.garbage ? 'garbage' : 'valid'} lines swapped at t+3s of ${seconds}s, ${values.rate} NOTIFY/s: ` +
        `p50 ${l.p50Us} µs, p99 ${l.p99Us} µs, max ${(l.maxUs / 1000).toFixed(1)} ms, acks ${result.acks}/${result.sent}, errors ${result.errors}, ` +
        `longest single answer ${gaps.maxMs.toFixed(1)} ms (of ${gaps.answers}), ` +
        `swap seen in log: ${updated}, RSS ${mib(agent.stats().rssBytes)} MiB`,
    );
    if (!updated) console.log(agent.output().slice(-2000));
    void swappedAt;
  } finally {
    await agent.stop();
  }
}

async function startHang(): Promise<void> {
  const { server, base } = await listServer(0, true);
  const [port, adminPort] = [await freePort(), await freePort()];
  const file = join(dir, 'local.netset');
  writeFileSync(file, '198.51.100.1\n');
  const config = join(dir, 'iprep.yaml');
  writeFileSync(
    config,
    `lists:\n  - { name: local, path: ${file}, score: 0 }\n  - { name: remote, url: ${base}/hang, penalty: 10 }\ncache-dir: ${join(dir, 'cache')}\n`,
  );
  const started = Date.now();
  const { child, log } = startSpoa(config, port, adminPort, false);
  let accepted: number | undefined;
  while (Date.now() - started < 60_000 && child.exitCode === null) {
    if (await portOpen(port)) {
      accepted = Date.now() - started;
      break;
    }
    await sleep(20);
  }
  const healthText = await health(adminPort);
  child.kill('SIGTERM');
  await once(child, 'close');
  server.closeAllConnections();
  server.close();
  console.log(`URL that hangs: SPOP port accepted after ${accepted ?? '-'} ms; /health then: ${healthText}`);
  if (accepted === undefined) console.log(log().slice(-2000));
}

/**
 * One reload of a big list file in this process, without traffic: what the main thread pays for it,
 * as GC pauses (PerformanceObserver 'gc') and the longest gap of a 1 ms timer. Less noisy than `swap`
 * on a shared machine; `--root` loads that checkout's built ListSource.
 */
async function mainThread(): Promise<void> {
  const lines = Number(values.lines);
  const { ListSource } = (await import(
    pathToFileURL(resolve(values.root, 'packages/iprep/dist/sources/index.js')).href
  )) as typeof import('../packages/iprep/src/sources/index.js');
  const list = join(dir, 'big.netset');
  writeFileSync(list, addresses(lines, 0x01000000));
  writeFileSync(`${list}.next`, values.garbage ? '192.0.2.1\n' + 'not-an-address\n'.repeat(lines) : addresses(lines, 0x20000000));
  const source = new ListSource(
    {
      name: 'big',
      format: 'netset',
      path: list,
      refreshMs: 3_600_000,
      category: 'bench',
      minEntries: 0,
      maxShrink: 1,
      maxEntries: lines + 1,
      maxBytes: 2 ** 30,
    },
    { cacheDir: dir, watch: false },
  );
  const pauses: string[] = [];
  const kinds: Record<number, string> = { 1: 'scavenge', 2: 'minor', 4: 'mark-compact', 8: 'incremental', 16: 'weak' };
  const observer = new PerformanceObserver((items) => {
    for (const e of items.getEntries()) pauses.push(`${kinds[(e as { detail?: { kind: number } }).detail?.kind ?? 0] ?? '?'} ${e.duration.toFixed(1)}`);
  });
  const loop = watchEventLoop();
  try {
    await source.load();
    const first = { longest: loop.longest(), pauses: pauses.splice(0) };
    await sleep(500);
    observer.observe({ entryTypes: ['gc'] });
    loop.reset();
    await rename(`${list}.next`, list); // off the main thread: replacing a 64 MiB file takes the kernel ~25 ms
    await source.refresh().catch((err: Error) => console.log(`refresh: ${err.message.slice(0, 200)}`));
    await sleep(1500); // the GC that frees the old copy comes later
    console.log(
      `${lines} ${values.garbage ? 'garbage' : 'valid'} lines: first load longest gap ${first.longest.toFixed(1)} ms; ` +
        `reload longest gap ${loop.longest().toFixed(1)} ms, main-thread GC (ms) ${pauses.join(', ') || 'none'}`,
    );
  } finally {
    loop.stop();
    observer.disconnect();
    source.stop();
  }
}

try {
  if (positionals[0] === 'big') await big();
  else if (positionals[0] === 'swap') await swap();
  else if (positionals[0] === 'start-hang') await startHang();
  else if (positionals[0] === 'main-thread') await mainThread();
  else throw new Error('usage: bench/lists.ts big|swap|start-hang|main-thread [options]');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
