import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Logger } from 'spop';
import { formatRange } from '../../src/net/address.js';
import { ListCache, ListSource, type ListSourceOptions } from '../../src/sources/index.js';
import type { ListConfig, LoadedList } from '../../src/types.js';
import { watchEventLoop } from 'test-support/event-loop';

// ---------------------------------------------------------------------------
// Helpers

let root: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'iprep-sources-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A full garbage collection, without starting the test process with --expose-gc. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

const tempDir = (): Promise<string> => mkdtemp(path.join(root, 'case-'));

function listConfig(overrides: Partial<ListConfig>): ListConfig {
  return { name: 'test-list', format: 'netset', refreshMs: 3_600_000, category: 'test', minEntries: 1, maxShrink: 0.5, ...overrides };
}

/** `count` distinct /32s of 192.0.2.0/24, one per line. */
function netset(count: number, prefix = '192.0.2'): string {
  return '# test list\n' + Array.from({ length: count }, (_, i) => `${prefix}.${i}`).join('\n') + '\n';
}

const ranges = (list: LoadedList | undefined): string[] => [...(list?.entries ?? [])].map((e) => formatRange(e.range));

interface LogLine {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}
function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, ...(fields ? { fields } : {}) });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A list server on 127.0.0.1, port 0: serves `body` with validators, answers 304 to matching conditional GETs. */
class ListServer {
  body = '';
  etag: string | undefined = '"v1"';
  lastModified: string | undefined = 'Mon, 30 Nov 2026 09:00:00 GMT';
  /** When set, every request gets this status and no body. */
  forcedStatus: number | undefined;
  /** When true, requests are never answered (timeouts). */
  hang = false;
  readonly requests: IncomingHttpHeaders[] = [];
  readonly #server: Server;

  constructor() {
    this.#server = createServer((req, res) => {
      this.requests.push(req.headers);
      if (this.hang) return;
      if (this.forcedStatus !== undefined) {
        res.writeHead(this.forcedStatus).end('error page');
        return;
      }
      const validators: Record<string, string> = {};
      if (this.etag !== undefined) validators['etag'] = this.etag;
      if (this.lastModified !== undefined) validators['last-modified'] = this.lastModified;
      const inm = req.headers['if-none-match'];
      if (this.etag !== undefined && inm === this.etag) {
        res.writeHead(304, validators).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', ...validators }).end(this.body);
    });
  }

  async start(): Promise<string> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/list.netset`;
  }

  async close(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise((resolve) => this.#server.close(resolve));
    this.#server.closeAllConnections();
    await closed;
  }
}

const servers: ListServer[] = [];
const sources: ListSource[] = [];
afterEach(async () => {
  for (const source of sources.splice(0)) source.stop();
  for (const server of servers.splice(0)) await server.close();
});

async function startServer(body: string): Promise<{ server: ListServer; url: string }> {
  const server = new ListServer();
  server.body = body;
  servers.push(server);
  return { server, url: await server.start() };
}

function makeSource(config: ListConfig, options: ListSourceOptions): ListSource {
  const source = new ListSource(config, options);
  sources.push(source);
  return source;
}

/** Resolves with the next list start() delivers, or rejects after `ms`. */
function nextUpdate(updates: LoadedList[], count: number, ms = 5_000): Promise<LoadedList> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + ms;
    const poll = (): void => {
      if (updates.length >= count) resolve(updates[count - 1] as LoadedList);
      else if (Date.now() > deadline) reject(new Error(`no update #${count} within ${ms} ms (got ${updates.length})`));
      else setTimeout(poll, 20);
    };
    poll();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// URL lists

