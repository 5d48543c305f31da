/**
 * The contract between the pieces of the reputation engine: verdicts, matches,
 * decisions, stores and the configuration. Each folder implements one piece
 * against these types (table/, sources/, behaviour/, store/, config/, admin/,
 * engine/), so they can be read, tested and replaced separately.
 */
import type { IpRange } from './net/address.js';
import type { IntervalTable } from './table/interval-table.js';

// ---------------------------------------------------------------------------
// Verdicts

export const IP_ACTIONS = ['allow', 'log', 'captcha', 'tarpit', 'deny'] as const;
/** What HAProxy is told to do, from mildest to harshest. */
export type IpAction = (typeof IP_ACTIONS)[number];

/** Where a match came from, in the order the engine consults them. */
export type MatchKind = 'allowlist' | 'decision' | 'special' | 'list' | 'geo' | 'behaviour';

/** One reason that applies to an address: every match is listed by `explain`. */
export interface Match {
  readonly kind: MatchKind;
  /** Name of the list, rule or decision: `spamhaus-drop`, `manual:ip:192.0.2.1`, `behaviour:rate`, `rfc6890:private`. */
  readonly source: string;
  readonly category: string;
  /** An absolute score this match sets (allowlists, decisions, hard lists). */
  readonly score?: number;
  /** Points this match takes from 100 (soft lists, behaviour). */
  readonly penalty?: number;
  readonly action?: IpAction;
  /** The matched entry and anything that explains it: `192.0.2.0/24 SBL123`, `expires 2026-12-01T00:00:00Z`. */
  readonly detail?: string;
}

/** The answer for one address: what goes into HAProxy's variables, and why. */
export interface Verdict {
  /** 0 (certainly bad) .. 100 (trusted). */
  readonly score: number;
  readonly action: IpAction;
  /** Category and source of the deciding match; `none`/`default` when nothing matched. */
  readonly category: string;
  readonly source: string;
  /** Every match, deciding one first. Empty on the hot path unless asked for. */
  readonly matches: readonly Match[];
  /** Explain only, with geo databases: the address's country and AS. */
  readonly location?: GeoLocation;
}

/** What the geo databases say of an address. */
export interface GeoLocation {
  readonly country?: string;
  readonly asn?: number;
  readonly organization?: string;
}

// ---------------------------------------------------------------------------
// Lists

/** One entry of a list file or feed. */
export interface ListEntry {
  readonly range: IpRange;
  /** Per-entry score 0..100 (CSV lists); the list's own score or penalty applies otherwise. */
  readonly score?: number;
  /** Per-entry note shown by explain: Spamhaus SBL id, cloud region/service, CSV comment. */
  readonly note?: string;
}

export const LIST_FORMATS = [
  'netset', // one address, CIDR or start-end range per line, # comments (FireHOL, plain lists)
  'csv', // address-or-range,score[,note] with an optional header line
  'spamhaus-json', // Spamhaus DROP JSON lines ({"cidr":...,"sblid":...}, a metadata line last)
  'spamhaus-text', // legacy DROP text: `cidr ; SBLnnn`, `;` comments
  'tor-exits', // Tor bulk exit list (one address per line) or TorDNSEL (`ExitAddress a.b.c.d ...`)
  'aws-json', // AWS ip-ranges.json (prefixes[].ip_prefix, ipv6_prefixes[].ipv6_prefix)
  'gcp-json', // Google cloud.json / goog.json (prefixes[].ipv4Prefix | ipv6Prefix)
  'asn', // AS numbers, one per line (`AS64496` or `64496`), # comments: every network of those ASNs (geo.asn-db)
  'asn-drop', // Spamhaus ASN-DROP JSON lines ({"asn":...,"asname":...}, a metadata line last)
] as const;
export type ListFormat = (typeof LIST_FORMATS)[number];

/** Formats of lists of AS numbers: their entries are ASNs, matched through the ASN database. */
export const ASN_LIST_FORMATS: readonly ListFormat[] = ['asn', 'asn-drop'];

