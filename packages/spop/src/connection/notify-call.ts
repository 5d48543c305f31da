/** The context given to the handlers of one NOTIFY. */
import type { FrameId, Message } from '../codec/index.js';
import type { ConnectionInfo, NotifyContext } from '../handler/types.js';

export class NotifyCall implements NotifyContext {
  // Created on first use: most handlers never look at the signal, and an
  // AbortController per NOTIFY would be the costliest object on the hot path.
  #controller: AbortController | undefined;
  #abortReason: unknown;
  timer: NodeJS.Timeout | undefined;
  /** Set once the ACK was sent (or given up); late results are then ignored. */
  done = false;
  /** `performance.now()` at dispatch, taken only when an `onError` hook wants durations (else 0). */
  startedAt = 0;
  /** Names of the messages whose handler has not settled yet, kept only for calls that wait and only with a hook. */
  waitingOn: string[] | undefined;

  constructor(
    readonly streamId: FrameId,
    readonly frameId: FrameId,
    readonly connection: ConnectionInfo,
    /** The NOTIFY's message when it has one (the common case), else its messages in order (results are indexed alike). */
    readonly messages: Message | readonly Message[],
  ) {}

  /** Name of the message at `index` (for reports). */
  messageName(index: number): string {
    const m = this.messages;
    return (isMessageList(m) ? m[index]?.name : m.name) ?? '';
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#abortReason !== undefined) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  abort(reason: Error): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }
}

function isMessageList(m: Message | readonly Message[]): m is readonly Message[] {
  return Array.isArray(m);
}
