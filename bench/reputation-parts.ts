/**
 * What each part of reputation mode costs through sockets: the agent run with one part of the
 * reputation configuration at a time, each side by side with the floor agent in the same run, so
 * that the difference between two rows is what that part adds per ACK. The data is
 * bench/reputation.ts's (reputation-data.ts).
 *
 *   seed       random mode (HAProxy's example)
 *   skeleton   reputation mode with no list, no allowlist file and behaviour off
 *   behaviour  the skeleton plus behaviour counting (max-clients --max-clients)
 *   lists      the skeleton plus the 1,000-address allowlist file, the --prefixes deny list and the
 *              10,000-address CSV list
 *   full       all of it (bench/reputation.ts's configuration)
 *
 * The CPU per ACK is the agent's process (every thread); its kernel share (system time) is given
 * apart, since the socket stack's part moves with the size of the ACKs and the batching, not
 * with the handler.
 *
 *   node --import tsx bench/reputation-parts.ts [--seconds N] [--shape 4x20] [--clients N [--zipf S]]
 *     [--parts seed,skeleton,behaviour,lists,full] [--rounds N] [--prefixes N] [--max-clients N]
 *     [--spoa PATH/bin/spoa.js]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type BenchReport, parseBenchArgs, runBench } from 'spop-bench';
import { writeReputationData } from './reputation-data.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    shape: { type: 'string', default: '4x20' },
    clients: { type: 'string' },
    zipf: { type: 'string' },
    parts: { type: 'string', default: 'seed,skeleton,behaviour,lists,full' },
    rounds: { type: 'string', default: '2' },
    prefixes: { type: 'string', default: '100000' },
    'max-clients': { type: 'string', default: '100000' },
    spoa: { type: 'string', default: 'packages/iprep/bin/spoa.js' },
  },
});
const shape = /^(\d+)x(\d+)$/.exec(values.shape);
if (shape === null) throw new Error(`--shape: connections x depth like 4x20, got ${values.shape}`);
const maxClients = Number(values['max-clients']);

const dir = mkdtempSync(join(tmpdir(), 'iprep-parts-'));
writeReputationData(dir, { prefixes: Number(values.prefixes), maxClients, random32: () => Math.floor(Math.random() * 2 ** 32) });
const configFile = (name: string, body: string): string => {
  const path = join(dir, name);
  writeFileSync(path, `mode: reputation\nadmin: { enabled: false }\n${body}`);
  return path;
};
const lists = `allowlist: [{ file: allow.netset }]
lists:
  - { name: deny, path: deny.netset, score: 0, category: attacker, action: deny }
  - { name: scored, format: csv, path: scored.csv, category: partner }
`;
const configs: Record<string, string | undefined> = {
  seed: undefined,
  skeleton: configFile('skeleton.yaml', 'behaviour: { enabled: false }\n'),
  behaviour: configFile('behaviour.yaml', `behaviour: { enabled: true, max-clients: ${maxClients} }\n`),
  lists: configFile('lists.yaml', `${lists}behaviour: { enabled: false }\n`),
  full: join(dir, 'iprep.yaml'),
};
const parts = values.parts.split(',').map((part) => part.trim());
for (const part of parts) if (!(part in configs)) throw new Error(`--parts: one of ${Object.keys(configs).join(', ')}, got ${part}`);

const rows: Array<{ part: string; report: BenchReport }> = [];
try {
  for (const part of parts) {
    const config = configs[part];
    const options = parseBenchArgs([
      '--agent',
      `node ${values.spoa} -p {port} -n 1 --host {host}${config === undefined ? '' : ` --config ${config}`}`,
      '--floor',
      '-c',
      shape[1] as string,
      '-d',
      shape[2] as string,
      '-t',
      values.seconds,
      '--warmup',
      '1',
      '--rounds',
      values.rounds,
      ...(values.clients === undefined ? [] : ['--clients', values.clients]),
      ...(values.zipf === undefined ? [] : ['--zipf', values.zipf]),
      '--start-timeout',
      '120',
    ]);
    if (options === 'help') throw new Error('unreachable');
    rows.push({ part, report: await runBench(options) });
    process.stderr.write(`done: ${part}\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const fixed = (n: number | undefined, digits = 2): string => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits));
const out = [
  `${values.shape}, ${values.clients === undefined ? 'random sources' : `${values.clients} clients${values.zipf === undefined ? '' : ` (Zipf ${values.zipf})`}`}, ` +
    `${values.rounds} rounds of ${values.seconds} s per agent, alternated with the floor`,
  '',
  '| part | CPU µs/ACK | of which system | floor CPU µs/ACK | of which system | CPU ratio | ACK/s ratio | errors |',
  '|---|---|---|---|---|---|---|---|',
];
for (const { part, report } of rows) {
  const a = report.summary.agent;
  const f = report.summary.floor;
  out.push(
    `| ${part} | ${fixed(a?.agentCpuUsPerAck)} | ${fixed(a?.agentSystemUsPerAck)} | ${fixed(f?.agentCpuUsPerAck)} | ${fixed(f?.agentSystemUsPerAck)} | ` +
      `${fixed(report.ratio?.cpuPerAck)} | ${fixed(report.ratio?.throughput)} | ${a?.errors ?? 0} |`,
  );
}
process.stdout.write(`${out.join('\n')}\n`);
process.exitCode = rows.some((r) => (r.report.summary.agent?.errors ?? 0) > 0) ? 1 : 0;
