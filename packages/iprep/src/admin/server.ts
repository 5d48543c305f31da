/**
 * The admin HTTP server: health, explain, decisions, reload, lists, Prometheus
 * metrics and the status page. JSON in and out; every failure is a JSON
 * `{ "error": "..." }` with a fitting status, and no request can crash it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Logger, consoleLogger } from 'spop';
import type { RestartResult } from '../cluster/supervisor.js';
import type { ReputationService } from '../types.js';
import type { WorkerPeers } from './cluster.js';
import { decisionInputFromJson } from './decision-input.js';
import { HostCheck } from './host-check.js';
import type { ReputationMetrics } from './metrics.js';
import { statusPage } from './status-page.js';
import { AgentWorkers } from './workers.js';

export interface AdminServerOptions {
  service: ReputationService;
  metrics: ReputationMetrics;
  /** When set, every route but `GET /health` and the page shell `GET /` needs `Authorization: Bearer <token>`. */
  token?: string;
  /** Default: warnings and errors to stderr. */
  logger?: Logger;
  /**
   * In a node:cluster worker: the other workers, so that `/health` covers them and `POST /reload`
   * reloads them (`/metrics` and `/status.json` cover them through `metrics.setPeers`). Without
   * peers, both are this process's.
   */
  peers?: WorkerPeers;
  /**
   * Host names (besides its address and `localhost`) a request's Host header may give; any other is
   * refused with 421, whatever the route and the token (see host-check.ts).
   */
  allowedHosts?: readonly string[];
  /**
   * A rolling restart of the workers, by the primary that supervises them, or (`primary`, from
   * `POST /restart?primary=1`) the primary replaced by its successor; without it `POST /restart` answers 409.
   */
  restart?: (options: { primary: boolean }) => Promise<RestartResult>;
}

/** Largest request body accepted. */
const MAX_BODY_BYTES = 64 * 1024;

const JSON_TYPE = 'application/json; charset=utf-8';
const COMMON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const;
/** The page is self-contained: inline style and script (allowed by their hashes), requests to this server only. */
const PAGE_TYPE = 'text/html; charset=utf-8';

/** A failure with its status, answered as `{ "error": message }`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

interface Reply {
  readonly status: number;
  /** Serialised as JSON, unless `contentType` is given: then a string sent as it is. */
  readonly body?: unknown;
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

type Method = 'GET' | 'POST' | 'DELETE';
type Handler = (request: IncomingMessage, url: URL) => Promise<Reply> | Reply;

interface Route {
  readonly handlers: Partial<Record<Method, Handler>>;
  /** Served without the token (GET and HEAD only). */
  readonly open?: boolean;
}

const DECISION_PREFIX = '/decisions/';

export class AdminServer {
  readonly #service: ReputationService;
  readonly #metrics: ReputationMetrics;
  readonly #workers: AgentWorkers;
  readonly #logger: Logger;
  /** SHA-256 of the token: comparing digests takes the same time whatever the length of the guess. */
  readonly #tokenDigest: Buffer | undefined;
  readonly #server: Server;
  readonly #routes: ReadonlyMap<string, Route>;
  readonly #decisionRoute: Route;
  readonly #allowedHosts: readonly string[];
  /** Set once listening: it needs the bound address. */
  #hostCheck: HostCheck | undefined;

