/**
 * The primary replaced by its successor without closing the port (a package upgrade): the primary
 * (P1) starts a new one (P2) from the code on disk with the same arguments, passing it the listening
 * socket systemd gave (descriptor 3) and an IPC channel. P2 starts its workers on that socket (both
 * generations accept meanwhile) and says `ready`; P1 then asks its workers to hand their connections
 * over, passes each to P2 (which gives it to one of its workers), sends the decisions it holds, tells
 * systemd that P2 is the main process (MAINPID), and exits. P2 outlives its parent and serves on.
 * Socket activation is required: without it node:cluster holds the listening socket inside P1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from 'spop';
import { SUCCESSOR_ENV } from '../net/systemd.js';
import { isTagged } from './channel.js';
import { HANDOVER_TAG, type HandoverMessage, type NativeHandle, isHandoverMessage, isNativeHandle } from './handover.js';
import type { RestartResult, WorkerSupervisor } from './supervisor.js';

export const SUCCESSION_TAG = 'iprep-succession';
/**
 * Set in the workers of a successor primary: the admin port is still held by the predecessor's
 * workers until they handed their connections over, so they bind it once it is free.
 */
export const ADMIN_PORT_WAIT_ENV = 'IPREP_ADMIN_PORT_WAIT';
/** Time the successor gets to start its workers on the socket before it is stopped and P1 serves on. */
export const SUCCESSOR_READY_TIMEOUT_MS = 30_000;
/** Time `systemd-notify` gets to announce the new main process. */
const NOTIFY_TIMEOUT_MS = 5000;
/** Time a successor that failed to start gets between SIGTERM and SIGKILL. */
const SUCCESSOR_KILL_DELAY_MS = 10_000;
const MAX_PIDS = 256;

export interface PredecessorOptions {
  /** The listening socket systemd passed (descriptor 3); undefined: the replacement is refused. */
  readonly fd: number | undefined;
  readonly supervisor: WorkerSupervisor;
  readonly logger: Logger;
  readonly readyTimeoutMs?: number;
  /** Time between the answer to the request and the workers' hand-over (the asking worker answers first). */
  readonly retireDelayMs: number;
  /** The decisions this primary holds, encoded; sent once its workers are gone (they change no more). */
  readonly decisions?: () => readonly string[];
  /**
   * Called once the successor took over (code 0): this process leaves. Code 1 when the successor died
   * after it was ready, while this primary's workers were already leaving: a service manager restarts.
   */
  readonly exit: (code: number) => void;
  /** What runs as the successor (tests); default: this process's command line again. */
  readonly command?: { readonly file: string; readonly args: readonly string[] };
}

/**
 * In the primary: replaces it by a successor. Asked again while a replacement runs, the same one
 * answers; once the successor took over, this process only waits to exit.
 */
export class PrimaryReplacement {
  readonly #options: PredecessorOptions;
  #running: Promise<RestartResult> | undefined;
  /** The successor while it starts: stopped if this primary stops meanwhile. */
  #starting: ChildProcess | undefined;

  constructor(options: PredecessorOptions) {
    this.#options = options;
  }

