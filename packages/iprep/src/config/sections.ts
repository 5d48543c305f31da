/**
 * The sections of the configuration file, read into IprepConfig with defaults
 * applied. YAML keys are kebab-case (`max-frame-size`); relative paths are
 * resolved against the directory of the configuration file.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMap, isScalar, isSeq } from 'yaml';
import { LOG_FORMATS, LOG_LEVELS, MAX_MAX_FRAME_SIZE } from 'spop';
import { parseRange } from '../net/address.js';
import { type GeoRuleConfig, IP_ACTIONS, type IprepConfig, LIST_FORMATS, type ListConfig } from '../types.js';
import { DEFAULT_CACHE_DIR, GEO_DEFAULTS, LIST_DEFAULTS, REDIS_DEFAULTS, defaultConfig, defaultDecisions, defaultWorkers } from './defaults.js';
import { formatDuration } from './duration.js';
import type { MapReader, StringRule } from './reader.js';
import { show } from './reader.js';

const MODES = ['random', 'reputation'] as const;
const VARIABLE_SCOPES = ['proc', 'sess', 'txn', 'req', 'res'] as const;
const STORE_TYPES = ['memory', 'redis'] as const;
const THRESHOLD_ORDER = ['deny', 'tarpit', 'captcha', 'log'] as const;
/** Longest timer period: setTimeout fires at once past 2^31 - 1 ms (24.8 days). */
const MAX_TIMER_MS = 24 * 86_400_000;

const VARIABLE_NAME: StringRule = { pattern: /^[A-Za-z0-9_.]+$/, expected: "a variable name (letters, digits, '_' and '.')" };
const MESSAGE_NAME: StringRule = { pattern: /^\S+$/, expected: 'a message name without spaces' };
const LIST_NAME: StringRule = {
  pattern: /^[A-Za-z0-9][A-Za-z0-9._:-]*$/,
  expected: "a name of letters, digits, '.', '_', ':' and '-'",
};
const CATEGORY: StringRule = { pattern: /^\S+$/, expected: 'a category without spaces' };
const REDIS_PREFIX: StringRule = { pattern: /^[A-Za-z0-9:_.-]+$/, expected: "a key prefix of letters, digits, ':', '_', '.' and '-'" };
const HOST_NAME: StringRule = {
  pattern: /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/,
  expected: "a host name as browsers send it in Host (letters, digits, '-', '_' and dots, no port)",
};
const ALLOWLIST_ENTRY: StringRule = { pattern: /\S/, expected: 'an address, a CIDR prefix or a range, or {file: <path>}' };

/** Reads the whole file; `root` is its top-level map, `file` the path it came from. */
export function readConfig(root: MapReader, file: string): IprepConfig {
  const base = dirname(resolve(file));
  const defaults = defaultConfig();
  const mode = root.oneOf('mode', MODES) ?? 'reputation';
  let listDefaults: IprepConfig['listDefaults'];
  // Sections are read in the order of the documentation (unknown-key messages list them so).
  const read = {
    source: file,
    mode,
    listen: readListen(root.map('listen'), base, { ...defaults.listen, workers: defaultWorkers(mode) }),
    agent: readAgent(root.map('agent'), defaults.agent),
    log: readLog(root.map('log'), defaults.log),
    messages: readMessages(root, defaults.messages),
    variables: readVariables(root.map('variables'), defaults.variables),
    thresholds: readThresholds(root.map('thresholds'), defaults.thresholds),
    special: readSpecial(root.map('special'), defaults.special),
    allowlist: readAllowlist(root, base),
    listDefaults: (listDefaults = readListDefaults(root.map('list-defaults'), defaults.listDefaults)),
    lists: readLists(root, base, listDefaults),
    geo: readGeo(root.map('geo'), base, defaults.geo),
    waitForLists: root.boolean('wait-for-lists') ?? defaults.waitForLists,
    behaviour: readBehaviour(root.map('behaviour'), defaults.behaviour),
    tls: readTls(root.map('tls'), base, defaults.tls),
    decisions: readDecisions(root.map('decisions'), base),
    cacheDir: resolve(base, root.string('cache-dir') ?? DEFAULT_CACHE_DIR),
    store: readStore(root.map('store')),
    admin: readAdmin(root.map('admin'), base, { ...defaults.admin, enabled: mode === 'reputation' }),
  };
  root.finish();
  const decisionsFile = read.decisions.file === undefined ? defaultDecisions(read.cacheDir).file : read.decisions.file;
  return { ...read, mode, decisions: { ...read.decisions, file: decisionsFile } };
}

