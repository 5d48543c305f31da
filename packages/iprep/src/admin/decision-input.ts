/**
 * The body of `POST /decisions`, checked field by field so a client learns
 * exactly what is wrong, before the service applies its own checks.
 */
import { MAX_DURATION_MS, formatDuration } from '../config/duration.js';
import { checkReason } from '../decisions/decision.js';
import { IP_ACTIONS, type DecisionInput, type IpAction } from '../types.js';

const FIELDS = ['value', 'action', 'score', 'category', 'reason', 'duration', 'durationMs', 'force'] as const;

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * Milliseconds of a duration such as `90s`, `10m`, `1h30m`, `2d` or `500ms` (units ms, s, m, h, d, w),
 * at most MAX_DURATION_MS (365 days). Throws a TypeError naming the problem.
 */
export function parseDuration(text: string): number {
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/y;
  const t = text.trim();
  let ms = 0;
  while (part.lastIndex < t.length) {
    const at = part.lastIndex;
    const match = part.exec(t);
    if (match === null) {
      throw new TypeError(`duration "${text}": expected a number and a unit (ms, s, m, h, d, w) at "${t.slice(at)}"`);
    }
    ms += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  }
  if (!(ms > 0)) throw new TypeError(`duration "${text}": must be positive, e.g. "10m"`);
  // The configuration's longest duration (config/duration.ts), so that both parsers agree.
  if (!(ms <= MAX_DURATION_MS)) {
    throw new TypeError(`duration "${text}": longer than ${formatDuration(MAX_DURATION_MS)}, the longest accepted (or null: never expires)`);
  }
  return Math.round(ms);
}

/** Checks a parsed JSON body and returns the decision it asks for; throws a TypeError naming the field. */
export function decisionInputFromJson(body: unknown): DecisionInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TypeError('body must be a JSON object such as {"value": "192.0.2.1", "action": "deny", "duration": "1h"}');
  }
  const fields = body as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      throw new TypeError(`unknown field "${key}" (expected ${FIELDS.join(', ')})`);
    }
  }
  const { value, action, score, category, reason, duration, durationMs, force } = fields;
  if (typeof value !== 'string' || value.trim() === '') throw new TypeError('"value" must be an address or CIDR');
  if (action !== undefined && !(IP_ACTIONS as readonly unknown[]).includes(action)) {
    throw new TypeError(`"action" must be one of ${IP_ACTIONS.join(', ')}`);
  }
  if (score !== undefined && (typeof score !== 'number' || !(score >= 0 && score <= 100))) {
    throw new TypeError('"score" must be a number from 0 to 100');
  }
  if (category !== undefined && typeof category !== 'string') throw new TypeError('"category" must be a string');
  if (reason !== undefined && typeof reason !== 'string') throw new TypeError('"reason" must be a string');
  if (reason !== undefined) checkReason(reason);
  if (force !== undefined && typeof force !== 'boolean') throw new TypeError('"force" must be true or false');
  if (duration !== undefined && durationMs !== undefined) throw new TypeError('give "duration" or "durationMs", not both');
  if (duration !== undefined && duration !== null && typeof duration !== 'string') {
    throw new TypeError('"duration" must be a string such as "10m" (or null: never expires); give milliseconds as "durationMs"');
  }
  if (durationMs !== undefined && durationMs !== null && (typeof durationMs !== 'number' || !(durationMs > 0) || !(durationMs <= MAX_DURATION_MS))) {
    throw new TypeError(
      `"durationMs" must be a positive number of milliseconds, at most ${formatDuration(MAX_DURATION_MS)} (${MAX_DURATION_MS}), or null: never expires`,
    );
  }

  const input: { -readonly [K in keyof DecisionInput]: DecisionInput[K] } = { value };
  if (action !== undefined) input.action = action as IpAction;
  if (score !== undefined) input.score = score;
  if (category !== undefined) input.category = category;
  if (reason !== undefined) input.reason = reason;
  if (force !== undefined) input.force = force;
  if (typeof duration === 'string') input.durationMs = parseDuration(duration);
  else if (duration === null) input.durationMs = null;
  else if (durationMs !== undefined) input.durationMs = durationMs as number | null;
  return input;
}
