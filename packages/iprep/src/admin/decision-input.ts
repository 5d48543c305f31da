/**
 * The body of `POST /decisions`, checked field by field so a client learns
 * exactly what is wrong, before the service applies its own checks.
 */
import { MAX_DURATION_MS, formatDuration, parseDuration } from '../config/duration.js';
import { checkReason } from '../decisions/decision.js';
import { IP_ACTIONS, type DecisionInput, type IpAction } from '../types.js';

const FIELDS = ['value', 'action', 'score', 'category', 'reason', 'duration', 'durationMs', 'force'] as const;

/**
 * Milliseconds of the `duration` field: the configuration's parser (same units, forms, cap and errors,
 * named after the field), and more than zero, since a decision of no time would be no decision.
 */
function decisionDuration(text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (error) {
    throw new TypeError(`"duration": ${(error as Error).message}`);
  }
  if (ms === 0) throw new TypeError(`"duration" must be positive, e.g. "10m", got ${JSON.stringify(text)} (or null: never expires)`);
  return ms;
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
  if (typeof duration === 'string') input.durationMs = decisionDuration(duration);
  else if (duration === null) input.durationMs = null;
  else if (durationMs !== undefined) input.durationMs = durationMs as number | null;
  return input;
}
