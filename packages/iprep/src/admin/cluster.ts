/**
 * Every node:cluster worker's part of an admin answer, for whichever worker answers: node:cluster
 * hands each admin connection to one worker, yet `/metrics`, `/status.json` and `/health` must cover
 * the agent, and `POST /reload` must reload it all. The primary relays (`ClusterMetricsHub`); each
 * worker answers for itself and asks for the others (`ClusterMetricsLink`). Nothing happens until an
 * admin request comes: counting stays local.
 *
 * Protocol (JSON messages tagged `tag: 'iprep-cluster-metrics'`, so other IPC traffic is left alone):
 *   worker -> primary: join { pid }            once its figures exist: the primary asks it from then on
 *   worker -> primary: gather { id, what }     -> gathered { id, parts, missing, left }: the other workers' parts
 *   primary -> worker: collect { id, what }    -> collected { id, part } | collected { id, error }
 * `what` is `metrics` (prom-client's getMetricsAsJSON()), `status` (ReputationMetrics.statusCounts()),
 * `health` (a WorkerHealth) or `reload` (the worker reloads, then answers a WorkerReload; see workers.ts).
 * A worker that does not answer within the primary's timeout (longer for `reload`), that fails or that
 * exits is left out: counted in `missing`, and named in `left` with its pid and why. Both sides ask
 * through a RequestClient (../cluster/): at most 1000 gathers of one worker, and 1000 collects to one
 * worker, wait at once; one more is answered at once without those parts.
 *
 * This module is loaded by the primary: it must not import prom-client or the engine.
 */
import type { Logger } from 'spop';
import {
  type ClusterRequestError,
  type IpcChannel,
  RequestClient,
  type TaggedMessage,
  hasWorkerFlag,
  isRequestId,
  isTagged,
  parentChannel,
  sendMessage,
  serveChannel,
} from '../cluster/index.js';
import { isPid } from './guards.js';

/** Set to `1` by the primary in the environment of the workers it forks when it runs a hub. */
export const CLUSTER_METRICS_ENV = 'IPREP_CLUSTER_METRICS';

/** True in a cluster worker whose primary runs a ClusterMetricsHub. */
export function hasClusterMetricsHub(): boolean {
  return hasWorkerFlag(CLUSTER_METRICS_ENV);
}

const TAG = 'iprep-cluster-metrics';

/** Figures an admin request needs from every worker. */
export type FigureKind = 'metrics' | 'status' | 'health';
/** What a worker asks of every other: their figures, or to reload and say how it went. */
export type PeerRequestKind = FigureKind | 'reload';
const KINDS: readonly PeerRequestKind[] = ['metrics', 'status', 'health', 'reload'];

/** A worker left out of an answer, and why. */
export interface LeftOutWorker {
  /** Null when the worker did not say (it joined without a pid). */
  readonly pid: number | null;
  /** `no answer within 1000 ms`, `exited before answering`, or the worker's own error. */
  readonly error: string;
}

export type ClusterMetricsMessage = { readonly tag: typeof TAG } & (
  | { readonly type: 'join'; readonly pid?: number }
  | { readonly type: 'gather'; readonly id: number; readonly what: PeerRequestKind }
  | {
      readonly type: 'gathered';
      readonly id: number;
      readonly parts: readonly unknown[];
      readonly missing: number;
      readonly left: readonly LeftOutWorker[];
    }
  | { readonly type: 'collect'; readonly id: number; readonly what: PeerRequestKind }
  | { readonly type: 'collected'; readonly id: number; readonly part?: unknown; readonly error?: string }
);

type Channel = IpcChannel<ClusterMetricsMessage>;

/** A reply as it arrives: tagged, every other field still to be checked. */
type Arrived<Type extends string> = TaggedMessage<typeof TAG> & { readonly type: Type };

function isKind(value: unknown): value is PeerRequestKind {
  return KINDS.includes(value as PeerRequestKind);
}

