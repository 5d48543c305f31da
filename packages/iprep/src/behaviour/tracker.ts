/**
 * Behaviour of clients, from the messages themselves (fail2ban / Mozilla
 * iprepd style): a sliding-window message count per client (IPv4 address or
 * IPv6 prefix), a rate penalty that decays back, and bans that grow for
 * repeat offenders.
 *
 * The window is the classic two-bucket estimate: fixed buckets of `windowMs`
 * aligned on the epoch (so every agent agrees on them), the current bucket's
 * count plus the previous bucket's weighted by how much of it the window
 * still covers. Counts from other agents arrive through `applyTotals`.
 *
 * A doorkeeper (config.doorkeeper; see Doorkeeper) keeps one-off sources out of the client table:
 * a client enters it at its second message in a bucket (or when a shared total names it), the
 * first then counted as if it had been there all along.
 */
import { formatAddress, isIPv4Mapped, parseRange, prefixLengthOf, wordAt } from '../net/address.js';
import type { BehaviourConfig, Match } from '../types.js';
import { BANNED_UNTIL, BUCKET, CURRENT, ClientTable, NO_CLIENT, OFFENCES, PENALTY, PENALTY_AT, PENDING, PREVIOUS, STATE_STRIDE } from './client-table.js';
import { Doorkeeper } from './doorkeeper.js';

/** A ban the tracker has just decided; `onBan` receives each one once. */
export interface BanEvent {
  /** Client key text (see `clientKey`). */
  readonly key: string;
  /** The address, or the IPv6 prefix as CIDR text, e.g. '2001:db8:1:2::/64'. */
  readonly value: string;
  /** End of the ban, ms since epoch. */
  readonly until: number;
  /** Window count that caused it. */
  readonly count: number;
  /** How many times this client has been banned, this one included. */
  readonly offences: number;
}

export interface BehaviourTrackerOptions {
  /** Clock used when a call gives no `now`. Default Date.now. */
  now?: () => number;
  onBan?: (ban: BanEvent) => void;
  /** What the matches name as their source: `<source>:ban`, `<source>:rate`. Default 'behaviour'. */
  source?: string;
}

/** Clients whose window holds fewer messages than this are not worth a round trip to the shared counters. */
const MIN_SHARED_COUNT = 2;
/** Distinct rate penalties whose match is kept (they come from the configuration: a few decay steps). */
const MAX_RATE_MATCHES = 256;

/** Mask of the first `bits` (0..32) bits of a word, as an int32. */
function wordMask(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? -1 : -1 << (32 - bits);
}

/** Throws a RangeError listing every value the tracker cannot work with. */
function validate(config: BehaviourConfig): void {
  const problems: string[] = [];
  const check = (ok: boolean, problem: string): void => {
    if (!ok) problems.push(problem);
  };
  const { ipv6PrefixLength, windowMs, rateThreshold, ratePenalty, banThreshold, banMs, maxBanMs } = config;
  check(
    Number.isInteger(ipv6PrefixLength) && ipv6PrefixLength >= 1 && ipv6PrefixLength <= 64,
    `ipv6PrefixLength must be an integer 1..64, got ${ipv6PrefixLength}`,
  );
  check(windowMs > 0, `windowMs must be > 0, got ${windowMs}`);
  check(rateThreshold >= 0, `rateThreshold must be >= 0, got ${rateThreshold}`);
  check(ratePenalty >= 0 && ratePenalty <= 100, `ratePenalty must be 0..100, got ${ratePenalty}`);
  check(banThreshold >= 0, `banThreshold must be >= 0, got ${banThreshold}`);
  check(banMs > 0 && maxBanMs >= banMs, `banMs must be > 0 and maxBanMs >= banMs, got ${banMs} and ${maxBanMs}`);
  check(config.banGrowth >= 1, `banGrowth must be >= 1, got ${config.banGrowth}`);
  check(config.decayPoints >= 0, `decayPoints must be >= 0, got ${config.decayPoints}`);
  check(config.decayIntervalMs > 0, `decayIntervalMs must be > 0, got ${config.decayIntervalMs}`);
  check(Number.isInteger(config.maxClients) && config.maxClients >= 1, `maxClients must be an integer >= 1, got ${config.maxClients}`);
  if (problems.length > 0) throw new RangeError(`bad behaviour configuration: ${problems.join('; ')}`);
}

