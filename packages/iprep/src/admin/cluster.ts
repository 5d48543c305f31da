/**
 * The figures of every node:cluster worker, for the admin API of whichever worker answers: node:cluster
 * hands each admin connection to one worker, yet `/metrics` and `/status.json` must cover the agent.
 * The primary relays (`ClusterMetricsHub`); each worker answers for itself and asks for the others
 * (`ClusterMetricsLink`). Nothing happens until an admin request comes: counting stays local.
 *
 * Protocol (JSON messages tagged `tag: 'iprep-cluster-metrics'`, so other IPC traffic is left alone):
 *   worker -> primary: join                    once its figures exist: the primary asks it from then on
 *   worker -> primary: gather { id, what }     -> gathered { id, parts, missing }: the other workers' parts
 *   primary -> worker: collect { id, what }    -> collected { id, part } | collected { id, error }
 * `what` is `metrics` (prom-client's getMetricsAsJSON()) or `status` (ReputationMetrics.statusCounts()).
 * A worker that does not answer within the primary's timeout is left out and counted in `missing`.
 *
 * This module is loaded by the primary: it must not import prom-client or the engine.
 */
import cluster from 'node:cluster';
import type { Logger } from 'spop';
import { type IpcChannel, parentChannel } from '../ipc.js';

/** Set to `1` by the primary in the environment of the workers it forks when it runs a hub. */
export const CLUSTER_METRICS_ENV = 'IPREP_CLUSTER_METRICS';

/** True in a cluster worker whose primary runs a ClusterMetricsHub. */
export function hasClusterMetricsHub(): boolean {
  return cluster.isWorker && process.env[CLUSTER_METRICS_ENV] === '1';
}

const TAG = 'iprep-cluster-metrics';

/** What an admin request needs from every worker. */
export type FigureKind = 'metrics' | 'status';
const KINDS: readonly FigureKind[] = ['metrics', 'status'];

export type ClusterMetricsMessage = { readonly tag: typeof TAG } & (
  | { readonly type: 'join' }
  | { readonly type: 'gather'; readonly id: number; readonly what: FigureKind }
  | { readonly type: 'gathered'; readonly id: number; readonly parts: readonly unknown[]; readonly missing: number }
  | { readonly type: 'collect'; readonly id: number; readonly what: FigureKind }
  | { readonly type: 'collected'; readonly id: number; readonly part?: unknown; readonly error?: string }
);

type Channel = IpcChannel<ClusterMetricsMessage>;

interface Tagged {
  readonly tag: typeof TAG;
  readonly type?: unknown;
  readonly id?: unknown;
  readonly what?: unknown;
  readonly part?: unknown;
  readonly error?: unknown;
  readonly parts?: unknown;
  readonly missing?: unknown;
}

function isTagged(message: unknown): message is Tagged {
  return typeof message === 'object' && message !== null && (message as { tag?: unknown }).tag === TAG;
}

function isKind(value: unknown): value is FigureKind {
  return KINDS.includes(value as FigureKind);
}

function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

const ignoreSendError = (): void => {};

// ---------------------------------------------------------------------------
// The primary

export interface ClusterMetricsHubOptions {
  /** How long the primary waits for each worker's part. Default 1000 ms. */
  readonly collectTimeoutMs?: number;
}

const DEFAULT_COLLECT_TIMEOUT_MS = 1000;

/** One worker's gather: the workers asked that have not answered yet, and the parts that came. */
interface PendingGather {
  readonly requester: Channel;
  readonly requestId: number;
  readonly awaiting: Set<Channel>;
  readonly parts: unknown[];
  /** Workers that answered with an error or went away: their figures are missing too. */
  failed: number;
  readonly timer: NodeJS.Timeout;
}

/** Runs in the primary: relays a worker's gather to every other worker that joined, and their parts back. */
export class ClusterMetricsHub {
  readonly #collectTimeoutMs: number;
  readonly #attached = new Map<Channel, () => void>();
  /** Workers whose figures exist: only they are asked (one still loading its lists has none yet). */
  readonly #joined = new Set<Channel>();
  /** Gathers in progress, by the id of their collect requests. */
  readonly #pending = new Map<number, PendingGather>();
  #lastId = 0;