function isLeftOut(value: unknown): value is LeftOutWorker {
  if (typeof value !== 'object' || value === null) return false;
  const { pid, error } = value as { pid?: unknown; error?: unknown };
  return (pid === null || isPid(pid)) && typeof error === 'string';
}

/** The requests each side makes of the other, and their replies as they arrive. */
type CollectBody = { readonly type: 'collect'; readonly what: PeerRequestKind };
type GatherBody = { readonly type: 'gather'; readonly what: PeerRequestKind };
type Collector = RequestClient<CollectBody, Arrived<'collected'>, typeof TAG>;

// ---------------------------------------------------------------------------
// The primary

export interface ClusterMetricsHubOptions {
  /** How long the primary waits for each worker's figures. Default 1000 ms. */
  readonly collectTimeoutMs?: number;
  /** How long the primary waits for each worker's reload: longer than a list download (30 s). Default 60000 ms. */
  readonly reloadTimeoutMs?: number;
}

const DEFAULT_COLLECT_TIMEOUT_MS = 1000;
const DEFAULT_RELOAD_TIMEOUT_MS = 60_000;

/** One worker's gather: the workers asked that have not answered yet, and the parts that came. */
interface PendingGather {
  readonly requester: Channel;
  readonly requestId: number;
  readonly awaiting: Set<Channel>;
  readonly parts: unknown[];
  /** Workers that answered with an error or went away: their parts are missing too. */
  readonly left: LeftOutWorker[];
  readonly timeoutMs: number;
}

/** Why a worker asked for its part gave none, in the words of LeftOutWorker.error. */
function leftOutReason(error: ClusterRequestError, timeoutMs: number): string {
  switch (error.reason) {
    case 'timeout':
      return `no answer within ${timeoutMs} ms`;
    case 'disconnected':
    case 'closed':
      return 'exited before answering';
    default:
      return `could not be asked: ${error.cause instanceof Error ? error.cause.message : error.message}`;
  }
}

/** Runs in the primary: relays a worker's gather to every other worker that joined, and their parts back. */
export class ClusterMetricsHub {
  readonly #collectTimeoutMs: number;
  readonly #reloadTimeoutMs: number;
  readonly #attached = new Map<Channel, () => void>();
  /** Workers whose figures exist, with their pids: only they are asked (one still loading its lists has none yet). */
  readonly #joined = new Map<Channel, number | null>();
  /** How each attached worker is asked for its part. */
  readonly #collectors = new Map<Channel, Collector>();
  /** Gathers in progress. */
  readonly #gathers = new Set<PendingGather>();

  constructor(options: ClusterMetricsHubOptions = {}) {
    this.#collectTimeoutMs = options.collectTimeoutMs ?? DEFAULT_COLLECT_TIMEOUT_MS;
    this.#reloadTimeoutMs = options.reloadTimeoutMs ?? DEFAULT_RELOAD_TIMEOUT_MS;
  }

  /** Serves the worker at the other end of `channel` until it disconnects or exits; returns a detach function. */
  attach(channel: Channel): () => void {
    const existing = this.#attached.get(channel);
    if (existing !== undefined) return existing;
    const collector: Collector = new RequestClient<CollectBody, Arrived<'collected'>, typeof TAG>({
      channel,
      tag: TAG,
      replyTypes: ['collected'],
      timeoutMs: this.#collectTimeoutMs,
      subject: 'cluster metrics',
      peer: 'the worker',
    });
    collector.listen();
    this.#collectors.set(channel, collector);
    const onMessage = (message: unknown): void => {
      if (isTagged(message, TAG)) this.#handle(channel, message);
    };
    return serveChannel(this.#attached, channel, onMessage, () => {
      const pid = this.#joined.get(channel) ?? null;
      this.#joined.delete(channel);
      this.#collectors.delete(channel);
      for (const gather of [...this.#gathers]) {
        if (gather.requester === channel)
          this.#gathers.delete(gather); // nobody left to answer
        else this.#leaveOut(gather, channel, pid, 'exited before answering');
      }
      collector.close();
    });
  }

