/**
 * Reading haproxy.cfg and SPOE files just well enough to check them against the agent: lines split
 * into words as HAProxy splits them (quotes, backslash escapes, `#` comments; no line continuation;
 * `${VAR}` left as written), grouped into sections. Nothing is evaluated: `.if` blocks are read as if
 * every branch applied.
 */

/** One configuration line: its words, and where it was written (1-based line). */
export interface ConfigLine {
  readonly line: number;
  readonly words: readonly string[];
}

/** A section: `frontend web`, `spoe-agent iprep-agent`; `name` is empty for `global` and unnamed `defaults`. */
export interface Section {
  readonly kind: string;
  readonly name: string;
  readonly file: string;
  readonly line: number;
  readonly lines: readonly ConfigLine[];
}

/** Longest file read: a configuration is a few kilobytes; more is a mistake (a log, a binary). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/**
 * The words of one line, as HAProxy's parser sees them: whitespace separates words; `"..."` and `'...'`
 * quote (the quotes are removed); a backslash escapes the next character; `#` outside quotes starts a comment.
 */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) word += text[++i];
      else word += c;
      continue;
    }
    if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '#') {
      break;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** Section keywords of haproxy.cfg: a line starting with one of these opens a section. */
const HAPROXY_SECTIONS = new Set([
  'global',
  'defaults',
  'frontend',
  'listen',
  'backend',
  'peers',
  'resolvers',
  'userlist',
  'program',
  'http-errors',
  'ring',
  'cache',
  'mailers',
  'log-forward',
  'crt-store',
  'traces',
  'acme',
]);

/** haproxy.cfg's sections, in file order. Lines before the first section, and `.if`-style directives, are left out. */
export function parseHaproxyConfig(text: string, file: string): Section[] {
  return groupSections(text, file, (words) => HAPROXY_SECTIONS.has(words[0]!));
}

const SPOE_SECTIONS = new Set(['spoe-agent', 'spoe-message', 'spoe-group']);

/**
 * The sections of a SPOE file in the scope of `engine`: lines after `[engine]` up to the next `[...]`.
 * Without an engine name, the whole file is one scope, as HAProxy reads it.
 */
export function parseSpoeConfig(text: string, file: string, engine: string | undefined): Section[] {
  const lines = text.split('\n');
  let inScope = engine === undefined;
  const kept = lines.map((line) => {
    const scope = /^\s*\[([^\]]*)\]\s*(#.*)?$/.exec(line);
    if (scope !== null) {
      inScope = engine === undefined || scope[1]!.trim() === engine;
      return '';
    }
    return inScope ? line : '';
  });
  return groupSections(kept.join('\n'), file, (words) => SPOE_SECTIONS.has(words[0]!));
}

/** The SPOE scopes (`[name]`) a file declares, to tell a missing engine from a file without scopes. */
export function spoeScopes(text: string): string[] {
  const scopes: string[] = [];
  for (const line of text.split('\n')) {
    const scope = /^\s*\[([^\]]*)\]\s*(#.*)?$/.exec(line);
    if (scope !== null) scopes.push(scope[1]!.trim());
  }
  return scopes;
}

function groupSections(text: string, file: string, opens: (words: readonly string[]) => boolean): Section[] {
  const sections: { kind: string; name: string; file: string; line: number; lines: ConfigLine[] }[] = [];
  text.split('\n').forEach((raw, index) => {
    const words = splitWords(raw);
    if (words.length === 0 || words[0]!.startsWith('.')) return;
    if (opens(words)) {
      sections.push({ kind: words[0]!, name: words[1] ?? '', file, line: index + 1, lines: [] });
    } else {
      sections.at(-1)?.lines.push({ line: index + 1, words });
    }
  });
  return sections;
}

/** Lines of a section whose first words are `keywords` (`option var-prefix`, `timeout processing`). */
export function linesStarting(section: Section, ...keywords: string[]): ConfigLine[] {
  return section.lines.filter((l) => keywords.every((k, i) => l.words[i] === k));
}

/**
 * An HAProxy time (`100ms`, `5s`, `1m`; a bare number is milliseconds) in milliseconds;
 * undefined when it is not one (an environment variable, a typo).
 */
export function parseHaproxyTime(text: string): number | undefined {
  const match = /^(\d+)(us|ms|s|m|h|d)?$/.exec(text);
  if (match === null) return undefined;
  const factor = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? 'ms'] ?? 1;
  return Number(match[1]) * factor;
}
