/**
 * The operator commands (`spoa decisions|explain|lists|reload|restart|status`): each talks to a running agent's
 * admin API. The target is found by flags, then the environment, then the configuration file:
 * see target.ts.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/index.js';
import { AdminClient, AgentRefusedError, AgentUnreachableError } from './client.js';
import type { OperatorCommand } from './command.js';
import { CommandUsageError, EXIT } from './command.js';
import { decisionsCommand } from './decisions.js';
import { explainCommand } from './explain.js';
import { painter, useColour } from './format.js';
import { ImportFileError } from './import-file.js';
import { listsCommand } from './lists.js';
import { reloadCommand } from './reload.js';
import { restartCommand } from './restart.js';
import { statusCommand } from './status.js';
import { TargetError, resolveTarget } from './target.js';

export const OPERATOR_COMMAND_NAMES = ['decisions', 'explain', 'lists', 'reload', 'restart', 'status'] as const;
export type OperatorCommandName = (typeof OPERATOR_COMMAND_NAMES)[number];

export const CONNECTION_USAGE = `
Connection (every command):
      --admin <host:port>    admin API of the agent (default 127.0.0.1:9090)
      --token-file <file>    file holding the admin token
      --token <token>        the admin token (visible to other users in ps: prefer --token-file or SPOA_TOKEN)
  -c, --config <file>        take admin.host, admin.port and admin.token(-file) from the agent's configuration
      --json                 print the agent's answer as JSON
  -h, --help                 this help
Precedence: flags, then the environment (SPOA_ADMIN=host:port, SPOA_TOKEN), then --config, then 127.0.0.1:9090.
Exit codes: 0 ok, 1 the agent said no (or not found, or degraded), 2 usage, 3 the agent cannot be reached.
Colour only on a terminal, and never with NO_COLOR set.
`;

/** Where a command writes and reads: the process' own streams, or a test's. */
export interface CommandIo {
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
  readonly readStdin: (maxBytes: number) => Promise<string>;
}

/** Standard input up to `maxBytes`; more is refused rather than held. */
export async function readProcessStdin(maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new CommandUsageError(`standard input is larger than ${maxBytes} bytes: split it`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr, env: process.env, readStdin: readProcessStdin };

/** `spoa decisions list | head`: the reader has what it wanted; end without a stack trace. */
function endQuietlyOnClosedPipe(): void {
  const onError = (err: NodeJS.ErrnoException): void => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  };
  process.stdout.on('error', onError);
  process.stderr.on('error', onError);
}

function commandOf(name: OperatorCommandName, io: CommandIo): OperatorCommand {
  switch (name) {
    case 'decisions':
      return decisionsCommand(io.stderr.isTTY === true);
    case 'explain':
      return explainCommand;
    case 'lists':
      return listsCommand;
    case 'reload':
      return reloadCommand;
    case 'restart':
      return restartCommand;
    case 'status':
      return statusCommand;
  }
}

export function commandUsage(name: OperatorCommandName): string {
  return commandOf(name, processIo).usage + CONNECTION_USAGE;
}

/** Runs `spoa <name> <argv...>` and returns its exit code; it never throws. */
export async function runOperatorCommand(name: OperatorCommandName, argv: readonly string[], io: CommandIo = processIo): Promise<number> {
  const command = commandOf(name, io);
  if (io === processIo) endQuietlyOnClosedPipe();
  const err = (text: string): void => void io.stderr.write(text);
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        ...command.options,
        admin: { type: 'string' },
        token: { type: 'string' },
        'token-file': { type: 'string' },
        config: { type: 'string', short: 'c' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help === true) {
      io.stdout.write(command.usage + CONNECTION_USAGE);
      return EXIT.ok;
    }
    const text = (key: string): string | undefined => {
      const value = (values as Record<string, unknown>)[key];
      return typeof value === 'string' ? value : undefined;
    };
    if (text('token') !== undefined) err('spoa: warning: --token shows in the process list; prefer --token-file or SPOA_TOKEN\n');
    const target = await resolveTarget({ admin: text('admin'), token: text('token'), tokenFile: text('token-file'), config: text('config') }, io.env);
    return await command.run({
      client: new AdminClient(target),
      positionals,
      values: values as Record<string, string | boolean | undefined>,
      out: (t) => void io.stdout.write(t),
      err,
      paint: painter(useColour(io.stdout.isTTY, io.env)),
      readStdin: io.readStdin,
    });
  } catch (e) {
    const message = (e as Error).message;
    if (e instanceof AgentUnreachableError) {
      err(`spoa: ${message}\n`);
      return EXIT.unreachable;
    }
    if (e instanceof AgentRefusedError) {
      err(`spoa ${name}: ${message}\n`);
      return EXIT.refused;
    }
    if (e instanceof ConfigError || e instanceof TargetError || e instanceof ImportFileError) {
      err(`spoa ${name}: ${message}\n`);
      return EXIT.usage;
    }
    if (e instanceof CommandUsageError || (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') === true) {
      err(`spoa ${name}: ${message}\n\n${command.usage}(spoa ${name} -h for the connection options)\n`);
      return EXIT.usage;
    }
    err(`spoa ${name}: ${message}\n`);
    return EXIT.refused;
  }
}
