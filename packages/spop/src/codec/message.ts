/** A decoded SPOE message, as handlers receive it. */
import type { MessageArg, SpoeMessage, TypedData } from './types.js';

/** A SPOE message with convenient access to its arguments (what the decoder returns). */
export class Message implements SpoeMessage {
  readonly #args: readonly MessageArg[];

  constructor(
    readonly name: string,
    args: readonly MessageArg[],
  ) {
    this.#args = args;
  }

  get args(): readonly MessageArg[] {
    return this.#args;
  }

  /** The argument at a position, or the first with that name. */
  arg(key: number | string): TypedData | undefined {
    if (typeof key === 'number') return this.args[key]?.value;
    for (const a of this.args) if (a.name === key) return a.value;
    return undefined;
  }

  /** The argument's plain value (string for str and addresses, number/bigint, boolean, bytes, null). */
  value(key: number | string): string | number | bigint | boolean | Uint8Array | null | undefined {
    const data = this.arg(key);
    if (data === undefined) return undefined;
    return data.type === 'null' ? null : data.value;
  }

  /** The message as plain data. */
  toJSON(): SpoeMessage {
    return { name: this.name, args: this.args };
  }
}
