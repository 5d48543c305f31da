/**
 * Memory of the agent: RSS with many idle connections, and RSS over a long
 * run under load (growth would be a leak).
 *
 *   node --import tsx bench/memory.ts idle [--connections 1000]
 *   node --import tsx bench/memory.ts soak [--minutes 10] [-c 4] [-d 20]
 */
import { parseArgs } from 'node:util';
import { runLoad, spawnAgent } from 'spop-bench';
import { FakeHaproxy } from 'spop/testkit';
import { freePort } from 'test-support/ports';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    connections: { type: 'string', default: '1000' },
    minutes: { type: 'string', default: '10' },
    c: { type: 'string', default: '4' },
    d: { type: 'string', default: '20' },
  },
});
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

const port = await freePort();
// Room for every idle connection asked for (the agent refuses those beyond --max-connections, 1000 by default).
const maxConnections = String(Math.max(1000, Number(values.connections) + 10));
const agent = await spawnAgent(
  ['node', 'packages/iprep/bin/spoa.js', '-p', String(port), '-n', '1', '--host', '127.0.0.1', '--max-connections', maxConnections],
  {
    port,
  },
);
try {
  if (positionals[0] === 'soak') await soak();
  else await idle();
} finally {
  await agent.stop();
}

async function idle(): Promise<void> {
  const count = Number(values.connections);
  const before = agent.stats().rssBytes;
  const clients: FakeHaproxy[] = [];
  for (let i = 0; i < count; i++) {
    const client = await FakeHaproxy.connect({ port });
    const hello = await client.hello({ capabilities: 'pipelining' });
    if (hello.type !== 'agent-hello') throw new Error(`connection ${i}: ${hello.type}`);
    clients.push(client);
  }
  await new Promise((r) => setTimeout(r, 2000));
  const after = agent.stats().rssBytes;
  console.log(`| idle connections | RSS before | RSS with them | per connection |`);
  console.log(`|---|---|---|---|`);
  console.log(`| ${count} | ${mib(before)} MiB | ${mib(after)} MiB | ${((after - before) / count / 1024).toFixed(1)} KiB |`);
  for (const c of clients) c.close();
  if (after >= 100 * 2 ** 20) process.exitCode = 1;
}

async function soak(): Promise<void> {
  const minutes = Number(values.minutes);
  const samples: Array<{ minute: number; rss: number; throughput: number; errors: number }> = [];
  const sliceMs = 30_000;
  const slices = Math.max(1, Math.round((minutes * 60_000) / sliceMs));
  console.log('| minute | ACK/s | p99 µs | errors | agent RSS MiB |');
  console.log('|---|---|---|---|---|');
  for (let i = 0; i < slices; i++) {
    const r = await runLoad({
      target: { host: '127.0.0.1', port },
      connections: Number(values.c),
      depth: Number(values.d),
      durationMs: sliceMs,
      warmupMs: i === 0 ? 2000 : 0,
      family: 'mixed',
    });
    const rss = agent.stats().rssBytes;
    const minute = ((i + 1) * sliceMs) / 60_000;
    samples.push({ minute, rss, throughput: r.throughput, errors: r.errors });
    console.log(`| ${minute.toFixed(1)} | ${Math.round(r.throughput)} | ${Math.round(r.latency.p99Us)} | ${r.errors} | ${mib(rss)} |`);
  }
  // Growth between the end of the first minute and the end: warm-up (JIT, pools) is excluded.
  const base = samples[Math.min(1, samples.length - 1)]!.rss;
  const last = samples.at(-1)!.rss;
  const peak = Math.max(...samples.map((s) => s.rss));
  console.log(`\nRSS after minute 1: ${mib(base)} MiB, at the end: ${mib(last)} MiB, peak: ${mib(peak)} MiB`);
  if (samples.some((s) => s.errors > 0)) process.exitCode = 1;
}
