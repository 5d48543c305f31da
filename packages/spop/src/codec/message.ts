/** A decoded SPOE message, as handlers receive it. */
import { parseIPInto, parseIPv4, parseIPv6 } from './ip.js';
import type { MessageArg, SpoeMessage, TypedData, TypedDataType } from './types.js';

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

  /** How many arguments the message carries; a decoded message counts them without decoding them. */
  get argCount(): number {
    return this.args.length;
  }

  /** Position of the first argument with that name, -1 when there is none. Decodes no value. */
  argIndex(name: string): number {
    const args = this.args;
    for (let i = 0; i < args.length; i++) if ((args[i] as MessageArg).name === name) return i;
    return -1;
  }

  /** The type of the argument at `index` (`'ipv4'`, `'str'`...), undefined when there is none. Decodes no value. */
  argType(index: number): TypedDataType | undefined {
    return this.args[index]?.value.type;
  }

  /**
   * The address the argument at `index` carries, copied into `into` (16 bytes or more, from its
   * start): the bytes of an IPV4 or IPV6 argument, or a STR argument holding exactly an address's
   * text (a header value such as X-Forwarded-For: what `net.isIP` accepts, zone ids aside, no
   * surrounding spaces). Returns 4 or 16, or 0 when there is no such argument or it carries no
   * address. A decoded message reads it in place: no value object, no view, no string, nothing
   * allocated (the hot path of an agent that looks at the client's address in every message).
   */
  addressInto(index: number, into: Uint8Array): 0 | 4 | 16 {
    if (into.length < 16) throw new RangeError(`addressInto needs 16 bytes of room, got ${into.length}`);
    const data = this.args[index]?.value;
    if (data === undefined) return 0;
    if (data.type === 'str') {
      const text = Buffer.from(data.value, 'utf8');
      return parseIPInto(text, 0, text.length, into);
    }
    if (data.type !== 'ipv4' && data.type !== 'ipv6') return 0;
    const bytes = data.bytes ?? (data.type === 'ipv4' ? parseIPv4(data.value) : parseIPv6(data.value));
    into.set(bytes);
    return data.type === 'ipv4' ? 4 : 16;
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
