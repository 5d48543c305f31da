/**
 * How the primary tells the workers it forks which shared services it runs: a flag in their
 * environment, so that a worker never waits for a service nobody provides.
 */
import cluster from 'node:cluster';

/** Sets the flag `name` in `env`, the environment of the workers about to be forked. */
export function setWorkerFlag(env: Record<string, string>, name: string): void {
  env[name] = '1';
}

/** True in a node:cluster worker whose primary set the flag `name` (see setWorkerFlag). */
export function hasWorkerFlag(name: string): boolean {
  return cluster.isWorker && process.env[name] === '1';
}
