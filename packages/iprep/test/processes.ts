/** Test helper: which process holds a TCP connection, and whether a process still runs (Linux /proc). */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/**
 * Which of `pids` holds the agent end of the TCP connection whose client port is `clientPort`: its
 * socket inode appears in /proc/net/tcp with that remote port, and among the process' descriptors.
 */
export function ownerOf(clientPort: number, pids: readonly number[]): number | undefined {
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const remote = fields[2];
    if (remote !== undefined && parseInt(remote.split(':')[1] ?? '', 16) === clientPort) inodes.add(fields[9] ?? '');
  }
  return pids.find((pid) =>
    readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? '');
      } catch {
        return false; // closed meanwhile
      }
    }),
  );
}

export function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
