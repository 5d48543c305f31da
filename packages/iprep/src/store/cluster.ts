/**
 * The memory store shared by node:cluster workers: the primary process holds the one copy of the
 * decisions and counters (`ClusterStoreHost`), the workers reach it over the cluster's IPC channel
 * (`IpcDecisionStore`, `IpcCounterStore`). No dependency and no server: several workers, one state.
 *
 * Protocol (JSON messages, every one tagged `tag: 'iprep-cluster-store'` so other IPC traffic is left
 * alone). Worker to primary, each with a request id unique within the worker process:
 *   subscribe            -> snapshot { decisions }, then every change, in order, on the same channel
 *   put { decision }     -> stored        (the change is broadcast before the reply)
 *   delete { key }       -> deleted { removed }
 *   flush { deltas, windowMs, now } -> totals { totals }
 *   any request          -> failed { error } when the primary refuses it
 * Primary to every subscribed worker: change { op: 'put', decision } | change { op: 'delete', key }.
 * Decisions travel in their canonical encoding (codec.ts), checked on arrival.
 */
import type { Logger } from 'spop';
import {
  type IpcChannel as GenericIpcChannel,
  RequestClient,
  type TaggedMessage,
  parentChannel as genericParentChannel,
  hasWorkerFlag,
  isRequestId,
  isTagged,
  sendMessage,
  serveChannel,
} from '../cluster/index.js';
import type { CounterStore, Decision, DecisionChange, DecisionStore, StoreHealth } from '../types.js';
import { decodeDecision, encodeDecision } from './codec.js';
import { MemoryCounterStore, MemoryDecisionStore } from './memory.js';
import { DecisionView } from './view.js';

/** Set to `1` by the primary in the environment of the workers it forks when it runs a host. */
export const CLUSTER_STORE_ENV = 'IPREP_CLUSTER_STORE';

/** True in a cluster worker whose primary runs a ClusterStoreHost (so a worker never waits for a missing host). */
export function hasClusterStoreHost(): boolean {
  return hasWorkerFlag(CLUSTER_STORE_ENV);
}

const TAG = 'iprep-cluster-store';

type RequestBody =
  | { readonly type: 'subscribe' }
  | { readonly type: 'put'; readonly decision: string }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'flush'; readonly deltas: readonly (readonly [string, number])[]; readonly windowMs: number; readonly now: number };

/** What a worker sends. */
export type ClusterStoreRequest = RequestBody & { readonly tag: typeof TAG; readonly id: number };

type ReplyBody =
  | { readonly type: 'snapshot'; readonly decisions: readonly string[] }
  | { readonly type: 'stored' }
  | { readonly type: 'deleted'; readonly removed: boolean }
  | { readonly type: 'totals'; readonly totals: readonly (readonly [string, number])[] }
  | { readonly type: 'failed'; readonly error: string };

type Reply = ReplyBody & { readonly tag: typeof TAG; readonly id: number };

type ChangeMessage = { readonly tag: typeof TAG; readonly type: 'change' } & (
  | { readonly op: 'put'; readonly decision: string }
  | { readonly op: 'delete'; readonly key: string }
);

/** What the primary sends. */
export type ClusterStoreReply = Reply | ChangeMessage;

export type ClusterStoreMessage = ClusterStoreRequest | ClusterStoreReply;

/** One end of the channel the store's messages travel on (see ../cluster/channel.ts). */
export type IpcChannel = GenericIpcChannel<ClusterStoreMessage>;

// ---------------------------------------------------------------------------
// The primary

/** Most decisions a successor primary takes from its predecessor (redis.max-decisions's ceiling). */
const MAX_MERGED_DECISIONS = 10_000_000;
/** Decisions merged per turn of the event loop. */
const MERGE_SLICE = 1000;

export interface ClusterStoreHostOptions {
  /** The decisions file (`decisions.file`): read by start(), rewritten after changes and by close(). */
  readonly decisionsFile?: string | null;
  readonly logger?: Logger;
  readonly now?: () => number;
  /** How often expired decisions are deleted (and the deletes broadcast). Default 1000 ms. */
  readonly pruneIntervalMs?: number;
}

/**
 * Runs in the primary: owns one MemoryDecisionStore and one MemoryCounterStore, answers the workers
 * attached to it and broadcasts every decision change to every subscribed worker.
 */
