/**
 * Does HAProxy's configuration fit the agent? Checks haproxy.cfg and the SPOE files its `filter spoe`
 * lines name against the agent's configuration: the messages HAProxy sends and their arguments, the
 * variables its rules read, the groups it sends, the agent's backend and the SPOE timeouts. Each
 * problem is a Finding at the file and line to change.
 */
import type { RoundTrip } from './machine.js';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isLoopbackHost } from '../net/address.js';
import type { IprepConfig } from '../types.js';
import {
  type ConfigLine,
  MAX_CONFIG_BYTES,
  type Section,
  linesStarting,
  parseHaproxyConfig,
  parseHaproxyTime,
  parseSpoeConfig,
  spoeScopes,
} from './haproxy-config.js';

/** error: HAProxy and the agent do not work together (exit 1); warning: likely wrong; note: worth knowing. */
export type Severity = 'error' | 'warning' | 'note';

export interface Finding {
  readonly severity: Severity;
  /** `file:line`, or the file alone. */
  readonly where: string;
  readonly message: string;
}

/** HAProxy's version, when a binary was given: it decides whether `mode spop` exists (3.1+). */
export interface HaproxyVersion {
  readonly major: number;
  readonly minor: number;
}

export interface HaproxyCheckInput {
  readonly config: IprepConfig;
  /** haproxy.cfg, as given on the command line. */
  readonly haproxyFile: string;
  /** HAProxy's working directory: it resolves relative SPOE file names against it. */
  readonly cwd: string;
  readonly version?: HaproxyVersion | undefined;
  /** A file's text, or undefined when it cannot be read. */
  readonly readText: (path: string) => string | undefined;
  /** NOTIFY round trips timed on this machine (machine.ts): `timeout processing` is checked against them. */
  readonly roundTrip?: RoundTrip | undefined;
}

/** Shortest SPOE timeout that leaves room for a round trip and an agent under load. */
export const MIN_SPOE_TIMEOUT_MS = 5;

/**
 * `timeout processing` under this many times the machine's p99 round trip is tight: the measure is
 * an idle agent's own loop, and HAProxy's queueing, the real handler and load come on top of it.
 */
export const TIGHT_ROUND_TRIP_FACTOR = 3;

/** Sample fetches that give the client's address (before any converter). */
const ADDRESS_FETCHES = new Set(['src', 'fc_src', 'hdr_ip', 'req.hdr_ip', 'req.fhdr_ip']);

const PROXY_SECTIONS = new Set(['frontend', 'listen', 'backend']);

export function checkHaproxySetup(input: HaproxyCheckInput): Finding[] {
  const { config, haproxyFile } = input;
  const findings: Finding[] = [];
  const add = (severity: Severity, where: string, message: string): void => void findings.push({ severity, where, message });
  const text = input.readText(haproxyFile);
  if (text === undefined) {
    add('error', haproxyFile, `cannot read the HAProxy configuration (missing, unreadable, or over ${MAX_CONFIG_BYTES / 1024 / 1024} MiB)`);
    return findings;
  }
  const sections = parseHaproxyConfig(text, haproxyFile);
  const at = (section: Section, line?: ConfigLine): string => `${section.file}:${line?.line ?? section.line}`;

  const filters = sections.flatMap((section) =>
    PROXY_SECTIONS.has(section.kind) ? linesStarting(section, 'filter', 'spoe').map((line) => ({ section, line })) : [],
  );
  if (filters.length === 0) add('error', haproxyFile, 'no `filter spoe` line: HAProxy never asks the agent anything');

  /** Each agent's variable prefix, with the names HAProxy itself sets there (`option set-on-error err`: txn.<prefix>.err). */
  const prefixes = new Map<string, Set<string>>();
  for (const { section, line } of filters) {
    const engine = optionValue(line.words, 'engine');
    const spoeName = optionValue(line.words, 'config');
    if (spoeName === undefined) {
      add('error', at(section, line), '`filter spoe` without `config <file>`');
      continue;
    }
    if (spoeName.includes('$')) {
      add('note', at(section, line), `SPOE file ${spoeName} uses an environment variable: not checked`);
      continue;
    }
    const spoe = readSpoeFile(input, spoeName, at(section, line), add);
    if (spoe === undefined) continue;
    const scopes = spoeScopes(spoe.text);
    if (engine !== undefined && !scopes.includes(engine)) {
      add('error', spoe.path, `no [${engine}] scope, which \`filter spoe engine ${engine}\` (${at(section, line)}) names`);
      continue;
    }
    const spoeSections = parseSpoeConfig(spoe.text, spoe.path, engine);
    const agents = spoeSections.filter((s) => s.kind === 'spoe-agent');
    if (agents.length === 0) add('error', spoe.path, `no spoe-agent${engine === undefined ? '' : ` in [${engine}]`}`);
    for (const agent of agents) {
      const prefix = linesStarting(agent, 'option', 'var-prefix')[0]?.words[2] ?? agent.name;
      const own = prefixes.get(prefix) ?? new Set<string>();
      for (const option of ['set-on-error', 'set-process-time', 'set-total-time']) {
        const name = linesStarting(agent, 'option', option)[0]?.words[2];
        if (name !== undefined) own.add(name);
      }
      prefixes.set(prefix, own);
      checkAgent({ input, sections, spoeSections, agent, engine, add, at });
    }
  }
  checkVariables(config, sections, prefixes, add);
  return findings;
}

