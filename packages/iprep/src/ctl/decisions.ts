/** `spoa decisions list|add|delete|import`: the manual (and behaviour) decisions of the agent. */
import { readFile, stat } from 'node:fs/promises';
import { IP_ACTIONS } from '../types.js';
import type { DecisionBody } from './client.js';
import { AgentRefusedError } from './client.js';
import type { CommandContext, OperatorCommand } from './command.js';
import { CommandUsageError, EXIT, stringOption } from './command.js';
import { expiresIn, paintAction, printable, table } from './format.js';
import { IMPORT_FORMATS, type ImportDefaults, type ImportFormat, MAX_IMPORT_BYTES, MAX_IMPORT_LINES, formatOfPath, parseImport } from './import-file.js';

/** Imported decisions sent at once by default (--parallel), and the most allowed. */
export const IMPORT_CONCURRENCY = 8;
export const MAX_IMPORT_CONCURRENCY = 32;
/** Refusals printed one by one; beyond, only counted. */
const MAX_PROBLEMS_SHOWN = 50;

const USAGE = `Usage:
  spoa decisions list [--json] [--value <text>] [--origin <origin>] [--action <action>]
  spoa decisions add <address|cidr> [--action <action>] [--duration <d>] [--reason <text>] [--score <0..100>] [--force]
  spoa decisions delete <address|cidr|key>
  spoa decisions import <file|-> [--format plain|csv|json] [--action <a>] [--duration <d>] [--reason <text>] [--force]
                                 [--parallel <n>]

list      the decisions in force: value, action, score, time left, origin, reason
          (--value: those whose value contains the text; --origin, --action: equal to)
add       a decision; --duration like 10m, 1h30m, 7d, or "never" (default: decisions.default-duration);
          --force accepts a prefix shorter than decisions.min-prefix-v4/-v6
delete    a decision by its value (192.0.2.1, 10.0.0.0/8) or key (ip:192.0.2.1)
import    decisions from a file (- reads standard input), --parallel at a time (default ${IMPORT_CONCURRENCY}, at most
          ${MAX_IMPORT_CONCURRENCY}), with progress on a terminal:
          plain   one address or CIDR a line, # comments
          csv     value,action,duration,reason (or a header naming value, action, duration, reason,
                  score, category, force in any order); "quoted, fields" as in RFC 4180
          json    an array of addresses or objects ({"value": ..., "action": ..., "duration": "1h"}),
                  or one per line (JSON Lines)
          The format follows the extension (.csv, .json, .jsonl; else plain) unless --format says.
          --action, --duration, --reason, --force apply to lines that do not say. Bad lines are
          reported with their number and skipped; exit 1 when any was refused.
          At most ${MAX_IMPORT_BYTES / 1024 / 1024} MiB and ${MAX_IMPORT_LINES} lines per file.
`;

function durationFlag(values: CommandContext['values']): string | null | undefined {
  const duration = stringOption(values, 'duration');
  return duration !== undefined && /^(never|null|forever)$/i.test(duration) ? null : duration;
}

function actionFlag(values: CommandContext['values']): string | undefined {
  const action = stringOption(values, 'action');
  if (action !== undefined && !(IP_ACTIONS as readonly string[]).includes(action)) {
    throw new CommandUsageError(`--action must be one of ${IP_ACTIONS.join(', ')}: ${action}`);
  }
  return action;
}

async function list({ client, values, out, paint }: CommandContext): Promise<number> {
  const value = stringOption(values, 'value');
  const origin = stringOption(values, 'origin');
  const action = actionFlag(values);
  const decisions = (await client.decisions()).filter(
    (d) =>
      (value === undefined || String(d.value).includes(value)) &&
      (origin === undefined || d.origin === origin) &&
      (action === undefined || d.action === action),
  );
  if (values['json'] === true) {
    out(JSON.stringify(decisions, null, 2) + '\n');
    return EXIT.ok;
  }
  if (decisions.length === 0) {
    out('no decisions\n');
    return EXIT.ok;
  }
  const now = Date.now();
  const rows = decisions.map((d) => [
    printable(String(d.value)),
    paintAction(paint, String(d.action)),
    String(d.score),
    expiresIn(d.expiresAt, now),
    printable(String(d.origin)),
    printable(String(d.reason)),
  ]);
  out(table(['VALUE', 'ACTION', 'SCORE', 'EXPIRES', 'ORIGIN', 'REASON'], rows));
  return EXIT.ok;
}

async function add({ client, positionals, values, out, paint }: CommandContext): Promise<number> {
  const [value, ...extra] = positionals;
  if (value === undefined || extra.length > 0) throw new CommandUsageError('decisions add takes one address or CIDR');
  const body: { -readonly [K in keyof DecisionBody]: DecisionBody[K] } = { value };
  const action = actionFlag(values);
  if (action !== undefined) body.action = action;
  const duration = durationFlag(values);
  if (duration !== undefined) body.duration = duration;
  const reason = stringOption(values, 'reason');
  if (reason !== undefined) body.reason = reason;
  const score = stringOption(values, 'score');
  if (score !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(score) || Number(score) > 100) throw new CommandUsageError(`--score must be a number from 0 to 100: ${score}`);
    body.score = Number(score);
  }
  if (values['force'] === true) body.force = true;
  const added = await client.addDecision(body);
  if (values['json'] === true) {
    out(JSON.stringify(added, null, 2) + '\n');
    return EXIT.ok;
  }
  const pending = added.stored === 'pending' ? ' (in force here; the shared store has not confirmed it yet: queued for replay)' : '';
  out(
    `added ${printable(String(added.value))}: ${paintAction(paint, String(added.action))}, score ${added.score}, expires ${expiresIn(added.expiresAt, Date.now())}${pending}\n`,
  );
  return EXIT.ok;
}

