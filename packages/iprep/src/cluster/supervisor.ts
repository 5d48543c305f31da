/**
 * The primary's workers: started, replaced when one dies, replaced all together by a rolling restart
 * (SIGUSR2, `POST /restart`), stopped. A rolling restart forks a new generation from the code on
 * disk, waits until each of its workers reports ready (listening, its service started), and only
 * then retires the old generation: node:cluster's primary keeps the listening socket while any
 * worker listens, so there is no moment without a listener. With `handOver`, each old worker hands
 * its live connections to the new workers through the primary (cluster/handover.ts) rather than
 * closing them; otherwise (and on stop) it answers what it has in flight and sends
 * AGENT-DISCONNECT 0 before it leaves.
 */
import cluster from 'node:cluster';
import type { Logger } from 'spop';
import { type TaggedMessage, isRequestId, isTagged, parentChannel, sendMessage } from './channel.js';
import { HANDOVER_TAG, type HandoverMessage, type NativeHandle, forwardConnection, isHandoverMessage, isNativeHandle } from './handover.js';
import { RequestClient } from './request-client.js';

export const SUPERVISOR_TAG = 'iprep-supervisor';
/** Set in the workers' environment when the primary supervises them: a worker may ask it for a restart. */
export const SUPERVISOR_ENV = 'IPREP_SUPERVISOR';

/** Time a new worker gets to listen and start its service before a rolling restart gives up. */
export const DEFAULT_READY_TIMEOUT_MS = 30_000;
/** Delay before a dead worker is replaced: a worker that dies at once does not spin the primary. */
export const DEFAULT_RESPAWN_DELAY_MS = 100;
/**
 * Time between a restart's answer and the old workers' SIGTERM: a worker that asked for the restart
 * (POST /restart) answers its client first, before closing its admin port.
 */
export const DEFAULT_RETIRE_DELAY_MS = 50;
export const DEFAULT_MAX_FAILED_STARTS = 10;

/** In a node:cluster worker: tells the primary this worker listens and serves (a no-op elsewhere). */
export function reportReady(): void {
  if (!cluster.isWorker || process.send === undefined) return;
  sendMessage(parentChannel(), { tag: SUPERVISOR_TAG, type: 'ready' });
}

/** Time a leaving worker waits for the primary to confirm that no connection is on its way to it. */
export const LEAVE_TIMEOUT_MS = 1000;

/**
 * In a node:cluster worker whose server closed, before it exits: a round trip to the primary. The
 * primary may have sent a connection to this worker just before it learned that the server closed;
 * the worker hands such a connection back, but only if it is still there to read it: a worker that
 * exits first strands it in the primary, where it hangs unanswered. Messages on the channel keep
 * their order, so once the primary's answer arrives, no connection is still on its way.
 */
export function leaveCluster(timeoutMs = LEAVE_TIMEOUT_MS): Promise<void> {
  if (!cluster.isWorker || process.send === undefined) return Promise.resolve();
  const channel = parentChannel<{ tag: string; type: string }>();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      channel.off('message', onMessage);
      resolve();
    };
    const onMessage = (message: unknown): void => {
      if (isTagged(message, SUPERVISOR_TAG) && message.type === 'leave-ok') done();
    };
    const timer = setTimeout(done, timeoutMs);
    channel.on('message', onMessage);
    sendMessage(channel, { tag: SUPERVISOR_TAG, type: 'leaving' }, done);
  });
}

/** A worker as the supervisor sees it: a cluster Worker in the primary, a fake in the tests. */
export interface SupervisedWorker {
  readonly pid: number | undefined;
  /** `handle`: the handle sent with the message, if any (a connection handed over). */
  onMessage(listener: (message: unknown, handle: unknown) => void): void;
  onExit(listener: (code: number | null, signal: string | null) => void): void;
  kill(signal: NodeJS.Signals): void;
  /** Sends a message; a failure is dropped (the worker is gone). */
  send(message: TaggedMessage): void;
  /** Sends a message with a handle; `callback` once it went out, or with why it did not. */
  sendHandle(message: HandoverMessage, handle: NativeHandle, callback: (error: Error | null) => void): void;
}

