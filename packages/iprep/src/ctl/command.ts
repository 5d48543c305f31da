/** What every operator command gets, and what it is. */
import type { AdminClient } from './client.js';
import type { Paint } from './format.js';

export type OptionValues = Readonly<Record<string, string | boolean | undefined>>;

export interface CommandContext {
  readonly client: AdminClient;
  /** Words after the command (and its sub-command). */
  readonly positionals: readonly string[];
  readonly values: OptionValues;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly paint: Paint;
  /** Standard input, bounded (for `import -`). */
  readonly readStdin: (maxBytes: number) => Promise<string>;
}

/** Exit codes: 0 ok, 1 the agent said no or not found, 2 usage, 3 the agent cannot be reached. */
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

export interface OperatorCommand {
  /** `spoa <name> -h`. */
  readonly usage: string;
  /** Options of its own, besides the common ones (--admin, --token, --token-file, --config, --json). */
  readonly options: Readonly<Record<string, { readonly type: 'string' | 'boolean'; readonly short?: string }>>;
  run(context: CommandContext): Promise<number>;
}

/** A mistake in the command line (exit 2). */
export class CommandUsageError extends Error {}

export function stringOption(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}