function readListen(s: MapReader, base: string, d: IprepConfig['listen']): IprepConfig['listen'] {
  const host = s.string('host');
  const port = s.integer('port', 0, 65535);
  const socket = s.string('socket');
  if (socket !== undefined) {
    if (s.has('host')) s.reportAt('socket', 'listen.socket and listen.host exclude each other: give one');
    if (s.has('port')) s.reportAt('socket', 'listen.socket and listen.port exclude each other: give one');
  }
  const workers = s.integer('workers', 1, 256) ?? d.workers;
  const supervise = s.boolean('supervise') ?? d.supervise;
  const allowFrom = readAllowFrom(s);
  if (socket !== undefined && s.has('allow-from')) {
    s.reportAt('allow-from', 'listen.allow-from applies to TCP only: a Unix socket is guarded by its file permissions');
  }
  const maxConnections = s.integer('max-connections', 1, MAX_CONNECTIONS) ?? d.maxConnections;
  const idleTimeoutMs = s.duration('idle-timeout', 0, MAX_TIMER_MS) ?? d.idleTimeoutMs;
  s.finish();
  return {
    host: host ?? d.host,
    port: port ?? d.port,
    socket: socket === undefined ? undefined : resolve(base, socket),
    workers,
    supervise,
    allowFrom,
    maxConnections,
    idleTimeoutMs,
  };
}

/** Most SPOP connections a process may be told to serve (file descriptors run out long before). */
export const MAX_CONNECTIONS = 1_000_000;

/** `listen.allow-from`: addresses, CIDR prefixes or ranges, checked as the allowlist's are. */
function readAllowFrom(s: MapReader): string[] {
  const entries: string[] = [];
  s.seq('allow-from').forEach((node, i) => {
    const what = `listen.allow-from[${i}]`;
    const entry = s.reader.string(node, what, ALLOWLIST_ENTRY);
    if (entry === undefined) return;
    try {
      parseRange(entry);
      entries.push(entry.trim());
    } catch (e) {
      s.reader.report(node, `${what}: ${(e as Error).message}`);
    }
  });
  return entries;
}

function readAgent(s: MapReader, d: IprepConfig['agent']): IprepConfig['agent'] {
  const agent = {
    maxFrameSize: s.integer('max-frame-size', 256, MAX_MAX_FRAME_SIZE) ?? d.maxFrameSize,
    maxInFlight: s.integer('max-in-flight', 1) ?? d.maxInFlight,
    handlerTimeoutMs: s.duration('handler-timeout', 1, MAX_TIMER_MS) ?? d.handlerTimeoutMs,
    shutdownTimeoutMs: s.duration('shutdown-timeout', 0, MAX_TIMER_MS) ?? d.shutdownTimeoutMs,
  };
  s.finish();
  return agent;
}

function readLog(s: MapReader, d: IprepConfig['log']): IprepConfig['log'] {
  const log = { level: s.oneOf('level', LOG_LEVELS) ?? d.level, format: s.oneOf('format', LOG_FORMATS) ?? d.format };
  s.finish();
  return log;
}

function readMessages(root: MapReader, d: readonly string[]): readonly string[] {
  const listed = root.get('messages');
  if (listed === undefined) return d;
  const names: string[] = [];
  const items = root.seq('messages');
  items.forEach((node, i) => {
    const name = root.reader.string(node, `messages[${i}]`, MESSAGE_NAME);
    if (name === undefined) return;
    if (names.includes(name)) root.reader.report(node, `messages[${i}] repeats ${show(name)}`);
    else names.push(name);
  });
  // An empty list would answer nothing (a list of the wrong type is already reported).
  const empty = isSeq(listed) || (isScalar(listed) && listed.value === null);
  if (empty && items.length === 0) root.reportAt('messages', 'messages must name at least one SPOE message');
  return names;
}

