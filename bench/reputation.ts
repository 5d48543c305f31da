/**
 * What reputation mode costs per message: spop-bench against the random agent
 * (the seed) and against the reputation agent with real-sized data, each side
 * by side with the floor agent in the same run. The reputation agent gets a
 * generated deny list of 100,000 prefixes (IPv4 and IPv6), a CSV list of
 * 10,000 scored addresses, a 1,000-entry allowlist, the RFC 6890 table and
 * behaviour counting, all on (every address of the load is random, so every
 * message walks every table, and the behaviour tracker fills to its bound).
 *
 *   node --import tsx bench/reputation.ts [--seconds N] [--prefixes N]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type BenchReport, parseBenchArgs, runBench } from 'spop-bench';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, prefixes: { type: 'string', default: '100000' } } });
const seconds = Number(values.seconds);
const prefixes = Number(values.prefixes);

const dir = mkdtempSync(join(tmpdir(), 'iprep-bench-'));
const byte = (): number => Math.floor(Math.random() * 256);
const hex = (): string => Math.floor(Math.random() * 0x10000).toString(16);
const lines = (n: number, line: (i: number) => string): string => `${Array.from({ length: n }, (_, i) => line(i)).join('\n')}\n`;
writeFileSync(
  join(dir, 'deny.netset'),
  lines(prefixes, (i) => (i % 10 < 7 ? `${byte()}.${byte()}.${byte()}.0/${16 + (i % 9)}` : `2${hex().slice(1)}:${hex()}:${hex()}::/${32 + (i % 17)}`)),
);
writeFileSync(
  join(dir, 'scored.csv'),
  lines(10_000, () => `${byte()}.${byte()}.${byte()}.${byte()},${Math.floor(Math.random() * 101)}`),
);
writeFileSync(
  join(dir, 'allow.netset'),
  lines(1_000, () => `${byte()}.${byte()}.${byte()}.${byte()}`),
);
writeFileSync(
  join(dir, 'iprep.yaml'),
  `mode: reputation
allowlist: [{ file: allow.netset }]
lists:
  - { name: deny, path: deny.netset, score: 0, category: attacker, action: deny }
  - { name: scored, format: csv, path: scored.csv, category: partner }
behaviour: { enabled: true, max-clients: 100000 }
admin: { enabled: false }
`,
);

const agents = {
  random: 'node packages/iprep/bin/spoa.js -p {port} -n 1 --host {host}',
  reputation: `node packages/iprep/bin/spoa.js -p {port} -n 1 --host {host} --config ${join(dir, 'iprep.yaml')}`,
};

const rows: Array<{ agent: string; shape: string; family: string; report: BenchReport }> = [];
try {
  for (const [connections, depth] of [
    [1, 1],
    [4, 20],
    [32, 8],
  ] as const) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      for (const [name, command] of Object.entries(agents)) {
        const options = parseBenchArgs([
          '--agent',
          command,
          '--floor',
          '-c',
          String(connections),
          '-d',
          String(depth),
          '-t',
          String(seconds),
          '--warmup',
          '1',
          '--family',
          family,
          '--start-timeout',
          '60',
        ]);
        if (options === 'help') throw new Error('unreachable');
        const report = await runBench(options);
        rows.push({ agent: name, shape: `${connections} x ${depth}`, family, report });
        process.stderr.write(`done: ${name} ${connections}x${depth} ${family}\n`);
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const int = (n: number | undefined): string => (n === undefined ? '-' : Math.round(n).toLocaleString('en-US'));
const fixed = (n: number | undefined, d = 2): string => (n === undefined ? '-' : n.toFixed(d));
const out = [
  `Reputation data: ${prefixes.toLocaleString('en-US')} deny prefixes, 10,000 scored addresses, 1,000 allowlisted, RFC 6890, behaviour on.`,
  '',
  '| agent | shape | family | ACK/s | floor ACK/s | ratio | p50 / p99 µs | CPU µs/ACK | floor CPU µs/ACK | CPU ratio | RSS MiB | errors |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const { agent, shape, family, report } of rows) {
  const a = report.summary.agent;
  const f = report.summary.floor;
  out.push(
    `| ${agent} | ${shape} | ${family} | ${int(a?.throughput)} | ${int(f?.throughput)} | ${fixed(report.ratio?.throughput)} | ` +
      `${int(a?.latency.p50Us)} / ${int(a?.latency.p99Us)} | ${fixed(a?.agentCpuUsPerAck, 1)} | ${fixed(f?.agentCpuUsPerAck, 1)} | ` +
      `${fixed(report.ratio?.cpuPerAck)} | ${fixed(a?.agentRssBytes === undefined ? undefined : a.agentRssBytes / 2 ** 20, 1)} | ${a?.errors ?? 0} |`,
  );
}
process.stdout.write(`${out.join('\n')}\n`);
process.exitCode = rows.some((r) => (r.report.summary.agent?.errors ?? 0) > 0) ? 1 : 0;
