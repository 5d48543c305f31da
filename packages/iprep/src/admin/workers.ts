/**
 * `/health` and `POST /reload` of the whole agent, whichever node:cluster worker answers: the answering
 * worker takes its own part and asks the others for theirs through the primary (cluster.ts), then
 * combines them. One process (no peers) answers as it always did, without IPC.
 */
import type { ReloadResult, ReputationService, StoreHealth } from '../types.js';
import type { LeftOutWorker, PeerFigures, WorkerPeers } from './cluster.js';
import { isFiniteNumber, isPid, isRecord, isStrings } from './guards.js';

/** `/health` of one process. */
export interface HealthReport {
  /**
   * Degraded: the store is down, a list failed, a list still loading has no copy yet, or the last
   * reload failed (with workers: in any worker, or a worker did not answer).
   */
  readonly status: 'ok' | 'degraded';
  /** Lists loaded. */
  readonly lists: number;
  readonly store: StoreHealth;
  readonly uptimeSeconds: number;
  /** Why the last reload failed (SIGHUP, POST /reload, a changed file), until one succeeds; absent when it did not. */
  readonly reloadError?: string;
  /** The lists whose last load or update failed. */
  readonly listErrors?: readonly { readonly list: string; readonly error: string }[];
  /** The URL lists whose first fetch is still running (the agent answers without them, or with their cached copy). */
  readonly listsLoading?: readonly string[];
}

/** One worker's health, as it answers another worker. */
export interface WorkerHealth extends HealthReport {
  readonly pid: number;
  readonly listErrors: readonly { readonly list: string; readonly error: string }[];
}

/** A worker whose health did not come: it did not answer in time, failed, or exited. */
export interface MissingWorkerHealth {
  /** Null when unknown. */
  readonly pid: number | null;
  readonly status: 'missing';
  readonly error: string;
}

/** `/health` with several workers: the one-process fields for the agent, and each worker's. */
export interface ClusterHealth extends HealthReport {
  /** Workers that answered, the answering one included. */
  readonly workers: number;
  /** Workers that did not; null when the primary did not answer, so the number is unknown. */
  readonly workersMissing: number | null;
  /** The answering worker first. */
  readonly perWorker: readonly (WorkerHealth | MissingWorkerHealth)[];
}

/** One worker's reload, as it answers another worker; durationMs null when it did not answer. */
export interface WorkerReload {
  readonly pid: number | null;
  readonly ok: boolean;
  readonly errors: readonly string[];
  readonly durationMs: number | null;
}

/**
 * `POST /reload` with several workers: ok only when every worker reloaded; `lists` are the answering
 * worker's, `errors` every worker's (prefixed `worker <pid>: `), `durationMs` the whole wait.
 */
export interface ClusterReloadResult extends ReloadResult {
  readonly workers: number;
  readonly workersMissing: number | null;
  /** The answering worker first, then the others, those that did not answer included. */
  readonly perWorker: readonly WorkerReload[];
}

/** This process's health, as `/health` of one process reports it (throws when the service does). */
export function workerHealth(service: ReputationService, uptimeSeconds: number, pid: number = process.pid): WorkerHealth {
  const store = service.store();
  const lists = service.lists();
  const listErrors = lists.flatMap((list) => (list.lastError === null ? [] : [{ list: list.name, error: list.lastError }]));
  // A geo database that failed to reload serves its last good copy: degraded, as a list is.
  for (const db of service.geoDatabases?.() ?? []) if (db.lastError !== null) listErrors.push({ list: `geo:${db.kind}-db`, error: db.lastError });
  const reloadError = service.reloadError();
  const loading = lists.filter((list) => list.loading === true);
  const empty = loading.some((list) => list.loadedAt === null);
  return {
    pid,
    status: !store.up || listErrors.length > 0 || empty || reloadError !== null ? 'degraded' : 'ok',
    lists: lists.length,
    store,
    uptimeSeconds: Math.round(uptimeSeconds),
    ...(reloadError === null ? {} : { reloadError }),
    listErrors,
    ...(loading.length === 0 ? {} : { listsLoading: loading.map((list) => list.name) }),
  };
}