describe('ListSource: URL lists', () => {
  it('fetches, reports status, and saves the last good copy atomically with its validators', async () => {
    const { server, url } = await startServer(netset(3));
    const cacheDir = path.join(await tempDir(), 'cache', 'nested');
    const source = makeSource(listConfig({ url }), { cacheDir, now: () => 1_795_939_200_000 });
    assert.equal(source.current(), undefined);
    assert.deepEqual(source.status(), { name: 'test-list', format: 'netset', origin: url, entries: 0, loadedAt: null, lastError: null, loading: true });

    const list = await source.load();
    assert.deepEqual(ranges(list), ['192.0.2.0', '192.0.2.1', '192.0.2.2']);
    assert.equal(list.origin, url);
    assert.equal(list.loadedAt, 1_795_939_200_000);
    assert.equal(source.current(), list);
    assert.deepEqual(source.status(), {
      name: 'test-list',
      format: 'netset',
      origin: url,
      entries: 3,
      loadedAt: 1_795_939_200_000,
      lastError: null,
      loading: false,
    });

    assert.equal(server.requests.length, 1);
    assert.equal(server.requests[0]?.['if-none-match'], undefined);
    assert.equal(server.requests[0]?.['if-modified-since'], undefined);

    const cache = new ListCache(cacheDir, 'test-list');
    assert.equal(await readFile(cache.bodyPath, 'utf8'), netset(3));
    assert.deepEqual(JSON.parse(await readFile(cache.metaPath, 'utf8')), {
      url,
      etag: '"v1"',
      lastModified: 'Mon, 30 Nov 2026 09:00:00 GMT',
      fetchedAt: 1_795_939_200_000,
    });
    assert.deepEqual((await readdir(cacheDir)).sort(), ['test-list.list', 'test-list.meta.json'], 'no temp files left behind');
  });

  it('sends If-None-Match / If-Modified-Since and treats 304 as unchanged', async () => {
    const { server, url } = await startServer(netset(3));
    const source = makeSource(listConfig({ url }), { cacheDir: await tempDir() });
    const first = await source.load();
    assert.equal(await source.refresh(), undefined);
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[1]?.['if-none-match'], '"v1"');
    assert.equal(server.requests[1]?.['if-modified-since'], 'Mon, 30 Nov 2026 09:00:00 GMT');
    assert.equal(source.current(), first);

    server.body = netset(4);
    server.etag = '"v2"';
    const second = await source.refresh();
    assert.deepEqual(ranges(second).length, 4);
    assert.equal(source.current(), second);
    assert.equal(await source.refresh(), undefined);
    assert.equal(server.requests[3]?.['if-none-match'], '"v2"');
  });

  it('treats a 200 with the same body as unchanged when the server sends no validators', async () => {
    const { server, url } = await startServer(netset(3));
    server.etag = undefined;
    server.lastModified = undefined;
    const source = makeSource(listConfig({ url }), { cacheDir: await tempDir() });
    await source.load();
    assert.equal(await source.refresh(), undefined);
    assert.equal(server.requests[1]?.['if-none-match'], undefined);
    assert.equal(server.requests[1]?.['if-modified-since'], undefined);
  });

  it('keeps the last good copy when a new one shrinks too much, has too few entries, is garbage or an HTTP error', async () => {
    const { server, url } = await startServer(netset(10));
    const cacheDir = await tempDir();
    const source = makeSource(listConfig({ url, minEntries: 3, maxShrink: 0.5 }), { cacheDir });
    const good = await source.load();
    const cache = new ListCache(cacheDir, 'test-list');

    const attempts: Array<{ body?: string; status?: number; error: RegExp }> = [
      { body: netset(4), error: /list test-list: http:.*: 4 entries against 10 in the last good copy, a shrink beyond maxShrink 0\.5$/ },
      { body: netset(2), error: /list test-list: http:.*: 2 entries, fewer than the 3 required \(minEntries\)$/ },
      { body: '<html><body>Service Unavailable</body></html>\n', error: /list test-list: http:.*: no valid entry in 1 data item/ },
      { status: 500, error: /list test-list: GET http:.*: HTTP 500 Internal Server Error$/ },
    ];
    for (const [i, attempt] of attempts.entries()) {
      server.forcedStatus = attempt.status;
      server.etag = `"bad${i}"`;
      if (attempt.body !== undefined) server.body = attempt.body;
      await assert.rejects(source.refresh(), attempt.error);
      assert.equal(source.current(), good, `attempt ${i} kept the last good copy`);
      assert.match(source.status().lastError ?? '', attempt.error);
      assert.equal(source.status().entries, 10);
      assert.equal(await readFile(cache.bodyPath, 'utf8'), netset(10), `attempt ${i} left the cached copy alone`);
    }

    // Exactly the allowed shrink is accepted, and success clears lastError.
    server.forcedStatus = undefined;
    server.etag = '"ok"';
    server.body = netset(5);
    const shrunk = await source.refresh();
    assert.equal(shrunk?.entries.length, 5);
    assert.equal(source.status().lastError, null);
    assert.equal(await readFile(cache.bodyPath, 'utf8'), netset(5));
  });

  it('runs overlapping refresh() calls one after the other', async () => {
    const { server, url } = await startServer(netset(3));
    const source = makeSource(listConfig({ url }), { cacheDir: await tempDir() });
    await source.load();
    server.body = netset(4);
    server.etag = '"v2"';
    const [first, second] = await Promise.all([source.refresh(), source.refresh()]);
    assert.equal(first?.entries.length, 4);
    assert.equal(second, undefined, "the second call sees the first one's copy and gets a 304");
    assert.equal(server.requests[2]?.['if-none-match'], '"v2"');
  });

  it('a 304 to a request without validators is an error, not "unchanged"', async () => {
    const { server, url } = await startServer(netset(3));
    server.forcedStatus = 304;
    const source = makeSource(listConfig({ url }), { cacheDir: await tempDir() });
    await assert.rejects(source.load(), /list test-list: GET http:.*: HTTP 304 Not Modified; no last good copy in /);
  });

  it('starts cold from the disk cache when the server is down, and says so', async () => {
    const { server, url } = await startServer(netset(3));
    const cacheDir = await tempDir();
    let clock = 1_000;
    const first = makeSource(listConfig({ url }), { cacheDir, now: () => clock });
    await first.load();
    await server.close();

    clock = 2_000;
    const logger = recordingLogger();
    const cold = makeSource(listConfig({ url }), { cacheDir, now: () => clock, logger });
    const list = await cold.load();
    const cache = new ListCache(cacheDir, 'test-list');
    assert.deepEqual(ranges(list), ['192.0.2.0', '192.0.2.1', '192.0.2.2']);
    assert.equal(list.origin, `${cache.bodyPath} (last good copy of ${url})`);
    assert.equal(list.loadedAt, 1_000, 'loadedAt is when the copy was fetched');
    const status = cold.status();
    assert.equal(status.origin, list.origin);
    assert.match(status.lastError ?? '', /list test-list: GET http:\/\/127\.0\.0\.1:\d+\/list\.netset: fetch failed: .*ECONNREFUSED/);
    assert.ok(
      logger.lines.some((l) => l.level === 'warn' && /ECONNREFUSED.*; using the last good copy$/.test(l.message)),
      JSON.stringify(logger.lines),
    );
    // Still down: refresh fails and keeps the cached copy.
    await assert.rejects(cold.refresh(), /ECONNREFUSED/);
    assert.equal(cold.current(), list);
  });

  it('a cold start with a cache sends its validators; a 304 confirms the cached copy', async () => {
    const { server, url } = await startServer(netset(3));
    const cacheDir = await tempDir();
    await makeSource(listConfig({ url }), { cacheDir }).load();
    const cold = makeSource(listConfig({ url }), { cacheDir });
    const list = await cold.load();
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[1]?.['if-none-match'], '"v1"');
    assert.equal(list.origin, url);
    assert.equal(list.entries.length, 3);
    assert.equal(cold.status().lastError, null);
  });

  it('a cold start checks a new body against the cached copy (maxShrink)', async () => {
    const { server, url } = await startServer(netset(10));
    const cacheDir = await tempDir();
    await makeSource(listConfig({ url }), { cacheDir }).load();
    server.body = netset(2);
    server.etag = '"v2"';
    const cold = makeSource(listConfig({ url }), { cacheDir });
    const list = await cold.load();
    assert.equal(list.entries.length, 10);
    assert.match(list.origin, /last good copy of/);
    assert.match(cold.status().lastError ?? '', /shrink beyond maxShrink/);
  });

  it('ignores a cached copy of another URL, and an unreadable one', async () => {
    const { url } = await startServer(netset(3));
    const stopped = await startServer(netset(3));
    await stopped.server.close();
    const down = stopped.url; // nothing listens there any more
    const cacheDir = await tempDir();
    const cache = new ListCache(cacheDir, 'test-list');
    await cache.write([new TextEncoder().encode(netset(5))], { url: `${url}?elsewhere`, fetchedAt: 1 });
    await assert.rejects(makeSource(listConfig({ url: down }), { cacheDir }).load(), /no last good copy/);

    await writeFile(cache.metaPath, '{not json');
    const logger = recordingLogger();
    await assert.rejects(makeSource(listConfig({ url: down }), { cacheDir, logger }).load(), /no last good copy/);
    assert.ok(logger.lines.some((l) => l.level === 'warn' && l.message.includes('the cached copy is unusable') && l.message.includes('not JSON')));

    // A good fetch rewrites the cache for the new URL.
    await makeSource(listConfig({ url }), { cacheDir }).load();
    assert.equal((await cache.read(2 ** 20))?.meta.url, url);
  });

  it('gives up on a fetch after fetchTimeoutMs, even when the GC runs meanwhile', { timeout: 10_000 }, async () => {
    const { server, url } = await startServer(netset(3));
    server.hang = true;
    const source = makeSource(listConfig({ url }), { cacheDir: await tempDir(), fetchTimeoutMs: 150 });
    const started = Date.now();
    const loading = source.load();
    // A full GC while the fetch hangs: Node 20 collects an AbortSignal.timeout() held only by
    // AbortSignal.any() (nodejs/node#57736), and the fetch then waited 300 s for undici's own timeout.
    for (let i = 0; i < 5; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      collectGarbage();
    }
    await assert.rejects(loading, /list test-list: GET http:.*: timed out after 150 ms; no last good copy in /);
    assert.ok(Date.now() - started < 3_000);
  });

  it('refreshes on a timer (refreshMs, jittered) and delivers each new copy; stop() ends it', async () => {
    const { server, url } = await startServer(netset(3));
    const logger = recordingLogger();
    const source = makeSource(listConfig({ url, refreshMs: 60 }), { cacheDir: await tempDir(), logger });
    await source.load();
    const updates: LoadedList[] = [];
    source.start((list) => updates.push(list));
    assert.throws(() => source.start(() => undefined), /list test-list: already started/);

    await sleep(200); // a few 304s
    assert.equal(updates.length, 0);
    assert.ok(server.requests.length >= 3, `expected refreshes, got ${server.requests.length} requests`);

    server.body = netset(4);
    server.etag = '"v2"';
    assert.equal((await nextUpdate(updates, 1)).entries.length, 4);

    server.forcedStatus = 503;
    await sleep(200);
    assert.equal(updates.length, 1);
    assert.ok(logger.lines.some((l) => l.level === 'warn' && /HTTP 503 Service Unavailable; keeping the last good copy$/.test(l.message)));
    assert.match(source.status().lastError ?? '', /HTTP 503/);

    source.stop();
    await sleep(50); // a refresh already in flight may finish
    const count = server.requests.length;
    await sleep(250);
    assert.equal(server.requests.length, count, 'no request after stop()');
  });
});

