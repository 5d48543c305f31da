/**
 * A client of the admin API (src/admin/README.md) for the operator commands: one request per call,
 * bounded in time and in response size, with the token as a Bearer header and never in a message.
 */
import { request } from 'node:http';
import type { StatusSnapshot } from '../admin/status.js';
import type { ClusterHealth, ClusterReloadResult, HealthReport } from '../admin/workers.js';
import type { RestartResult } from '../cluster/supervisor.js';
import { isRecord } from '../admin/guards.js';
import type { AddedDecision, Decision, ListStatus, ReloadResult, Verdict } from '../types.js';

/** Where the admin API listens, and the token it wants (if any). */
export interface AdminTarget {
  readonly host: string;
  readonly port: number;
  readonly token?: string | undefined;
}

/** Longest wait for an answer, and for a reload (with workers, the agent waits up to 60 s for each). */
export const REQUEST_TIMEOUT_MS = 10_000;
export const RELOAD_TIMEOUT_MS = 90_000;
/** The agent gives new workers 30 s to be ready. */
export const RESTART_TIMEOUT_MS = 45_000;
/** Largest answer read: a list of millions of decisions fits; a runaway answer does not fill memory. */
export const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

/** The agent could not be reached, or did not answer in time (exit 3). */
export class AgentUnreachableError extends Error {}

/** The agent answered with an error (exit 1): `status` is the HTTP status, the message the agent's reason. */
export class AgentRefusedError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The body of `POST /decisions`, as the admin API reads it. */
export interface DecisionBody {
  readonly value: string;
  readonly action?: string;
  readonly score?: number;
  readonly category?: string;
  readonly reason?: string;
  readonly duration?: string | null;
  readonly force?: boolean;
}

export type HealthAnswer = HealthReport | ClusterHealth;
export type ReloadAnswer = ReloadResult | ClusterReloadResult;

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

export interface AdminClientOptions {
  readonly timeoutMs?: number;
  readonly maxResponseBytes?: number;
}

const CONNECT_ERRORS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'name lookup failed',
};

export class AdminClient {
  readonly #target: AdminTarget;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;

  constructor(target: AdminTarget, options: AdminClientOptions = {}) {
    this.#target = target;
    this.#timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
    this.#maxResponseBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
  }

  /** `host:port`, with brackets around an IPv6 address. */
  get address(): string {
    const { host, port } = this.#target;
    return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  }

  async health(): Promise<HealthAnswer> {
    // 200 ok or degraded; 500 when the service throws, still with a body worth showing.
    const { body } = await this.#call('GET', '/health', undefined, [200, 500]);
    return record<HealthAnswer>(body, '/health');
  }

  async status(): Promise<StatusSnapshot> {
    return record<StatusSnapshot>((await this.#call('GET', '/status.json')).body, '/status.json');
  }

  async lists(): Promise<ListStatus[]> {
    return records<ListStatus>((await this.#call('GET', '/lists')).body, '/lists');
  }

  async explain(address: string, ja4?: string): Promise<Verdict> {
    const fingerprint = ja4 === undefined ? '' : `&ja4=${encodeURIComponent(ja4)}`;
    return record<Verdict>((await this.#call('GET', `/explain?ip=${encodeURIComponent(address)}${fingerprint}`)).body, '/explain');
  }

  async decisions(): Promise<Decision[]> {
    return records<Decision>((await this.#call('GET', '/decisions')).body, '/decisions');
  }

  async addDecision(body: DecisionBody): Promise<AddedDecision> {
    return record<AddedDecision>((await this.#call('POST', '/decisions', body, [201])).body, '/decisions');
  }

  /** True when deleted, false when the agent had no such decision. */
  async deleteDecision(keyOrValue: string): Promise<boolean> {
    const { status } = await this.#call('DELETE', `/decisions/${encodeURIComponent(keyOrValue)}`, undefined, [204, 404]);
    return status === 204;
  }

  /** Every worker's reload; a failed reload (500) is an answer too. */
  async reload(): Promise<ReloadAnswer> {
    const { body } = await this.#call('POST', '/reload', undefined, [200, 500], RELOAD_TIMEOUT_MS);
    return record<ReloadAnswer>(body, '/reload');
  }

  /** A rolling restart of the workers; a failed one (500: the old workers still serve) is an answer too. */
  async restart(options: { readonly primary?: boolean } = {}): Promise<RestartResult> {
    const { body } = await this.#call('POST', options.primary === true ? '/restart?primary=1' : '/restart', undefined, [200, 500], RESTART_TIMEOUT_MS);
    return record<RestartResult>(body, '/restart');
  }

  #call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, expected: readonly number[] = [200], timeoutMs = this.#timeoutMs): Promise<Answer> {
    const { host, port, token } = this.#target;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    // x-spoa-client: decisions changed from here are logged and counted as the command line's.
    const headers: Record<string, string> = { accept: 'application/json', host: this.address, 'x-spoa-client': 'cli' };
    if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
    if (payload !== undefined) headers['content-type'] = 'application/json';
    return new Promise((resolve, reject) => {
      const req = request({ host, port, method, path, headers }, (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.#maxResponseBytes) {
            req.destroy();
            reject(new AgentRefusedError(`the answer to ${method} ${path} is larger than ${this.#maxResponseBytes} bytes`, 0));
            return;
          }
          chunks.push(chunk);
        });
        response.on('error', (err) => reject(this.#unreachable(err, timeoutMs)));
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            // not JSON: reported below when it matters
          }
          if (expected.includes(status)) {
            resolve({ status, body: parsed });
            return;
          }
          reject(new AgentRefusedError(refusal(status, parsed), status));
        });
      });
      // The whole exchange, not only each silence: an agent trickling bytes is cut off too.
      const deadline = setTimeout(() => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })), timeoutMs);
      req.on('close', () => clearTimeout(deadline));
      req.on('error', (err) => reject(this.#unreachable(err, timeoutMs)));
      req.end(payload);
    });
  }

  #unreachable(err: Error, timeoutMs = this.#timeoutMs): AgentUnreachableError {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const why = code === 'ETIMEDOUT' ? `no answer within ${timeoutMs} ms` : (CONNECT_ERRORS[code] ?? err.message);
    return new AgentUnreachableError(`cannot reach the agent at ${this.address}: ${why}; is spoa running with the admin API enabled?`);
  }
}

/** What the agent's error means, in its words when it gave some. */
function refusal(status: number, body: unknown): string {
  const said = isRecord(body) && typeof body['error'] === 'string' ? body['error'] : undefined;
  if (status === 401) return 'the agent wants a valid token (401): give --token-file, or SPOA_TOKEN, or --config with the admin token';
  if (status === 421) return `the agent refused the Host header (421)${said === undefined ? '' : `: ${said}`}: use the address it listens on`;
  if (status === 404 && said === undefined) return 'not found (404): is this the admin API of spoa?';
  return `${said ?? 'the agent refused'} (${status})`;
}

function record<T>(body: unknown, route: string): T {
  if (!isRecord(body)) throw new AgentRefusedError(`unexpected answer from ${route}: not a JSON object`, 0);
  return body as T;
}

function records<T>(body: unknown, route: string): T[] {
  if (!Array.isArray(body) || !body.every(isRecord)) throw new AgentRefusedError(`unexpected answer from ${route}: not a JSON array of objects`, 0);
  return body as T[];
}
