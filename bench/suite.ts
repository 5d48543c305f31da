/**
 * `npm run bench`: the benchmark suite. Runs spop-bench over the shapes of
 * BENCHMARKS.md (connections x depth, IPv4 and IPv6, one worker and five),
 * each time side by side with the floor agent, then prints Markdown tables
 * of absolute figures and agent/floor ratios. The closed-loop shapes give the
 * most each agent does; the open-loop ones (256 connections x 1 at a fixed
 * rate) the latency at a given load, which is what HAProxy's streams see.
 *
 *   node --import tsx bench/suite.ts [--quick] [--seconds N] [--json FILE]
 *
 * The end-to-end benchmark through HAProxy is bench/e2e-haproxy.ts.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type BenchReport, parseBenchArgs, runBench } from 'spop-bench';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    seconds: { type: 'string' },
    json: { type: 'string' },
  },
});
const seconds = Number(values.seconds ?? (values.quick ? 2 : 4));

const agent = (workers: number): string => `node packages/iprep/bin/spoa.js -p {port} -n ${workers} --host {host}`;

interface Shape {
  connections: number;
  depth: number;
  family: 'ipv4' | 'ipv6';
  workers: number;
  /** Open loop: frames per second offered; closed loop when absent. */
  rate?: number;
}

const shapes: Shape[] = [];
for (const family of ['ipv4', 'ipv6'] as const) {
  for (const connections of [1, 4, 32, 256]) {
    for (const depth of [1, 8, 20]) {
      if (values.quick && family === 'ipv6' && !(connections === 4 && depth === 20)) continue;
      shapes.push({ connections, depth, family, workers: 1 });
    }
  }
}
for (const [connections, depth] of [
  [4, 20],
  [32, 8],
  [256, 1],
] as const) {
  shapes.push({ connections, depth, family: 'ipv4', workers: 5 });
}
for (const rate of values.quick ? [10_000] : [5_000, 10_000, 20_000, 30_000]) {
  shapes.push({ connections: 256, depth: 1, family: 'ipv4', workers: 1, rate });
}

interface Row {
  shape: Shape;
  report: BenchReport;
}

const rows: Row[] = [];
for (const shape of shapes) {
  const options = parseBenchArgs([
    '--agent',
    agent(shape.workers),
    '--floor',
    '-c',
    String(shape.connections),
    '-d',
    String(shape.depth),
    '-t',
    String(seconds),
    '--warmup',
    '1',
    '--family',
    shape.family,
    ...(shape.rate === undefined ? [] : ['--rate', String(shape.rate)]),
  ]);
  if (options === 'help') throw new Error('unreachable');
  const report = await runBench(options);
  rows.push({ shape, report });
  process.stderr.write(`done: ${label(shape)} ${ratioText(report)}\n`);
}

function label(s: Shape): string {
  return `${s.connections}x${s.depth} ${s.family} -n ${s.workers}${s.rate === undefined ? '' : ` at ${s.rate}/s`}`;
}

function ratioText(r: BenchReport): string {
  const q = r.ratio;
  return q ? `throughput ${q.throughput.toFixed(2)}x, p50 ${q.p50.toFixed(2)}x, CPU/ACK ${q.cpuPerAck?.toFixed(2) ?? '-'}x` : '';
}

const int = (n: number | undefined): string => (n === undefined ? '-' : Math.round(n).toLocaleString('en-US'));
const fixed = (n: number | undefined, d = 2): string => (n === undefined ? '-' : n.toFixed(d));

const lines = [
  '| shape (conns x depth) | family | workers | agent ACK/s | floor ACK/s | ratio | agent p50 / p99 µs | floor p50 / p99 µs | p50 ratio | agent CPU µs/ACK | floor CPU µs/ACK | CPU ratio | agent RSS MiB | errors |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const { shape, report } of rows.filter((r) => r.shape.rate === undefined)) {
  const a = report.summary.agent;
  const f = report.summary.floor;
  const q = report.ratio;
  lines.push(
    `| ${shape.connections} x ${shape.depth} | ${shape.family} | ${shape.workers} | ${int(a?.throughput)} | ${int(f?.throughput)} | ${fixed(q?.throughput)} | ` +
      `${int(a?.latency.p50Us)} / ${int(a?.latency.p99Us)} | ${int(f?.latency.p50Us)} / ${int(f?.latency.p99Us)} | ${fixed(q?.p50)} | ` +
      `${fixed(a?.agentCpuUsPerAck, 1)} | ${fixed(f?.agentCpuUsPerAck, 1)} | ${fixed(q?.cpuPerAck)} | ` +
      `${fixed(a?.agentRssBytes === undefined ? undefined : a.agentRssBytes / 2 ** 20, 1)} | ${(a?.errors ?? 0) + (f?.errors ?? 0)} |`,
  );
}
const open = rows.filter((r) => r.shape.rate !== undefined);
if (open.length > 0) {
  lines.push(
    '',
    '| open loop (conns x depth) | offered /s | agent ACK/s | floor ACK/s | agent p50 / p90 / p99 µs | floor p50 / p90 / p99 µs | agent CPU µs/ACK | floor CPU µs/ACK | errors |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const { shape, report } of open) {
    const a = report.summary.agent;
    const f = report.summary.floor;
    const pct = (l: { p50Us: number; p90Us: number; p99Us: number } | undefined): string =>
      l === undefined ? '-' : `${int(l.p50Us)} / ${int(l.p90Us)} / ${int(l.p99Us)}`;
    lines.push(
      `| ${shape.connections} x ${shape.depth} | ${int(shape.rate)} | ${int(a?.throughput)} | ${int(f?.throughput)} | ` +
        `${pct(a?.latency)} | ${pct(f?.latency)} | ${fixed(a?.agentCpuUsPerAck, 1)} | ${fixed(f?.agentCpuUsPerAck, 1)} | ` +
        `${(a?.errors ?? 0) + (f?.errors ?? 0)} |`,
    );
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
if (values.json) writeFileSync(values.json, JSON.stringify(rows, null, 2));
const failed = rows.some(({ report }) => (report.summary.agent?.errors ?? 0) > 0);
process.exitCode = failed ? 1 : 0;