export class BehaviourTracker {
  readonly #config: BehaviourConfig;
  readonly #now: () => number;
  readonly #onBan: ((ban: BanEvent) => void) | undefined;
  readonly #clients: ClientTable;
  /** Masks of the IPv6 prefix's two words. */
  readonly #hiMask: number;
  readonly #loMask: number;
  /** Where #locate leaves a client's key: no object to allocate on the hot path. */
  #family: 4 | 6 = 4;
  #hi = 0;
  #lo = 0;
  /** Slot of the client of the last hit: the engine evaluates the client just counted, no second probe. */
  #lastSlot = NO_CLIENT;
  /** Clients seen once in the current window bucket (see Doorkeeper); undefined when off. */
  readonly #door: Doorkeeper | undefined;
  /** End of the window bucket the doorkeeper's clients were seen in: it is cleared from then on. */
  #doorUntil = Number.NEGATIVE_INFINITY;
  /** The client the last hit left to the doorkeeper (family 0: none), which evaluate need not look up. */
  #awayFamily = 0;
  #awayHi = 0;
  #awayLo = 0;
  #turnedAway = 0;
  /** The hot path's matches, without detail text, built once: a ban, and a rate penalty per value. */
  readonly #banMatch: Match;
  readonly #rateMatches = new Map<number, Match>();
  readonly #banSource: string;
  readonly #rateSource: string;

  constructor(config: BehaviourConfig, options: BehaviourTrackerOptions = {}) {
    validate(config);
    this.#config = config;
    this.#now = options.now ?? Date.now;
    this.#onBan = options.onBan;
    this.#clients = new ClientTable(config.maxClients);
    // A client's first message is only remembered: not where one message could cross a threshold alone.
    const oneMessageJudged = (config.rateThreshold < 1 && config.ratePenalty > 0) || config.banThreshold < 1;
    this.#door = config.doorkeeper && !oneMessageJudged ? new Doorkeeper(config.maxClients) : undefined;
    this.#hiMask = wordMask(config.ipv6PrefixLength);
    this.#loMask = wordMask(config.ipv6PrefixLength - 32);
    const source = options.source ?? 'behaviour';
    this.#banSource = `${source}:ban`;
    this.#rateSource = `${source}:rate`;
    this.#banMatch = Object.freeze({ kind: 'behaviour', source: this.#banSource, category: 'behaviour', action: config.banAction, score: 0 });
  }

  /** Clients tracked now. */
  get size(): number {
    return this.#clients.size;
  }

  /** Messages since start whose client the doorkeeper remembered instead of tracking it. */
  get turnedAway(): number {
    return this.#turnedAway;
  }