export interface WorkerSupervisorOptions {
  /** Workers serving at once. */
  workers: number;
  /** Forks one worker from the code on disk. */
  fork(): SupervisedWorker;
  logger: Logger;
  /** A new worker not ready within this time fails the rolling restart (default 30 s). */
  readyTimeoutMs?: number;
  /** A worker told to stop (SIGTERM) still alive after this time is killed (SIGKILL). */
  stopTimeoutMs: number;
  respawnDelayMs?: number;
  retireDelayMs?: number;
  /** Workers in a row that die before they are ready, after which the supervisor stops replacing them (default 10). */
  maxFailedStarts?: number;
  /**
   * Called once the replacements keep dying before they are ready: a crash loop that replacing them
   * will not end (new code that fails at start, a socket gone). The caller stops, and a service
   * manager may start it all again.
   */
  onCrashLoop?: (reason: string) => void;
  /**
   * A rolling restart asks the old workers to hand their connections over to the new ones (and
   * leave) instead of stopping them with SIGTERM, which closes the connections. Default false.
   */
  handOver?: boolean;
  /**
   * Replaces this primary with its successor (cluster/succession.ts), for a worker's `restart` request
   * with `primary: true`; without it such a request fails.
   */
  replacePrimary?: () => Promise<RestartResult>;
}

/** Where connections go once the whole generation leaves for a successor primary. */
export interface HandleSink {
  send(message: HandoverMessage, handle: NativeHandle, callback: (error: Error | null) => void): void;
}

export type RestartResult =
  | { readonly ok: true; readonly workers: readonly number[]; readonly retired: readonly number[]; readonly primary?: number }
  | { readonly ok: false; readonly error: string };

type Role = 'serving' | 'incoming' | 'retiring';

interface Roll {
  readonly incoming: Set<SupervisedWorker>;
  finish(error: string | undefined): void;
}

export class WorkerSupervisor {
  readonly #options: WorkerSupervisorOptions;
  readonly #readyTimeoutMs: number;
  readonly #respawnDelayMs: number;
  readonly #retireDelayMs: number;
  readonly #roles = new Map<SupervisedWorker, Role>();
  readonly #ready = new Set<SupervisedWorker>();
  readonly #signalled = new WeakSet<SupervisedWorker>();
  #roll: Roll | undefined;
  #running: Promise<RestartResult> | undefined;
  #next: Promise<RestartResult> | undefined;
  #stopping = false;
  #failedStarts = 0;
  #allExited: (() => void) | undefined;
  /** Round robin over the serving workers for connections handed over. */
  #nextTarget = 0;
  /** Set by handOverAll: the successor primary every connection handed over goes to. */
  #successor: HandleSink | undefined;
  #readyWaiters: (() => void)[] = [];

  constructor(options: WorkerSupervisorOptions) {
    this.#options = options;
    this.#readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    this.#respawnDelayMs = options.respawnDelayMs ?? DEFAULT_RESPAWN_DELAY_MS;
    this.#retireDelayMs = options.retireDelayMs ?? DEFAULT_RETIRE_DELAY_MS;
  }

