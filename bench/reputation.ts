/**
 * What reputation mode costs per message: spop-bench against the random agent
 * (the seed) and against the reputation agent with real-sized data, each side
 * by side with the floor agent in the same run. The reputation agent gets a
 * generated deny list of 100,000 prefixes (IPv4 and IPv6), a CSV list of
 * 10,000 scored addresses, a 1,000-entry allowlist, the RFC 6890 table and
 * behaviour counting, all on.
 *
 * Client mixes: `random`, a new random address per frame (a botnet: every
 * message walks every table and the behaviour tracker churns at its bound),
 * and `zipf`, --clients clients (default 100,000) whose popularity follows a
 * Zipf law of exponent --zipf (default 1), a realistic mix. Shapes are
 * connections x frames in flight; 256 x 1 is HAProxy 3.x spreading streams.
 *
 *   node --import tsx bench/reputation.ts [--seconds N] [--prefixes N] [--shapes 1x1,4x20,32x8,256x1]
 *     [--families ipv4,ipv6] [--mixes random,zipf] [--clients N] [--zipf S] [--agents random,reputation]
 *     [--rounds N] [--max-clients N] [--node-options="--cpu-prof --cpu-prof-dir=DIR"] [--spoa PATH/bin/spoa.js]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type BenchReport, parseBenchArgs, runBench } from 'spop-bench';
import { writeReputationData } from './reputation-data.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    prefixes: { type: 'string', default: '100000' },
    shapes: { type: 'string', default: '1x1,4x20,32x8,256x1' },
    families: { type: 'string', default: 'ipv4,ipv6' },
    mixes: { type: 'string', default: 'random,zipf' },
    clients: { type: 'string', default: '100000' },
    zipf: { type: 'string', default: '1' },
    agents: { type: 'string', default: 'random,reputation' },
    rounds: { type: 'string', default: '1' },
    'max-clients': { type: 'string', default: '100000' },
    // Extra node flags for the agents (not the floor), e.g. a CPU profile or --trace-gc.
    'node-options': { type: 'string', default: '' },
    // The spoa command measured, e.g. another checkout's build to compare with.
    spoa: { type: 'string', default: 'packages/iprep/bin/spoa.js' },
  },
});
const seconds = Number(values.seconds);
const prefixes = Number(values.prefixes);
const list = (text: string): string[] =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
const shapes = list(values.shapes).map((shape) => {
  const match = /^(\d+)x(\d+)$/.exec(shape);
  if (match === null) throw new Error(`--shapes: connections x depth like 4x20, got ${shape}`);
  return [Number(match[1]), Number(match[2])] as const;
});
const families = list(values.families);
const mixes = list(values.mixes);
for (const mix of mixes) if (mix !== 'random' && mix !== 'zipf') throw new Error(`--mixes: random or zipf, got ${mix}`);
const nodeOptions = values['node-options'];

const dir = mkdtempSync(join(tmpdir(), 'iprep-bench-'));
writeReputationData(dir, { prefixes: prefixes, maxClients: Number(values['max-clients']), random32: () => Math.floor(Math.random() * 2 ** 32) });

const allAgents: Record<string, string> = {
  random: `node ${nodeOptions} ${values.spoa} -p {port} -n 1 --host {host}`,
  reputation: `node ${nodeOptions} ${values.spoa} -p {port} -n 1 --host {host} --config ${join(dir, 'iprep.yaml')}`,
};
const agents = Object.entries(allAgents).filter(([name]) => list(values.agents).includes(name));

const rows: Array<{ agent: string; shape: string; family: string; mix: string; report: BenchReport }> = [];
try {
  for (const [connections, depth] of shapes) {
    for (const family of families) {
      for (const mix of mixes) {
        for (const [name, command] of agents) {
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
            '--rounds',
            values.rounds,
            ...(mix === 'zipf' ? ['--clients', values.clients, '--zipf', values.zipf] : []),
            '--start-timeout',
            '120',
          ]);
          if (options === 'help') throw new Error('unreachable');
          const report = await runBench(options);
          rows.push({ agent: name, shape: `${connections} x ${depth}`, family, mix, report });
          const r = report.ratio;
          process.stderr.write(`done: ${name} ${connections}x${depth} ${family} ${mix}: ${r?.throughput.toFixed(2)}x, CPU/ACK ${r?.cpuPerAck?.toFixed(2)}x\n`);
        }
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const int = (n: number | undefined): string => (n === undefined ? '-' : Math.round(n).toLocaleString('en-US'));
const fixed = (n: number | undefined, d = 2): string => (n === undefined ? '-' : n.toFixed(d));
const out = [
  `Reputation data: ${prefixes.toLocaleString('en-US')} deny prefixes, 10,000 scored addresses, 1,000 allowlisted, RFC 6890, ` +
    `behaviour on (max-clients ${Number(values['max-clients']).toLocaleString('en-US')}); zipf = ${Number(values.clients).toLocaleString('en-US')} clients, exponent ${values.zipf}.`,
  '',
  '| agent | shape | family | mix | ACK/s | floor ACK/s | ratio | p50 / p99 µs | max gap ms (floor) | CPU µs/ACK | floor CPU µs/ACK | CPU ratio | RSS MiB | errors |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const { agent, shape, family, mix, report } of rows) {
  const a = report.summary.agent;
  const f = report.summary.floor;
  out.push(
    `| ${agent} | ${shape} | ${family} | ${mix} | ${int(a?.throughput)} | ${int(f?.throughput)} | ${fixed(report.ratio?.throughput)} | ` +
      `${int(a?.latency.p50Us)} / ${int(a?.latency.p99Us)} | ${fixed(a?.maxAckGapMs, 1)} (${fixed(f?.maxAckGapMs, 1)}) | ${fixed(a?.agentCpuUsPerAck, 1)} | ${fixed(f?.agentCpuUsPerAck, 1)} | ` +
      `${fixed(report.ratio?.cpuPerAck)} | ${fixed(a?.agentRssBytes === undefined ? undefined : a.agentRssBytes / 2 ** 20, 1)} | ${a?.errors ?? 0} |`,
  );
}
process.stdout.write(`${out.join('\n')}\n`);
process.exitCode = rows.some((r) => (r.report.summary.agent?.errors ?? 0) > 0) ? 1 : 0;