  /**
   * Counts one message (weight default 1) from this client (4 or 16 bytes). Hot path: no
   * allocation for a client already tracked, no string building. May trigger a ban (onBan) when
   * the window count crosses banThreshold. Does nothing when behaviour is disabled.
   * `atLeast` is a rate HAProxy measured for the client: the window count is raised to it
   * (locally only: every agent sees HAProxy's rate, summing it across agents would count it twice).
   *
   * With the doorkeeper, the first message of a client not tracked, when it weighs 1 and claims no
   * rate above 1, is only remembered (until the window bucket ends): the client enters the table
   * at its next message, with both counted. A first message weighing more enters it at once.
   */
  hit(address: Uint8Array, weight = 1, now = this.#now(), atLeast = 0): void {
    if (!this.#config.enabled || !this.#locate(address)) return;
    this.#awayFamily = 0;
    const clients = this.#clients;
    let c = clients.find(this.#family, this.#hi, this.#lo);
    let remembered = 0;
    if (c === NO_CLIENT) {
      const door = this.#door;
      if (door !== undefined) {
        if (now >= this.#doorUntil) this.#nextDoorBucket(door, now);
        if (weight === 1 && !(atLeast > 1)) {
          if (!door.admit(this.#family, this.#hi, this.#lo)) {
            this.#awayFamily = this.#family;
            this.#awayHi = this.#hi;
            this.#awayLo = this.#lo;
            this.#turnedAway++;
            return;
          }
          remembered = 1;
        } else if (door.has(this.#family, this.#hi, this.#lo)) {
          remembered = 1;
        }
      }
      c = clients.add(this.#family, this.#hi, this.#lo);
    } else {
      clients.touch(c);
    }
    this.#lastSlot = c;
    this.#roll(c, now);
    // The client's counters: one run of STATE_STRIDE doubles (one cache line) at `at`.
    const state = clients.state;
    const at = c * STATE_STRIDE;
    state[at + CURRENT] = (state[at + CURRENT] as number) + weight + remembered;
    state[at + PENDING] = (state[at + PENDING] as number) + weight + remembered;
    if (atLeast > 0) {
      const count = this.#windowCount(c, now);
      if (atLeast > count) state[at + CURRENT] = (state[at + CURRENT] as number) + atLeast - count;
    }
    this.#judge(c, now);
  }

  /**
   * The client's behaviour match now: a ban (source 'behaviour:ban', or options.source + ':ban';
   * action config.banAction, score 0), else a rate penalty (source 'behaviour:rate', decayed by decayPoints per
   * decayIntervalMs since it was given), else undefined. With `detail` (explain) the match says why,
   * in a new object; without (the hot path) it is a frozen match built once, so the engine can
   * cache the verdict and the handler its answer: a penalised or banned client costs no allocation.
   */
  evaluate(address: Uint8Array, now = this.#now(), detail = true): Match | undefined {
    if (!this.#locate(address)) return undefined;
    const clients = this.#clients;
    // The client the last hit left to the doorkeeper is not in the table: no record to read to find that out.
    if (this.#awayFamily === this.#family && this.#awayHi === this.#hi && this.#awayLo === this.#lo) return undefined;
    let c = this.#lastSlot;
    // The slot still holds this client (a slot holds one client at a time; cleared slots are past size)?
    if (!clients.holds(c, this.#family, this.#hi, this.#lo)) c = clients.find(this.#family, this.#hi, this.#lo);
    if (c === NO_CLIENT) return undefined;
    const bannedUntil = clients.state[c * STATE_STRIDE + BANNED_UNTIL] as number;
    if (bannedUntil > now) {
      if (!detail) return this.#banMatch;
      return {
        kind: 'behaviour',
        source: this.#banSource,
        category: 'behaviour',
        action: this.#config.banAction,
        score: 0,
        detail: `until ${new Date(bannedUntil).toISOString()}`,
      };
    }
    const penalty = this.#penaltyNow(c, now);
    if (penalty <= 0) return undefined;
    if (!detail) return this.#rateMatch(penalty);
    return {
      kind: 'behaviour',
      source: this.#rateSource,
      category: 'behaviour',
      penalty,
      detail: `${Math.round(this.#windowCount(c, now))} messages in the window`,
    };
  }

  /**
   * Counts since the last call, per client key, for the shared CounterStore; only clients that
   * matter (count >= 2 in the window, or already penalised). The others keep their count for later.
   */
  takeDeltas(): Map<string, number> {
    const deltas = new Map<string, number>();
    this.takeDeltasStep(deltas, 0, Number.POSITIVE_INFINITY);
    return deltas;
  }

  /**
   * `takeDeltas` over the clients of slots `from` to `from + count - 1`, added to `into`: the counter
   * sync scans a million clients in steps and gives the event loop back between them (a whole scan
   * takes several ms). Returns the slot to go on from, or -1 once past the last client.
   */
  takeDeltasStep(into: Map<string, number>, from: number, count: number): number {
    const clients = this.#clients;
    const state = clients.state;
    const end = Math.min(clients.size, from + count);
    for (let c = Math.max(0, from); c < end; c++) {
      const at = c * STATE_STRIDE;
      const pending = state[at + PENDING] as number;
      if (pending === 0) continue;
      // current + previous bounds the window count from above, whatever the clock says now.
      if (
        (state[at + CURRENT] as number) + (state[at + PREVIOUS] as number) < MIN_SHARED_COUNT &&
        state[at + PENALTY] === 0 &&
        state[at + BANNED_UNTIL] === 0
      ) {
        continue;
      }
      into.set(this.#keyText(c), pending);
      state[at + PENDING] = 0;
    }
    return end < clients.size ? end : -1;
  }

  /**
   * Cluster-wide window counts (from CounterStore.flush) for client keys: each replaces the local
   * estimate when larger, and may start penalties and bans (onBan). Keys that are not client keys
   * of this configuration are ignored. A client the doorkeeper remembered enters the table with
   * that message counted (and to share).
   */
  applyTotals(totals: ReadonlyMap<string, number>, now = this.#now()): void {
    if (!this.#config.enabled) return;
    for (const [key, total] of totals) {
      if (!(total > 0) || !this.#locateKey(key)) continue;
      this.#awayFamily = 0;
      const clients = this.#clients;
      let c = clients.find(this.#family, this.#hi, this.#lo);
      let remembered = 0;
      if (c === NO_CLIENT) {
        const door = this.#door;
        if (door !== undefined) {
          if (now >= this.#doorUntil) this.#nextDoorBucket(door, now);
          // The client's message the doorkeeper remembered is counted (and shared) from now on, as at a second message.
          if (door.has(this.#family, this.#hi, this.#lo)) remembered = 1;
        }
        c = clients.add(this.#family, this.#hi, this.#lo);
      } else {
        clients.touch(c);
      }
      this.#roll(c, now);
      if (remembered > 0) {
        const at = c * STATE_STRIDE;
        clients.state[at + CURRENT] = (clients.state[at + CURRENT] as number) + remembered;
        clients.state[at + PENDING] = (clients.state[at + PENDING] as number) + remembered;
      }
      const local = this.#windowCount(c, now);
      if (total <= local) continue;
      clients.state[c * STATE_STRIDE + CURRENT] = (clients.state[c * STATE_STRIDE + CURRENT] as number) + total - local;
      this.#judge(c, now);
    }
  }

  /** Key text of a client: '192.0.2.1', or '2001:db8:1:2::/64' for IPv6 (config.ipv6PrefixLength). Throws TypeError on a bad address. */
  clientKey(address: Uint8Array): string {
    if (!this.#locate(address)) throw new TypeError(`an address has 4 or 16 bytes, got ${address.length}`);
    return this.#formatKey(this.#family, this.#hi, this.#lo);
  }

  /**
   * The `n` clients with the most messages in the window now, most first (status page). One pass over
   * the clients kept (at most maxClients) holding the best n in a small sorted array: no sort of them all.
   */
  topClients(n: number, now = this.#now()): { client: string; count: number }[] {
    const best: { c: number; count: number }[] = [];
    if (n <= 0) return [];
    this.#clients.forEach((c) => {
      const count = this.#windowCount(c, now);
      if (!(count >= 1) || (best.length === n && count <= (best[n - 1] as { count: number }).count)) return;
      let at = best.length;
      while (at > 0 && (best[at - 1] as { count: number }).count < count) at--;
      best.splice(at, 0, { c, count });
      if (best.length > n) best.pop();
    });
    return best.map(({ c, count }) => ({ client: this.#keyText(c), count: Math.round(count) }));
  }

  #rateMatch(penalty: number): Match {
    let match = this.#rateMatches.get(penalty);
    if (match === undefined) {
      match = Object.freeze({ kind: 'behaviour', source: this.#rateSource, category: 'behaviour', penalty });
      if (this.#rateMatches.size < MAX_RATE_MATCHES) this.#rateMatches.set(penalty, match);
    }
    return match;
  }

  /** Forgets everything (tests, reload with behaviour disabled). */
  clear(): void {
    this.#clients.clear();
    this.#door?.clear();
    this.#awayFamily = 0;
  }

  /** A new window bucket: the clients seen once in the previous one are forgotten. */
  #nextDoorBucket(door: Doorkeeper, now: number): void {
    door.clear();
    const windowMs = this.#config.windowMs;
    this.#doorUntil = (Math.floor(now / windowMs) + 1) * windowMs;
  }

  /** Sets #family/#hi/#lo to the client key of the address; false when it is neither 4 nor 16 bytes. */
  #locate(address: Uint8Array): boolean {
    if (address.length === 4) {
      this.#family = 4;
      this.#hi = wordAt(address, 0);
      this.#lo = 0;
    } else if (address.length === 16) {
      // HAProxy may send IPv4 clients as ::ffff:a.b.c.d; as IPv6 they would all share ::/64.
      if (isIPv4Mapped(address)) {
        this.#family = 4;
        this.#hi = wordAt(address, 12);
        this.#lo = 0;
      } else {
        this.#family = 6;
        this.#hi = wordAt(address, 0) & this.#hiMask;
        this.#lo = wordAt(address, 4) & this.#loMask;
      }
    } else {
      return false;
    }
    return true;
  }

  /** #locate for key text (off the hot path): only keys `clientKey` could have made. */
  #locateKey(key: string): boolean {
    let range;
    try {
      range = parseRange(key);
    } catch {
      return false;
    }
    const expected = range.family === 4 ? 32 : this.#config.ipv6PrefixLength;
    return prefixLengthOf(range) === expected && this.#locate(range.start);
  }

  #keyText(c: number): string {
    return this.#clients.keyText(c, this.#formatClientKey);
  }

  /** Bound once: building a key text is rare (deltas, bans), the closure need not be made per call. */
  readonly #formatClientKey = (c: number): string => {
    const clients = this.#clients;
    return this.#formatKey(clients.familyOf(c), clients.hiOf(c), clients.loOf(c));
  };

  #formatKey(family: 4 | 6, hi: number, lo: number): string {
    const bytes = new Uint8Array(family === 4 ? 4 : 16);
    const view = new DataView(bytes.buffer);
    view.setInt32(0, hi);
    if (family === 4) return formatAddress(bytes);
    view.setInt32(4, lo);
    return `${formatAddress(bytes)}/${this.#config.ipv6PrefixLength}`;
  }

  /** Moves the client's buckets forward to the one holding `now` (a clock going back stays put). */
  #roll(c: number, now: number): void {
    const state = this.#clients.state;
    const at = c * STATE_STRIDE;
    const bucket = Math.floor(now / this.#config.windowMs);
    const was = state[at + BUCKET] as number;
    if (bucket <= was) return;
    state[at + PREVIOUS] = bucket === was + 1 ? (state[at + CURRENT] as number) : 0;
    state[at + CURRENT] = 0;
    state[at + BUCKET] = bucket;
  }

  /** Sliding-window estimate of the messages in the last windowMs. */
  #windowCount(c: number, now: number): number {
    const state = this.#clients.state;
    const at = c * STATE_STRIDE;
    const windowMs = this.#config.windowMs;
    const bucket = Math.floor(now / windowMs);
    const was = state[at + BUCKET] as number;
    const current = state[at + CURRENT] as number;
    if (bucket <= was) {
      const covered = 1 - (now - was * windowMs) / windowMs;
      return current + (state[at + PREVIOUS] as number) * Math.min(1, Math.max(0, covered));
    }
    if (bucket === was + 1) return current * (1 - (now - bucket * windowMs) / windowMs);
    return 0;
  }

  #penaltyNow(c: number, now: number): number {
    const state = this.#clients.state;
    const at = c * STATE_STRIDE;
    const penalty = state[at + PENALTY] as number;
    if (penalty === 0) return 0;
    const intervals = Math.floor(Math.max(0, now - (state[at + PENALTY_AT] as number)) / this.#config.decayIntervalMs);
    return Math.max(0, penalty - intervals * this.#config.decayPoints);
  }

  /** Gives the penalty while the client is above the rate threshold, and bans it above the ban threshold. */
  #judge(c: number, now: number): void {
    const config = this.#config;
    const state = this.#clients.state;
    const at = c * STATE_STRIDE;
    const count = this.#windowCount(c, now);
    if (count > config.rateThreshold && config.ratePenalty > 0) {
      state[at + PENALTY] = config.ratePenalty;
      state[at + PENALTY_AT] = now;
    }
    if (count <= config.banThreshold || (state[at + BANNED_UNTIL] as number) > now) return;
    const offences = (state[at + OFFENCES] as number) + 1;
    state[at + OFFENCES] = offences;
    const durationMs = Math.min(config.maxBanMs, config.banMs * config.banGrowth ** (offences - 1));
    const until = now + durationMs;
    state[at + BANNED_UNTIL] = until;
    if (this.#onBan !== undefined) {
      const key = this.#keyText(c);
      this.#onBan({ key, value: key, until, count: Math.round(count), offences });
    }
  }
}