  start(): void {
    for (let i = 0; i < this.#options.workers; i++) this.#spawn('serving');
  }

  /** The pids of the workers serving now (not those starting or leaving). */
  serving(): number[] {
    return [...this.#roles].filter(([, role]) => role === 'serving').flatMap(([w]) => (w.pid === undefined ? [] : [w.pid]));
  }

  /** Resolves once `workers` serving workers are ready (the first generation after start()). */
  whenReady(): Promise<readonly number[]> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.#countReadyServing() < this.#options.workers) this.#readyWaiters.push(check);
        else resolve(this.serving());
      };
      check();
    });
  }

  #countReadyServing(): number {
    let n = 0;
    for (const [w, role] of this.#roles) if (role === 'serving' && this.#ready.has(w)) n++;
    return n;
  }

  /**
   * For a successor primary: every worker hands its connections over, each passed on to `successor`,
   * and leaves; none is replaced. Resolves once all have exited (SIGKILL after stopTimeoutMs).
   */
  handOverAll(successor: HandleSink): Promise<readonly number[]> {
    this.#stopping = true;
    this.#successor = successor;
    this.#roll?.finish('the primary is being replaced');
    const retired = [...this.#roles.keys()].flatMap((w) => w.pid ?? []);
    const exited = new Promise<readonly number[]>((resolve) => {
      this.#allExited = () => resolve(retired);
    });
    for (const worker of [...this.#roles.keys()]) this.#retire(worker, true);
    if (this.#roles.size === 0) this.#allExited?.();
    return exited;
  }

  /** A connection the predecessor primary passed on: to the next serving worker that is ready, else closed. */
  adoptFromPredecessor(message: HandoverMessage, handle: NativeHandle): void {
    const target = this.#nextReadyServing(undefined);
    const nobody: HandleSink = { send: (_message, _handle, callback) => callback(new Error('no worker is ready')) };
    forwardConnection(message, handle, target === undefined ? undefined : { send: target.sendHandle.bind(target) }, nobody, this.#options.logger);
  }

  #nextReadyServing(except: SupervisedWorker | undefined): SupervisedWorker | undefined {
    const targets = [...this.#roles].filter(([w, role]) => role === 'serving' && w !== except && this.#ready.has(w)).map(([w]) => w);
    return targets.length === 0 ? undefined : targets[this.#nextTarget++ % targets.length];
  }

  /**
   * A rolling restart. Asked while one runs, it runs once more after it (the code on disk may have
   * changed since the first forked), and every ask made meanwhile shares that one.
   */
  restart(): Promise<RestartResult> {
    if (this.#stopping) return Promise.resolve({ ok: false, error: 'the agent is stopping' });
    if (this.#running === undefined) {
      const running = this.#rollOnce().finally(() => {
        if (this.#running === running) this.#running = undefined;
      });
      this.#running = running;
      return running;
    }
    this.#next ??= this.#running.then(() => {
      this.#next = undefined;
      return this.restart();
    });
    return this.#next;
  }

  /** Stops every worker (SIGTERM, SIGKILL after stopTimeoutMs); resolves once all have exited. */
  stop(): Promise<void> {
    this.#stopping = true;
    this.#roll?.finish('the agent is stopping');
    const exited = new Promise<void>((resolve) => {
      this.#allExited = resolve;
    });
    for (const worker of [...this.#roles.keys()]) this.#retire(worker);
    if (this.#roles.size === 0) this.#allExited?.();
    return exited;
  }

  #spawn(role: Role): SupervisedWorker {
    const worker = this.#options.fork();
    this.#roles.set(worker, role);
    worker.onMessage((message, handle) => {
      if (isTagged(message, HANDOVER_TAG)) {
        if (isHandoverMessage(message, 'connection') && isNativeHandle(handle)) this.#forward(worker, message, handle);
        else if (isNativeHandle(handle)) handle.close(); // malformed: never leave a connection nobody serves
        return;
      }
      if (!isTagged(message, SUPERVISOR_TAG)) return;
      if (message.type === 'leaving') worker.send({ tag: SUPERVISOR_TAG, type: 'leave-ok' });
      if (message.type === 'restart' && isRequestId(message.id)) {
        const id = message.id;
        const replacePrimary = this.#options.replacePrimary;
        const restart =
          message['primary'] !== true
            ? this.restart()
            : replacePrimary === undefined
              ? Promise.resolve<RestartResult>({ ok: false, error: 'this primary cannot be replaced' })
              : replacePrimary();
        // The answer goes out as the new workers are ready, while the asking worker still runs.
        void restart.then((result) => worker.send({ tag: SUPERVISOR_TAG, type: 'restarted', id, result }));
      }
      if (message.type !== 'ready') return;
      this.#ready.add(worker);
      this.#failedStarts = 0;
      for (const wake of this.#readyWaiters.splice(0)) wake();
      if (this.#roll?.incoming.has(worker) && [...this.#roll.incoming].every((w) => this.#ready.has(w))) this.#roll.finish(undefined);
    });
    worker.onExit((code, signal) => this.#exited(worker, code, signal));
    return worker;
  }

  #exited(worker: SupervisedWorker, code: number | null, signal: string | null): void {
    const role = this.#roles.get(worker);
    const wasReady = this.#ready.has(worker);
    this.#roles.delete(worker);
    this.#ready.delete(worker);
    if (this.#stopping) {
      if (this.#roles.size === 0) this.#allExited?.();
      return;
    }
    if (role === 'incoming') {
      this.#roll?.finish(`new worker ${worker.pid} exited before it was ready (code ${code}, signal ${signal})`);
    } else if (role === 'serving') {
      const maxFailedStarts = this.#options.maxFailedStarts ?? DEFAULT_MAX_FAILED_STARTS;
      if (!wasReady && ++this.#failedStarts >= maxFailedStarts) {
        const reason = `${this.#failedStarts} workers in a row exited before they were ready (the last: code ${code}, signal ${signal})`;
        this.#options.logger.error('workers keep failing at start: no more replacements', { reason });
        this.#options.onCrashLoop?.(reason);
        return;
      }
      this.#options.logger.warn('worker died: restarting it', { pid: worker.pid, code, signal });
      // Counted when the timer fires: a rolling restart may have replaced the generation meanwhile.
      setTimeout(() => {
        if (!this.#stopping && this.#count('serving') < this.#options.workers) this.#spawn('serving');
      }, this.#respawnDelayMs);
    }
  }

  #count(role: Role): number {
    let n = 0;
    for (const r of this.#roles.values()) if (r === role) n++;
    return n;
  }

  /** A connection a retiring worker handed over: to the next serving worker that is ready, else back to its sender. */
  #forward(from: SupervisedWorker, message: HandoverMessage, handle: NativeHandle): void {
    const via = (w: SupervisedWorker) => ({ send: w.sendHandle.bind(w) });
    if (this.#successor !== undefined) return forwardConnection(message, handle, this.#successor, via(from), this.#options.logger);
    const target = this.#nextReadyServing(from);
    forwardConnection(message, handle, target === undefined ? undefined : via(target), via(from), this.#options.logger);
  }

  /** `handOver`: the worker hands its connections to the serving workers and leaves, rather than closing them on SIGTERM. */
  #retire(worker: SupervisedWorker, handOver = false): void {
    this.#roles.set(worker, 'retiring');
    // Once: a second SIGTERM makes a worker leave at once, without answering what it has in flight.
    if (this.#signalled.has(worker)) return;
    this.#signalled.add(worker);
    if (handOver) worker.send({ tag: HANDOVER_TAG, type: 'hand-over' });
    else worker.kill('SIGTERM');
    setTimeout(() => {
      if (this.#roles.has(worker)) {
        this.#options.logger.warn('worker still running after the shutdown timeout: killing it', { pid: worker.pid });
        worker.kill('SIGKILL');
      }
    }, this.#options.stopTimeoutMs).unref();
  }

  #rollOnce(): Promise<RestartResult> {
    const { logger, workers } = this.#options;
    const old = [...this.#roles].filter(([, role]) => role === 'serving').map(([w]) => w);
    logger.info('rolling restart: starting new workers', { workers, old: old.map((w) => w.pid).join(',') });
    return new Promise((resolve) => {
      const incoming = new Set<SupervisedWorker>();
      const timer = setTimeout(() => roll.finish(`new workers not ready within ${this.#readyTimeoutMs} ms`), this.#readyTimeoutMs);
      const roll: Roll = {
        incoming,
        finish: (error) => {
          if (this.#roll !== roll) return;
          this.#roll = undefined;
          clearTimeout(timer);
          if (error !== undefined) {
            // The old generation keeps serving; the new one, ready or not, leaves.
            for (const worker of incoming) if (this.#roles.has(worker)) this.#retire(worker);
            logger.error('rolling restart failed: the old workers keep serving', { error });
            resolve({ ok: false, error });
            return;
          }
          // Every serving worker now (the old ones, and any replacement forked meanwhile) leaves.
          const leaving = [...this.#roles].filter(([, role]) => role === 'serving').map(([w]) => w);
          for (const worker of incoming) this.#roles.set(worker, 'serving');
          // Leaving, but not asked to yet: a crash now is not replaced, and stop() still stops it.
          for (const worker of leaving) this.#roles.set(worker, 'retiring');
          setTimeout(() => {
            for (const worker of leaving) if (this.#roles.get(worker) === 'retiring' && !this.#stopping) this.#retire(worker, this.#options.handOver === true);
          }, this.#retireDelayMs);
          const result = { ok: true as const, workers: [...incoming].flatMap((w) => w.pid ?? []), retired: leaving.flatMap((w) => w.pid ?? []) };
          logger.info('rolling restart: new workers ready, old ones stopping', { workers: result.workers.join(','), retired: result.retired.join(',') });
          resolve(result);
        },
      };
      this.#roll = roll;
      for (let i = 0; i < workers; i++) incoming.add(this.#spawn('incoming'));
    });
  }
}

/** A worker's wait for a restart it asked for: the new workers' ready time, and a margin. */
const RESTART_REQUEST_TIMEOUT_MS = DEFAULT_READY_TIMEOUT_MS + 5000;

function restartResultFrom(value: unknown): RestartResult {
  const v = value as { ok?: unknown; error?: unknown; workers?: unknown; retired?: unknown; primary?: unknown } | null;
  const pids = (list: unknown): number[] | undefined =>
    Array.isArray(list) && list.length <= 256 && list.every((pid) => Number.isSafeInteger(pid)) ? (list as number[]) : undefined;
  if (typeof v === 'object' && v !== null) {
    if (v.ok === false && typeof v.error === 'string') return { ok: false, error: v.error.slice(0, 1000) };
    const workers = pids(v.workers);
    const retired = pids(v.retired);
    const primary = Number.isSafeInteger(v.primary) ? { primary: v.primary as number } : {};
    if (v.ok === true && workers !== undefined && retired !== undefined) return { ok: true, workers, retired, ...primary };
  }
  throw new Error('the primary answered a restart with something else than a result');
}

type RestartedMessage = TaggedMessage<typeof SUPERVISOR_TAG> & { readonly type: 'restarted' };
type RestartRequest = { readonly type: 'restart'; readonly primary: boolean };
let restartClient: RequestClient<RestartRequest, RestartedMessage, typeof SUPERVISOR_TAG> | undefined;

/**
 * In a worker of a supervising primary (SUPERVISOR_ENV): asks the primary for a rolling restart, or
 * (`primary`) to replace itself with a successor, and its outcome.
 */
export function requestRestart(options: { readonly primary?: boolean } = {}): Promise<RestartResult> {
  restartClient ??= new RequestClient<RestartRequest, RestartedMessage, typeof SUPERVISOR_TAG>({
    channel: parentChannel(),
    tag: SUPERVISOR_TAG,
    replyTypes: ['restarted'],
    timeoutMs: RESTART_REQUEST_TIMEOUT_MS,
    maxPending: 10,
    subject: 'restart',
  });
  return restartClient.request({ type: 'restart', primary: options.primary === true }, (reply) => restartResultFrom(reply['result']));
}
