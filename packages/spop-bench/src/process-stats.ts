/**
 * CPU time and memory of a process (or a whole process tree, e.g. `spoa -n 5`
 * and its cluster workers), read from Linux's /proc. Sample before and after
 * a run and subtract: the CPU time covers every thread of the process (main
 * thread, libuv pool, GC helpers), which is what an agent really costs.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcessStats {
  readonly pid: number;
  readonly ppid: number;
  /** CPU time in user mode, ms. */
  readonly userMs: number;
  /** CPU time in kernel mode, ms. */
  readonly systemMs: number;
  /** userMs + systemMs. */
  readonly cpuMs: number;
  /** Resident set size now (VmRSS), bytes. */
  readonly rssBytes: number;
  /** Peak resident set size (VmHWM), bytes. */
  readonly peakRssBytes: number;
  /** Start time in clock ticks after boot: with the pid, identifies the process even if the pid is reused later. */
  readonly startTicks: number;
}

export interface TreeStats {
  /** The processes found (the root first); processes that exited are simply absent. */
  readonly processes: readonly ProcessStats[];
  /** Sum over the tree. A child that exits between two samples takes its CPU time with it. */
  readonly cpuMs: number;
  /** Sum over the tree: pages shared between processes are counted once per process. */
  readonly rssBytes: number;
}

let clockTicks: number | undefined;

/** USER_HZ, the unit of /proc/<pid>/stat times: `getconf CLK_TCK`, 100 when it cannot be asked. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim());
      clockTicks = Number.isInteger(n) && n > 0 ? n : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // the process exited, or /proc is not there
  }
}

/**
 * Fields of /proc/<pid>/stat after the command name. The name is in
 * parentheses and may itself contain spaces and parentheses, so split after
 * the last ')'. Index 0 is field 3 (state) of proc(5).
 */
function statFields(pid: number): string[] | undefined {
  const text = readText(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

function statusKb(status: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Stats of one process, or undefined when it does not exist (any more). */
export function readProcessStats(pid: number): ProcessStats | undefined {
  const fields = statFields(pid);
  const status = readText(`/proc/${pid}/status`);
  if (fields === undefined || status === undefined) return undefined;
  const msPerTick = 1000 / clockTicksPerSecond();
  const userMs = Number(fields[11]) * msPerTick; // field 14, utime
  const systemMs = Number(fields[12]) * msPerTick; // field 15, stime
  return {
    pid,
    ppid: Number(fields[1]), // field 4
    userMs,
    systemMs,
    cpuMs: userMs + systemMs,
    rssBytes: statusKb(status, 'VmRSS'),
    peakRssBytes: statusKb(status, 'VmHWM'),
    startTicks: Number(fields[19]), // field 22, starttime
  };
}

/**
 * Direct children of `pid`. Uses /proc/<pid>/task/<tid>/children (needs a
 * kernel with CONFIG_PROC_CHILDREN, the default on common distributions), and
 * falls back to scanning every /proc/<n>/stat for a matching parent pid.
 */
export function childPids(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children = new Set<number>();
  let supported = false;
  for (const tid of tasks) {
    const text = readText(`/proc/${pid}/task/${tid}/children`);
    if (text === undefined) continue;
    supported = true;
    for (const word of text.split(/\s+/)) if (word !== '') children.add(Number(word));
  }
  if (supported) return [...children];
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (statFields(Number(name))?.[1] === String(pid)) found.push(Number(name));
  }
  return found;
}

/** `pid` and all its descendants, the root first. */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  const seen = new Set<number>();
  while (queue.length > 0) {
    const p = queue.shift() as number;
    if (seen.has(p)) continue;
    seen.add(p);
    out.push(p);
    queue.push(...childPids(p));
  }
  return out;
}

/** Stats summed over `pid` and its descendants (a cluster primary and its workers). */
export function readTreeStats(pid: number): TreeStats {
  const processes = processTree(pid)
    .map(readProcessStats)
    .filter((s): s is ProcessStats => s !== undefined);
  return {
    processes,
    cpuMs: processes.reduce((n, s) => n + s.cpuMs, 0),
    rssBytes: processes.reduce((n, s) => n + s.rssBytes, 0),
  };
}

/**
 * CPU time a tree used between two samples. Summed per pid, so a worker
 * that appeared in between counts from zero and one that vanished counts
 * nothing (its time went to its parent's cutime, which we do not read).
 */
export function treeCpuDelta(before: TreeStats, after: TreeStats): number {
  return treeDelta(before, after, 'cpuMs');
}

/** The kernel's share of `treeCpuDelta`: system calls, the socket stack, page faults. */
export function treeSystemDelta(before: TreeStats, after: TreeStats): number {
  return treeDelta(before, after, 'systemMs');
}

function treeDelta(before: TreeStats, after: TreeStats, time: 'cpuMs' | 'systemMs'): number {
  const start = new Map(before.processes.map((s) => [s.pid, s[time]]));
  return after.processes.reduce((n, s) => n + s[time] - (start.get(s.pid) ?? 0), 0);
}