type Add = (severity: Severity, where: string, message: string) => void;

/** `engine x config y`: the word after `key`. */
function optionValue(words: readonly string[], key: string): string | undefined {
  const index = words.indexOf(key, 2);
  return index < 0 ? undefined : words[index + 1];
}

/** The SPOE file as HAProxy finds it (relative to its working directory), saying so when only the haproxy.cfg directory has it. */
function readSpoeFile(input: HaproxyCheckInput, name: string, where: string, add: Add): { path: string; text: string } | undefined {
  const fromCwd = isAbsolute(name) ? name : resolve(input.cwd, name);
  const text = input.readText(fromCwd);
  if (text !== undefined) return { path: fromCwd, text };
  const besideConfig = resolve(dirname(resolve(input.cwd, input.haproxyFile)), name);
  const other = besideConfig === fromCwd ? undefined : input.readText(besideConfig);
  if (other !== undefined) {
    add(
      'error',
      where,
      `SPOE file ${name} is not in the working directory (${input.cwd}): HAProxy resolves it there, not beside haproxy.cfg, ` +
        `where it is (${besideConfig}); run haproxy from ${dirname(besideConfig)} or write an absolute path`,
    );
    return { path: besideConfig, text: other };
  }
  add('error', where, `cannot read the SPOE file ${name} (${fromCwd})`);
  return undefined;
}

interface AgentContext {
  readonly input: HaproxyCheckInput;
  readonly sections: readonly Section[];
  readonly spoeSections: readonly Section[];
  readonly agent: Section;
  readonly engine: string | undefined;
  readonly add: Add;
  readonly at: (section: Section, line?: ConfigLine) => string;
}

function wordsAfter(section: Section, keyword: string): { name: string; line: ConfigLine }[] {
  return linesStarting(section, keyword).flatMap((line) => line.words.slice(1).map((name) => ({ name, line })));
}

