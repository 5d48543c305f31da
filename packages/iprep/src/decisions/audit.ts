/**
 * The audit trail: every decision added, deleted or expired, and every behaviour ban, one info line
 * each saying what, who and why. Lines are rate-limited per kind (a flood of expiries, or of bans a
 * hostile client provokes, cannot flood the log); every event still reaches `onEvent` (the metrics).
 */
import { type LogRateLimit, type Logger, RateLimitedLog } from 'spop';
import type { BanEvent } from '../behaviour/tracker.js';
import type { Decision, IpAction } from '../types.js';

export type DecisionAuditOp = 'added' | 'deleted' | 'expired' | 'ban';

/** One change, for counting: `origin` is who made it (`api`, `cli`, `behaviour`, `agent:<id>`). */
export interface DecisionAuditEvent {
  readonly op: DecisionAuditOp;
  readonly origin: string;
  readonly action: IpAction;
  /**
   * Seen through the shared store rather than made here: another agent's change, or an expiry the
   * store's janitor (or the primary process) pruned. Counted by whoever made it, so sums across
   * workers and agents count each change once.
   */
  readonly received: boolean;
  /** For a ban: the client, its window count, how many times it was banned, and until when (ms). */
  readonly ban?: { readonly client: string; readonly count: number; readonly offences: number; readonly until: number };
}

export interface DecisionAuditOptions {
  /** Lines of each kind per interval before the rest are summed up. Default 100 per 10 s. */
  readonly limit?: LogRateLimit;
  readonly onEvent?: ((event: DecisionAuditEvent) => void) | undefined;
}

export const DEFAULT_AUDIT_LOG_LIMIT: LogRateLimit = { lines: 100, intervalMs: 10_000 };

const expiry = (expiresAt: number | null): string => (expiresAt === null ? 'never' : new Date(expiresAt).toISOString());

export class DecisionAudit {
  readonly #log: RateLimitedLog;
  readonly #onEvent: ((event: DecisionAuditEvent) => void) | undefined;

  constructor(logger: Logger, options: DecisionAuditOptions = {}) {
    this.#log = new RateLimitedLog(logger, options.limit ?? DEFAULT_AUDIT_LOG_LIMIT);
    this.#onEvent = options.onEvent;
  }

  /**
   * A decision in force. `origin` is who asked; `received` when the change came through the shared
   * store (another agent, or another worker) rather than from this process.
   */
  added(decision: Decision, by: { readonly origin: string; readonly received?: boolean }): void {
    this.#line('decision added', decision, by.origin, by.received === true);
    this.#onEvent?.({ op: 'added', origin: by.origin, action: decision.action, received: by.received === true });
  }

  deleted(decision: Decision, origin: string, received = false): void {
    this.#line('decision deleted', decision, origin, received);
    this.#onEvent?.({ op: 'deleted', origin, action: decision.action, received });
  }

  /** A decision whose time ran out; its origin is who had written it. */
  expired(decision: Decision, received = false): void {
    this.#line('decision expired', decision, decision.origin, received);
    this.#onEvent?.({ op: 'expired', origin: decision.origin, action: decision.action, received });
  }

  ban(ban: BanEvent, action: IpAction): void {
    this.#log.info('ban', () => ({
      client: ban.value,
      action,
      count: ban.count,
      offences: ban.offences,
      durationS: Math.max(0, Math.round((ban.until - Date.now()) / 1000)),
      expiresAt: expiry(ban.until),
      origin: 'behaviour',
    }));
    this.#onEvent?.({
      op: 'ban',
      origin: 'behaviour',
      action,
      received: false,
      ban: { client: ban.value, count: ban.count, offences: ban.offences, until: ban.until },
    });
  }

  #line(message: string, d: Decision, origin: string, received: boolean): void {
    this.#log.info(message, () => {
      const fields: Record<string, unknown> = { key: d.key, action: d.action, score: d.score, origin, reason: d.reason, expiresAt: expiry(d.expiresAt) };
      if (received) fields.received = 'store';
      return fields;
    });
  }
}