  /** Detaches every worker; gathers in progress are answered with what came. */
  close(): void {
    for (const gather of [...this.#gathers]) this.#finish(gather);
    for (const detach of [...this.#attached.values()]) detach();
  }

  #handle(channel: Channel, message: TaggedMessage): void {
    switch (message.type) {
      case 'join':
        this.#joined.set(channel, isPid(message['pid']) ? message['pid'] : null);
        return;
      case 'gather':
        if (isRequestId(message.id) && isKind(message['what'])) this.#gather(channel, message.id, message['what']);
        return;
      default: // replies to the collects are the collector's
    }
  }

  #gather(requester: Channel, requestId: number, what: PeerRequestKind): void {
    const others = [...this.#joined.keys()].filter((channel) => channel !== requester);
    const timeoutMs = what === 'reload' ? this.#reloadTimeoutMs : this.#collectTimeoutMs;
    const gather: PendingGather = { requester, requestId, awaiting: new Set(others), parts: [], left: [], timeoutMs };
    this.#gathers.add(gather);
    for (const channel of others) {
      const collector = this.#collectors.get(channel);
      if (collector === undefined) continue;
      collector
        .request({ type: 'collect', what }, (reply) => reply, { timeoutMs })
        .then(
          (reply) => {
            if (typeof reply['error'] === 'string' || !('part' in reply)) {
              const error = typeof reply['error'] === 'string' ? reply['error'] : 'answered without its part';
              this.#leaveOut(gather, channel, this.#joined.get(channel) ?? null, error);
            } else if (gather.awaiting.delete(channel)) {
              gather.parts.push(reply['part']);
              this.#finishIfDone(gather);
            }
          },
          (error: ClusterRequestError) => this.#leaveOut(gather, channel, this.#joined.get(channel) ?? null, leftOutReason(error, timeoutMs)),
        );
    }
    this.#finishIfDone(gather);
  }

  /** A worker asked that will not answer: its part is missing, for the reason given. */
  #leaveOut(gather: PendingGather, channel: Channel, pid: number | null, error: string): void {
    if (!gather.awaiting.delete(channel)) return;
    gather.left.push({ pid, error });
    this.#finishIfDone(gather);
  }

  #finishIfDone(gather: PendingGather): void {
    if (gather.awaiting.size === 0) this.#finish(gather);
  }

  /** Answers the requester with the parts that came; workers still awaited are missing. */
  #finish(gather: PendingGather): void {
    if (!this.#gathers.delete(gather)) return;
    const silent = [...gather.awaiting].map((channel) => ({
      pid: this.#joined.get(channel) ?? null,
      error: `no answer within ${gather.timeoutMs} ms`,
    }));
    gather.awaiting.clear();
    const left = [...gather.left, ...silent];
    sendMessage(gather.requester, { tag: TAG, type: 'gathered', id: gather.requestId, parts: gather.parts, missing: left.length, left });
  }
}

// ---------------------------------------------------------------------------
// The workers

/** The other workers' parts of an admin answer. */
export interface PeerFigures {
  readonly parts: readonly unknown[];
  /** Workers that did not answer in time (their figures are left out); null when the primary did not answer, so the number is unknown. */
  readonly missing: number | null;
  /** The workers left out, as the primary names them (none when it did not answer). */
  readonly left?: readonly LeftOutWorker[];
}

/** Where the parts of the other workers come from. */
export interface WorkerPeers {
  /** Never rejects: a silent primary or worker only leaves its part out. `reload` makes every other worker reload. */
  gather(what: PeerRequestKind): Promise<PeerFigures>;
}

export interface ClusterMetricsLinkOptions {
  /** This worker's part, as the primary asks for it (for `reload`: reload, then say how it went). */
  readonly collect: (what: PeerRequestKind) => unknown;
  /** Default: the channel to the parent process. */
  readonly channel?: Channel;
  /** How long a gather of figures waits for the primary; longer than the primary's own wait for the workers. Default 2000 ms. */
  readonly timeoutMs?: number;
  /** How long a reload waits for the primary; likewise longer than the primary's wait. Default 65000 ms. */
  readonly reloadTimeoutMs?: number;
  /** Told to the primary, which names the workers it leaves out by pid. Default: this process's. */
  readonly pid?: number;
  readonly logger?: Logger;
}

const DEFAULT_GATHER_TIMEOUT_MS = 2000;
const DEFAULT_RELOAD_GATHER_TIMEOUT_MS = 65_000;
const NO_PRIMARY: PeerFigures = { parts: [], missing: null, left: [] };

/** The primary's answer to a gather, checked: what is malformed counts as unknown or is dropped. */
function readFigures(reply: Arrived<'gathered'>): PeerFigures {
  const { parts, missing, left } = reply;
  return {
    parts: Array.isArray(parts) ? (parts as unknown[]) : [],
    missing: typeof missing === 'number' ? missing : null,
    left: Array.isArray(left) ? left.filter(isLeftOut) : [],
  };
}

/** Runs in each worker: answers the primary's collect requests and gathers the other workers' parts. */
export class ClusterMetricsLink implements WorkerPeers {
  readonly #collect: (what: PeerRequestKind) => unknown;
  readonly #channel: Channel;
  readonly #primary: RequestClient<GatherBody, Arrived<'gathered'>, typeof TAG>;
  readonly #timeoutMs: number;
  readonly #reloadTimeoutMs: number;
  readonly #pid: number;
  readonly #logger: Logger | undefined;
  #started = false;