function checkAgent(context: AgentContext): void {
  const { input, sections, spoeSections, agent, engine, add, at } = context;
  const { config } = input;
  const messageSections = new Map(spoeSections.filter((s) => s.kind === 'spoe-message').map((s) => [s.name, s]));
  const groupSections = new Map(spoeSections.filter((s) => s.kind === 'spoe-group').map((s) => [s.name, s]));

  // Messages HAProxy sends: those of `messages` with an event, and those of the groups a rule sends.
  const sent = new Map<string, Section>();
  for (const { name, line } of wordsAfter(agent, 'messages')) {
    const message = messageSections.get(name);
    if (message === undefined) {
      add('error', at(agent, line), `message ${name} has no spoe-message section`);
    } else if (linesStarting(message, 'event').length === 0) {
      add(
        'warning',
        at(message),
        `message ${name} has no \`event\`: listed in the agent's \`messages\`, it is never sent (put it in a spoe-group sent by a rule, or give it an event)`,
      );
    } else {
      sent.set(name, message);
    }
  }
  const sendRules = sections.flatMap((section) =>
    section.lines.flatMap((line) => {
      const index = line.words.indexOf('send-spoe-group');
      return index < 0 ? [] : [{ section, line, engine: line.words[index + 1], group: line.words[index + 2] }];
    }),
  );
  const agentGroups = wordsAfter(agent, 'groups');
  for (const { name, line } of agentGroups) {
    const group = groupSections.get(name);
    if (group === undefined) {
      add('error', at(agent, line), `group ${name} has no spoe-group section`);
      continue;
    }
    if (!sendRules.some((rule) => rule.group === name && (engine === undefined || rule.engine === engine))) {
      add(
        'error',
        at(group),
        `spoe-group ${name} is never sent: no \`send-spoe-group ${engine ?? '<engine>'} ${name}\` rule in ${input.haproxyFile}, so SPOE silently does nothing`,
      );
    }
    for (const { name: messageName, line: messageLine } of wordsAfter(group, 'messages')) {
      const message = messageSections.get(messageName);
      if (message === undefined) add('error', at(group, messageLine), `message ${messageName} has no spoe-message section`);
      else sent.set(messageName, message);
    }
  }
  for (const group of groupSections.values()) {
    if (!agentGroups.some((g) => g.name === group.name))
      add('warning', at(group), `spoe-group ${group.name} is not in the agent's \`groups\`: it cannot be sent`);
  }
  for (const rule of sendRules) {
    if (engine !== undefined && rule.engine !== engine) continue;
    if (!agentGroups.some((g) => g.name === rule.group))
      add('error', at(rule.section, rule.line), `send-spoe-group names ${rule.group}, which is not a group of agent ${agent.name}`);
  }

  for (const [name, message] of sent) {
    if (!config.messages.includes(name)) {
      add('error', at(message), `the agent does not answer message ${name} (it answers ${config.messages.join(', ')}: option \`messages\`)`);
    }
    checkArguments(config, message, add, at);
  }
  for (const name of config.messages) {
    if (!sent.has(name))
      add('warning', at(agent), `HAProxy never sends ${name}, which the agent answers (option \`messages\`): no event or sent group carries it`);
  }
  checkBackend(context);
  checkTimeouts(context);
}

/** `args ip=src status=status`: the address argument, and the optional ones the agent reads. */
function checkArguments(config: IprepConfig, message: Section, add: Add, at: AgentContext['at']): void {
  const args = linesStarting(message, 'args').flatMap((line) =>
    line.words.slice(1).map((word) => {
      const eq = /^([A-Za-z0-9_.-]+)=(.*)$/.exec(word);
      return { name: eq?.[1] ?? '', expression: eq?.[2] ?? word, line };
    }),
  );
  const address = args.find((a) => a.name === 'ip') ?? args[0];
  if (address === undefined) {
    add('error', at(message), `message ${message.name} has no arguments: the agent needs the client address, first or named ip`);
    return;
  }
  const fetch = fetchName(address.expression);
  if (fetch === 'var') {
    add('warning', at(message, address.line), `cannot tell whether ${address.expression} holds an address: the agent answers nothing when it does not`);
  } else if (!ADDRESS_FETCHES.has(fetch)) {
    add('error', at(message, address.line), `the address argument of ${message.name} is ${address.expression}, not an address fetch (src, req.hdr_ip(...))`);
  }
  if (config.mode !== 'reputation' || !config.behaviour.enabled) return;
  const { statusArgument, rateArgument } = config.behaviour;
  for (const arg of args) {
    if (arg === address) continue;
    const argFetch = fetchName(arg.expression);
    if ((argFetch === 'status' || argFetch === 'txn.status') && arg.name !== statusArgument) {
      add(
        'warning',
        at(message, arg.line),
        `argument ${arg.name || '(unnamed)'} carries the HTTP status, but the agent reads it from ${statusArgument ?? 'no argument'} (behaviour.status-argument)`,
      );
    }
    if (/_rate$/.test(argFetch) && arg.name !== rateArgument) {
      add(
        'warning',
        at(message, arg.line),
        `argument ${arg.name || '(unnamed)'} carries a rate, but the agent reads it from ${rateArgument ?? 'no argument'} (behaviour.rate-argument)`,
      );
    }
  }
}

