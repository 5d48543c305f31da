/** Every default of the configuration, in one place (docs/configuration.md lists them too). */
import { join, resolve } from 'node:path';
import type { IprepConfig } from '../types.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** Where fetched lists keep their last good copy, relative to the config file's directory. */
export const DEFAULT_CACHE_DIR = '.cache/iprep';

/** Defaults of one entry of `lists`. */
export const LIST_DEFAULTS = {
  format: 'netset',
  refreshMs: HOUR,
  /** A list with neither score nor penalty takes this penalty. */
  penalty: 50,
  /** An empty download is suspicious; an empty local file may be on purpose. */
  minEntriesUrl: 1,
  minEntriesPath: 0,
  maxShrink: 0.5,
  /** A list body (download, file, cached copy) is read up to this size: FireHOL level 4 is a few MB. */
  maxBytes: 64 * 2 ** 20,
  /** Entries of one list: geo and ASN tables are under a million ranges. */
  maxEntries: 2_000_000,
} as const;

/** Defaults of the geo section: a GeoLite2-City file is about 70 MB, a country or ASN one under 15 MB. */
export const GEO_DEFAULTS = {
  maxBytes: 256 * 2 ** 20,
  /** Networks of one database: GeoLite2-City has about 4 million, country and ASN ones under 1.5 million. */
  maxEntries: 8_000_000,
  /** Countries and ASNs shown by /metrics and the status page. */
  top: 20,
  /** A rule with neither score nor penalty takes this penalty (as lists do). */
  penalty: 50,
  category: 'geo',
} as const;

export const REDIS_DEFAULTS = {
  url: 'redis://127.0.0.1:6379',
  prefix: 'iprep',
  commandTimeoutMs: 1 * SECOND,
  maxSyncAgeMs: 5 * SECOND,
  maxDecisions: 200_000,
} as const;

/**
 * The configuration without a file: random mode, as the original agent.
 * With a file, `mode` defaults to reputation instead (a file means the real
 * thing), and the admin API is enabled by default in reputation mode only.
 */
export function defaultConfig(): IprepConfig {
  return {
    source: '<defaults>',
    mode: 'random',
    // Loopback: SPOP has no authentication (listen elsewhere with listen.allow-from).
    listen: {
      host: '127.0.0.1',
      port: 12345,
      socket: undefined,
      workers: 5,
      supervise: false,
      allowFrom: [],
      maxConnections: 1000,
      idleTimeoutMs: 30 * SECOND,
    },
    agent: { maxFrameSize: undefined, maxInFlight: 20, handlerTimeoutMs: 1 * SECOND, shutdownTimeoutMs: 5 * SECOND },
    log: { level: 'info', format: 'text' },
    messages: ['check-client-ip'],
    variables: { scope: 'sess', score: 'ip_score', action: 'ip_action', category: 'ip_category', source: 'ip_source' },
    thresholds: { deny: 20, tarpit: 40, captcha: 60, log: 80 },
    special: { enabled: true, internalAction: 'allow', bogonScore: 10 },
    allowlist: { entries: [], files: [] },
    lists: [],
    listDefaults: { maxBytes: LIST_DEFAULTS.maxBytes, maxEntries: LIST_DEFAULTS.maxEntries },
    geo: { countryDb: undefined, asnDb: undefined, maxBytes: GEO_DEFAULTS.maxBytes, maxEntries: GEO_DEFAULTS.maxEntries, rules: [], top: GEO_DEFAULTS.top },
    waitForLists: false,
    behaviour: {
      enabled: true,
      ipv6PrefixLength: 64,
      windowMs: 60 * SECOND,
      rateThreshold: 120,
      ratePenalty: 30,
      banThreshold: 600,
      banMs: 10 * MINUTE,
      banGrowth: 2,
      maxBanMs: 24 * HOUR,
      banAction: 'deny',
      decayPoints: 10,
      decayIntervalMs: 1 * MINUTE,
      statusArgument: 'status',
      errorWeight: 5,
      // Opt-in: a rate argument is believed, so whoever can send messages could claim any rate.
      rateArgument: undefined,
      maxRate: 600,
      maxClients: 100_000,
      doorkeeper: true,
    },
    tls: {
      variables: { ja4: 'ja4', ja3: 'ja3' },
      ja3: true,
      lists: [],
      // Off: one browser's fingerprint is shared by all its users; set thresholds for your traffic first.
      behaviour: {
        enabled: false,
        windowMs: 60 * SECOND,
        rateThreshold: 6000,
        ratePenalty: 20,
        banThreshold: 0,
        banMs: 10 * MINUTE,
        banAction: 'deny',
        maxFingerprints: 10_000,
      },
      cacheSize: 4096,
    },
    decisions: defaultDecisions(resolve(DEFAULT_CACHE_DIR)),
    cacheDir: resolve(DEFAULT_CACHE_DIR),
    store: { type: 'memory' },
    admin: { enabled: false, host: '127.0.0.1', port: 9090, token: undefined, allowedHosts: [] },
  };
}

/** Shortest prefixes a decision request may name without `force`: a /8 of IPv4, a /32 of IPv6 (an RIR allocation). */
export const DEFAULT_MIN_PREFIX_V4 = 8;
export const DEFAULT_MIN_PREFIX_V6 = 32;

/** Decisions' defaults; their file lives in the cache directory. */
export function defaultDecisions(cacheDir: string): IprepConfig['decisions'] {
  return {
    defaultDurationMs: 4 * HOUR,
    defaultAction: 'deny',
    file: join(cacheDir, 'decisions.jsonl'),
    minPrefixV4: DEFAULT_MIN_PREFIX_V4,
    minPrefixV6: DEFAULT_MIN_PREFIX_V6,
  };
}

/**
 * Workers when none are asked for: the seed's 5 in random mode; one in reputation mode, where each
 * worker holds its own copy of the lists and the admin API (metrics, status page) shows the worker
 * that answered. One process gives 200,000+ verdicts a second (BENCHMARKS.md); ask for more with -n.
 */
export function defaultWorkers(mode: IprepConfig['mode']): number {
  return mode === 'reputation' ? 1 : 5;
}