// ---------------------------------------------------------------------------
// File lists

describe('ListSource: file lists', () => {
  it('loads a file, and reports what is wrong with a missing or bad one', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'list.netset');
    await writeFile(file, netset(2) + 'bad line here\n');
    const source = makeSource(listConfig({ path: file }), { cacheDir: dir });
    const list = await source.load();
    assert.deepEqual(ranges(list), ['192.0.2.0', '192.0.2.1']);
    assert.equal(list.origin, file);
    assert.deepEqual(list.warnings, [`${file}:4: unexpected text after the address: "line here"`]);
    assert.equal(await source.refresh(), undefined, 'same content');

    const missing = path.join(dir, 'missing.netset');
    await assert.rejects(makeSource(listConfig({ path: missing }), { cacheDir: dir }).load(), (err: Error) => {
      assert.match(err.message, /list test-list: cannot read .*missing\.netset: ENOENT/);
      return true;
    });
    await writeFile(file, netset(1));
    const strict = makeSource(listConfig({ path: file, minEntries: 2 }), { cacheDir: dir });
    await assert.rejects(strict.load(), /list test-list: .*list\.netset: 1 entries, fewer than the 2 required \(minEntries\)$/);
    assert.match(strict.status().lastError ?? '', /fewer than the 2 required/);
  });

  it('rejects a config with both or neither of path and url', () => {
    assert.throws(() => new ListSource(listConfig({ path: '/x', url: 'http://127.0.0.1/' }), { cacheDir: root }), /exactly one of path and url/);
    assert.throws(() => new ListSource(listConfig({}), { cacheDir: root }), /exactly one of path and url/);
  });

  it('reloads a watched file when it is rewritten or replaced by rename, and keeps the last good copy on bad content', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'list.netset');
    await writeFile(file, netset(3));
    const logger = recordingLogger();
    const source = makeSource(listConfig({ path: file, maxShrink: 0.9 }), { cacheDir: dir, logger });
    await source.load();
    const updates: LoadedList[] = [];
    source.start((list) => updates.push(list));

    await writeFile(file, netset(4));
    assert.equal((await nextUpdate(updates, 1)).entries.length, 4);

    // Editors that save by writing a temp file and renaming it over the original.
    const temp = path.join(dir, '.list.netset.swp');
    await writeFile(temp, netset(5, '198.51.100'));
    await rename(temp, file);
    const replaced = await nextUpdate(updates, 2);
    assert.deepEqual(ranges(replaced).slice(0, 2), ['198.51.100.0', '198.51.100.1']);

    // Bad content: no update, logged, last good copy kept; then a good write again.
    await writeFile(file, 'garbage\n');
    await sleep(600);
    assert.equal(updates.length, 2);
    assert.equal(source.current(), replaced);
    assert.match(source.status().lastError ?? '', /no valid entry/);
    assert.ok(logger.lines.some((l) => l.level === 'warn' && l.message.endsWith('; keeping the last good copy')));

    // Other files in the directory do not trigger reloads.
    await writeFile(path.join(dir, 'other.txt'), 'x');
    await writeFile(file, netset(6));
    assert.equal((await nextUpdate(updates, 3)).entries.length, 6);
    assert.equal(source.status().lastError, null);

    source.stop();
    await writeFile(file, netset(7));
    await sleep(500);
    assert.equal(updates.length, 3, 'no update after stop()');
  });

  it('debounces a burst of writes into one reload of the final content', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'list.netset');
    await writeFile(file, netset(3));
    const source = makeSource(listConfig({ path: file }), { cacheDir: dir });
    await source.load();
    const updates: LoadedList[] = [];
    source.start((list) => updates.push(list));
    for (let count = 4; count <= 8; count++) writeFileSync(file, netset(count));
    assert.equal((await nextUpdate(updates, 1)).entries.length, 8);
    await sleep(500);
    assert.equal(updates.length, 1);
  });

  it('does not watch when watch is false', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'list.netset');
    await writeFile(file, netset(3));
    const source = makeSource(listConfig({ path: file }), { cacheDir: dir, watch: false });
    await source.load();
    const updates: LoadedList[] = [];
    source.start((list) => updates.push(list));
    await writeFile(file, netset(4));
    await sleep(500);
    assert.equal(updates.length, 0);
    assert.equal((await source.refresh())?.entries.length, 4, 'refresh() still reads it');
  });
});

