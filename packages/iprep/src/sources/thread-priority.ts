/** The priority of the threads that parse lists and compile databases. */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * On a busy machine the parsing thread competes with the event loop for a core: a nice value of 10
 * for this thread alone (Linux: setpriority on the thread id) lets the event loop answering HAProxy
 * run first. Elsewhere, or when not allowed, the thread keeps the process' priority.
 */
export function lowerThreadPriority(): void {
  try {
    const tid = Number(/\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'))?.[1]);
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, 10);
  } catch {
    // not Linux, or not permitted
  }
}
