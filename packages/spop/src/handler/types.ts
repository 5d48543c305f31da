/** What a message handler sees and returns. */
import type { Action, FrameId } from '../codec/index.js';
import type { Message } from '../codec/message.js';

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

/** The second argument of a handler: the NOTIFY's ids, its connection, and a signal. */
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
export type MessageHandler = (message: Message, context: NotifyContext) => HandlerResult | Promise<HandlerResult>;

export { Message } from '../codec/message.js';