/** The one-process `/health` body: a worker's health without the fields only several workers need. */
export function healthReport(health: WorkerHealth): HealthReport {
  const { status, lists, store, uptimeSeconds, reloadError, listErrors, listsLoading } = health;
  return {
    status,
    lists,
    store,
    uptimeSeconds,
    ...(reloadError === undefined ? {} : { reloadError }),
    ...(listErrors.length === 0 ? {} : { listErrors }),
    ...(listsLoading === undefined ? {} : { listsLoading }),
  };
}

/** Runs this process's reload and tells how it went, as another worker asks for it. */
export async function workerReload(service: ReputationService, pid: number = process.pid): Promise<WorkerReload> {
  const { ok, errors, durationMs } = await settledReload(service);
  return { pid, ok, errors, durationMs };
}

/** The service's ReloadResult; a reload that throws is one that failed, with the lists unchanged. */
async function settledReload(service: ReputationService): Promise<ReloadResult> {
  const started = Date.now();
  try {
    return await service.reload();
  } catch (error) {
    const errors = [error instanceof Error ? error.message : String(error)];
    return { ok: false, lists: safeLists(service), errors, durationMs: Date.now() - started };
  }
}

/**
 * The agent's health from the answering worker's and the others' (`figures`): degraded when any
 * worker is, or is missing; the store shown is the first one down, else the answering worker's; the
 * reload error the first worker's that has one.
 */
export function mergeHealth(own: WorkerHealth, figures: PeerFigures): ClusterHealth {
  const answered = [own, ...figures.parts.filter(isWorkerHealth)];
  const unreadable = figures.parts.length - (answered.length - 1);
  const missing: MissingWorkerHealth[] = [
    ...(figures.left ?? []).map(({ pid, error }) => ({ pid, status: 'missing' as const, error })),
    ...Array.from({ length: unreadable }, () => ({ pid: null, status: 'missing' as const, error: 'unreadable answer' })),
  ];
  const workersMissing = figures.missing === null ? null : figures.missing + unreadable;
  const degraded = workersMissing !== 0 || answered.some((worker) => worker.status !== 'ok');
  const reloadError = answered.find((worker) => worker.reloadError !== undefined)?.reloadError;
  return {
    status: degraded ? 'degraded' : 'ok',
    lists: own.lists,
    store: answered.find((worker) => !worker.store.up)?.store ?? own.store,
    uptimeSeconds: Math.max(...answered.map((worker) => worker.uptimeSeconds)),
    ...(reloadError === undefined ? {} : { reloadError }),
    workers: answered.length,
    workersMissing,
    perWorker: [...answered, ...missing],
  };
}

/** The agent's reload from the answering worker's result and the others' (`figures`). */
export function mergeReload(own: ReloadResult, ownPid: number, figures: PeerFigures, durationMs: number): ClusterReloadResult {
  const answered: WorkerReload[] = [{ pid: ownPid, ok: own.ok, errors: own.errors, durationMs: own.durationMs }, ...figures.parts.filter(isWorkerReload)];
  const unreadable = figures.parts.length - (answered.length - 1);
  const left: LeftOutWorker[] = [...(figures.left ?? []), ...Array.from({ length: unreadable }, () => ({ pid: null, error: 'unreadable answer' }))];
  const perWorker: WorkerReload[] = [...answered, ...left.map(({ pid, error }) => ({ pid, ok: false, errors: [error], durationMs: null }))];
  const errors = perWorker.flatMap((worker) => worker.errors.map((error) => `worker ${worker.pid ?? '?'}: ${error}`));
  if (figures.missing === null) errors.push('the primary process did not answer: whether the other workers reloaded is unknown');
  return {
    ok: figures.missing !== null && perWorker.every((worker) => worker.ok),
    lists: own.lists,
    errors,
    durationMs,
    workers: answered.length,
    workersMissing: figures.missing === null ? null : figures.missing + unreadable,
    perWorker,
  };
}

