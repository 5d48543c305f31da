/**
 * How matches combine into a verdict: simple enough to explain in one line per
 * match. Allowlist, then decisions, then internal addresses decide alone;
 * otherwise the lowest absolute score (hard lists, bogons, bans) less every
 * penalty (soft lists, behaviour), and the harshest of the explicit actions
 * and the action the score's threshold gives.
 */
import { IP_ACTIONS, type IpAction, type IprepConfig, type Match, type Verdict } from '../types.js';

export type Thresholds = IprepConfig['thresholds'];

const severity: Readonly<Record<IpAction, number>> = Object.fromEntries(IP_ACTIONS.map((a, i) => [a, i])) as Record<IpAction, number>;

export function harsher(a: IpAction, b: IpAction): IpAction {
  return severity[a] >= severity[b] ? a : b;
}

/** The action a score calls for: the first threshold it is below, else allow. */
export function thresholdAction(score: number, t: Thresholds): IpAction {
  if (score < t.deny) return 'deny';
  if (score < t.tarpit) return 'tarpit';
  if (score < t.captcha) return 'captcha';
  if (score < t.log) return 'log';
  return 'allow';
}

/** Category of private, loopback and link-local sources: they decide alone, like an allowlist. */
export const INTERNAL = 'internal';

const NO_MATCHES: readonly Match[] = Object.freeze([]);

/** The verdict when nothing matched: trusted, as iprepd treats unknown addresses. */
export const UNKNOWN_VERDICT: Verdict = Object.freeze({
  score: 100,
  action: 'allow',
  category: 'none',
  source: 'default',
  matches: NO_MATCHES,
});

/** Kinds that decide alone, in precedence order (the engine collects matches in this order). */
export function decidesAlone(m: Match): boolean {
  return m.kind === 'allowlist' || m.kind === 'decision' || (m.kind === 'special' && m.category === INTERNAL);
}

/**
 * Verdicts of single matches, by match object (matches are built once per
 * list, decision or range) and thresholds: the hot path then allocates
 * nothing for them, and answers can be cached by verdict.
 */
const singleVerdicts = new WeakMap<Match, { thresholds: Thresholds; verdict: Verdict }>();

function cachedVerdict(m: Match, thresholds: Thresholds, make: () => Verdict): Verdict {
  const cached = singleVerdicts.get(m);
  if (cached !== undefined && cached.thresholds === thresholds) return cached.verdict;
  const verdict = Object.freeze(make());
  singleVerdicts.set(m, { thresholds, verdict });
  return verdict;
}

function alone(m: Match, thresholds: Thresholds): Verdict {
  return cachedVerdict(m, thresholds, () => {
    const score = m.score ?? 100;
    return { score, action: m.action ?? thresholdAction(score, thresholds), category: m.category, source: m.source, matches: NO_MATCHES };
  });
}

function single(m: Match, thresholds: Thresholds): Verdict {
  return cachedVerdict(m, thresholds, () => combineMany([m], thresholds, false));
}

/**
 * Verdicts of several matches, on the hot path: a trie of the match objects in the order they were
 * collected (a list's match, then behaviour's...), per thresholds. The matches the hot path collects
 * are built once each (per list, entry score, range, decision, rate penalty), so a combination seen
 * once is a few WeakMap reads the next time, and its verdict is frozen: the handler's answer for it
 * is cached too. Combinations are few (lists x entry scores x penalty steps); WeakMaps let those of
 * replaced lists go.
 */
interface VerdictNode {
  verdict: Verdict | undefined;
  readonly next: WeakMap<Match, VerdictNode>;
}
const manyVerdicts = new WeakMap<Thresholds, WeakMap<Match, VerdictNode>>();

function cachedMany(matches: readonly Match[], thresholds: Thresholds): Verdict {
  let level = manyVerdicts.get(thresholds);
  if (level === undefined) {
    level = new WeakMap();
    manyVerdicts.set(thresholds, level);
  }
  let node: VerdictNode | undefined;
  for (let i = 0; i < matches.length; i++) {
    const m = matches[i] as Match;
    node = level.get(m);
    if (node === undefined) {
      node = { verdict: undefined, next: new WeakMap() };
      level.set(m, node);
    }
    level = node.next;
  }
  const leaf = node as VerdictNode;
  leaf.verdict ??= Object.freeze(combineMany(matches, thresholds, false));
  return leaf.verdict;
}

/** True when every match is frozen: built once by the engine, so it can key a cache. */
function allFrozen(matches: readonly Match[]): boolean {
  for (let i = 0; i < matches.length; i++) if (!Object.isFrozen(matches[i])) return false;
  return true;
}

/**
 * Combines the matches collected in precedence order. `keep` puts the matches
 * in the verdict (explain); the hot path passes false and a reused array.
 */
export function combine(matches: readonly Match[], thresholds: Thresholds, keep: boolean): Verdict {
  if (matches.length === 0) return UNKNOWN_VERDICT;
  const first = matches[0] as Match;
  if (decidesAlone(first)) return keep ? { ...alone(first, thresholds), matches } : alone(first, thresholds);
  // One match alone decides as it would among others; its verdict is built once (frozen: cacheable).
  if (matches.length === 1 && !keep) return single(first, thresholds);
  if (!keep && allFrozen(matches)) return cachedMany(matches, thresholds);
  return combineMany(matches, thresholds, keep);
}

function combineMany(matches: readonly Match[], thresholds: Thresholds, keep: boolean): Verdict {
  const first = matches[0] as Match;
  let base = 100;
  let penalty = 0;
  let explicit: IpAction = 'allow';
  let decider = first;
  let deciderWeight = -1;
  for (let i = 0; i < matches.length; i++) {
    const m = matches[i] as Match;
    // A match's weight is how far it pulls the score down; the heaviest names the verdict.
    let weight = 0;
    if (m.score !== undefined) {
      if (m.score < base) base = m.score;
      weight = 100 - m.score;
    }
    if (m.penalty !== undefined) {
      penalty += m.penalty;
      weight = Math.max(weight, m.penalty);
    }
    if (m.action !== undefined) explicit = harsher(explicit, m.action);
    if (weight > deciderWeight) {
      decider = m;
      deciderWeight = weight;
    }
  }
  const score = Math.max(0, Math.min(100, base - penalty));
  return {
    score,
    action: harsher(explicit, thresholdAction(score, thresholds)),
    category: decider.category,
    source: decider.source,
    matches: keep ? matches : NO_MATCHES,
  };
}