  constructor(options: ClusterMetricsHubOptions = {}) {
    this.#collectTimeoutMs = options.collectTimeoutMs ?? DEFAULT_COLLECT_TIMEOUT_MS;
  }

  /** Serves the worker at the other end of `channel` until it disconnects or exits; returns a detach function. */
  attach(channel: Channel): () => void {
    const existing = this.#attached.get(channel);
    if (existing !== undefined) return existing;
    const onMessage = (message: unknown): void => {
      if (isTagged(message)) this.#handle(channel, message);
    };
    const detach = (): void => {
      channel.off('message', onMessage);
      channel.off('disconnect', detach);
      channel.off('exit', detach);
      this.#attached.delete(channel);
      this.#joined.delete(channel);
      for (const [id, gather] of [...this.#pending]) {
        if (gather.requester === channel) this.#drop(id, gather);
        else if (gather.awaiting.delete(channel)) {
          gather.failed++;
          this.#finishIfDone(id, gather);
        }
      }
    };
    channel.on('message', onMessage);
    channel.on('disconnect', detach);
    channel.on('exit', detach);
    this.#attached.set(channel, detach);
    return detach;
  }

  /** Detaches every worker; gathers in progress are answered with what came. */
  close(): void {
    for (const [id, gather] of [...this.#pending]) this.#finish(id, gather);
    for (const detach of [...this.#attached.values()]) detach();
  }

  #handle(channel: Channel, message: Tagged): void {
    switch (message.type) {
      case 'join':
        this.#joined.add(channel);
        return;
      case 'gather':
        if (isId(message.id) && isKind(message.what)) this.#gather(channel, message.id, message.what);
        return;
      case 'collected': {
        const id = message.id;
        const gather = isId(id) ? this.#pending.get(id) : undefined;
        if (gather === undefined || !gather.awaiting.delete(channel)) return; // late: the gather was answered
        if (typeof message.error === 'string' || !('part' in message)) gather.failed++;
        else gather.parts.push(message.part);
        this.#finishIfDone(id as number, gather);
        return;
      }
      default:
    }
  }

  #gather(requester: Channel, requestId: number, what: FigureKind): void {
    const id = ++this.#lastId;
    const others = [...this.#joined].filter((channel) => channel !== requester);
    const gather: PendingGather = {
      requester,
      requestId,
      awaiting: new Set(others),
      parts: [],
      failed: 0,
      timer: setTimeout(() => this.#finish(id, gather), this.#collectTimeoutMs),
    };
    this.#pending.set(id, gather);
    for (const channel of others) {
      channel.send({ tag: TAG, type: 'collect', id, what }, (error) => {
        if (error && gather.awaiting.delete(channel)) {
          gather.failed++;
          this.#finishIfDone(id, gather);
        }
      });
    }
    this.#finishIfDone(id, gather);
  }

  #finishIfDone(id: number, gather: PendingGather): void {
    if (gather.awaiting.size === 0) this.#finish(id, gather);
  }

  /** Answers the requester with the parts that came; workers still awaited are missing. */
  #finish(id: number, gather: PendingGather): void {
    if (!this.#drop(id, gather)) return;
    const missing = gather.failed + gather.awaiting.size;
    gather.requester.send({ tag: TAG, type: 'gathered', id: gather.requestId, parts: gather.parts, missing }, ignoreSendError);
  }

  #drop(id: number, gather: PendingGather): boolean {
    clearTimeout(gather.timer);
    return this.#pending.delete(id);
  }
}

// ---------------------------------------------------------------------------
// The workers

/** The other workers' parts of an admin answer. */
export interface PeerFigures {
  readonly parts: readonly unknown[];
  /** Workers that did not answer in time (their figures are left out); null when the primary did not answer, so the number is unknown. */
  readonly missing: number | null;
}

/** Where the figures of the other workers come from. */
export interface WorkerPeers {
  /** Never rejects: a silent primary or worker only leaves its figures out. */
  gather(what: FigureKind): Promise<PeerFigures>;
}

export interface ClusterMetricsLinkOptions {
  /** This worker's part, as the primary asks for it. */
  readonly collect: (what: FigureKind) => unknown;
  /** Default: the channel to the parent process. */
  readonly channel?: Channel;
  /** How long a gather waits for the primary; longer than the primary's own wait for the workers. Default 2000 ms. */
  readonly timeoutMs?: number;
  readonly logger?: Logger;
}

const DEFAULT_GATHER_TIMEOUT_MS = 2000;

/** Runs in each worker: answers the primary's collect requests and gathers the other workers' parts. */
export class ClusterMetricsLink implements WorkerPeers {
  readonly #collect: (what: FigureKind) => unknown;
  readonly #channel: Channel;
  readonly #timeoutMs: number;
  readonly #logger: Logger | undefined;
  readonly #pending = new Map<number, (figures: PeerFigures) => void>();
  #lastId = 0;
  #started = false;

  constructor(options: ClusterMetricsLinkOptions) {
    this.#collect = options.collect;
    this.#channel = options.channel ?? parentChannel<ClusterMetricsMessage>();
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_GATHER_TIMEOUT_MS;
    this.#logger = options.logger;
  }

  /** Listens, then tells the primary this worker's figures can be asked for. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#channel.on('message', this.#onMessage);
    this.#channel.on('disconnect', this.#onDisconnect);
    this.#channel.send({ tag: TAG, type: 'join' }, ignoreSendError);
  }

  gather(what: FigureKind): Promise<PeerFigures> {
    const id = ++this.#lastId;
    return new Promise<PeerFigures>((resolve) => {
      const settle = (figures: PeerFigures): void => {
        clearTimeout(timer);
        if (!this.#pending.delete(id)) return;
        if (figures.missing !== 0) {
          this.#logger?.warn('admin: the answer leaves out workers that did not answer in time', {
            what,
            workers: figures.missing ?? 'unknown (no answer from the primary)',
          });
        }
        resolve(figures);
      };
      const timer = setTimeout(() => settle({ parts: [], missing: null }), this.#timeoutMs);
      this.#pending.set(id, settle);
      if (!this.#started) {
        settle({ parts: [], missing: null });
        return;
      }
      this.#channel.send({ tag: TAG, type: 'gather', id, what }, (error) => {
        if (error) settle({ parts: [], missing: null });
      });
    });
  }

  /** Stops listening; gathers still waiting resolve without the other workers. */
  close(): void {
    this.#failAll();
    if (!this.#started) return;
    this.#started = false;
    this.#channel.off('message', this.#onMessage);
    this.#channel.off('disconnect', this.#onDisconnect);
  }

  readonly #onMessage = (message: unknown): void => {
    if (!isTagged(message) || !isId(message.id)) return;
    if (message.type === 'collect' && isKind(message.what)) {
      this.#answer(message.id, message.what);
    } else if (message.type === 'gathered') {
      const parts = Array.isArray(message.parts) ? (message.parts as unknown[]) : [];
      const missing = typeof message.missing === 'number' ? message.missing : null;
      this.#pending.get(message.id)?.({ parts, missing });
    }
  };

  readonly #onDisconnect = (): void => this.#failAll();

  #answer(id: number, what: FigureKind): void {
    const reply = (body: { part: unknown } | { error: string }): void => {
      this.#channel.send({ tag: TAG, type: 'collected', id, ...body }, ignoreSendError);
    };
    Promise.resolve()
      .then(() => this.#collect(what))
      .then(
        (part) => reply({ part }),
        (error: unknown) => reply({ error: error instanceof Error ? error.message : String(error) }),
      );
  }

  #failAll(): void {
    for (const settle of [...this.#pending.values()]) settle({ parts: [], missing: null });
  }
}
