/**
 * Decisions as JSON text, the form they take in Redis and in the change log. The encoding is canonical
 * (fixed field order), so two agents writing the same decision write the same text and a repeated put
 * is recognised as no change.
 */
import { IP_ACTIONS, type Decision, type IpAction } from '../types.js';

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
  const scope = stringField('scope');
  if (scope !== 'ip' && scope !== 'range') throw new Error(`field scope must be ip or range, not ${JSON.stringify(scope)}`);
  const action = stringField('action');
  if (!(IP_ACTIONS as readonly string[]).includes(action)) throw new Error(`field action must be one of ${IP_ACTIONS.join(', ')}`);
  const expiresAt = o['expiresAt'] === null ? null : numberField('expiresAt');
  return {
    key: stringField('key'),
    scope,
    value: stringField('value'),
    action: action as IpAction,
    score: numberField('score'),
    category: stringField('category'),
    reason: stringField('reason'),
    origin: stringField('origin'),
    createdAt: numberField('createdAt'),
    expiresAt,
  };
}
