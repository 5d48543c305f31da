/**
 * One connection to Redis, a single server or a Cluster, behind the few operations the stores use:
 * send a command (routed by its first key on a Cluster), run a Lua script, duplicate for a blocking
 * reader. Commands fail fast while disconnected (no offline queue, short timeouts); the client
 * reconnects by itself with backoff and jitter; errors are reported, never thrown as events.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisClient, RedisCluster } from 'redis';

export interface RedisLinkOptions {
  /** `redis://host:port` of a single server... */
  readonly url?: string;
  /** ...or the seed nodes of a Cluster (`redis://host:port` each). */
  readonly nodes?: readonly string[];
  /** Connection name (CLIENT SETNAME), so CLIENT LIST shows which agent holds which connection. */
  readonly name: string;
  /** Called for every connection error (they repeat while Redis is down). */
  readonly onError: (error: Error) => void;
  /** Called when a connection (on a Cluster: a node's) is ready again, e.g. after Redis came back. */
  readonly onReady?: () => void;
}

/** Reconnect delay: exponential from 50 ms, capped at 2 s, with up to 25 % jitter so agents spread out. */
export function backoffMs(attempt: number): number {
  const base = Math.min(50 * 2 ** Math.min(attempt, 10), 2000);
  return Math.round(base * (1 + Math.random() * 0.25));
}

const CONNECT_TIMEOUT_MS = 2000;

/** Most commands one connection leaves unanswered before it refuses more (a frozen server answers none). */
export const MAX_UNANSWERED = 10_000;

/** Redis did not answer in time (or too many commands are still unanswered). */
export class RedisTimeoutError extends Error {
  override readonly name = 'RedisTimeoutError';
}

// Built once: making a client class attaches every command to it, too slow to repeat per connection.
const RESP2 = { RESP: 2 } as const;
// Built on first use: building them costs about 100 ms, which agents on the memory store need not pay.
const clientFactory = once(() => RedisClient.factory(RESP2));
const clusterFactory = once(() => RedisCluster.factory(RESP2));

function once<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}

const connectionDefaults = {
  ...RESP2, // plain arrays for stream and hash replies, the same on a server and a Cluster
  disableOfflineQueue: true,
  maintNotifications: 'disabled', // a Redis Enterprise handshake plain Redis does not know
  socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: (retries: number) => backoffMs(retries) },
} as const;

function newClient(url: string | undefined, name: string) {
  return clientFactory()({ ...connectionDefaults, ...(url === undefined ? {} : { url }), name });
}

function newCluster(nodes: readonly string[], name: string) {
  return clusterFactory()({ ...RESP2, rootNodes: nodes.map((url) => ({ url })), defaults: { ...connectionDefaults, name } });
}

type Client = ReturnType<typeof newClient>;
type Cluster = ReturnType<typeof newCluster>;

export class RedisLink {
  readonly #options: RedisLinkOptions;
  readonly #client: Client | undefined;
  readonly #cluster: Cluster | undefined;
  #closed = false;
  #unanswered = 0;

  constructor(options: RedisLinkOptions) {
    this.#options = options;
    const onError = (error: unknown): void => options.onError(error instanceof Error ? error : new Error(String(error)));
    if (options.nodes !== undefined && options.nodes.length > 0) {
      this.#cluster = newCluster(options.nodes, options.name);
      this.#cluster.on('error', onError);
      this.#cluster.on('node-error', onError);
      if (options.onReady) this.#cluster.on('node-ready', options.onReady);
    } else {
      this.#client = newClient(options.url, options.name);
      this.#client.on('error', onError);
      if (options.onReady) this.#client.on('ready', options.onReady);
    }
  }

  /** A second, independent connection with the same settings (for a blocking reader). */
  duplicate(name: string): RedisLink {
    return new RedisLink({ ...this.#options, name });
  }

  get ready(): boolean {
    return (this.#client ?? this.#cluster)?.isReady === true;
  }

  /**
   * Connects, retrying with backoff until it succeeds or the link is closed. A server client retries
   * socket failures by itself, but gives up on a failed handshake; a Cluster's first connect gives up
   * when no seed node answers: both are retried here.
   */
  async connect(): Promise<void> {
    const connection = this.#client ?? this.#cluster!;
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        await connection.connect();
        return;
      } catch (error) {
        if (this.#closed) return;
        this.#options.onError(error instanceof Error ? error : new Error(String(error)));
        await sleep(backoffMs(attempt), undefined, { ref: false });
      }
    }
  }

  /** Commands sent and not answered yet (their callers may have given up on them). */
  get unanswered(): number {
    return this.#unanswered;
  }

  /**
   * Sends one command; `key` routes it on a Cluster. Rejects with a RedisTimeoutError when Redis has
   * not answered within `timeoutMs`: the client's own timeout covers only the wait to be written, so a
   * frozen server (SIGSTOP, connection open) would leave the caller waiting forever. Refuses at once
   * while MAX_UNANSWERED commands are still unanswered, so a frozen server cannot pile them up.
   */
  send(key: string, args: readonly string[], timeoutMs: number): Promise<unknown> {
    if (this.#unanswered >= MAX_UNANSWERED) {
      return Promise.reject(new RedisTimeoutError(`redis: ${this.#unanswered} commands unanswered, ${args[0]} not sent`));
    }
    const sent = this.#client
      ? this.#client.sendCommand([...args], { timeout: timeoutMs })
      : this.#cluster!.sendCommand(key, false, [...args], { timeout: timeoutMs });
    this.#unanswered++;
    const settled = (): void => {
      this.#unanswered--;
    };
    sent.then(settled, settled);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new RedisTimeoutError(`redis did not answer ${args[0]} within ${timeoutMs} ms`)), timeoutMs);
      sent.then(
        (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  /** Runs a script by its digest, loading it on the first NOSCRIPT (and on servers that lost it). */
  async eval(script: LuaScript, keys: readonly string[], args: readonly string[], timeoutMs: number): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    const first = keys[0] ?? '';
    const deadline = Date.now() + timeoutMs;
    try {
      return await this.send(first, ['EVALSHA', script.sha1, ...tail], timeoutMs);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      // The retry shares the caller's time: the whole call stays within timeoutMs.
      return await this.send(first, ['EVAL', script.source, ...tail], Math.max(1, deadline - Date.now()));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // destroy() rather than quit(): nothing is worth waiting for, and a dead server would make quit hang.
    if (this.#client?.isOpen) this.#client.destroy();
    if (this.#cluster?.isOpen) this.#cluster.destroy();
  }
}

export interface LuaScript {
  readonly source: string;
  readonly sha1: string;
}

export function luaScript(source: string): LuaScript {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}
