/**
 * The SPOE side of the engine: a message handler that reads the client's
 * address, feeds the behaviour tracker, scores the address and answers with
 * the verdict's variables. Its answers are pre-encoded and cached, so a
 * NOTIFY costs a lookup and an array of four actions.
 */
import { type Action, type Message, type MessageHandler, preEncode, setVar, T } from 'spop';
import type { BehaviourTracker } from '../behaviour/index.js';
import type { TlsScorer } from '../ja4/index.js';
import { GeoVariableActions } from '../geo/geo-variables.js';
import type { GeoCounts } from '../geo/geo-counts.js';
import { parseAddress } from '../net/address.js';
import type { IprepConfig, Verdict } from '../types.js';
import type { ReputationEngine } from './engine.js';
import { RecentByIdentity } from './recent.js';

export interface VerdictObserver {
  /** `handlerSeconds` is given for the sample of messages whose handling was timed. */
  observeVerdict(verdict: Verdict, handlerSeconds?: number): void;
}

export interface ReputationHandlerOptions {
  readonly engine: ReputationEngine;
  readonly variables: IprepConfig['variables'];
  /** Counts every message of its client when present. */
  readonly behaviour?: BehaviourTracker | undefined;
  /** Argument carrying an HTTP status: statuses >= 400 count `errorWeight` instead of 1. */
  readonly statusArgument?: string | undefined;
  readonly errorWeight?: number;
  /**
   * Argument carrying a rate HAProxy measured for the client: its window count is at least that, up
   * to `max` (so that one message, from whoever reaches the port, cannot claim a ban). Absent: ignored.
   */
  readonly rate?: { readonly argument: string; readonly max: number } | undefined;
  readonly metrics?: VerdictObserver | undefined;
  /** Fingerprints the ClientHello pieces a message carries (`tls_*` arguments), scores and sets them. */
  readonly tls?: TlsScorer | undefined;
  /** Counts the countries and ASNs of the messages (metrics); nothing while no geo database locates them. */
  readonly geoCounts?: GeoCounts | undefined;
  /** Called with each verdict (debug logging). */
  readonly onVerdict?: ((address: string, verdict: Verdict) => void) | undefined;
  /** Milliseconds since the epoch; a CoarseClock's `now` saves a clock read per message. Default Date.now. */
  readonly now?: () => number;
}

/** One message in this many is timed for the latency histogram (a power of two). */
const TIMED_ONE_IN = 16;

/** The message argument holding the client address: `ip` when named so, else the first. */
const ADDRESS_ARGUMENT = 'ip';

export function reputationHandler(options: ReputationHandlerOptions): MessageHandler {
  const { engine, behaviour, statusArgument, rate, metrics, onVerdict, tls } = options;
  const errorWeight = options.errorWeight ?? 1;
  const now = options.now ?? Date.now;
  const answers = new VerdictActions(options.variables);
  const geoAnswers = GeoVariableActions.of(options.variables, engine.geo);
  const { geoCounts } = options;
  const addresses = new AddressReader();
  let calls = 0;
  return (message) => {
    const timed = metrics !== undefined && (++calls & (TIMED_ONE_IN - 1)) === 0;
    const started = timed ? performance.now() : 0;
    // A message of one argument (`args src`, HAProxy's usual) carries the address alone: no status,
    // rate or ClientHello piece to look for by name.
    const alone = message.argCount === 1;
    const address = addresses.read(message, alone);
    if (address === undefined) return undefined;
    const t = now();
    if (behaviour !== undefined) {
      if (alone) behaviour.hit(address, 1, t, 0);
      else behaviour.hit(address, weightOf(message, statusArgument, errorWeight), t, rate === undefined ? 0 : rateOf(message, rate.argument, rate.max));
    }
    const judged = alone ? undefined : tls?.judge(message, t);
    const verdict = engine.score(address, t, judged?.matches);
    if (metrics !== undefined) metrics.observeVerdict(verdict, timed ? (performance.now() - started) / 1000 : undefined);
    if (onVerdict !== undefined) onVerdict(String(message.value(ADDRESS_ARGUMENT) ?? message.value(0)), verdict);
    if (geoCounts !== undefined) geoCounts.count(engine.geo);
    const base = geoAnswers === undefined ? answers.for(verdict) : geoAnswers.with(answers.for(verdict), verdict);
    return judged === undefined ? base : (tls as TlsScorer).answer(judged.fingerprint, base);
  };
}

