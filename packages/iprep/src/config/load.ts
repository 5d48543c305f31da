/** Loading the configuration file: YAML text in, a validated IprepConfig with defaults out. */
import { readFile } from 'node:fs/promises';
import { LineCounter, isMap, isNode, isScalar, parseDocument } from 'yaml';
import type { IprepConfig } from '../types.js';
import { type ConfigProblem, MapReader, NodeReader } from './reader.js';
import { readConfig } from './sections.js';
import { checkSettings } from './validate.js';

export { defaultConfig } from './defaults.js';
export { parseDuration } from './duration.js';
export type { ConfigProblem } from './reader.js';

/**
 * A configuration problem; message is `file:line:column: problem` (line/column
 * 1-based, when known). When the file has several problems, the message lists
 * them all, one per line in file order, `problems` holds them, and line/column
 * are those of the first.
 */
export class ConfigError extends Error {
  readonly file: string;
  readonly line?: number;
  readonly column?: number;
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: readonly [ConfigProblem, ...ConfigProblem[]]) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'));
    this.name = 'ConfigError';
    this.file = file;
    this.line = problems[0].line;
    this.column = problems[0].column;
    this.problems = problems;
  }
}

function formatProblem(file: string, problem: ConfigProblem): string {
  const where = problem.origin ?? (problem.line === undefined ? file : `${file}:${problem.line}:${problem.column ?? 1}`);
  return `${where}: ${problem.message}`;
}

/**
 * Parses and validates YAML text. Relative paths (list paths, allowlist files,
 * cache-dir, listen.socket, admin.token-file) resolve against the directory of
 * `file`; `admin.token-file` is read here. Throws a ConfigError listing every
 * problem found (YAML syntax errors alone when there are any).
 */
export function parseConfig(text: string, file: string): IprepConfig {
  return parseConfigSource(text, file).config;
}

/** A configuration and where each of its settings was written, to report problems found after merging flags. */
export interface ConfigSource {
  readonly config: IprepConfig;
  /** Line and column of a setting (`admin.host`) in the file; empty when the file does not set it. */
  readonly locate: (setting: string) => Omit<ConfigProblem, 'message'>;
}

/** `checked` false leaves out the rules across settings, for a caller that checks the merged configuration. */
function parseConfigSource(text: string, file: string, checked = true): ConfigSource {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  const reader = new NodeReader(document, lineCounter);
  // Syntax errors make the tree unreliable: report them without reading further.
  for (const error of [...document.errors, ...document.warnings]) reader.report(error.pos[0], `YAML: ${error.message}`);
  throwProblems(file, reader.problems);
  const root = document.contents;
  const empty = root === null || (isScalar(root) && root.value === null);
  if (!empty && !isMap(root)) reader.report(root, 'the configuration must be a map of sections (mode:, listen:, lists: ...)');
  const config = readConfig(new MapReader(reader, isMap(root) ? root : undefined, ''), file);
  const locate = (setting: string): Omit<ConfigProblem, 'message'> => {
    const node = document.getIn(setting.split('.'), true);
    const offset = isNode(node) ? node.range?.[0] : undefined;
    if (offset === undefined) return {};
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  // Rules across settings only make sense once each setting read well.
  if (checked && reader.problems.length === 0) {
    for (const problem of checkSettings(config)) reader.problems.push({ ...locate(problem.setting), message: problem.message });
  }
  throwProblems(file, reader.problems);
  return { config, locate };
}

/**
 * Checks the configuration as it will run (file, flags and defaults merged) with the same rules as the
 * file alone; `origin` says where a setting came from (a flag such as `--admin-host`, or the file's
 * line). Throws a ConfigError listing every problem.
 */
export function validateConfig(config: IprepConfig, origin: (setting: string) => Omit<ConfigProblem, 'message'>): void {
  throwProblems(
    config.source,
    checkSettings(config).map((problem) => ({ ...origin(problem.setting), message: problem.message })),
  );
}

/** Reads and parses a configuration file; a ConfigError names the file when it cannot be read. */
export async function loadConfigFile(path: string): Promise<IprepConfig> {
  return (await readConfigText(path, true)).config;
}

/**
 * Reads and parses a configuration file, keeping where each setting was written (see ConfigSource),
 * without the rules across settings: the caller puts the command line on top, then checks the
 * merged configuration with validateConfig.
 */
export async function readConfigFile(path: string): Promise<ConfigSource> {
  return readConfigText(path, false);
}

async function readConfigText(path: string, checked: boolean): Promise<ConfigSource> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, [{ message: `cannot read the configuration: ${(e as Error).message}` }]);
  }
  return parseConfigSource(text, path, checked);
}

/** Throws a ConfigError with the problems in file order (those without a position last), if any. */
function throwProblems(file: string, problems: readonly ConfigProblem[]): void {
  const rank = (p: ConfigProblem): number => (p.line === undefined ? Infinity : p.line * 1e6 + (p.column ?? 0));
  const [first, ...rest] = [...problems].sort((a, b) => rank(a) - rank(b));
  if (first !== undefined) throw new ConfigError(file, [first, ...rest]);
}
