/**
 * The stores the engine uses, chosen by the configuration: in memory (default; in a cluster worker,
 * the memory of the primary process) or shared through Redis.
 */
import { randomUUID } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';
import type { Logger } from 'spop';
import type { CounterStore, DecisionStore, IprepConfig, StoreHealth } from '../types.js';
import { IpcCounterStore, IpcDecisionStore, hasClusterStoreHost } from './cluster.js';
import { MemoryCounterStore, MemoryDecisionStore } from './memory.js';
import { RedisCounterStore, RedisDecisionStore } from './redis.js';

export {
  CLUSTER_STORE_ENV,
  ClusterStoreHost,
  type ClusterStoreHostOptions,
  type ClusterStoreMessage,
  type ClusterStoreReply,
  type ClusterStoreRequest,
  IpcCounterStore,
  IpcDecisionStore,
  type IpcChannel,
  type IpcStoreOptions,
  hasClusterStoreHost,
  parentChannel,
} from './cluster.js';

export { MemoryCounterStore, MemoryDecisionStore, type MemoryDecisionStoreOptions } from './memory.js';
export { RedisCounterStore, RedisDecisionStore, type RedisStoreOptions } from './redis.js';

export interface Stores {
  readonly decisions: DecisionStore;
  readonly counters: CounterStore;
  health(): StoreHealth;
  close(): Promise<void>;
}

/**
 * Builds (without starting) the stores the configuration names; call start() on each. With the memory
 * store in a cluster worker whose primary runs a ClusterStoreHost, the stores are that host's, over IPC
 * (`decisionsFile` is then the primary's business).
 */
export function createStores(
  config: IprepConfig['store'],
  options: { logger?: Logger; agentId?: string; now?: () => number; decisionsFile?: string | null } = {},
): Stores {
  if (config.type === 'memory' && hasClusterStoreHost()) {
    // A cluster worker: the primary holds the memory stores (and the decisions file) for every worker.
    const decisions = new IpcDecisionStore({ now: options.now, logger: options.logger });
    const counters = new IpcCounterStore({ logger: options.logger });
    return {
      decisions,
      counters,
      health: () => {
        const d = decisions.health();
        return d.up ? counters.health() : d;
      },
      close: async () => {
        await Promise.all([decisions.close(), counters.close()]);
      },
    };
  }
  if (config.type === 'memory') {
    const decisions = new MemoryDecisionStore({ now: options.now, logger: options.logger, file: options.decisionsFile });
    const counters = new MemoryCounterStore();
    return {
      decisions,
      counters,
      health: () => ({ kind: 'memory', up: true }),
      close: async () => {
        await Promise.all([decisions.close(), counters.close()]);
      },
    };
  }
  const shared = {
    prefix: config.prefix,
    commandTimeoutMs: config.commandTimeoutMs,
    maxSyncAgeMs: config.maxSyncAgeMs,
    maxDecisions: config.maxDecisions,
    ...(config.nodes && config.nodes.length > 0 ? { nodes: config.nodes } : { url: config.url }),
    logger: options.logger,
    agentId: options.agentId ?? randomUUID(), // one id for both stores' connections
  };
  const decisions = new RedisDecisionStore({ ...shared, now: options.now });
  // No clock for the counters: their buckets follow Redis' clock, the same for every agent.
  const counters = new RedisCounterStore(shared);
  return {
    decisions,
    counters,
    health: () => {
      const d = decisions.health();
      const sync = {
        ...(d.syncAgeMs === undefined ? {} : { syncAgeMs: d.syncAgeMs }),
        ...(d.changeLagMs === undefined ? {} : { changeLagMs: d.changeLagMs }),
      };
      const queue = { pendingWrites: decisions.pendingWrites, droppedWrites: decisions.droppedWrites };
      return { ...(d.up ? counters.health() : d), ...sync, ...queue };
    },
    close: async () => {
      await Promise.all([decisions.close(), counters.close()]);
    },
  };
}

export interface CounterTracker {
  takeDeltas(): Map<string, number>;
  /** takeDeltas in steps of `count` clients from `from` (see BehaviourTracker); -1 when done. Used instead when present. */
  takeDeltasStep?(into: Map<string, number>, from: number, count: number): number;
  applyTotals(totals: ReadonlyMap<string, number>, now?: number): void;
}

/** Clients scanned between two turns of the event loop when taking deltas (about half a ms). */
export const DELTA_SCAN_STEP = 65_536;

/** The tracker's deltas, scanned DELTA_SCAN_STEP clients at a time with the event loop let run between steps. */
async function takeDeltasInSteps(tracker: CounterTracker): Promise<Map<string, number>> {
  if (tracker.takeDeltasStep === undefined) return tracker.takeDeltas();
  const deltas = new Map<string, number>();
  let from = tracker.takeDeltasStep(deltas, 0, DELTA_SCAN_STEP);
  while (from >= 0) {
    await setImmediate();
    from = tracker.takeDeltasStep(deltas, from, DELTA_SCAN_STEP);
  }
  return deltas;
}

/**
 * Runs the counter sync loop: every intervalMs (default 1000) takes deltas, flushes them, applies the
 * totals (a tick with no deltas does nothing). Returns a stop function; totals of a flush still in
 * flight are dropped after it. Errors are logged, never thrown; the hot path never waits on it.
 */
export function startCounterSync(
  tracker: CounterTracker,
  store: CounterStore,
  options: { windowMs: number; intervalMs?: number; logger?: Logger; now?: () => number },
): () => void {
  const now = options.now ?? Date.now;
  let running = false;
  let stopped = false;
  const tick = async (): Promise<void> => {
    // A slow flush delays the next one rather than piling flushes up; deltas keep accumulating meanwhile.
    if (running) return;
    running = true;
    try {
      const deltas = await takeDeltasInSteps(tracker);
      if (deltas.size === 0 || stopped) return;
      const at = now();
      const totals = await store.flush(deltas, options.windowMs, at);
      if (!stopped) tracker.applyTotals(totals, at);
    } catch (error) {
      options.logger?.warn('counter sync failed', { error: error instanceof Error ? error.message : String(error) });
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), options.intervalMs ?? 1000);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
