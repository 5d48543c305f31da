/**
 * A small in-memory ReputationService and an HTTP client for the admin tests.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { formatRange, parseAddress, parseRange } from '../src/net/address.js';
import type { Decision, DecisionInput, ListStatus, Match, ReloadResult, ReputationService, StoreHealth, Verdict } from '../src/types.js';

export const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);

/** Addresses in 192.0.2.0/24 are on the `spamhaus-drop` list and rate-penalised; the rest match nothing. */
export class FakeReputationService implements ReputationService {
  readonly decisions = new Map<string, Decision>();
  listStatus: ListStatus[] = [
    { name: 'spamhaus-drop', format: 'spamhaus-json', origin: '/lists/drop.json', entries: 1234, loadedAt: NOW - 90_000, lastError: null },
    { name: 'tor-exits', format: 'tor-exits', origin: 'https://example.test/tor', entries: 987, loadedAt: NOW - 3_600_000, lastError: null },
  ];
  storeHealth: StoreHealth = { kind: 'memory', up: true };
  reloadResult: ReloadResult | Error = { ok: true, lists: [], errors: [], durationMs: 42 };
  /** What reloadError() answers: the last failed reload's error. */
  lastReloadError: string | null = null;
  /** Calls made, for assertions: `explain 192.0.2.1`, `remove ip:192.0.2.1`. */
  readonly calls: string[] = [];

  explain(address: string, client: { fingerprint?: string | undefined } = {}): Verdict {
    this.calls.push(client.fingerprint === undefined ? `explain ${address}` : `explain ${address} ja4 ${client.fingerprint}`);
    const bytes = parseAddress(address);
    if (bytes === undefined) throw new TypeError(`not an IP address: ${JSON.stringify(address)}`);
    if (bytes.length === 4 && bytes[0] === 192 && bytes[1] === 0 && bytes[2] === 2) {
      const matches: Match[] = [
        { kind: 'list', source: 'spamhaus-drop', category: 'hijacked', score: 0, action: 'deny', detail: '192.0.2.0/24 SBL000' },
        { kind: 'behaviour', source: 'behaviour:rate', category: 'behaviour:rate', penalty: 20, detail: '130 messages in 60 s' },
      ];
      return { score: 0, action: 'deny', category: 'hijacked', source: 'spamhaus-drop', matches };
    }
    return { score: 100, action: 'allow', category: 'none', source: 'default', matches: [] };
  }

  async addDecision(input: DecisionInput, origin: 'api' | 'cli' = 'api'): Promise<Decision> {
    const range = parseRange(input.value); // throws TypeError on a bad value
    const single = range.start.every((byte, i) => byte === range.end[i]);
    const value = formatRange(range);
    const scope = single ? 'ip' : 'range';
    const decision: Decision = {
      key: `${scope}:${value}`,
      scope,
      value,
      action: input.action ?? 'deny',
      score: input.score ?? 0,
      category: input.category ?? 'manual',
      reason: input.reason ?? '',
      origin,
      createdAt: NOW,
      expiresAt: input.durationMs === null ? null : NOW + (input.durationMs ?? 14_400_000),
    };
    this.decisions.set(decision.key, decision);
    return decision;
  }

  listDecisions(): readonly Decision[] {
    return [...this.decisions.values()];
  }

  async removeDecision(keyOrValue: string, origin: 'api' | 'cli' = 'api'): Promise<boolean> {
    this.calls.push(origin === 'api' ? `remove ${keyOrValue}` : `remove ${keyOrValue} (${origin})`);
    for (const d of this.decisions.values()) {
      if (d.key === keyOrValue || d.value === keyOrValue) return this.decisions.delete(d.key);
    }
    return false;
  }

  async reload(): Promise<ReloadResult> {
    if (this.reloadResult instanceof Error) throw this.reloadResult;
    return this.reloadResult;
  }

  lists(): readonly ListStatus[] {
    return this.listStatus;
  }

  reloadError(): string | null {
    return this.lastReloadError;
  }

  store(): StoreHealth {
    return this.storeHealth;
  }
}

export interface HttpReply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  readonly json: unknown;
}

export interface RequestOptions {
  readonly method?: string;
  readonly body?: string | Buffer;
  readonly headers?: Record<string, string>;
  readonly token?: string;
}

/** One request on a fresh connection (no keep-alive), resolving with the whole answer. */
export function request(port: number, path: string, options: RequestOptions = {}): Promise<HttpReply> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('error', reject);
      res.once('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.once('error', reject);
    req.end(options.body);
  });
}