// ---------------------------------------------------------------------------
// Bounds: size, entries, and the main thread

/** Serves `/` as an endless (or `bytes`-long) stream of netset lines made on the fly; counts what it wrote. */
async function streamingServer(options: {
  bytes?: number;
  contentLength?: number;
}): Promise<{ url: string; written: () => number; close: () => Promise<void> }> {
  const block = Buffer.from(netset(250, '198.51.100').repeat(64)); // ~240 KB, repeated
  let written = 0;
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', ...(options.contentLength === undefined ? {} : { 'content-length': String(options.contentLength) }) });
    let left = options.bytes ?? Infinity;
    let open = true;
    res.on('close', () => (open = false));
    const pump = (): void => {
      while (open && left > 0) {
        const chunk = left >= block.length ? block : block.subarray(0, left);
        left -= chunk.length;
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (open) res.end();
    };
    pump();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/big.netset`,
    written: () => written,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('ListSource: bounds', () => {
  it('refuses a download whose Content-Length is over max-bytes before reading it', { timeout: 20_000 }, async () => {
    const stream = await streamingServer({ contentLength: 3 * 2 ** 30 });
    try {
      const source = makeSource(listConfig({ url: stream.url, maxBytes: 2 ** 20 }), { cacheDir: await tempDir() });
      const started = Date.now();
      await assert.rejects(
        source.load(),
        /^Error: list test-list: GET http:.*: the body is 3221225472 bytes, more than 1 MiB \(1048576 bytes\): raise max-bytes \(of the list, or list-defaults\.max-bytes\) to accept it; no last good copy in /,
      );
      assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
      assert.match(source.status().lastError ?? '', /more than 1 MiB/);
    } finally {
      await stream.close();
    }
  });

  it('cuts off an endless download without Content-Length as soon as it passes max-bytes', { timeout: 20_000 }, async () => {
    const stream = await streamingServer({});
    try {
      const source = makeSource(listConfig({ url: stream.url, maxBytes: 2 ** 20 }), { cacheDir: await tempDir(), fetchTimeoutMs: 15_000 });
      const started = Date.now();
      await assert.rejects(source.load(), /the body is more than 1 MiB \(1048576 bytes\): raise max-bytes .*; no last good copy in /);
      assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
      await sleep(200);
      const written = stream.written();
      await sleep(300);
      assert.equal(stream.written(), written, 'the server stopped writing: the connection was closed');
      assert.ok(written < 64 * 2 ** 20, `the server wrote ${written} bytes`);
    } finally {
      await stream.close();
    }
  });

  it('refuses a file over max-bytes from its size, before reading it', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'huge.netset');
    await writeFile(file, netset(3));
    await truncate(file, 3 * 2 ** 30); // sparse: 3 GiB on paper, nothing on disk
    const source = makeSource(listConfig({ path: file, minEntries: 0, maxBytes: 2 ** 20 }), { cacheDir: dir });
    const started = Date.now();
    await assert.rejects(
      source.load(),
      /^Error: list test-list: .*huge\.netset: the file is 3221225472 bytes, more than 1 MiB \(1048576 bytes\): raise max-bytes/,
    );
    assert.ok(Date.now() - started < 1_000);
  });

  it('ignores a cached copy over max-bytes, saying so', async () => {
    const { url } = await startServer(netset(200));
    const cacheDir = await tempDir();
    await makeSource(listConfig({ url }), { cacheDir }).load();
    const stopped = await startServer('');
    await stopped.server.close();
    const logger = recordingLogger();
    const cold = makeSource(listConfig({ url, maxBytes: 1000 }), { cacheDir, logger });
    assert.equal(await cold.loadCached(), undefined);
    assert.ok(
      logger.lines.some((l) => l.level === 'warn' && /the cached copy is unusable: .*more than 1000 bytes/.test(l.message)),
      JSON.stringify(logger.lines),
    );
  });

  it('refuses a copy with more entries than max-entries, and keeps the last good copy', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'list.netset');
    await writeFile(file, netset(5));
    const source = makeSource(listConfig({ path: file, maxEntries: 5 }), { cacheDir: dir, watch: false });
    const good = await source.load();
    await writeFile(file, netset(6));
    await assert.rejects(source.refresh(), /^Error: list test-list: .*list\.netset: more than 5 entries \(max-entries\)$/);
    assert.equal(source.current(), good);
  });

  it('parses and compiles a big list in a worker thread: the event loop keeps turning', { timeout: 60_000 }, async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'big.netset');
    const lines: string[] = [];
    for (let i = 0; i < 300_000; i++) lines.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    lines.push('2001:db8::/32 # and one IPv6 prefix', 'not_an_address');
    await writeFile(file, lines.join('\n') + '\n');
    const source = makeSource(listConfig({ path: file }), { cacheDir: dir, watch: false });
    const loop = watchEventLoop();
    try {
      const list = await source.load();
      assert.equal(list.entries.length, 300_001);
      assert.deepEqual(list.warnings, [`${file}:300002: not an address or prefix: "not_an_address"`]);
      assert.equal(list.table.lookup(Uint8Array.of(10, 4, 147, 223)), 0x493df, 'entry 299,999 is 10.4.147.223');
      assert.equal(formatRange(list.entries.at(list.table.lookup(Uint8Array.of(10, 1, 0, 7)))!.range), '10.1.0.7');
      assert.equal(formatRange(list.entries.at(300_000)!.range), '2001:db8::/32');
    } finally {
      loop.stop();
    }
    // Parsing 300,000 lines on the main thread took ~1 s; the worker thread leaves it a few ms of bookkeeping.
    assert.ok(loop.longest() < 150, `the event loop paused for ${loop.longest().toFixed(0)} ms`);
  });
});