function readVariables(s: MapReader, d: IprepConfig['variables']): IprepConfig['variables'] {
  const variables: { -readonly [K in keyof IprepConfig['variables']]: IprepConfig['variables'][K] } = {
    scope: s.oneOf('scope', VARIABLE_SCOPES) ?? d.scope,
    score: s.string('score', VARIABLE_NAME) ?? d.score,
    action: s.string('action', VARIABLE_NAME) ?? d.action,
    category: s.string('category', VARIABLE_NAME) ?? d.category,
    source: s.string('source', VARIABLE_NAME) ?? d.source,
  };
  // Off unless named: they cost an answer per location.
  const country = s.isNull('country') ? undefined : (s.string('country', VARIABLE_NAME) ?? d.country);
  const asn = s.isNull('asn') ? undefined : (s.string('asn', VARIABLE_NAME) ?? d.asn);
  Object.assign(variables, country === undefined ? {} : { country }, asn === undefined ? {} : { asn });
  const seen = new Map<string, string>();
  for (const key of ['score', 'action', 'category', 'source', 'country', 'asn'] as const) {
    const name = variables[key];
    if (name === undefined) continue;
    const other = seen.get(name);
    if (other !== undefined) s.reportAt(key, `variables.${key} and variables.${other} name the same variable ${show(name)}`);
    seen.set(name, key);
  }
  s.finish();
  return variables;
}

function readThresholds(s: MapReader, d: IprepConfig['thresholds']): IprepConfig['thresholds'] {
  const thresholds = {
    deny: s.integer('deny', 0, 100) ?? d.deny,
    tarpit: s.integer('tarpit', 0, 100) ?? d.tarpit,
    captcha: s.integer('captcha', 0, 100) ?? d.captcha,
    log: s.integer('log', 0, 100) ?? d.log,
  };
  for (let i = 1; i < THRESHOLD_ORDER.length; i++) {
    const lower = THRESHOLD_ORDER[i - 1] as (typeof THRESHOLD_ORDER)[number];
    const higher = THRESHOLD_ORDER[i] as (typeof THRESHOLD_ORDER)[number];
    if (thresholds[lower] <= thresholds[higher]) continue;
    // Point at whichever of the two the file sets (the later one when both are set).
    s.reportAt(
      s.has(higher) ? higher : lower,
      `thresholds must not decrease from deny to log: ${higher} (${thresholds[higher]}) is below ${lower} (${thresholds[lower]})`,
    );
  }
  s.finish();
  return thresholds;
}

function readSpecial(s: MapReader, d: IprepConfig['special']): IprepConfig['special'] {
  const special = {
    enabled: s.boolean('enabled') ?? d.enabled,
    internalAction: s.oneOf('internal-action', IP_ACTIONS) ?? d.internalAction,
    bogonScore: s.integer('bogon-score', 0, 100) ?? d.bogonScore,
  };
  s.finish();
  return special;
}

function readAllowlist(root: MapReader, base: string): IprepConfig['allowlist'] {
  const entries: string[] = [];
  const files: string[] = [];
  root.seq('allowlist').forEach((node, i) => {
    const what = `allowlist[${i}]`;
    if (isMap(node)) {
      const item = root.reader.map(node, what);
      const file = item.string('file');
      if (file !== undefined) files.push(resolve(base, file));
      else if (!item.has('file')) item.report(`${what} needs file: <path> (or is an address, a CIDR prefix or a range)`);
      item.finish();
      return;
    }
    const entry = root.reader.string(node, what, ALLOWLIST_ENTRY);
    if (entry === undefined) return;
    try {
      parseRange(entry);
      entries.push(entry.trim());
    } catch (e) {
      root.reader.report(node, `${what}: ${(e as Error).message}`);
    }
  });
  return { entries, files };
}

/** Largest `max-bytes`: V8 cannot make a string of more than 512 MiB from a body. */
const MAX_LIST_BYTES = 512 * 2 ** 20;

function readListDefaults(s: MapReader, d: IprepConfig['listDefaults']): IprepConfig['listDefaults'] {
  const limits = {
    maxBytes: s.bytes('max-bytes', 1, MAX_LIST_BYTES) ?? d.maxBytes,
    maxEntries: s.integer('max-entries', 1) ?? d.maxEntries,
  };
  s.finish();
  return limits;
}

