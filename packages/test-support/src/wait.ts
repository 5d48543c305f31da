/** Polling: the one way the suites wait for a condition. */
import { setTimeout as sleep } from 'node:timers/promises';

export function delay(ms: number): Promise<void> {
  return sleep(ms);
}

/**
 * Polls `check` every `intervalMs` until it is true; fails with `what` (text, or a function
 * describing the state) after `timeoutMs`.
 */
export async function waitFor(what: string | (() => string), check: () => boolean | Promise<boolean>, timeoutMs = 3000, intervalMs = 20): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check()); await sleep(intervalMs)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
  }
}
