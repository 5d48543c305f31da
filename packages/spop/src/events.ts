/**
 * What the `onError` hook receives: the failures an agent otherwise only logs,
 * as typed events, for the user's own telemetry (metrics, traces, error trackers).
 */
import type { FrameId } from './codec/index.js';
import type { ConnectionInfo } from './handler/types.js';
import type { RateLimitedLog } from './logger.js';

/** Fields of the events about one NOTIFY. */
export interface NotifyEventFields {
  /** The connection the NOTIFY arrived on (a live object: `engineId` and `capabilities` are set by the HELLO). */
  readonly connection: ConnectionInfo;
  readonly streamId: FrameId;
  readonly frameId: FrameId;
  /**
   * Names of the messages concerned: the one whose handler failed or returned the action, or,
   * for a timeout, every message whose handler had not answered yet.
   */
  readonly messages: readonly string[];
  /** What went wrong; a handler's non-Error throw or rejection is wrapped in an Error with its text. */
  readonly error: Error;
  /** Milliseconds from the NOTIFY's dispatch to the event. */
  readonly durationMs: number;
}

/** A handler threw or its promise rejected: the ACK goes without that handler's actions. */
export interface HandlerErrorEvent extends NotifyEventFields {
  readonly kind: 'handler-error';
}

/** Handlers still running after `handlerTimeout`: their signal aborts and the ACK goes without their actions. */
export interface HandlerTimeoutEvent extends NotifyEventFields {
  readonly kind: 'handler-timeout';
}

/** A handler returned an action that cannot be encoded (an out-of-range integer...): that action is left out. */
export interface InvalidActionEvent extends NotifyEventFields {
  readonly kind: 'invalid-action';
}

/**
 * A connection closed by the agent because the peer broke the protocol (a frame out of place, too
 * big, over the buffer budget...): `protocol-error`; or because of a bug of the library:
 * `internal-error`. `status` is the AGENT-DISCONNECT status code sent.
 */
export interface ConnectionErrorEvent {
  readonly kind: 'protocol-error' | 'internal-error';
  readonly connection: ConnectionInfo;
  readonly status: number;
  readonly error: Error;
  /** Milliseconds the connection was open. */
  readonly durationMs: number;
}

/** What the `onError` hook receives; `kind` tells which. */
export type AgentErrorEvent = HandlerErrorEvent | HandlerTimeoutEvent | InvalidActionEvent | ConnectionErrorEvent;
/** The kinds of {@link AgentErrorEvent}. */
export type AgentErrorKind = AgentErrorEvent['kind'];

/** The `onError` option. It may be async; whatever it throws or rejects with is logged, never raised. */
export type AgentErrorHook = (event: AgentErrorEvent) => void | Promise<void>;

/** An Error for whatever was thrown. */
export function toError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}

/**
 * Calls the hook so that it cannot hurt the agent: a throw or a rejection is logged (rate-limited,
 * as a failing hook fails on every event a peer can provoke) and goes no further.
 */
export function callErrorHook(hook: AgentErrorHook, event: AgentErrorEvent, log: RateLimitedLog): void {
  const failed = (err: unknown): void => log.warn('onError hook failed', { kind: event.kind, error: toError(err).message });
  try {
    const result: unknown = hook(event);
    if (typeof result === 'object' && result !== null && typeof (result as { then?: unknown }).then === 'function') {
      (result as PromiseLike<unknown>).then(undefined, failed);
    }
  } catch (err) {
    failed(err);
  }
}