function readLists(root: MapReader, base: string, limits: IprepConfig['listDefaults']): readonly ListConfig[] {
  const firstIndexOfName = new Map<string, number>();
  return root.seq('lists').flatMap((node, i) => {
    const item = root.reader.requiredMap(node, `lists[${i}]`);
    if (item === undefined) return [];
    const list = readList(item, base, limits);
    const first = firstIndexOfName.get(list.name);
    if (first !== undefined) item.reportAt('name', `lists[${i}].name ${show(list.name)} is already the name of lists[${first}]`);
    else if (list.name !== '') firstIndexOfName.set(list.name, i);
    return [list];
  });
}

function readList(s: MapReader, base: string, limits: IprepConfig['listDefaults']): ListConfig {
  const name = s.string('name', LIST_NAME);
  if (!s.has('name')) s.report(`${s.path} needs a name`);
  const format = s.oneOf('format', LIST_FORMATS) ?? LIST_DEFAULTS.format;
  const path = s.string('path');
  const url = s.string('url');
  if (url !== undefined && !isHttpUrl(url)) s.reportAt('url', `${s.what('url')} must be an http or https URL, got ${show(url)}`);
  if (s.has('path') && s.has('url')) s.report(`${s.path} has both path and url: give one`);
  if (!s.has('path') && !s.has('url')) s.report(`${s.path} needs a path or a url`);
  const refreshMs = s.duration('refresh', 1000, MAX_TIMER_MS);
  if (s.has('refresh') && s.has('path')) {
    s.reportAt('refresh', `${s.what('refresh')} applies to url lists only: files are reloaded when they change`);
  }
  const score = s.integer('score', 0, 100);
  const penalty = s.integer('penalty', 0, 100);
  if (s.has('score') && s.has('penalty')) s.report(`${s.path} has both score and penalty: give one`);
  const category = s.string('category', CATEGORY);
  const action = s.oneOf('action', IP_ACTIONS);
  const minEntries = s.integer('min-entries', 0);
  const maxShrink = s.number('max-shrink', 0, 1);
  const maxBytes = s.bytes('max-bytes', 1, MAX_LIST_BYTES);
  const maxEntries = s.integer('max-entries', 1);
  s.finish();
  return {
    name: name ?? '',
    format,
    path: path === undefined ? undefined : resolve(base, path),
    url,
    refreshMs: refreshMs ?? LIST_DEFAULTS.refreshMs,
    score,
    penalty: score === undefined ? (penalty ?? LIST_DEFAULTS.penalty) : undefined,
    category: category ?? name ?? '',
    action,
    minEntries: minEntries ?? (s.has('url') ? LIST_DEFAULTS.minEntriesUrl : LIST_DEFAULTS.minEntriesPath),
    maxShrink: maxShrink ?? LIST_DEFAULTS.maxShrink,
    maxBytes: maxBytes ?? limits.maxBytes,
    maxEntries: maxEntries ?? limits.maxEntries,
  };
}

/** Largest `geo.max-bytes`: a database is read whole into one buffer. */
const MAX_GEO_BYTES = 2 ** 30;
const COUNTRY_CODE: StringRule = { pattern: /^[A-Za-z]{2}$/, expected: 'a two-letter country code (ISO 3166-1 alpha-2)' };
const ASN_TEXT = /^(?:AS)?(\d{1,10})$/i;

function readGeo(s: MapReader, base: string, d: IprepConfig['geo']): IprepConfig['geo'] {
  const countryDb = s.string('country-db');
  const asnDb = s.string('asn-db');
  const maxBytes = s.bytes('max-bytes', 1, MAX_GEO_BYTES) ?? d.maxBytes;
  const maxEntries = s.integer('max-entries', 1, 100_000_000) ?? d.maxEntries;
  const top = s.integer('top', 0, 1000) ?? d.top;
  const firstRuleOf = new Map<string, number>();
  const rules = s.seq('rules').flatMap((node, i) => {
    const item = s.reader.requiredMap(node, `geo.rules[${i}]`);
    if (item === undefined) return [];
    const rule = readGeoRule(item, i);
    if (rule.countries.length > 0 && !s.has('country-db')) item.reportAt('country', `geo.rules[${i}] is by country: geo.country-db is needed`);
    if (rule.asns.length > 0 && !s.has('asn-db')) item.reportAt('asn', `geo.rules[${i}] is by ASN: geo.asn-db is needed`);
    for (const key of [...rule.countries, ...rule.asns.map((asn) => `AS${asn}`)]) {
      const first = firstRuleOf.get(key);
      if (first !== undefined && first !== i) item.report(`geo.rules[${i}] names ${key}, already in geo.rules[${first}]: one rule per country or ASN`);
      else firstRuleOf.set(key, i);
    }
    return [rule];
  });
  s.finish();
  return {
    countryDb: countryDb === undefined ? undefined : resolve(base, countryDb),
    asnDb: asnDb === undefined ? undefined : resolve(base, asnDb),
    maxBytes,
    maxEntries,
    rules,
    top,
  };
}

