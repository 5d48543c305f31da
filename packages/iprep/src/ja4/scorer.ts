/**
 * What a client's TLS fingerprint says, as matches the engine combines with the address's: hits
 * on fingerprint lists, and the message rate of the fingerprint across every address using it
 * (a bot changes addresses faster than TLS stacks). An `allow` list exempts a fingerprint from
 * both; nothing here ever overrides the address's own allowlist or decisions (the engine keeps
 * those deciding alone), since a fingerprint is easy to imitate.
 */
import { type Action, type Message, type VarScope, preEncode, setVar, T } from 'spop';
import { BehaviourTracker } from '../behaviour/index.js';
import type { BehaviourConfig, FingerprintListConfig, Match, TlsConfig } from '../types.js';
import type { LoadedFingerprintList } from './lists.js';
import { ClientHelloReader, FingerprintCache, type TlsFingerprint, fingerprintKey } from './reader.js';

/** What the reused judgement holds before its first use. */
const NO_FINGERPRINT: TlsFingerprint = Object.freeze({ ja4: undefined, ja3: undefined, ja4Raw: undefined, key: new Uint8Array(16) });

interface ListSlot {
  readonly list: LoadedFingerprintList;
  readonly match: Match;
}

/** A list's match: its absolute score or its penalty, category, action. */
function listMatch(config: FingerprintListConfig): Match {
  const base = { kind: 'list', source: config.name, category: config.category } as const;
  const action = config.action === undefined ? {} : { action: config.action };
  if (config.score !== undefined) return Object.freeze({ ...base, ...action, score: config.score });
  if (config.penalty !== undefined) return Object.freeze({ ...base, ...action, penalty: config.penalty });
  return Object.freeze({ ...base, ...action });
}

function trackerConfig(b: TlsConfig['behaviour']): BehaviourConfig {
  return {
    enabled: b.enabled,
    // Keys are 16 bytes made from the fingerprint; the tracker keeps the first 8 (a /64).
    ipv6PrefixLength: 64,
    windowMs: b.windowMs,
    rateThreshold: b.rateThreshold,
    ratePenalty: b.ratePenalty,
    banThreshold: b.banThreshold === 0 ? Number.MAX_SAFE_INTEGER : b.banThreshold,
    banMs: b.banMs,
    banGrowth: 1,
    maxBanMs: b.banMs,
    banAction: b.banAction,
    // The penalty lasts about one window once the rate is back under the threshold.
    decayPoints: b.ratePenalty,
    decayIntervalMs: b.windowMs,
    errorWeight: 1,
    maxRate: 0,
    maxClients: b.maxFingerprints,
    // A fingerprint sent once (a forged or randomised ClientHello) is remembered, not counted, as for addresses.
    doorkeeper: true,
  };
}

export interface TlsJudgement {
  readonly fingerprint: TlsFingerprint;
  /** Matches to combine with the address's; empty when the fingerprint is unknown or allowed. Reused: valid until the next call. */
  readonly matches: readonly Match[];
}

export class TlsScorer {
  readonly #reader = new ClientHelloReader();
  readonly #cache: FingerprintCache;
  readonly #behaviour: BehaviourTracker | undefined;
  readonly #scope: VarScope;
  readonly #variables: TlsConfig['variables'];
  #allow: readonly ListSlot[] = [];
  #deny: readonly ListSlot[] = [];
  readonly #matches: Match[] = [];
  /** Reused by judge(): its fingerprint is replaced on each call. */
  readonly #judgement: { fingerprint: TlsFingerprint; matches: readonly Match[] } = { fingerprint: NO_FINGERPRINT, matches: this.#matches };
  readonly #variableActions = new WeakMap<TlsFingerprint, readonly Action[]>();
  readonly #answers = new WeakMap<TlsFingerprint, WeakMap<readonly Action[], readonly Action[]>>();

  constructor(config: TlsConfig, scope: VarScope, options: { now?: () => number } = {}) {
    this.#cache = new FingerprintCache({ maxEntries: config.cacheSize, ja3: config.ja3 });
    this.#behaviour = config.behaviour.enabled
      ? new BehaviourTracker(trackerConfig(config.behaviour), { source: 'tls-behaviour', ...(options.now ? { now: options.now } : {}) })
      : undefined;
    this.#scope = scope;
    this.#variables = config.variables;
  }

