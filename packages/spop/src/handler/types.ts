/** What a message handler sees and returns. */
import type { Action, FrameId, MessageArg, SpoeMessage, TypedData } from '../codec/index.js';

/** Facts about the HAProxy connection a NOTIFY arrived on. */
export interface ConnectionInfo {
  /** Sequence number of the connection in this agent process. */
  readonly id: number;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /** HAProxy's engine-id (absent from health checks). */
  readonly engineId: string | undefined;
  readonly maxFrameSize: number;
  readonly capabilities: readonly string[];
}

export interface NotifyContext {
  readonly streamId: FrameId;
  readonly frameId: FrameId;
  readonly connection: ConnectionInfo;
  /** Fires when the connection is lost or the handler timeout expires. */
  readonly signal: AbortSignal;
}

/** A handler may return one action, several, or nothing. */
export type HandlerResult = Action | readonly Action[] | void | null | undefined;

/** Called once per message of the registered name; may be sync or async. */
export type MessageHandler = (
  message: Message,
  context: NotifyContext,
) => HandlerResult | Promise<HandlerResult>;

/** A decoded SPOE message with convenient access to its arguments. */
export class Message implements SpoeMessage {
  constructor(
    readonly name: string,
    readonly args: readonly MessageArg[],
  ) {}

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
}