  constructor(options: ClusterMetricsLinkOptions) {
    this.#collect = options.collect;
    this.#channel = options.channel ?? parentChannel<ClusterMetricsMessage>();
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_GATHER_TIMEOUT_MS;
    this.#reloadTimeoutMs = options.reloadTimeoutMs ?? DEFAULT_RELOAD_GATHER_TIMEOUT_MS;
    this.#pid = options.pid ?? process.pid;
    this.#logger = options.logger;
    this.#primary = new RequestClient<GatherBody, Arrived<'gathered'>, typeof TAG>({
      channel: this.#channel,
      tag: TAG,
      replyTypes: ['gathered'],
      timeoutMs: this.#timeoutMs,
      subject: 'cluster metrics',
      onMessage: (message) => {
        if (message.type === 'collect' && isRequestId(message.id) && isKind(message['what'])) this.#answer(message.id, message['what']);
      },
    });
  }

  /** Listens, then tells the primary this worker's figures can be asked for. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#primary.listen();
    sendMessage(this.#channel, { tag: TAG, type: 'join', pid: this.#pid });
  }

  async gather(what: PeerRequestKind): Promise<PeerFigures> {
    const figures = this.#started
      ? await this.#primary
          .request({ type: 'gather', what }, readFigures, { timeoutMs: what === 'reload' ? this.#reloadTimeoutMs : this.#timeoutMs })
          .catch(() => NO_PRIMARY)
      : NO_PRIMARY;
    if (figures.missing !== 0) {
      this.#logger?.warn('admin: the answer leaves out workers that did not answer in time', {
        what,
        workers: figures.missing ?? 'unknown (no answer from the primary)',
        ...(figures.left?.length ? { left: figures.left.map((w) => `${w.pid ?? '?'}: ${w.error}`).join('; ') } : {}),
      });
    }
    return figures;
  }

  /** Stops listening; gathers still waiting resolve without the other workers. */
  close(): void {
    this.#started = false;
    this.#primary.close();
  }

  #answer(id: number, what: PeerRequestKind): void {
    const reply = (body: { part: unknown } | { error: string }): void => {
      sendMessage(this.#channel, { tag: TAG, type: 'collected', id, ...body });
    };
    Promise.resolve()
      .then(() => this.#collect(what))
      .then(
        (part) => reply({ part }),
        (error: unknown) => reply({ error: error instanceof Error ? error.message : String(error) }),
      );
  }
}
