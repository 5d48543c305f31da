/**
 * Summarises a V8 CPU profile (`node --cpu-prof`) by self time: the functions
 * where the samples landed, with their share of the busy (non-idle) time,
 * and garbage collection and idle time on their own lines.
 *
 *   node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top N] [--skip S]
 *
 * --skip leaves out the first S seconds (start-up: module loading, list parsing).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, skip: { type: 'string', default: '0' } },
});
const file = positionals[0];
if (file === undefined) throw new Error('usage: profile-summary.ts FILE.cpuprofile [--top N]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const nameOf = new Map<number, string>();
for (const node of profile.nodes) {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url === '' ? '' : ` ${url.replace(/^.*\/(packages|node_modules)\//, '$1/').replace(/^node:/, '')}:${lineNumber + 1}`;
  nameOf.set(node.id, `${functionName || '(anonymous)'}${where}`);
}
const selfUs = new Map<string, number>();
let totalUs = 0;
const skipUs = Number(values.skip) * 1e6;
let at = 0;
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  at += us;
  if (at < skipUs) return;
  const name = nameOf.get(id) ?? '?';
  selfUs.set(name, (selfUs.get(name) ?? 0) + us);
  totalUs += us;
});
const idleUs = selfUs.get('(idle)') ?? 0;
const busyUs = totalUs - idleUs;
const pct = (us: number): string => `${((100 * us) / busyUs).toFixed(1).padStart(5)}%`;
const lines = [
  `${(totalUs / 1e6).toFixed(2)} s profiled, ${((100 * idleUs) / totalUs).toFixed(1)}% idle; shares below are of the busy time (${(busyUs / 1e6).toFixed(2)} s)`,
  `${pct(selfUs.get('(garbage collector)') ?? 0)}  garbage collection`,
  '',
];
const sorted = [...selfUs].filter(([name]) => name !== '(idle)').sort((a, b) => b[1] - a[1]);
for (const [name, us] of sorted.slice(0, Number(values.top))) lines.push(`${pct(us)}  ${name}`);
process.stdout.write(`${lines.join('\n')}\n`);
