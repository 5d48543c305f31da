/**
 * Decisions as the admin API and behaviour bans create them: validated input,
 * canonical key and value text, so one target has exactly one key everywhere
 * (stores, indexes, other agents).
 */
import { formatAddress, isIPv4Mapped, parseRange, prefixLengthOf } from '../net/address.js';
import { IP_ACTIONS, type Decision, type DecisionInput, type DecisionScope, type IpAction } from '../types.js';
import type { BanEvent } from '../behaviour/tracker.js';

/** Score of a decision that names none: what its action implies. */
export const DEFAULT_DECISION_SCORES: Readonly<Record<IpAction, number>> = {
  allow: 100,
  log: 80,
  captcha: 40,
  tarpit: 20,
  deny: 0,
};

const DEFAULT_CATEGORY = 'manual';
const CATEGORY_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_REASON_LENGTH = 256;

/** What a decision covers: the network start (4 or 16 bytes) and its prefix length. */
export interface DecisionTarget {
  readonly address: Uint8Array;
  readonly prefixLength: number;
}

/**
 * Parses a decision value: an address or a CIDR prefix (host bits ignored).
 * IPv4-mapped IPv6 targets (::ffff:0:0/96 and longer) become IPv4, so
 * `::ffff:192.0.2.1` and `192.0.2.1` are the same target.
 * Throws a TypeError naming the problem.
 */
export function parseDecisionTarget(value: string): DecisionTarget {
  if (typeof value !== 'string') throw new TypeError(`decision value must be a string, got ${typeof value}`);
  let range;
  try {
    range = parseRange(value);
  } catch (err) {
    throw new TypeError(`bad decision value: ${(err as Error).message}`);
  }
  const prefixLength = prefixLengthOf(range);
  if (prefixLength < 0) {
    throw new TypeError(`bad decision value ${JSON.stringify(value)}: expected an address or a CIDR prefix`);
  }
  if (range.family === 6 && prefixLength >= 96 && isIPv4Mapped(range.start)) {
    return { address: range.start.slice(12), prefixLength: prefixLength - 96 };
  }
  return { address: range.start, prefixLength };
}

/** Scope, canonical value and key of a target: a full-length prefix is an `ip` decision. */
export function describeTarget(target: DecisionTarget): { scope: DecisionScope; value: string; key: string } {
  const address = formatAddress(target.address);
  const scope: DecisionScope = target.prefixLength === target.address.length * 8 ? 'ip' : 'range';
  const value = scope === 'ip' ? address : `${address}/${target.prefixLength}`;
  return { scope, value, key: `${scope}:${value}` };
}

/** The canonical key of a decision on this address or CIDR (`ip:2001:db8::1`); throws TypeError on a bad value. */
export function decisionKey(value: string): string {
  return describeTarget(parseDecisionTarget(value)).key;
}

/**
 * Builds a Decision from the admin API's input, with canonical key/value (`ip:192.0.2.1`,
 * `range:192.0.2.0/24`; a /32 or /128 becomes an ip decision). Throws TypeError with a clear
 * message on a bad value/action/score.
 */
export function makeDecision(
  input: DecisionInput,
  defaults: { action: IpAction; durationMs: number; origin: string },
  now: number,
): Decision {
  if (typeof input !== 'object' || input === null) throw new TypeError('decision input must be an object');
  const { scope, value, key } = describeTarget(parseDecisionTarget(input.value));
  const action = input.action ?? defaults.action;
  if (!(IP_ACTIONS as readonly unknown[]).includes(action)) {
    throw new TypeError(`bad decision action ${JSON.stringify(action)}: expected one of ${IP_ACTIONS.join(', ')}`);
  }
  const score = input.score ?? DEFAULT_DECISION_SCORES[action];
  if (!Number.isInteger(score) || score < 0 || score > 100) {
    throw new TypeError(`bad decision score ${JSON.stringify(score)}: expected an integer 0..100`);
  }
  const category = input.category ?? DEFAULT_CATEGORY;
  if (typeof category !== 'string' || !CATEGORY_PATTERN.test(category)) {
    throw new TypeError(`bad decision category ${JSON.stringify(category)}: expected 1..64 of A-Z a-z 0-9 _ . : -`);
  }
  const reason = input.reason ?? '';
  if (typeof reason !== 'string' || reason.length > MAX_REASON_LENGTH) {
    throw new TypeError(`bad decision reason: expected a string of at most ${MAX_REASON_LENGTH} characters`);
  }
  const durationMs = input.durationMs === undefined ? defaults.durationMs : input.durationMs;
  if (durationMs !== null && (typeof durationMs !== 'number' || !Number.isFinite(durationMs) || durationMs <= 0)) {
    throw new TypeError(`bad decision duration ${JSON.stringify(durationMs)}: expected milliseconds > 0, or null for never`);
  }
  return {
    key,
    scope,
    value,
    action,
    score,
    category,
    reason,
    origin: defaults.origin,
    createdAt: now,
    expiresAt: durationMs === null ? null : now + durationMs,
  };
}

/** The decision for a behaviour ban (category 'behaviour', origin given). */
export function banDecision(ban: BanEvent, action: IpAction, origin: string, now: number): Decision {
  const { scope, value, key } = describeTarget(parseDecisionTarget(ban.value));
  return {
    key,
    scope,
    value,
    action,
    score: 0,
    category: 'behaviour',
    reason: `behaviour ban #${ban.offences}: ${ban.count} messages in the window`,
    origin,
    createdAt: now,
    expiresAt: ban.until,
  };
}
