/**
 * `npm run bench`: the benchmark suite. Runs spop-bench over the shapes of
 * BENCHMARKS.md (connections x depth, IPv4 and IPv6, one worker and five),
 * each time side by side with the floor agent, then prints Markdown tables
 * of absolute figures and agent/floor ratios.
 *
 *   node --import tsx bench/suite.ts [--quick] [--seconds N] [--json FILE]
 *
 * The end-to-end benchmark through HAProxy is bench/e2e-haproxy.ts.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type BenchReport, parseBenchArgs, runBench } from 'spop/bench';

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
for (const [connections, depth] of [[4, 20], [32, 8], [256, 1]] as const) {
  shapes.push({ connections, depth, family: 'ipv4', workers: 5 });
}

interface Row {
  shape: Shape;
  report: BenchReport;
}

const rows: Row[] = [];
for (const shape of shapes) {
  const options = parseBenchArgs([
    '--agent', agent(shape.workers), '--floor',
    '-c', String(shape.connections), '-d', String(shape.depth),
    '-t', String(seconds), '--warmup', '1', '--family', shape.family,
  ]);
  if (options === 'help') throw new Error('unreachable');
  const report = await runBench(options);
  rows.push({ shape, report });
  process.stderr.write(`done: ${label(shape)} ${ratioText(report)}\n`);
}

function label(s: Shape): string {
  return `${s.connections}x${s.depth} ${s.family} -n ${s.workers}`;
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
for (const { shape, report } of rows) {
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
process.stdout.write(`${lines.join('\n')}\n`);
if (values.json) writeFileSync(values.json, JSON.stringify(rows, null, 2));
const failed = rows.some(({ report }) => (report.summary.agent?.errors ?? 0) > 0);
process.exitCode = failed ? 1 : 0;