/**
 * Reads a message's client address into reused arrays: an IPV4/IPV6 argument, or a string one
 * holding exactly an address (taken from a header), is read in place, nothing allocated per
 * message; other strings (spaces around the address) go through parseAddress, as before.
 * The array returned is valid until the next read: the tracker and the engine keep no reference.
 */
class AddressReader {
  readonly #bytes = new Uint8Array(16);
  readonly #v4 = this.#bytes.subarray(0, 4);

  /** `alone`: the message has one argument, the address whatever its name (no name to look for). */
  read(message: Message, alone: boolean): Uint8Array | undefined {
    let index = alone ? 0 : message.argIndex(ADDRESS_ARGUMENT);
    if (index < 0) index = 0;
    const length = message.addressInto(index, this.#bytes);
    if (length === 4) return this.#v4;
    if (length === 16) return this.#bytes;
    const data = message.arg(index);
    return data?.type === 'str' ? parseAddress(data.value) : undefined;
  }
}

function weightOf(message: Message, statusArgument: string | undefined, errorWeight: number): number {
  if (statusArgument === undefined) return 1;
  const status = message.value(statusArgument);
  return typeof status === 'number' && status >= 400 ? errorWeight : 1;
}

function rateOf(message: Message, argument: string, max: number): number {
  const rate = message.value(argument);
  return typeof rate === 'number' && rate > 0 ? Math.min(rate, max) : 0;
}

/** Pre-encoded set-var actions for each score, action, category and source (a small, fixed set). */
export class VerdictActions {
  readonly #scores: readonly Action[];
  readonly #actions = new Map<string, Action>();
  readonly #categories = new Map<string, Action>();
  readonly #sources = new Map<string, Action>();
  readonly #variables: IprepConfig['variables'];

  constructor(variables: IprepConfig['variables']) {
    this.#variables = variables;
    // UINT32, as the reference agent sends it.
    this.#scores = Array.from({ length: 101 }, (_, score) => preEncode(setVar(variables.scope, variables.score, T.uint32(score))));
  }

  /** Answers of verdicts the engine reuses (unknown addresses, single matches): no array per message. */
  readonly #byVerdict = new WeakMap<Verdict, readonly Action[]>();

  /** The last kept verdicts answered, and their answers: most messages repeat one of a few verdicts (a WeakMap read costs more). */
  readonly #recent = new RecentByIdentity<Verdict, readonly Action[]>();

  for(verdict: Verdict): readonly Action[] {
    const recent = this.#recent.get(verdict);
    if (recent !== undefined) return recent;
    const actions = this.#kept(verdict);
    if (Object.isFrozen(verdict)) this.#recent.set(verdict, actions);
    return actions;
  }

  #kept(verdict: Verdict): readonly Action[] {
    let actions = this.#byVerdict.get(verdict);
    if (actions === undefined) {
      actions = this.#build(verdict);
      if (Object.isFrozen(verdict)) {
        // Kept answers are encoded as one list: the ACK copies it once instead of four actions (not worth it for one use).
        actions = preEncode(actions);
        this.#byVerdict.set(verdict, actions);
      }
    }
    return actions;
  }

  #build(verdict: Verdict): readonly Action[] {
    const v = this.#variables;
    return [
      this.#scores[verdict.score] as Action,
      this.#cached(this.#actions, verdict.action, v.action),
      this.#cached(this.#categories, verdict.category, v.category),
      this.#cached(this.#sources, verdict.source, v.source),
    ];
  }

  #cached(cache: Map<string, Action>, value: string, name: string): Action {
    let action = cache.get(value);
    if (action === undefined) {
      action = preEncode(setVar(this.#variables.scope, name, T.str(value)));
      // Categories and sources come from the configuration; the bound only guards against surprises.
      if (cache.size < 4096) cache.set(value, action);
    }
    return action;
  }
}