/** A list's entries: packed in typed arrays when loaded (sources/list-entries.ts), built as objects on demand. */
export interface ListEntries extends Iterable<ListEntry> {
  readonly length: number;
  at(index: number): ListEntry | undefined;
  /** The entry's own score (CSV lists), -1 when it has none: what the hot path reads, without building the entry. */
  scoreAt(index: number): number;
}

/** A loaded list: its entries and where they came from. */
export interface LoadedList {
  readonly name: string;
  readonly entries: ListEntries;
  /** Entry indexes by address, compiled with the entries (off the main thread for big lists). */
  readonly table: IntervalTable;
  /** When the content was fetched or read (ms since epoch). */
  readonly loadedAt: number;
  /** Where it came from: a path, a URL, or the last-good cache copy of a URL. */
  readonly origin: string;
  /** Lines skipped as invalid, with `file:line: problem` (the list still loads). */
  readonly warnings: readonly string[];
  /** Entries wholly inside internal ranges (private, loopback...), which `special` decides first when enabled: a few named. */
  readonly insideInternal?: { readonly count: number; readonly examples: readonly string[] };
}

// ---------------------------------------------------------------------------
// Decisions (manual, or written by behaviour bans): shared through a store

export type DecisionScope = 'ip' | 'range';

export interface Decision {
  /** `ip:<address>` or `range:<cidr>`, canonical text: one decision per key. */
  readonly key: string;
  readonly scope: DecisionScope;
  /** Canonical address or CIDR text (RFC 5952 for IPv6). */
  readonly value: string;
  readonly action: IpAction;
  /** Score given to matching addresses (0 for deny by default). */
  readonly score: number;
  readonly category: string;
  readonly reason: string;
  /** Who wrote it: `api`, `behaviour`, `agent:<id>`. */
  readonly origin: string;
  readonly createdAt: number;
  /** ms since epoch; null never expires. Expired decisions are ignored wherever they are. */
  readonly expiresAt: number | null;
}

/** A change to the shared decisions, as the stores deliver it. */
export type DecisionChange = { readonly op: 'put'; readonly decision: Decision } | { readonly op: 'delete'; readonly key: string };

/**
 * Shared decisions. `put`/`delete` write through (memory: at once; Redis: atomically with a change log);
 * every change, ours or another agent's, reaches `onChange` subscribers, and `snapshot()` is the
 * current local view (synchronous: the hot path never awaits a store).
 */
export interface DecisionStore {
  start(): Promise<void>;
  /**
   * Resolves once the write is in force locally and in the shared store; or with `'pending'` when the
   * shared store did not answer in time: in force locally, queued for replay (Redis only).
   */
  put(decision: Decision): Promise<void | 'pending'>;
  delete(key: string): Promise<boolean>;
  snapshot(): readonly Decision[];
  onChange(listener: (change: DecisionChange) => void): () => void;
  close(): Promise<void>;
}

/**
 * Behaviour counters across agents. Agents count locally and call `flush` about once a second with
 * their deltas since the last flush; the result is the cluster-wide count of each key within the
 * window (memory: the local count).
 */