/** `req.hdr_ip(x-forwarded-for,-1),ipmask(24)` -> `req.hdr_ip`. */
function fetchName(expression: string): string {
  return expression.split(',')[0]!.replace(/\(.*$/, '');
}

/** The variables the agent sets, as HAProxy names them: `sess.iprep.ip_score`. */
function checkVariables(config: IprepConfig, sections: readonly Section[], prefixes: ReadonlyMap<string, ReadonlySet<string>>, add: Add): void {
  const { scope } = config.variables;
  const { score, action, category, source } = config.variables;
  // Random mode sets the score alone; reputation mode also the TLS fingerprints of messages that carry a ClientHello,
  // and ip_country and ip_asn when configured (geo).
  const geo = [config.variables.country, config.variables.asn].filter((name): name is string => name !== undefined);
  const names = config.mode === 'reputation' ? [score, action, category, source, config.tls.variables.ja4, config.tls.variables.ja3, ...geo] : [score];
  let used = false;
  for (const section of sections) {
    for (const line of section.lines) {
      for (const word of line.words) {
        for (const match of word.matchAll(/\((proc|sess|txn|req|res)\.([A-Za-z0-9_.-]+)/g)) {
          const [varScope, varName] = [match[1]!, match[2]!];
          const prefix = [...prefixes.keys()].find((p) => varName.startsWith(`${p}.`));
          if (prefix === undefined) continue;
          const name = varName.slice(prefix.length + 1);
          if (prefixes.get(prefix)?.has(name) === true && varScope === 'txn') continue;
          const ours = names.map((n) => `${scope}.${prefix}.${n}`).join(', ');
          if (!names.includes(name)) {
            add('error', `${section.file}:${line.line}`, `${varScope}.${varName} is not a variable the agent sets: it sets ${ours}`);
          } else if (varScope !== scope) {
            add(
              'error',
              `${section.file}:${line.line}`,
              `${varScope}.${varName}: the agent sets ${name} in scope ${scope} (variables.scope), so this is always empty`,
            );
          } else {
            used = true;
          }
        }
      }
    }
  }
  const file = sections[0]?.file;
  if (!used && prefixes.size > 0 && file !== undefined) {
    add('warning', file, `no rule reads the agent's variables (${[...prefixes.keys()].map((p) => `${scope}.${p}.*`).join(', ')}): the verdicts are not used`);
  }
}

/** The agent's backend: exists, mode tcp (or spop on 3.1+), a health check, servers at the agent's address. */
function checkBackend(context: AgentContext): void {
  const { input, sections, agent, add, at } = context;
  const useBackend = linesStarting(agent, 'use-backend')[0];
  const name = useBackend?.words[1];
  if (name === undefined) {
    add('error', at(agent), 'spoe-agent without `use-backend`');
    return;
  }
  const index = sections.findIndex((s) => (s.kind === 'backend' || s.kind === 'listen') && s.name === name);
  const backend = sections[index];
  if (backend === undefined) {
    add('error', at(agent, useBackend), `use-backend ${name}: no backend ${name} in ${input.haproxyFile}`);
    return;
  }
  const defaults = sections
    .slice(0, index)
    .filter((s) => s.kind === 'defaults')
    .at(-1);
  const setting = (...keywords: string[]): ConfigLine | undefined =>
    linesStarting(backend, ...keywords).at(-1) ?? (defaults && linesStarting(defaults, ...keywords).at(-1));
  const mode = setting('mode')?.words[1] ?? 'tcp';
  const modeOrigin = linesStarting(backend, 'mode').length > 0 ? '' : ' (from defaults)';
  const spopMode = input.version === undefined || input.version.major > 3 || (input.version.major === 3 && input.version.minor >= 1);
  if (mode === 'spop' && !spopMode) {
    add(
      'error',
      at(backend),
      `backend ${name} is in mode spop, which HAProxy ${input.version?.major}.${input.version?.minor} does not have (3.1+): use mode tcp`,
    );
  } else if (mode !== 'tcp' && mode !== 'spop') {
    add('error', at(backend), `backend ${name} is in mode ${mode}${modeOrigin}: the agent's backend must be mode tcp${spopMode ? ' or mode spop (3.1+)' : ''}`);
  }
  const servers = linesStarting(backend, 'server');
  if (servers.length === 0) {
    add('error', at(backend), `backend ${name} has no server`);
    return;
  }
  const defaultServer = [...(defaults ? linesStarting(defaults, 'default-server') : []), ...linesStarting(backend, 'default-server')];
  const spopCheck = setting('option', 'spop-check') !== undefined;
  for (const server of servers) {
    const checked = server.words.includes('check') || defaultServer.some((d) => d.words.includes('check'));
    if (!checked)
      add(
        'warning',
        at(backend, server),
        `server ${server.words[1] ?? ''} has no \`check\`: HAProxy keeps sending to a dead agent, each request waiting for timeout processing`,
      );
    else if (!spopCheck)
      add(
        'warning',
        at(backend, server),
        `backend ${name} has no \`option spop-check\`: \`check\` is then a bare TCP connect, which does not tell whether the agent speaks SPOP`,
      );
    checkServerAddress(input.config, server.words[2] ?? '', at(backend, server), add);
  }
}

/** Does `127.0.0.1:12345` (or `unix@/run/spoa.sock`) reach the agent as configured? */
function checkServerAddress(config: IprepConfig, address: string, where: string, add: Add): void {
  if (address.includes('$')) {
    add('note', where, `server address ${address} uses an environment variable: not compared with the agent's listen address`);
    return;
  }
  const { socket, host, port } = config.listen;
  if (socket !== undefined) {
    const path = address.replace(/^unix@/, '');
    if (resolve(path) !== resolve(socket)) add('error', where, `server ${address}: the agent listens on the Unix socket ${socket}`);
    return;
  }
  const match = /^(?:ipv4@|ipv6@)?(?:\[([^\]]*)\]|(.*)):(\d+)$/.exec(address);
  if (match === null) {
    add('error', where, `server address ${address} has no port: the agent listens on port ${port}`);
    return;
  }
  const serverHost = match[1] ?? match[2] ?? '';
  if (Number(match[3]) !== port) add('error', where, `server ${address}: the agent listens on port ${port} (listen.port or -p)`);
  const agentHost = host ?? '127.0.0.1';
  if (agentHost === '0.0.0.0' || agentHost === '::' || agentHost === serverHost) return;
  if (isLoopbackHost(agentHost)) {
    if (!isLoopbackHost(serverHost))
      add('error', where, `server ${address}: the agent listens on ${agentHost} only (listen.host), which ${serverHost} does not reach`);
  } else {
    add('warning', where, `server ${address}: the agent listens on ${agentHost} (listen.host)`);
  }
}

/** `timeout processing` (and hello, idle on HAProxy 2.x): present, and not too tight. */
function checkTimeouts(context: AgentContext): void {
  const { input, agent, add, at } = context;
  const legacy = input.version !== undefined && input.version.major < 3;
  for (const kind of ['processing', 'hello', 'idle'] as const) {
    const line = linesStarting(agent, 'timeout', kind).at(-1);
    if (line === undefined) {
      if (kind === 'processing' || legacy)
        add('warning', at(agent), `no \`timeout ${kind}\`: set it (e.g. ${kind === 'idle' ? '30s' : '100ms'}) so that a slow agent cannot hold requests`);
      continue;
    }
    const ms = parseHaproxyTime(line.words[2] ?? '');
    if (ms === undefined) continue;
    if (ms < MIN_SPOE_TIMEOUT_MS) {
      add(
        'warning',
        at(agent, line),
        `timeout ${kind} ${line.words[2]} is under ${MIN_SPOE_TIMEOUT_MS}ms: a round trip plus a busy event loop or a GC pause exceeds it, and requests go on without a verdict`,
      );
    }
    if (kind === 'processing' && input.roundTrip !== undefined && ms >= MIN_SPOE_TIMEOUT_MS) checkAgainstMachine(context, line, ms, input.roundTrip);
    if (kind === 'processing' && input.config.agent.handlerTimeoutMs > ms) {
      add(
        'note',
        at(agent, line),
        `agent.handler-timeout (${input.config.agent.handlerTimeoutMs}ms) is longer than timeout processing (${line.words[2]}): HAProxy gives up first; a later answer is dropped`,
      );
    }
  }
}

/** `timeout processing` against the round trips measured on this machine. */
function checkAgainstMachine(context: AgentContext, line: ConfigLine, ms: number, trip: RoundTrip): void {
  const { add, at, agent } = context;
  const figures = `a NOTIFY round trip over loopback took p50 ${round(trip.p50Ms)}ms, p99 ${round(trip.p99Ms)}ms, max ${round(trip.maxMs)}ms (${trip.count} timed by spoa check)`;
  if (ms < TIGHT_ROUND_TRIP_FACTOR * trip.p99Ms) {
    add(
      'warning',
      at(agent, line),
      `timeout processing ${line.words[2]} is tight for this machine: ${figures}; under ${TIGHT_ROUND_TRIP_FACTOR} times the p99, requests go on without a verdict when the host is busy`,
    );
  } else if (ms < trip.maxMs) {
    add('note', at(agent, line), `timeout processing ${line.words[2]}: ${figures}; the slowest exceeded it (a pause of the machine)`);
  } else {
    add('note', at(agent, line), `timeout processing ${line.words[2]} fits this machine: ${figures}`);
  }
}

function round(ms: number): number {
  return ms < 1 ? Math.round(ms * 100) / 100 : Math.round(ms * 10) / 10;
}