async function remove({ client, positionals, out, err }: CommandContext): Promise<number> {
  const [value, ...extra] = positionals;
  if (value === undefined || extra.length > 0) throw new CommandUsageError('decisions delete takes one address, CIDR or key');
  if (await client.deleteDecision(value)) {
    out(`deleted ${printable(value)}\n`);
    return EXIT.ok;
  }
  err(`spoa: no decision ${printable(value)}: not found\n`);
  return EXIT.refused;
}

async function readImport(path: string, readStdin: CommandContext['readStdin']): Promise<string> {
  if (path === '-') return readStdin(MAX_IMPORT_BYTES);
  try {
    const { size } = await stat(path);
    if (size > MAX_IMPORT_BYTES) throw new CommandUsageError(`${path} is larger than ${MAX_IMPORT_BYTES} bytes: split it`);
    return await readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof CommandUsageError) throw e;
    throw new CommandUsageError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

async function importFile({ client, positionals, values, out, err, readStdin }: CommandContext, progress: boolean): Promise<number> {
  const [path, ...extra] = positionals;
  if (path === undefined || extra.length > 0) throw new CommandUsageError('decisions import takes one file, or - for standard input');
  const formatFlag = stringOption(values, 'format');
  if (formatFlag !== undefined && !(IMPORT_FORMATS as readonly string[]).includes(formatFlag)) {
    throw new CommandUsageError(`--format must be one of ${IMPORT_FORMATS.join(', ')}: ${formatFlag}`);
  }
  const format = (formatFlag as ImportFormat | undefined) ?? (path === '-' ? 'plain' : formatOfPath(path));
  const defaults: { -readonly [K in keyof ImportDefaults]: ImportDefaults[K] } = {};
  const action = actionFlag(values);
  if (action !== undefined) defaults.action = action;
  const duration = durationFlag(values);
  if (duration !== undefined) defaults.duration = duration;
  const reason = stringOption(values, 'reason');
  if (reason !== undefined) defaults.reason = reason;
  if (values['force'] === true) defaults.force = true;

  const parallelText = stringOption(values, 'parallel');
  const parallel = parallelText === undefined ? IMPORT_CONCURRENCY : Number(parallelText);
  if (!/^\d+$/.test(parallelText ?? '1') || !(parallel >= 1 && parallel <= MAX_IMPORT_CONCURRENCY)) {
    throw new CommandUsageError(`--parallel must be an integer from 1 to ${MAX_IMPORT_CONCURRENCY}: ${parallelText}`);
  }
  const { rows, problems: refused } = parseImport(await readImport(path, readStdin), format, defaults);
  let added = 0;
  let pending = 0;
  let done = 0;
  let next = 0;
  const report = (): void => {
    if (progress) err(`\rimporting: ${done}/${rows.length}`);
  };
  // A few requests in flight; the agent's own limits (body size, rate) apply to each.
  let stopped = false;
  const sender = async (): Promise<void> => {
    while (next < rows.length && !stopped) {
      const row = rows[next++]!;
      try {
        const decision = await client.addDecision(row.body);
        added++;
        if (decision.stored === 'pending') pending++;
      } catch (e) {
        // Unreachable, or a token or Host refused: every other line would fail alike.
        if (!(e instanceof AgentRefusedError) || e.status === 401 || e.status === 421) {
          stopped = true;
          throw e;
        }
        refused.add(row.where, e.message);
      }
      done++;
      if (done % 100 === 0) report();
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, rows.length) }, sender));
  if (progress && rows.length > 0) err(`\rimporting: ${done}/${rows.length}\n`);

  const lineNumber = (where: string): number => Number(/\d+/.exec(where)?.[0] ?? 0);
  const shown = [...refused.kept].sort((a, b) => lineNumber(a.where) - lineNumber(b.where)).slice(0, MAX_PROBLEMS_SHOWN);
  out(`added ${added}, refused ${refused.count}${pending > 0 ? ` (${pending} not yet confirmed by the shared store)` : ''}\n`);
  for (const problem of shown) out(`  ${problem.where}: ${printable(problem.message)}\n`);
  if (refused.count > shown.length) out(`  ... and ${refused.count - shown.length} more\n`);
  return refused.count > 0 ? EXIT.refused : EXIT.ok;
}

/** Progress goes to standard error, and only when it is a terminal. */
export function decisionsCommand(progress: boolean): OperatorCommand {
  return {
    usage: USAGE,
    options: {
      value: { type: 'string' },
      origin: { type: 'string' },
      action: { type: 'string' },
      duration: { type: 'string' },
      reason: { type: 'string' },
      score: { type: 'string' },
      force: { type: 'boolean' },
      format: { type: 'string' },
      parallel: { type: 'string' },
    },
    async run(context) {
      const [sub, ...rest] = context.positionals;
      const inner = { ...context, positionals: rest };
      switch (sub) {
        case 'list':
          return list(inner);
        case 'add':
          return add(inner);
        case 'delete':
          return remove(inner);
        case 'import':
          return importFile(inner, progress);
        default:
          throw new CommandUsageError(sub === undefined ? 'decisions needs list, add, delete or import' : `unknown decisions command: ${sub}`);
      }
    },
  };
}