  constructor(options: AdminServerOptions) {
    this.#service = options.service;
    this.#metrics = options.metrics;
    this.#workers = new AgentWorkers({
      service: options.service,
      uptimeSeconds: () => options.metrics.uptimeSeconds(),
      peers: options.peers,
    });
    this.#logger = options.logger ?? consoleLogger('warn');
    if (options.token !== undefined && !/^\S+$/.test(options.token)) {
      throw new TypeError('admin token must be non-empty and without spaces (it is sent as "Authorization: Bearer <token>")');
    }
    this.#tokenDigest = options.token === undefined ? undefined : sha256(options.token);
    this.#allowedHosts = options.allowedHosts ?? [];
    // Read now, so that a missing or broken asset stops the start rather than a request.
    const page = statusPage();
    const pageHeaders = { 'content-security-policy': page.contentSecurityPolicy, 'referrer-policy': 'no-referrer' };
    this.#routes = new Map<string, Route>([
      ['/', { open: true, handlers: { GET: () => ({ status: 200, body: page.html, contentType: PAGE_TYPE, headers: pageHeaders }) } }],
      ['/health', { open: true, handlers: { GET: () => this.#health() } }],
      ['/explain', { handlers: { GET: (_request, url) => this.#explain(url) } }],
      ['/decisions', { handlers: { GET: () => json(200, this.#service.listDecisions()), POST: (request) => this.#addDecision(request) } }],
      ['/reload', { handlers: { POST: () => this.#reload() } }],
      ['/restart', { handlers: { POST: (_request, url) => this.#restart(options.restart, url) } }],
      ['/lists', { handlers: { GET: () => json(200, this.#service.lists()) } }],
      ['/metrics', { handlers: { GET: () => this.#prometheus() } }],
      ['/status.json', { handlers: { GET: async () => json(200, await this.#metrics.clusterStatus()) } }],
    ]);
    this.#decisionRoute = { handlers: { DELETE: (request, url) => this.#removeDecision(request, url) } };
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        // Only a failure to write the answer gets here; the socket is beyond saving.
        this.#logger.error('admin: could not answer', { error });
        response.destroy();
      });
    });
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  listen(options: { host: string; port: number }): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        this.#server.off('listening', onListening);
        reject(error);
      };
      const onListening = (): void => {
        this.#server.off('error', onError);
        this.#server.on('error', (error) => this.#logger.error('admin: server error', { error }));
        const address = this.#server.address() as AddressInfo;
        this.#hostCheck = new HostCheck(address.address, this.#allowedHosts);
        resolve(address);
      };
      // Both removed once one fires: a listen that failed (EADDRINUSE) may be tried again.
      this.#server.once('error', onError);
      this.#server.once('listening', onListening);
      this.#server.listen({ host: options.host, port: options.port });
    });
  }

  /** Stops listening and closes every connection, idle keep-alive ones included. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      reply = await this.#dispatch(request);
    } catch (error) {
      reply = this.#failure(request, error);
    }
    if (!request.complete) {
      // A body left unread (refused, or sent where none is expected): drain it and end the connection.
      reply = { ...reply, headers: { ...reply.headers, connection: 'close' } };
      request.resume();
    }
    send(response, reply);
  }

  async #dispatch(request: IncomingMessage): Promise<Reply> {
    const url = parseUrl(request.url ?? '/');
    const path = url.pathname;
    const route = path.startsWith(DECISION_PREFIX) ? this.#decisionRoute : this.#routes.get(path);
    const method = request.method === 'HEAD' ? 'GET' : (request.method ?? '');
    const open = route?.open === true && method === 'GET';
    const host = request.headers.host;
    if (this.#hostCheck?.allows(host) !== true) {
      throw new HttpError(
        421,
        `Host ${JSON.stringify(String(host).slice(0, 100))} is not a name of this admin API: use its address or localhost, or add the name to admin.allowed-hosts`,
      );
    }
    if (!open && !this.#authorized(request)) {
      throw new HttpError(401, 'missing or wrong bearer token (send "Authorization: Bearer <token>")', {
        'www-authenticate': 'Bearer realm="iprep"',
      });
    }
    if (route === undefined) throw new HttpError(404, `no such route: ${path}`);
    if (method !== 'GET' && crossOrigin(request)) {
      // A web page elsewhere may make the operator's browser POST here (a form needs no preflight).
      throw new HttpError(403, 'cross-origin request refused');
    }
    const handler = route.handlers[method as Method];
    if (handler === undefined) {
      const allowed = Object.keys(route.handlers);
      if (allowed.includes('GET')) allowed.push('HEAD');
      throw new HttpError(405, `${request.method ?? '?'} not allowed on ${path} (allowed: ${allowed.join(', ')})`, {
        allow: allowed.join(', '),
      });
    }
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) throw tooLarge();
    return handler(request, url);
  }

  #failure(request: IncomingMessage, error: unknown): Reply {
    if (error instanceof HttpError) {
      return { status: error.status, body: { error: error.message }, headers: error.headers };
    }
    const message = error instanceof Error ? error.message : String(error);
    this.#logger.error('admin: request failed', { method: request.method, url: request.url, error: message });
    return { status: 500, body: { error: message } };
  }

  #authorized(request: IncomingMessage): boolean {
    if (this.#tokenDigest === undefined) return true;
    const match = /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? '');
    return match !== null && timingSafeEqual(sha256(match[1] as string), this.#tokenDigest);
  }

  /** Degraded is still 200: the agent answers HAProxy. 500 only when this worker's service throws. */
  async #health(): Promise<Reply> {
    return json(200, await this.#workers.health());
  }

  #explain(url: URL): Reply {
    const address = url.searchParams.get('ip');
    if (address === null || address.trim() === '') throw new HttpError(400, 'missing query parameter "ip"');
    return json(
      200,
      // ja4: a JA4 or JA3 fingerprint, to explain a client with that TLS stack too.
      asBadRequest(() => this.#service.explain(address, { fingerprint: url.searchParams.get('ja4') ?? undefined })),
    );
  }

  async #addDecision(request: IncomingMessage): Promise<Reply> {
    const text = await readBody(request);
    const input = asBadRequest(() => decisionInputFromJson(parseJson(text)));
    return json(201, await asBadRequestAsync(() => this.#service.addDecision(input, clientOrigin(request))));
  }

  async #removeDecision(request: IncomingMessage, url: URL): Promise<Reply> {
    const encoded = url.pathname.slice(DECISION_PREFIX.length);
    let keyOrValue: string;
    try {
      keyOrValue = decodeURIComponent(encoded);
    } catch {
      throw new HttpError(400, `bad URL encoding in decision key: ${encoded}`);
    }
    if (keyOrValue === '') throw new HttpError(400, 'missing decision key or value after /decisions/');
    const removed = await asBadRequestAsync(() => this.#service.removeDecision(keyOrValue, clientOrigin(request)));
    if (!removed) throw new HttpError(404, `no decision for ${keyOrValue}`);
    return { status: 204 };
  }

  /** This process's reload, or every worker's (ok only when each reloaded). */
  async #reload(): Promise<Reply> {
    const result = await this.#workers.reload();
    return json(result.ok ? 200 : 500, result);
  }

  /** A rolling restart, answered once the new workers serve (200) or it failed and the old ones still do (500). */
  async #restart(restart: ((options: { primary: boolean }) => Promise<RestartResult>) | undefined, url: URL): Promise<Reply> {
    const primary = url.searchParams.get('primary');
    if (primary !== null && primary !== '0' && primary !== '1') throw new HttpError(400, 'query parameter "primary" must be 0 or 1');
    if (restart === undefined) {
      throw new HttpError(409, 'no rolling restart: this agent runs in one process; start it with --supervise (or more than one worker)');
    }
    const result = await restart({ primary: primary === '1' }).catch(
      (error: unknown): RestartResult => ({ ok: false, error: error instanceof Error ? error.message : String(error) }),
    );
    return json(result.ok ? 200 : 500, result);
  }

  /** Every worker's metrics, whichever worker answers (see ReputationMetrics.clusterMetrics). */
  async #prometheus(): Promise<Reply> {
    return { status: 200, body: await this.#metrics.clusterMetrics(), contentType: this.#metrics.registry.contentType };
  }
}

function json(status: number, body: unknown): Reply {
  return { status, body };
}

function tooLarge(): HttpError {
  return new HttpError(413, `request body larger than ${MAX_BODY_BYTES} bytes`);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Runs `f`, turning the TypeError or RangeError it throws on bad input into a 400. */
function asBadRequest<T>(f: () => T): T {
  try {
    return f();
  } catch (error) {
    throw badInput(error);
  }
}

async function asBadRequestAsync<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (error) {
    throw badInput(error);
  }
}

function badInput(error: unknown): unknown {
  return error instanceof TypeError || error instanceof RangeError ? new HttpError(400, error.message) : error;
}

/** Reads the request body as UTF-8, refusing more than MAX_BODY_BYTES. */
function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        request.off('data', onData);
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.once('error', reject);
  });
}

/** Whether a browser sent the request from a page of another origin than this server. */
function crossOrigin(request: IncomingMessage): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== request.headers.host;
  } catch {
    return true; // `Origin: null` (sandboxed frames, file: pages) or garbage
  }
}

function parseUrl(target: string): URL {
  try {
    return new URL(target, 'http://admin.invalid');
  } catch {
    throw new HttpError(400, `bad request target: ${target}`);
  }
}

function parseJson(text: string): unknown {
  if (text.trim() === '') throw new HttpError(400, 'empty body: expected a JSON object');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `body is not valid JSON: ${(error as Error).message}`);
  }
}

function send(response: ServerResponse, reply: Reply): void {
  const headers: Record<string, string> = { ...COMMON_HEADERS, ...reply.headers };
  let payload = '';
  if (reply.body !== undefined) {
    payload = reply.contentType === undefined ? JSON.stringify(reply.body) : String(reply.body);
    headers['content-type'] = reply.contentType ?? JSON_TYPE;
  }
  headers['content-length'] = String(Buffer.byteLength(payload));
  response.writeHead(reply.status, headers);
  response.end(payload);
}

/**
 * Who a decision change is logged and counted as coming from: `spoa decisions` says `X-Spoa-Client:
 * cli`; anything else is `api`. Only a label for the audit trail (the token is what authorises).
 */
function clientOrigin(request: IncomingMessage): 'api' | 'cli' {
  return request.headers['x-spoa-client'] === 'cli' ? 'cli' : 'api';
}