export class ClusterStoreHost {
  readonly #decisions: MemoryDecisionStore;
  readonly #counters = new MemoryCounterStore();
  readonly #logger: Logger | undefined;
  /** Attached channels and how to detach each. */
  readonly #attached = new Map<IpcChannel, () => void>();
  /** Channels that asked for the decisions: they get every change. */
  readonly #subscribers = new Set<IpcChannel>();
  #unsubscribe: (() => void) | undefined;
  /** Counter time never goes back: a late flush from one worker must not reset a newer bucket. */
  #lastFlushAt = -Infinity;

  constructor(options: ClusterStoreHostOptions = {}) {
    this.#logger = options.logger;
    this.#decisions = new MemoryDecisionStore({
      file: options.decisionsFile ?? null,
      logger: options.logger,
      now: options.now,
      pruneIntervalMs: options.pruneIntervalMs,
    });
  }

  /** Loads the decisions file; attach workers after it resolved, so their snapshot includes it. */
  async start(): Promise<void> {
    if (this.#unsubscribe !== undefined) return;
    await this.#decisions.start();
    this.#unsubscribe = this.#decisions.onChange((change) => this.#broadcast(change));
  }

  /** Serves the worker at the other end of `channel` until it disconnects or exits; returns a detach function. */
  attach(channel: IpcChannel): () => void {
    return serveChannel(
      this.#attached,
      channel,
      (message) => {
        if (isTagged(message, TAG)) this.#handle(channel, message);
      },
      () => this.#subscribers.delete(channel),
    );
  }

  /** The current decisions, as the workers see them. */
  snapshot(): readonly Decision[] {
    return this.#decisions.snapshot();
  }

  /**
   * Puts the decisions a predecessor primary held (encoded, as its `snapshot` reads them), broadcast
   * to the workers like any change; resolves with how many were taken. Checked here: they crossed a
   * process boundary. Applied in slices, so a large store never holds this process for long.
   */
  async merge(encoded: unknown): Promise<number> {
    if (!Array.isArray(encoded) || encoded.length > MAX_MERGED_DECISIONS) throw new Error(`decisions to merge: an array of at most ${MAX_MERGED_DECISIONS}`);
    let taken = 0;
    for (let start = 0; start < encoded.length; start += MERGE_SLICE) {
      for (const text of encoded.slice(start, start + MERGE_SLICE)) {
        if (typeof text !== 'string') continue;
        try {
          await this.#decisions.put(decodeDecision(text));
          taken++;
        } catch (error) {
          this.#logger?.warn('cluster store: a decision handed over was refused', { error: String(error) });
        }
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    return taken;
  }

  /** The decisions, encoded, for a successor primary's `merge`. */
  encodedSnapshot(): string[] {
    return this.#decisions.snapshot().map(encodeDecision);
  }

  /** Detaches every worker and closes the stores (writing the decisions file if a change is pending). */
  async close(): Promise<void> {
    for (const detach of [...this.#attached.values()]) detach();
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    await Promise.all([this.#decisions.close(), this.#counters.close()]);
  }

  #handle(channel: IpcChannel, message: TaggedMessage): void {
    const id = message.id;
    if (!isRequestId(id)) return; // not a request (or not ours to answer)
    const reply = (body: ReplyBody): void => {
      sendMessage(channel, { tag: TAG, id, ...body });
    };
    const refuse = (error: unknown): void => {
      const text = error instanceof Error ? error.message : String(error);
      this.#logger?.warn('cluster store: request refused', { type: String(message.type), error: text });
      reply({ type: 'failed', error: text });
    };
    try {
      const answer = this.#answer(channel, message as Partial<ClusterStoreRequest>);
      // Synchronous answers leave at once: nothing can slip between a snapshot and its subscription.
      if (answer instanceof Promise) answer.then(reply, refuse);
      else reply(answer);
    } catch (error) {
      refuse(error);
    }
  }

  /** Checks a request (it crossed a process boundary) and carries it out; throws a clear error when it is bad. */
  #answer(channel: IpcChannel, request: Partial<ClusterStoreRequest>): ReplyBody | Promise<ReplyBody> {
    switch (request.type) {
      case 'subscribe':
        // Snapshot and subscription in one turn: every later change follows the snapshot on this channel.
        this.#subscribers.add(channel);
        return { type: 'snapshot', decisions: this.#decisions.snapshot().map(encodeDecision) };
      case 'put': {
        if (typeof request.decision !== 'string') throw new Error('put: decision must be a string');
        // The change is applied and broadcast (to the writer too) before this resolves and replies.
        return this.#decisions.put(decodeDecision(request.decision)).then(() => ({ type: 'stored' }));
      }
      case 'delete':
        if (typeof request.key !== 'string') throw new Error('delete: key must be a string');
        return this.#decisions.delete(request.key).then((removed) => ({ type: 'deleted', removed }));
      case 'flush': {
        const deltas = readDeltas(request.deltas);
        const { windowMs, now } = request;
        if (typeof windowMs !== 'number' || !(windowMs > 0) || !Number.isFinite(windowMs)) throw new Error('flush: windowMs must be a positive number');
        if (typeof now !== 'number' || !Number.isFinite(now)) throw new Error('flush: now must be a finite number');
        this.#lastFlushAt = Math.max(this.#lastFlushAt, now);
        return { type: 'totals', totals: [...this.#counters.add(deltas, windowMs, this.#lastFlushAt)] };
      }
      default:
        throw new Error(`unknown request type ${JSON.stringify(request.type)}`);
    }
  }

  #broadcast(change: DecisionChange): void {
    const message: ChangeMessage =
      change.op === 'put'
        ? { tag: TAG, type: 'change', op: 'put', decision: encodeDecision(change.decision) }
        : { tag: TAG, type: 'change', op: 'delete', key: change.key };
    for (const channel of this.#subscribers) sendMessage(channel, message);
  }
}

function readDeltas(value: unknown): Map<string, number> {
  if (!Array.isArray(value)) throw new Error('flush: deltas must be an array of [key, number] pairs');
  const deltas = new Map<string, number>();
  for (const pair of value as unknown[]) {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'number' || !Number.isFinite(pair[1])) {
      throw new Error('flush: deltas must be an array of [key, number] pairs');
    }
    deltas.set(pair[0], (deltas.get(pair[0]) ?? 0) + pair[1]);
  }
  return deltas;
}

// ---------------------------------------------------------------------------
// The workers

/** The worker's channel to its parent (the cluster primary, or whoever forked it). */
export function parentChannel(): IpcChannel {
  if (process.send === undefined) throw new Error('cluster store: this process has no IPC channel to a primary');
  return genericParentChannel<ClusterStoreMessage>();
}

export interface IpcStoreOptions {
  /** Default: the channel to the parent process. */
  readonly channel?: IpcChannel;
  /** How long a request waits for the primary's answer before it fails. Default 2000 ms. */
  readonly requestTimeoutMs?: number;
  readonly logger?: Logger;
  /** Decisions only: the clock deciding which decisions are expired in the snapshot. */
  readonly now?: () => number;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 2000;
/**
 * Requests of one store waiting for the primary at most; more fail at once. Room for a burst of bans
 * (one put each) while the primary is busy; a stuck primary holds this many, not all of them.
 */
const MAX_PENDING_STORE_REQUESTS = 10_000;
const REPLY_TYPES: readonly Reply['type'][] = ['snapshot', 'stored', 'deleted', 'totals', 'failed'];

/** One store's requests to the primary, and the changes it hears. */
type HostLink = RequestClient<RequestBody, Reply, typeof TAG>;

function hostLink(channel: IpcChannel, timeoutMs: number, onChange: (message: ChangeMessage) => void = () => {}): HostLink {
  return new RequestClient<RequestBody, Reply, typeof TAG>({
    channel,
    tag: TAG,
    replyTypes: REPLY_TYPES,
    timeoutMs,
    maxPending: MAX_PENDING_STORE_REQUESTS,
    subject: 'cluster store',
    onMessage: (message) => {
      if (message.type === 'change') onChange(message as unknown as ChangeMessage);
    },
  });
}

/** Sends a request; `accept` turns the reply into the result (or throws) as soon as it arrives; a refusal rejects with its reason. */
function request<T>(link: HostLink, body: RequestBody, accept: (reply: Exclude<Reply, { type: 'failed' }>) => T): Promise<T> {
  return link.request(body, (reply) => {
    if (reply.type === 'failed') throw new Error(`cluster store: the primary refused ${body.type}: ${reply.error}`);
    return accept(reply);
  });
}

function unexpected(reply: Reply, wanted: string): Error {
  return new Error(`cluster store: expected ${wanted} from the primary, got ${reply.type}`);
}

/**
 * The decisions of a worker: a local view (snapshot() and onChange as in memory) kept in step with
 * the primary's. put/delete resolve once the primary applied them, after the change reached this view.
 */
export class IpcDecisionStore implements DecisionStore {
  readonly #view: DecisionView;
  readonly #link: HostLink;
  readonly #logger: Logger | undefined;
  /** Changes are applied only after the snapshot they follow. */
  #subscribed = false;

  constructor(options: IpcStoreOptions = {}) {
    const logger = options.logger;
    this.#logger = logger;
    this.#view = new DecisionView(options.now ?? Date.now, (error) => {
      if (logger) logger.error('decision listener failed', { error: String(error) });
      else process.emitWarning(`decision listener failed: ${String(error)}`);
    });
    this.#link = hostLink(options.channel ?? parentChannel(), options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, (message) => this.#applyChange(message));
  }

  /** Subscribes: the primary's decisions now, then every change after them. */
  async start(): Promise<void> {
    if (this.#subscribed) return;
    await request(this.#link, { type: 'subscribe' }, (reply) => {
      if (reply.type !== 'snapshot') throw unexpected(reply, 'a snapshot');
      const next = new Map<string, { decision: Decision; encoded: string }>();
      for (const encoded of reply.decisions) {
        const decision = this.#decode(encoded);
        if (decision !== undefined) next.set(decision.key, { decision, encoded: encodeDecision(decision) });
      }
      this.#view.replaceAll(next);
      this.#subscribed = true;
    });
  }

  async put(decision: Decision): Promise<void> {
    await request(this.#link, { type: 'put', decision: encodeDecision(decision) }, (reply) => {
      if (reply.type !== 'stored') throw unexpected(reply, 'stored');
    });
  }

  async delete(key: string): Promise<boolean> {
    return request(this.#link, { type: 'delete', key }, (reply) => {
      if (reply.type !== 'deleted') throw unexpected(reply, 'deleted');
      return reply.removed;
    });
  }

  snapshot(): readonly Decision[] {
    return this.#view.snapshot();
  }

  onChange(listener: (change: DecisionChange) => void): () => void {
    return this.#view.onChange(listener);
  }

  health(): StoreHealth {
    const error = this.#link.lastError;
    return error === undefined ? { kind: 'memory', up: true, detail: 'shared by the primary process' } : { kind: 'memory', up: false, detail: error };
  }

  async close(): Promise<void> {
    this.#subscribed = false;
    this.#link.close();
  }

  #applyChange(message: ChangeMessage): void {
    if (!this.#subscribed) return;
    if (message.op === 'delete') {
      this.#view.delete(message.key);
      return;
    }
    const decision = this.#decode(message.decision);
    if (decision !== undefined) this.#view.put(decision, encodeDecision(decision));
  }

  #decode(encoded: string): Decision | undefined {
    try {
      return decodeDecision(encoded);
    } catch (error) {
      this.#logger?.warn('cluster store: bad decision from the primary', { error: (error as Error).message });
      return undefined;
    }
  }
}

/** Behaviour counters of a worker: each flush adds its deltas to the primary's, which are summed across workers. */
export class IpcCounterStore implements CounterStore {
  readonly #link: HostLink;

  constructor(options: IpcStoreOptions = {}) {
    this.#link = hostLink(options.channel ?? parentChannel(), options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
  }

  async start(): Promise<void> {}

  flush(deltas: ReadonlyMap<string, number>, windowMs: number, now: number): Promise<Map<string, number>> {
    return request(this.#link, { type: 'flush', deltas: [...deltas], windowMs, now }, (reply) => {
      if (reply.type !== 'totals') throw unexpected(reply, 'totals');
      return new Map(reply.totals);
    });
  }

  health(): StoreHealth {
    const error = this.#link.lastError;
    return error === undefined ? { kind: 'memory', up: true, detail: 'shared by the primary process' } : { kind: 'memory', up: false, detail: error };
  }

  async close(): Promise<void> {
    this.#link.close();
  }
}
