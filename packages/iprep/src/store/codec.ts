/**
 * Decisions as JSON text, the form they take in Redis and in the change log. The encoding is canonical
 * (fixed field order), so two agents writing the same decision write the same text and a repeated put
 * is recognised as no change. Decoding is the one place where a stored decision (from Redis, another
 * process or a file) is checked before it can take effect.
 */
import { describeTarget, parseDecisionTarget } from '../decisions/decision.js';
import { IP_ACTIONS, type Decision, type IpAction } from '../types.js';

/** Longest encoded decision accepted: a decision the API makes is under 1 KiB (a 256-character reason, escaped). */
export const MAX_ENCODED_DECISION_LENGTH = 4096;
/** Latest time accepted (the end of year 9999): beyond, a timestamp is an error, not a date. */
const MAX_TIME_MS = 253_402_300_799_999;
/** The rules the admin API applies to what it writes (decisions/decision.ts). */
const CATEGORY_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_REASON_LENGTH = 256;
const MAX_ORIGIN_LENGTH = 128;

export function encodeDecision(d: Decision): string {
  return JSON.stringify({
    key: d.key,
    scope: d.scope,
    value: d.value,
    action: d.action,
    score: d.score,
    category: d.category,
    reason: d.reason,
    origin: d.origin,
    createdAt: d.createdAt,
    expiresAt: d.expiresAt,
  });
}

/** Parses and checks a stored decision; throws an Error naming the field at fault. */
export function decodeDecision(text: string): Decision {
  if (text.length > MAX_ENCODED_DECISION_LENGTH) throw new Error(`longer than ${MAX_ENCODED_DECISION_LENGTH} characters (${text.length})`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('not a JSON object');
  const o = raw as Record<string, unknown>;
  const stringField = (name: string): string => {
    const v = o[name];
    if (typeof v !== 'string') throw new Error(`field ${name} must be a string`);
    return v;
  };
  const numberField = (name: string): number => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`field ${name} must be a finite number`);
    return v;
  };
  const timeField = (name: string, min: number): number => {
    const v = numberField(name);
    if (!Number.isInteger(v) || v < min || v > MAX_TIME_MS) throw new Error(`field ${name} must be whole milliseconds from ${min} to ${MAX_TIME_MS}, got ${v}`);
    return v;
  };
  const scope = stringField('scope');
  if (scope !== 'ip' && scope !== 'range') throw new Error(`field scope must be ip or range, not ${JSON.stringify(scope)}`);
  const key = stringField('key');
  const value = stringField('value');
  let canonical: ReturnType<typeof describeTarget>;
  try {
    canonical = describeTarget(parseDecisionTarget(value));
  } catch (error) {
    throw new Error(`field value: ${(error as Error).message}`);
  }
  // One target, one key: a decision stored as `ip:1.2.3.4` must not carry `0.0.0.0/0` inside.
  if (canonical.key !== key || canonical.value !== value || canonical.scope !== scope) {
    throw new Error(`key, scope and value disagree: ${JSON.stringify(key)}, ${scope}, ${JSON.stringify(value)} (expected ${JSON.stringify(canonical.key)})`);
  }
  const action = stringField('action');
  if (!(IP_ACTIONS as readonly string[]).includes(action)) throw new Error(`field action must be one of ${IP_ACTIONS.join(', ')}`);
  const score = numberField('score');
  if (!Number.isInteger(score) || score < 0 || score > 100) throw new Error(`field score must be an integer 0..100, got ${score}`);
  const category = stringField('category');
  if (!CATEGORY_PATTERN.test(category)) throw new Error('field category must be 1..64 of A-Z a-z 0-9 _ . : -');
  const reason = stringField('reason');
  if (reason.length > MAX_REASON_LENGTH) throw new Error(`field reason must be at most ${MAX_REASON_LENGTH} characters`);
  const origin = stringField('origin');
  if (origin.length > MAX_ORIGIN_LENGTH) throw new Error(`field origin must be at most ${MAX_ORIGIN_LENGTH} characters`);
  const createdAt = timeField('createdAt', 0);
  const expiresAt = o['expiresAt'] === null ? null : timeField('expiresAt', createdAt);
  return { key, scope, value, action: action as IpAction, score, category, reason, origin, createdAt, expiresAt };
}