  /** Fingerprints kept by the cache, and its hit and miss counts. */
  get cache(): { size: number; hits: number; misses: number } {
    return { size: this.#cache.size, hits: this.#cache.hits, misses: this.#cache.misses };
  }

  /** Replaces every fingerprint list at once. */
  setLists(lists: readonly LoadedFingerprintList[]): void {
    const slots = lists.map((list) => ({ list, match: listMatch(list.config) }));
    this.#allow = slots.filter((slot) => slot.list.config.action === 'allow');
    this.#deny = slots.filter((slot) => slot.list.config.action !== 'allow');
  }

  get lists(): readonly LoadedFingerprintList[] {
    return [...this.#allow, ...this.#deny].map((slot) => slot.list);
  }

  /** The fingerprint of the ClientHello pieces the message carries, if any. */
  fingerprint(message: Message): TlsFingerprint | undefined {
    const fields = this.#reader.read(message);
    return fields === undefined ? undefined : this.#cache.get(fields);
  }

  /**
   * Reads the message's fingerprint, counts the message for it, and collects what the lists and
   * its rate say. Undefined when the message carries no fingerprint. Hot path: nothing allocated
   * for a fingerprint seen before, penalised or banned ones included.
   */
  judge(message: Message, now: number): TlsJudgement | undefined {
    const fingerprint = this.fingerprint(message);
    if (fingerprint === undefined) return undefined;
    const out = this.#matches;
    while (out.length > 0) out.pop(); // cheaper than assigning length (a runtime call)
    this.#collect(fingerprint, now, out, true, false);
    this.#judgement.fingerprint = fingerprint;
    return this.#judgement;
  }

  /** Every match of a fingerprint (JA4 or JA3 text), with the entry's note: for explain. */
  explain(fingerprint: string, now: number): Match[] {
    const text = fingerprint.toLowerCase();
    const print: TlsFingerprint =
      text.length === 32
        ? { ja4: undefined, ja3: text, ja4Raw: undefined, key: keyOf(text, true) }
        : { ja4: text, ja3: undefined, ja4Raw: undefined, key: keyOf(text, false) };
    const out: Match[] = [];
    this.#collect(print, now, out, false, true);
    return out;
  }

  /** `actions` (the verdict's) followed by the fingerprint variables; cached per fingerprint and answer. */
  answer(fingerprint: TlsFingerprint, actions: readonly Action[]): readonly Action[] {
    let byActions = this.#answers.get(fingerprint);
    if (byActions === undefined) {
      byActions = new WeakMap();
      this.#answers.set(fingerprint, byActions);
    }
    let answer = byActions.get(actions);
    if (answer === undefined) {
      answer = [...actions, ...this.#variablesOf(fingerprint)];
      byActions.set(actions, answer);
    }
    return answer;
  }

  #variablesOf(fingerprint: TlsFingerprint): readonly Action[] {
    let actions = this.#variableActions.get(fingerprint);
    if (actions === undefined) {
      const list: Action[] = [];
      if (fingerprint.ja4 !== undefined) list.push(preEncode(setVar(this.#scope, this.#variables.ja4, T.str(fingerprint.ja4))));
      if (fingerprint.ja3 !== undefined) list.push(preEncode(setVar(this.#scope, this.#variables.ja3, T.str(fingerprint.ja3))));
      actions = list;
      this.#variableActions.set(fingerprint, actions);
    }
    return actions;
  }

  #collect(print: TlsFingerprint, now: number, out: Match[], count: boolean, detail: boolean): void {
    for (let i = 0; i < this.#allow.length; i++) {
      const slot = this.#allow[i] as ListSlot;
      const hit = lookup(slot, print);
      if (hit === undefined) continue;
      // Allowed: exempt from the deny lists and the rate; explain still shows the allow entry.
      if (detail) out.push({ ...slot.match, detail: entryDetail(slot, hit) });
      return;
    }
    for (let i = 0; i < this.#deny.length; i++) {
      const slot = this.#deny[i] as ListSlot;
      const hit = lookup(slot, print);
      if (hit !== undefined) out.push(detail ? { ...slot.match, detail: entryDetail(slot, hit) } : slot.match);
    }
    const behaviour = this.#behaviour;
    if (behaviour === undefined) return;
    if (count) behaviour.hit(print.key, 1, now);
    // Without detail (the hot path) the tracker's matches are frozen ones built once, named for fingerprints.
    const match = behaviour.evaluate(print.key, now, detail);
    if (match === undefined) return;
    out.push(detail && match.score !== 0 ? { ...match, detail: `${match.detail} of this fingerprint` } : match);
  }
}

/** Which of the fingerprint's texts (JA4, else JA3) the list holds; undefined when neither. */
function lookup(slot: ListSlot, print: TlsFingerprint): string | undefined {
  const entries = slot.list.entries;
  if (print.ja4 !== undefined && entries.has(print.ja4)) return print.ja4;
  if (print.ja3 !== undefined && entries.has(print.ja3)) return print.ja3;
  return undefined;
}

/** `<fingerprint> <note>`, for explain. */
function entryDetail(slot: ListSlot, fingerprint: string): string {
  const note = slot.list.entries.get(fingerprint);
  return note ? `${fingerprint} ${note}` : fingerprint;
}

function keyOf(text: string, ja3: boolean): Uint8Array {
  return fingerprintKey(ja3 ? `ja3:${text}` : text);
}
