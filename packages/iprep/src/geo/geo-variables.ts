/**
 * ip_country and ip_asn: the set-var actions of the located address, appended to the verdict's.
 * Each country's and AS's action is encoded once, and each answer (a verdict's actions and a
 * location) is built once and reused, up to a bound past which answers are built per message.
 */
import { type Action, preEncode, setVar, T } from 'spop';
import type { IprepConfig, Verdict } from '../types.js';
import type { GeoMatcher } from './geo-matcher.js';

/** Answers kept (verdict answers x locations): past this, an answer is an array per message. */
const MAX_CACHED_ANSWERS = 100_000;
/** Country labels are below this (there are 676 two-letter codes): a location is one small integer. */
const COUNTRY_SLOTS = 1024;

export class GeoVariableActions {
  readonly #scope: IprepConfig['variables']['scope'];
  readonly #countryName: string | undefined;
  readonly #asnName: string | undefined;
  readonly #geo: GeoMatcher;
  #generation = -1;
  #countries: (Action | undefined)[] = [];
  #asns: (Action | undefined)[] = [];
  #answers = new WeakMap<readonly Action[], Map<number, readonly Action[]>>();
  #cached = 0;

  /** The actions for the configured variables, or undefined when neither is. */
  static of(variables: IprepConfig['variables'], geo: GeoMatcher): GeoVariableActions | undefined {
    if (variables.country === undefined && variables.asn === undefined) return undefined;
    return new GeoVariableActions(variables, geo);
  }

  private constructor(variables: IprepConfig['variables'], geo: GeoMatcher) {
    this.#scope = variables.scope;
    this.#countryName = variables.country;
    this.#asnName = variables.asn;
    this.#geo = geo;
  }

  /** `base`, the answer of `verdict`, followed by the variables of the address the engine located last. */
  with(base: readonly Action[], verdict: Verdict): readonly Action[] {
    const geo = this.#geo;
    if (geo.generation !== this.#generation) this.#reset(geo.generation);
    const country = this.#countryName === undefined ? -1 : geo.country;
    const asn = this.#asnName === undefined ? -1 : geo.asn;
    if (country < 0 && asn < 0) return base;
    const key = (asn + 1) * COUNTRY_SLOTS + (country + 1);
    let byLocation = this.#answers.get(base);
    const known = byLocation?.get(key);
    if (known !== undefined) return known;
    const answer = base.slice();
    if (country >= 0) answer.push(this.#countryAction(country));
    if (asn >= 0) answer.push(this.#asnAction(asn));
    // Answers of frozen verdicts are built once (VerdictActions): those are worth keeping.
    if (this.#cached < MAX_CACHED_ANSWERS && Object.isFrozen(verdict)) {
      if (byLocation === undefined) this.#answers.set(base, (byLocation = new Map()));
      byLocation.set(key, answer);
      this.#cached++;
    }
    return answer;
  }

  #countryAction(label: number): Action {
    let action = this.#countries[label];
    if (action === undefined) {
      const code = this.#geo.countryTable?.text(label) ?? '';
      action = this.#countries[label] = preEncode(setVar(this.#scope, this.#countryName as string, T.str(code)));
    }
    return action;
  }

  #asnAction(label: number): Action {
    let action = this.#asns[label];
    if (action === undefined) {
      const asn = this.#geo.asnTable?.asn(label) ?? 0;
      action = this.#asns[label] = preEncode(setVar(this.#scope, this.#asnName as string, T.uint32(asn)));
    }
    return action;
  }

  #reset(generation: number): void {
    this.#generation = generation;
    this.#countries = [];
    this.#asns = [];
    this.#answers = new WeakMap();
    this.#cached = 0;
  }
}