export interface CounterStore {
  start(): Promise<void>;
  flush(deltas: ReadonlyMap<string, number>, windowMs: number, now: number): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/** Health of a store, for /health and metrics. */
export interface StoreHealth {
  readonly kind: 'memory' | 'redis';
  readonly up: boolean;
  readonly detail?: string;
  /** Decision writes waiting for the shared store to answer (Redis: the replay queue). */
  readonly pendingWrites?: number;
  /** Decision writes dropped since start because the replay queue was full. */
  readonly droppedWrites?: number;
  /**
   * Time since this agent last knew its decisions were current (Redis: its last read of the change log
   * that answered, about every second when healthy); it grows while the store is unreachable.
   */
  readonly syncAgeMs?: number;
  /**
   * Redis: how long after its write the last change in the log was applied here (from the log entry's
   * time, on Redis' clock, to this agent's clock: a clock skew between the two hosts adds to it).
   */
  readonly changeLagMs?: number;
}

// ---------------------------------------------------------------------------
// What the admin API and the status page need from the running engine

export interface ListStatus {
  readonly name: string;
  readonly format: ListFormat;
  readonly origin: string;
  readonly entries: number;
  readonly loadedAt: number | null;
  readonly lastError: string | null;
  /** True while a URL list's first fetch runs (the agent already answers without it, or with its cached copy). */
  readonly loading?: boolean;
}

export interface ReloadResult {
  readonly ok: boolean;
  readonly lists: readonly ListStatus[];
  readonly errors: readonly string[];
  readonly durationMs: number;
}

export interface DecisionInput {
  /** Address or CIDR. */
  readonly value: string;
  readonly action?: IpAction;
  readonly score?: number;
  readonly category?: string;
  readonly reason?: string;
  /** Duration in ms; absent: the configured default; null: never expires. */
  readonly durationMs?: number | null;
  /** Accept a prefix shorter than decisions.min-prefix-v4/-v6 (`0.0.0.0/0` denies everyone). */
  readonly force?: boolean;
}

/** A decision just added; `stored: 'pending'` when the shared store did not confirm it in time (in force here, queued for replay). */
export type AddedDecision = Decision & { readonly stored?: 'pending' };

export interface ReputationService {
  /**
   * Every match and the final verdict for one address (text), and for a client with this TLS
   * fingerprint (JA4 or JA3) when given; throws TypeError on a bad address or fingerprint.
   */
  explain(address: string, client?: { fingerprint?: string | undefined }): Verdict;
  /** `origin`: who asks, for the audit trail (default `api`). */
  addDecision(input: DecisionInput, origin?: 'api' | 'cli'): Promise<AddedDecision>;
  listDecisions(): readonly Decision[];
  removeDecision(keyOrValue: string, origin?: 'api' | 'cli'): Promise<boolean>;
  reload(): Promise<ReloadResult>;
  /** The error of the last reload when it failed; null once one succeeds (or before any ran). */
  reloadError(): string | null;
  lists(): readonly ListStatus[];
  store(): StoreHealth;
  /** The country and ASN databases (geo section), when the service has them. */
  geoDatabases?(): readonly GeoDatabaseStatus[];
}

/** A geo database's state: what is in service and the last error (the last good copy stays). */
export interface GeoDatabaseStatus {
  readonly kind: 'country' | 'asn';
  readonly path: string;
  readonly networks: number;
  readonly labels: number;
  readonly databaseType: string | null;
  readonly builtAt: number | null;
  readonly loadedAt: number | null;
  readonly lastError: string | null;
}

// ---------------------------------------------------------------------------
// Configuration (config/ parses and validates the YAML file into this, with defaults applied)

export interface ListConfig {
  readonly name: string;
  readonly format: ListFormat;
  /** Exactly one of path and url. */
  readonly path?: string;
  readonly url?: string;
  /** URL refresh period (ms); files are watched instead. Default 1 h. */
  readonly refreshMs: number;
  /** Absolute score of a match (hard list)... */
  readonly score?: number;
  /** ...or points taken from 100 (soft list). Default: penalty 50 when neither is given. */
  readonly penalty?: number;
  readonly category: string;
  readonly action?: IpAction;
  /** Sanity checks before a new copy replaces the last good one. */
  readonly minEntries: number;
  /** Largest accepted shrink, as a fraction of the last good copy's entries (0..1). Default 0.5. */
  readonly maxShrink: number;
  /** Largest body (download, file or cached copy) read, in bytes. Default `listDefaults.maxBytes`. */
  readonly maxBytes?: number;
  /** Most entries a copy may have. Default `listDefaults.maxEntries`. */
  readonly maxEntries?: number;
}

/** A rule by country or by AS number (exactly one of the two lists is non-empty). */
export interface GeoRuleConfig {
  /** The verdict's source when it decides. Default `country:CN,RU` / `asn:64496`. */
  readonly name: string;
  /** ISO 3166-1 alpha-2 codes, upper case. */
  readonly countries: readonly string[];
  readonly asns: readonly number[];
  /** Absolute score of a match, or points taken from 100 (as lists have them). */
  readonly score?: number;
  readonly penalty?: number;
  readonly category: string;
  readonly action?: IpAction;
}

/** Country and ASN databases (MaxMind DB files) and the rules that use them. */
export interface GeoConfig {
  readonly countryDb?: string | undefined;
  readonly asnDb?: string | undefined;
  /** Largest database file read. */
  readonly maxBytes: number;
  /** Most networks a database may hold. */
  readonly maxEntries: number;
  readonly rules: readonly GeoRuleConfig[];
  /** Countries and ASNs shown by /metrics and the status page (the most seen). */
  readonly top: number;
}

export interface BehaviourConfig {
  readonly enabled: boolean;
  /** IPv6 clients are counted per prefix of this length. Default 64. */
  readonly ipv6PrefixLength: number;
  /** Sliding window of the message rate (fail2ban's findtime). Default 60 s. */
  readonly windowMs: number;
  /** Messages per window above which a client gets `ratePenalty`. Default 120. */
  readonly rateThreshold: number;
  readonly ratePenalty: number;
  /** Messages per window above which a client is banned (fail2ban's maxretry). Default 600. */
  readonly banThreshold: number;
  readonly banMs: number;
  /** Each repeat ban lasts `banGrowth` times the previous one, up to `maxBanMs`. */
  readonly banGrowth: number;
  readonly maxBanMs: number;
  readonly banAction: IpAction;
  /** Penalties decay back: `decayPoints` every `decayIntervalMs`. */
  readonly decayPoints: number;
  readonly decayIntervalMs: number;
  /** Optional message argument carrying an HTTP status: statuses >= 400 count `errorWeight` each. */
  readonly statusArgument?: string;
  readonly errorWeight: number;
  /**
   * Optional message argument carrying a rate HAProxy measured for the client (a stick table's
   * `sc_http_req_rate`, over the same period as `windowMs`): the client's window count is taken
   * to be at least that. Off by default: whoever reaches the SPOP port could claim any rate.
   */
  readonly rateArgument?: string;
  /** The most a rate argument counts for; default `banThreshold`, so that one message cannot ban. */
  readonly maxRate: number;
  /** Most clients tracked; when full, one not seen again since the CLOCK hand last passed it is forgotten (see ClientTable). */
  readonly maxClients: number;
  /** A client enters the table at its second message in a window bucket, the first remembered by a Bloom filter (see Doorkeeper). Default true. */
  readonly doorkeeper: boolean;
}

/** A fingerprint list (`tls.lists`): JA4 or JA3 fingerprints, one a line. */
export interface FingerprintListConfig {
  readonly name: string;
  readonly path: string;
  /** Absolute score of a hit, or points taken from 100 (default 50); an `allow` list takes neither. */
  readonly score?: number;
  readonly penalty?: number;
  readonly category: string;
  /** `allow`: the fingerprint is exempt from the deny lists and the per-fingerprint behaviour (never from address verdicts). */
  readonly action?: IpAction;
  readonly maxBytes: number;
  readonly maxEntries: number;
}

/** TLS fingerprints (JA4, JA3) from the ClientHello pieces HAProxy sends (`tls_*` message arguments). */
export interface TlsConfig {
  /** Variables set with the fingerprints (in `variables.scope`); JA3 only when `ja3` is on. */
  readonly variables: { readonly ja4: string; readonly ja3: string };
  readonly ja3: boolean;
  readonly lists: readonly FingerprintListConfig[];
  /** Messages counted per fingerprint as well as per address (many addresses, one fingerprint). Off by default. */
  readonly behaviour: {
    readonly enabled: boolean;
    readonly windowMs: number;
    readonly rateThreshold: number;
    readonly ratePenalty: number;
    readonly banThreshold: number;
    readonly banMs: number;
    readonly banAction: IpAction;
    readonly maxFingerprints: number;
  };
  /** Distinct ClientHellos whose fingerprints are kept (they are hashed once each). */
  readonly cacheSize: number;
}

/** Who may use the SPOP port and how much of it (`listen.allow-from`, `max-connections`, `idle-timeout`). */
export interface IprepListenBounds {
  /** Addresses, CIDR prefixes or ranges of the peers served; empty: every peer (of a loopback port, by default). */
  readonly allowFrom: readonly string[];
  /** Connections served at once, per process. */
  readonly maxConnections: number;
  /** A connection that sent its HELLO and no NOTIFY is closed after this; 0 never. */
  readonly idleTimeoutMs: number;
}

export interface IprepConfig {
  /** File the configuration came from (for messages), or `<defaults>`. */
  readonly source: string;
  readonly mode: 'random' | 'reputation';
  readonly listen: {
    readonly host?: string;
    readonly port: number;
    readonly socket?: string;
    readonly workers: number;
    /** With one worker too, the primary supervises it in a process of its own: restarts keep the port answering. */
    readonly supervise: boolean;
  } & IprepListenBounds;
  readonly agent: {
    readonly maxFrameSize?: number;
    readonly maxInFlight: number;
    readonly handlerTimeoutMs: number;
    readonly shutdownTimeoutMs: number;
  };
  /** What the agent logs (`debug` .. `error`), and how: logfmt (`text`) or one JSON object per line. */
  readonly log: { readonly level: 'debug' | 'info' | 'warn' | 'error'; readonly format: 'text' | 'json' };
  /** SPOE message names answered. Default [`check-client-ip`]; the address is the first argument or `ip`. */
  readonly messages: readonly string[];
  readonly variables: {
    readonly scope: 'proc' | 'sess' | 'txn' | 'req' | 'res';
    readonly score: string;
    readonly action: string;
    readonly category: string;
    readonly source: string;
    /** The address's country code (str) and AS number (int), from the geo databases; absent: not sent. */
    readonly country?: string | undefined;
    readonly asn?: string | undefined;
  };
  /** Action from score when no match names one: the first threshold the score is below. */
  readonly thresholds: { readonly deny: number; readonly tarpit: number; readonly captcha: number; readonly log: number };
  readonly special: { readonly enabled: boolean; readonly internalAction: IpAction; readonly bogonScore: number };
  /** Addresses or CIDRs that always win (score 100, allow), and list files of them. */
  readonly allowlist: { readonly entries: readonly string[]; readonly files: readonly string[] };
  readonly lists: readonly ListConfig[];
  /** Bounds of every list (and allowlist file) that does not set its own. */
  readonly listDefaults: { readonly maxBytes: number; readonly maxEntries: number };
  readonly geo: GeoConfig;
  /** Start answering only once every list had its first load (else URL lists load in the background). */
  readonly waitForLists: boolean;
  readonly behaviour: BehaviourConfig;
  readonly tls: TlsConfig;
  readonly decisions: {
    readonly defaultDurationMs: number;
    readonly defaultAction: IpAction;
    /**
     * With the memory store, the file decisions are kept in across restarts (null: not kept).
     * Default `decisions.jsonl` in the cache directory. The Redis store keeps them in Redis.
     */
    readonly file: string | null;
    /** Shortest prefixes `POST /decisions` accepts without `force`. Default /8 and /32. */
    readonly minPrefixV4: number;
    readonly minPrefixV6: number;
  };
  /** Where fetched lists keep their last good copy. Default `.cache/iprep` beside the config file. */
  readonly cacheDir: string;
  readonly store:
    | { readonly type: 'memory' }
    | {
        readonly type: 'redis';
        readonly url?: string;
        readonly nodes?: readonly string[];
        readonly prefix: string;
        /** Longest wait for one Redis command; a write not answered in time applies locally and waits for replay. */
        readonly commandTimeoutMs?: number;
        /** Health is degraded when the decisions were last confirmed by Redis longer ago than this. */
        readonly maxSyncAgeMs?: number;
        /** Most decisions an agent holds from Redis (a snapshot loads that many; the log adds none beyond). */
        readonly maxDecisions?: number;
      };
  readonly admin: {
    readonly enabled: boolean;
    readonly host: string;
    readonly port: number;
    readonly token?: string;
    /** Host header names accepted besides the bound address and `localhost` (DNS rebinding). Default none. */
    readonly allowedHosts: readonly string[];
  };
}
