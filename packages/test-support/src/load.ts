/**
 * HTTP load through HAProxy's SPOE example frontend, counting the requests HAProxy let through
 * without the agent's score: for the restart test and its measuring script.
 */
import { type HttpResult, httpGet } from './http.js';

export interface ScoredLoadOptions {
  /** Concurrent client loops: at most this many requests in flight at once (default 8). */
  clients?: number;
  /** Load before `during` starts (default 500 ms). */
  leadMs?: number;
  /** Load after `during` ended (default 1000 ms). */
  settleMs?: number;
  /** Bounds on the whole run: time (default 30 s) and requests (default 200,000). */
  maxMs?: number;
  maxRequests?: number;
}

export interface ScoredLoadResult {
  readonly requests: number;
  /** Answered without a score (no x-ip-score value) and not rejected: the agent's answer did not count. */
  readonly unscored: number;
  /** When each unscored request started, in ms since `during` started (negative: before it). */
  readonly unscoredAt: number[];
  /** Requests that got no HTTP answer at all (refused, timed out). */
  readonly errors: string[];
}

/** True when the response carries the agent's score, or HAProxy closed the connection (a score below 20). */
export function scoredResponse(r: HttpResult): boolean {
  return r.rejected || /^\d+$/.test(String(r.headers['x-ip-score'] ?? ''));
}

/**
 * Loops of GETs, each on a connection of its own (one SPOE message per request), from `leadMs` before
 * `during` runs until `settleMs` after it ended, within the bounds.
 */
export async function scoredLoad(port: number, during: () => Promise<void>, opts: ScoredLoadOptions = {}): Promise<ScoredLoadResult> {
  const maxRequests = opts.maxRequests ?? 200_000;
  const deadline = Date.now() + (opts.maxMs ?? 30_000);
  let stopAt = deadline;
  const result = { requests: 0, unscored: 0, unscoredAt: [] as number[], errors: [] as string[] };
  let duringAt = Number.POSITIVE_INFINITY;
  const loop = async (): Promise<void> => {
    while (Date.now() < stopAt && result.requests < maxRequests) {
      result.requests++;
      const sentAt = performance.now();
      try {
        if (!scoredResponse(await httpGet(port, '/load', { timeoutMs: 5000 }))) {
          result.unscored++;
          if (result.unscoredAt.length < 1000) result.unscoredAt.push(Math.round(sentAt - duringAt));
        }
      } catch (err) {
        if (result.errors.length < 100) result.errors.push(String(err));
      }
    }
  };
  const loops = Array.from({ length: opts.clients ?? 8 }, loop);
  await new Promise((r) => setTimeout(r, opts.leadMs ?? 500));
  duringAt = performance.now();
  try {
    await during();
  } finally {
    stopAt = Math.min(deadline, Date.now() + (opts.settleMs ?? 1000));
    await Promise.all(loops);
  }
  return result;
}