function readGeoRule(s: MapReader, index: number): GeoRuleConfig {
  const what = `geo.rules[${index}]`;
  const name = s.string('name', LIST_NAME);
  const countries = s.seq('country').flatMap((node, i) => {
    const code = s.reader.string(node, `${what}.country[${i}]`, COUNTRY_CODE);
    return code === undefined ? [] : [code.toUpperCase()];
  });
  const asns = s.seq('asn').flatMap((node, i) => {
    const value = s.reader.resolve(node);
    const text = isScalar(value) ? String(value.value) : '';
    const asn = Number(ASN_TEXT.exec(text)?.[1]);
    if (Number.isInteger(asn) && asn > 0 && asn <= 0xffffffff) return [asn];
    s.reader.report(node, `${what}.asn[${i}] must be an AS number (64496 or AS64496), got ${show(text)}`);
    return [];
  });
  if (s.has('country') === s.has('asn')) s.report(`${what} needs either country: [..] or asn: [..] (one of the two)`);
  else if (countries.length === 0 && asns.length === 0) s.report(`${what} names no country or ASN`);
  const score = s.integer('score', 0, 100);
  const penalty = s.integer('penalty', 0, 100);
  if (s.has('score') && s.has('penalty')) s.report(`${what} has both score and penalty: give one`);
  const category = s.string('category', CATEGORY) ?? GEO_DEFAULTS.category;
  const action = s.oneOf('action', IP_ACTIONS);
  s.finish();
  return {
    name: name ?? (countries.length > 0 ? `country:${countries.join(',')}` : `asn:${asns.join(',')}`),
    countries,
    asns,
    ...(score === undefined ? { penalty: penalty ?? GEO_DEFAULTS.penalty } : { score }),
    category,
    ...(action === undefined ? {} : { action }),
  };
}

function readBehaviour(s: MapReader, d: IprepConfig['behaviour']): IprepConfig['behaviour'] {
  const behaviour = {
    enabled: s.boolean('enabled') ?? d.enabled,
    ipv6PrefixLength: s.integer('ipv6-prefix-length', 1, 64) ?? d.ipv6PrefixLength,
    windowMs: s.duration('window', 1000) ?? d.windowMs,
    rateThreshold: s.integer('rate-threshold', 1) ?? d.rateThreshold,
    ratePenalty: s.integer('rate-penalty', 0, 100) ?? d.ratePenalty,
    banThreshold: s.integer('ban-threshold', 1) ?? d.banThreshold,
    banMs: s.duration('ban-time', 1000) ?? d.banMs,
    banGrowth: s.number('ban-growth', 1) ?? d.banGrowth,
    maxBanMs: s.duration('max-ban-time', 1000) ?? d.maxBanMs,
    banAction: s.oneOf('ban-action', IP_ACTIONS) ?? d.banAction,
    decayPoints: s.integer('decay-points', 0, 100) ?? d.decayPoints,
    decayIntervalMs: s.duration('decay-interval', 1000, MAX_TIMER_MS) ?? d.decayIntervalMs,
    // An explicit null turns the status argument off.
    statusArgument: s.isNull('status-argument') ? undefined : (s.string('status-argument', MESSAGE_NAME) ?? d.statusArgument),
    errorWeight: s.integer('error-weight', 0) ?? d.errorWeight,
    rateArgument: s.isNull('rate-argument') ? undefined : (s.string('rate-argument', MESSAGE_NAME) ?? d.rateArgument),
    maxRate: s.integer('max-rate', 1), // default: the ban threshold, below
    maxClients: s.integer('max-clients', 1) ?? d.maxClients,
    doorkeeper: s.boolean('doorkeeper') ?? d.doorkeeper,
  };
  if (behaviour.maxBanMs < behaviour.banMs) {
    s.reportAt(
      s.has('max-ban-time') ? 'max-ban-time' : 'ban-time',
      `behaviour.max-ban-time (${formatDuration(behaviour.maxBanMs)}) is shorter than behaviour.ban-time (${formatDuration(behaviour.banMs)})`,
    );
  }
  s.finish();
  return { ...behaviour, maxRate: behaviour.maxRate ?? behaviour.banThreshold };
}

