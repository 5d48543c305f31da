/**
 * Decisions as the admin API and behaviour bans create them: validated input,
 * canonical key and value text, so one target has exactly one key everywhere
 * (stores, indexes, other agents).
 */
import { MAX_DURATION_MS, formatDuration } from '../config/duration.js';
import { DEFAULT_MIN_PREFIX_V4, DEFAULT_MIN_PREFIX_V6 } from '../config/defaults.js';
import { formatAddress, isIPv4Mapped, parseAddress, parseRange, prefixLengthOf } from '../net/address.js';
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
/**
 * Characters a reason may not hold: C0 and C1 controls (terminal escapes, newlines that forge log lines),
 * line and paragraph separators, and bidirectional overrides that make text read other than it is.
 */
const REASON_FORBIDDEN = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

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

/**
 * The target of a decision a client asks for: as parseDecisionTarget, but a prefix with host bits set
 * (`1.2.3.77/24`) is refused rather than widened, naming the network it would cover.
 */
export function parseRequestedTarget(value: string): DecisionTarget {
  const target = parseDecisionTarget(value);
  const slash = value.indexOf('/');
  const written = slash < 0 ? undefined : parseAddress(value.slice(0, slash));
  const start = written === undefined ? undefined : parseRange(value).start;
  if (written !== undefined && start !== undefined && written.some((byte, i) => byte !== start[i])) {
    throw new TypeError(
      `bad decision value ${JSON.stringify(value)}: host bits set after the /${prefixLengthOf(parseRange(value))} prefix; did you mean ${describeTarget(target).value}?`,
    );
  }
  return target;
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
  defaults: { action: IpAction; durationMs: number; origin: string; minPrefixV4?: number; minPrefixV6?: number },
  now: number,
): Decision {
  if (typeof input !== 'object' || input === null) throw new TypeError('decision input must be an object');
  const target = parseRequestedTarget(input.value);
  // A whole-Internet decision denies everyone: only when the request says so.
  const ipv4 = target.address.length === 4;
  const minimum = ipv4 ? (defaults.minPrefixV4 ?? DEFAULT_MIN_PREFIX_V4) : (defaults.minPrefixV6 ?? DEFAULT_MIN_PREFIX_V6);
  if (target.prefixLength < minimum && input.force !== true) {
    throw new TypeError(
      `bad decision value ${JSON.stringify(input.value)}: the IPv${ipv4 ? 4 : 6} prefix /${target.prefixLength} is shorter than the minimum /${minimum} ` +
        `(decisions.min-prefix-v${ipv4 ? 4 : 6}); send "force": true to cover that many addresses`,
    );
  }
  const { scope, value, key } = describeTarget(target);
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
  checkReason(reason);
  const durationMs = input.durationMs === undefined ? defaults.durationMs : input.durationMs;
  if (durationMs !== null && (typeof durationMs !== 'number' || !Number.isFinite(durationMs) || durationMs <= 0 || durationMs > MAX_DURATION_MS)) {
    throw new TypeError(
      `bad decision duration ${JSON.stringify(durationMs)}: expected milliseconds > 0 and at most ${formatDuration(MAX_DURATION_MS)}, or null for never`,
    );
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

/** Throws a TypeError unless `reason` is a string of at most MAX_REASON_LENGTH characters, without control characters. */
export function checkReason(reason: unknown): asserts reason is string {
  if (typeof reason !== 'string' || reason.length > MAX_REASON_LENGTH) {
    throw new TypeError(`bad decision reason: expected a string of at most ${MAX_REASON_LENGTH} characters`);
  }
  if (REASON_FORBIDDEN.test(reason)) {
    throw new TypeError('bad decision reason: control characters (newlines, escapes, bidirectional overrides) are not allowed');
  }
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