export interface AgentWorkersOptions {
  readonly service: ReputationService;
  /** This process's uptime. */
  readonly uptimeSeconds: () => number;
  /** The other node:cluster workers; without them, this process is the agent. */
  readonly peers?: WorkerPeers | undefined;
  readonly pid?: number;
}

/** `/health` and `POST /reload` for the admin server: of this process alone, or of every worker through `peers`. */
export class AgentWorkers {
  readonly #service: ReputationService;
  readonly #uptimeSeconds: () => number;
  readonly #peers: WorkerPeers | undefined;
  readonly #pid: number;
  /** The other workers' health being asked for: health requests meanwhile share it (the route is open to all). */
  #healthGather: Promise<PeerFigures> | undefined;
  #reloading: Promise<ClusterReloadResult> | undefined;
  /** The reload that starts when the running one ends, shared by the requests that came meanwhile. */
  #nextReload: Promise<ClusterReloadResult> | undefined;

  constructor(options: AgentWorkersOptions) {
    this.#service = options.service;
    this.#uptimeSeconds = options.uptimeSeconds;
    this.#peers = options.peers;
    this.#pid = options.pid ?? process.pid;
  }

  async health(): Promise<HealthReport | ClusterHealth> {
    const own = workerHealth(this.#service, this.#uptimeSeconds(), this.#pid);
    if (this.#peers === undefined) return healthReport(own);
    this.#healthGather ??= this.#peers.gather('health').finally(() => {
      this.#healthGather = undefined;
    });
    return mergeHealth(own, await this.#healthGather);
  }

  /**
   * Reloads this process (its service shares a reload already running), or every worker. With workers,
   * requests that come while a reload runs share the one that starts after it: at most one runs and
   * one waits, so a request never gets a reload that read the files before it came (in this worker;
   * another worker shares a reload it has running, as on SIGHUP).
   */
  reload(): Promise<ReloadResult | ClusterReloadResult> {
    if (this.#peers === undefined) return this.#service.reload();
    const running = this.#reloading;
    if (running === undefined) return this.#startReload(this.#peers);
    const peers = this.#peers;
    this.#nextReload ??= running
      .catch(() => undefined)
      .then(() => {
        this.#nextReload = undefined;
        return this.#startReload(peers);
      });
    return this.#nextReload;
  }

  #startReload(peers: WorkerPeers): Promise<ClusterReloadResult> {
    const reloading = this.#reloadAll(peers).finally(() => {
      if (this.#reloading === reloading) this.#reloading = undefined;
    });
    this.#reloading = reloading;
    return reloading;
  }

  async #reloadAll(peers: WorkerPeers): Promise<ClusterReloadResult> {
    const started = Date.now();
    const [own, figures] = await Promise.all([settledReload(this.#service), peers.gather('reload')]);
    return mergeReload(own, this.#pid, figures, Date.now() - started);
  }
}

function safeLists(service: ReputationService): ReloadResult['lists'] {
  try {
    return service.lists();
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------
// Checking another worker's part (it crossed a process boundary)

/** Whether `value` is a WorkerHealth as this code reads it (the store: its kind and whether it is up). */
export function isWorkerHealth(value: unknown): value is WorkerHealth {
  if (!isRecord(value)) return false;
  const { store, listErrors } = value;
  return (
    isPid(value.pid) &&
    (value.status === 'ok' || value.status === 'degraded') &&
    isFiniteNumber(value.lists) &&
    isRecord(store) &&
    typeof store.kind === 'string' &&
    typeof store.up === 'boolean' &&
    isFiniteNumber(value.uptimeSeconds) &&
    (value.reloadError === undefined || typeof value.reloadError === 'string') &&
    Array.isArray(listErrors) &&
    listErrors.every((item) => isRecord(item) && typeof item.list === 'string' && typeof item.error === 'string')
  );
}

/** Whether `value` is a WorkerReload of a worker that answered. */
export function isWorkerReload(value: unknown): value is WorkerReload {
  return isRecord(value) && isPid(value.pid) && typeof value.ok === 'boolean' && isStrings(value.errors) && isFiniteNumber(value.durationMs);
}