/** Fingerprint lists are small: read and parsed on the main thread, so bounded well below address lists. */
const MAX_FINGERPRINT_LIST_BYTES = 16 * 2 ** 20;

function readTls(s: MapReader, base: string, d: IprepConfig['tls']): IprepConfig['tls'] {
  const v = s.map('variables');
  const variables = { ja4: v.string('ja4', VARIABLE_NAME) ?? d.variables.ja4, ja3: v.string('ja3', VARIABLE_NAME) ?? d.variables.ja3 };
  v.finish();
  const firstIndexOfName = new Map<string, number>();
  const lists = s.seq('lists').flatMap((node, i) => {
    const item = s.reader.requiredMap(node, `tls.lists[${i}]`);
    if (item === undefined) return [];
    const name = item.string('name', LIST_NAME);
    if (!item.has('name')) item.report(`${item.path} needs a name`);
    const path = item.string('path');
    if (!item.has('path')) item.report(`${item.path} needs a path (a file of JA4 or JA3 fingerprints, one a line)`);
    const score = item.integer('score', 0, 100);
    const penalty = item.integer('penalty', 0, 100);
    if (item.has('score') && item.has('penalty')) item.report(`${item.path} has both score and penalty: give one`);
    const action = item.oneOf('action', IP_ACTIONS);
    const list = {
      name: name ?? '',
      path: resolve(base, path ?? ''),
      score,
      penalty: score === undefined && action !== 'allow' ? (penalty ?? LIST_DEFAULTS.penalty) : penalty,
      category: item.string('category', CATEGORY) ?? name ?? '',
      action,
      maxBytes: item.bytes('max-bytes', 1, MAX_FINGERPRINT_LIST_BYTES) ?? 2 ** 20,
      maxEntries: item.integer('max-entries', 1, 1_000_000) ?? 100_000,
    };
    item.finish();
    const first = firstIndexOfName.get(list.name);
    if (first !== undefined) item.reportAt('name', `tls.lists[${i}].name ${show(list.name)} is already the name of tls.lists[${first}]`);
    else if (list.name !== '') firstIndexOfName.set(list.name, i);
    return [list];
  });
  const b = s.map('behaviour');
  const behaviour = {
    enabled: b.boolean('enabled') ?? d.behaviour.enabled,
    windowMs: b.duration('window', 1000) ?? d.behaviour.windowMs,
    rateThreshold: b.integer('rate-threshold', 1) ?? d.behaviour.rateThreshold,
    ratePenalty: b.integer('rate-penalty', 0, 100) ?? d.behaviour.ratePenalty,
    banThreshold: b.integer('ban-threshold', 0) ?? d.behaviour.banThreshold,
    banMs: b.duration('ban-time', 1000, MAX_TIMER_MS) ?? d.behaviour.banMs,
    banAction: b.oneOf('ban-action', IP_ACTIONS) ?? d.behaviour.banAction,
    maxFingerprints: b.integer('max-fingerprints', 1, 1_000_000) ?? d.behaviour.maxFingerprints,
  };
  b.finish();
  const tls = { variables, ja3: s.boolean('ja3') ?? d.ja3, lists, behaviour, cacheSize: s.integer('cache-size', 1, 1_000_000) ?? d.cacheSize };
  s.finish();
  return tls;
}