  replace(): Promise<RestartResult> {
    if (this.#running !== undefined) return this.#running;
    const running = this.#replaceOnce();
    this.#running = running;
    // A failed replacement may be asked again; a successful one is final.
    void running.then((result) => {
      if (!result.ok) this.#running = undefined;
    });
    return running;
  }

  async #replaceOnce(): Promise<RestartResult> {
    const { fd, logger, supervisor } = this.#options;
    if (fd === undefined) {
      return {
        ok: false,
        error:
          'replacing the primary needs the SPOP socket passed by systemd (socket activation: examples/systemd/spoa.socket); restart the workers alone without --primary',
      };
    }
    const retired = supervisor.serving();
    const { file, args } = this.#options.command ?? { file: process.execPath, args: [...process.execArgv, ...process.argv.slice(1)] };
    logger.info('replacing the primary: starting its successor', { command: args.join(' ') });
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        stdio: ['ignore', 'inherit', 'inherit', fd, 'ipc'],
        env: { ...process.env, LISTEN_FDS: '1', [SUCCESSOR_ENV]: String(process.pid) },
      });
    } catch (error) {
      return { ok: false, error: `cannot start the successor: ${String(error)}` };
    }
    this.#starting = child;
    const ready = await this.#waitReady(child);
    this.#starting = undefined;
    if (typeof ready === 'string') {
      logger.error('replacing the primary failed: this one keeps serving', { error: ready });
      child.kill('SIGTERM');
      setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }, SUCCESSOR_KILL_DELAY_MS).unref();
      return { ok: false, error: ready };
    }
    const successor = child.pid ?? 0;
    logger.info('successor ready: handing the connections over', { successor, workers: ready.join(',') });
    setTimeout(() => void this.#handOver(child, successor), this.#options.retireDelayMs);
    return { ok: true, workers: ready, retired, primary: successor };
  }

  /** This primary stops: a successor still starting is stopped too (once ready, it is the one that stays). */
  abort(): void {
    this.#starting?.kill('SIGTERM');
  }

  /** The successor's workers once it says ready, or why it did not. */
  #waitReady(child: ChildProcess): Promise<readonly number[] | string> {
    const timeoutMs = this.#options.readyTimeoutMs ?? SUCCESSOR_READY_TIMEOUT_MS;
    return new Promise((resolve) => {
      const done = (outcome: readonly number[] | string): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        child.off('error', onError);
        resolve(outcome);
      };
      const onMessage = (message: unknown): void => {
        if (!isTagged(message, SUCCESSION_TAG) || message.type !== 'ready') return;
        const workers = message['workers'];
        if (Array.isArray(workers) && workers.length <= MAX_PIDS && workers.every((pid) => Number.isSafeInteger(pid))) done(workers as number[]);
        else done('the successor said ready with a malformed list of workers');
      };
      const onExit = (code: number | null, signal: string | null): void => done(`the successor exited before it was ready (code ${code}, signal ${signal})`);
      const onError = (error: Error): void => done(`cannot start the successor: ${error.message}`);
      const timer = setTimeout(() => done(`the successor was not ready within ${timeoutMs} ms`), timeoutMs);
      child.on('message', onMessage);
      child.on('exit', onExit);
      child.on('error', onError);
    });
  }

  async #handOver(child: ChildProcess, successor: number): Promise<void> {
    const { logger, supervisor } = this.#options;
    // Each connection a worker hands over goes on to the successor, which gives it to one of its workers.
    await supervisor.handOverAll({ send: (message, handle, callback) => sendHandle(child, message, handle, callback) });
    if (child.exitCode !== null || child.signalCode !== null) {
      logger.error('the successor exited while taking over: leaving with code 1 (for the service manager to start spoa again)', {
        code: child.exitCode,
        signal: child.signalCode,
      });
      this.#options.exit(1);
      return;
    }
    const decisions = this.#options.decisions?.() ?? [];
    await new Promise<void>((resolve) => {
      try {
        child.send({ tag: SUCCESSION_TAG, type: 'decisions', decisions }, (error) => {
          if (error !== null) logger.error('cannot hand the decisions to the successor', { error: error.message });
          resolve();
        });
      } catch (error) {
        logger.error('cannot hand the decisions to the successor', { error: String(error) });
        resolve();
      }
    });
    await announceMainPid(successor, logger);
    logger.info('the successor is the primary now: leaving', { successor, decisions: decisions.length });
    // Messages keep their order: once disconnected, the successor has read everything sent before.
    if (child.connected) child.disconnect();
    this.#options.exit(0);
  }
}

function sendHandle(child: ChildProcess, message: HandoverMessage, handle: NativeHandle, callback: (error: Error | null) => void): void {
  try {
    child.send(message, handle as never, {}, callback);
  } catch (error) {
    callback(error instanceof Error ? error : new Error(String(error)));
  }
}

/**
 * Tells systemd that `pid` is the service's main process now (the unit needs NotifyAccess=all), when
 * it runs under systemd (NOTIFY_SOCKET). Node cannot write to a Unix datagram socket: systemd-notify does.
 */
function announceMainPid(pid: number, logger: Logger): Promise<void> {
  if (process.env['NOTIFY_SOCKET'] === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const notify = spawn('systemd-notify', [`--pid=${pid}`, `MAINPID=${pid}`], { stdio: 'ignore', timeout: NOTIFY_TIMEOUT_MS });
    notify.on('error', (error) => {
      logger.error('cannot tell systemd the new main process', { error: error.message });
      resolve();
    });
    notify.on('exit', (code, signal) => {
      if (code !== 0) logger.error('systemd-notify failed: systemd may stop the service as this process exits', { code, signal });
      resolve();
    });
  });
}

export interface SuccessorOptions {
  readonly supervisor: WorkerSupervisor;
  readonly logger: Logger;
  /** Takes the predecessor's decisions (ClusterStoreHost.merge); resolves with how many it took. */
  readonly mergeDecisions?: (decisions: unknown) => Promise<number>;
}

/**
 * In a primary started by its predecessor (SUCCESSOR_ENV): says ready once its workers serve, then
 * passes each connection handed over to a worker, takes the decisions, and carries on once its
 * parent disconnects (it does not exit with it).
 */
export function serveAsSuccessor(options: SuccessorOptions): void {
  const { supervisor, logger } = options;
  if (process.send === undefined) return;
  const onMessage = (message: unknown, handle: unknown): void => {
    if (isTagged(message, HANDOVER_TAG)) {
      if (isHandoverMessage(message, 'adopt') && isNativeHandle(handle)) supervisor.adoptFromPredecessor(message, handle);
      else if (isNativeHandle(handle)) handle.close(); // malformed: never leave a connection nobody serves
      return;
    }
    if (!isTagged(message, SUCCESSION_TAG) || message.type !== 'decisions') return;
    const merge = options.mergeDecisions;
    if (merge === undefined) return;
    void merge(message['decisions']).then(
      (taken) => logger.info('decisions taken from the previous primary', { decisions: taken }),
      (error: unknown) => logger.error('decisions from the previous primary refused', { error: String(error) }),
    );
  };
  const onDisconnect = (): void => {
    process.off('message', onMessage);
    process.off('disconnect', onDisconnect);
    logger.info('the previous primary left: this process is the primary', { pid: process.pid });
  };
  process.on('message', onMessage);
  process.on('disconnect', onDisconnect);
  void supervisor.whenReady().then((workers) => {
    process.send?.({ tag: SUCCESSION_TAG, type: 'ready', workers: [...workers] }, undefined, {}, () => {});
  });
}