/** The decisions section; `file` is undefined when not given (its default depends on cache-dir). */
function readDecisions(s: MapReader, base: string): Omit<IprepConfig['decisions'], 'file'> & { file: string | null | undefined } {
  const d = defaultDecisions(DEFAULT_CACHE_DIR);
  const defaultDurationMs = s.duration('default-duration', 1000) ?? d.defaultDurationMs;
  const defaultAction = s.oneOf('default-action', IP_ACTIONS) ?? d.defaultAction;
  const file = s.isNull('file') ? null : s.string('file');
  const minPrefixV4 = s.integer('min-prefix-v4', 0, 32) ?? d.minPrefixV4;
  const minPrefixV6 = s.integer('min-prefix-v6', 0, 128) ?? d.minPrefixV6;
  const decisions = { defaultDurationMs, defaultAction, file: file === undefined || file === null ? file : resolve(base, file), minPrefixV4, minPrefixV6 };
  s.finish();
  return decisions;
}

function readStore(s: MapReader): IprepConfig['store'] {
  const type = s.oneOf('type', STORE_TYPES) ?? 'memory';
  if (type === 'memory') {
    for (const key of ['url', 'nodes', 'prefix', 'command-timeout', 'max-sync-age', 'max-decisions']) {
      if (s.has(key)) s.reportAt(key, `${s.what(key)} applies to store type redis only`);
    }
    s.finish();
    return { type };
  }
  const url = s.string('url');
  if (url !== undefined && !isRedisUrl(url)) s.reportAt('url', `store.url must be a redis:// or rediss:// URL, got ${show(url)}`);
  const nodes = s.seq('nodes').flatMap((node, i) => {
    const nodeUrl = s.reader.string(node, `store.nodes[${i}]`);
    if (nodeUrl === undefined) return [];
    if (!isRedisUrl(nodeUrl)) s.reader.report(node, `store.nodes[${i}] must be a redis:// or rediss:// URL, got ${show(nodeUrl)}`);
    return [nodeUrl];
  });
  if (s.has('url') && s.has('nodes')) s.report('store has both url (one server) and nodes (a cluster): give one');
  if (s.has('nodes') && nodes.length === 0) s.reportAt('nodes', 'store.nodes must list at least one cluster node');
  const prefix = s.string('prefix', REDIS_PREFIX) ?? REDIS_DEFAULTS.prefix;
  // The change log is read in 1 s blocks: a smaller max-sync-age would call a healthy agent stale.
  const timing = {
    commandTimeoutMs: s.duration('command-timeout', 10, 60_000) ?? REDIS_DEFAULTS.commandTimeoutMs,
    maxSyncAgeMs: s.duration('max-sync-age', 2000, MAX_TIMER_MS) ?? REDIS_DEFAULTS.maxSyncAgeMs,
    maxDecisions: s.integer('max-decisions', 1, 10_000_000) ?? REDIS_DEFAULTS.maxDecisions,
  };
  s.finish();
  if (s.has('nodes')) return { type, nodes, prefix, ...timing };
  return { type, url: url ?? REDIS_DEFAULTS.url, prefix, ...timing };
}

function readAdmin(s: MapReader, base: string, d: IprepConfig['admin']): IprepConfig['admin'] {
  const enabled = s.boolean('enabled') ?? d.enabled;
  const host = s.string('host') ?? d.host;
  const port = s.integer('port', 0, 65535) ?? d.port;
  let token = s.string('token');
  const tokenFile = s.string('token-file');
  if (s.has('token') && s.has('token-file')) s.report('admin has both token and token-file: give one');
  if (tokenFile !== undefined && token === undefined) {
    const path = resolve(base, tokenFile);
    try {
      token = readFileSync(path, 'utf8').trim();
      if (token === '') s.reportAt('token-file', `admin.token-file ${path} is empty`);
    } catch (e) {
      s.reportAt('token-file', `admin.token-file cannot be read: ${(e as Error).message}`);
    }
  }
  // Whether the host needs a token is checked on the merged configuration (validate.ts).
  const allowedHosts = s.seq('allowed-hosts').flatMap((node, i) => {
    const name = s.reader.string(node, `admin.allowed-hosts[${i}]`, HOST_NAME);
    return name === undefined ? [] : [name.toLowerCase().replace(/\.$/, '')];
  });
  s.finish();
  return { enabled, host, port, token, allowedHosts };
}

function isHttpUrl(text: string): boolean {
  return URL.canParse(text) && ['http:', 'https:'].includes(new URL(text).protocol);
}

function isRedisUrl(text: string): boolean {
  return URL.canParse(text) && ['redis:', 'rediss:'].includes(new URL(text).protocol);
}
