/**
 * Requests over an IPC channel and their replies: each request carries an id, waits in a bounded
 * map for the reply with that id, and fails on its own timeout, when its send fails, or when the
 * channel closes. The figures relay (admin/cluster.ts) and the shared store (store/cluster.ts) both
 * use it; see README.md.
 */
import { type IpcChannel, type TaggedMessage, isChannelClosedError, isRequestId, isTagged, sendMessage } from './channel.js';

/** What a request sends: its body with the protocol's tag and the request's id. */
export type RequestMessage<Body, Tag extends string = string> = Body & { readonly tag: Tag; readonly id: number };

/** Why a request failed without a reply. */
export type RequestFailureReason =
  /** No reply within the request's timeout. */
  | 'timeout'
  /** The channel refused the message (it closed, or the message cannot be serialized). */
  | 'send-failed'
  /** The channel closed while the request waited. */
  | 'disconnected'
  /** close() was called while the request waited. */
  | 'closed'
  /** `maxPending` requests already waited: refused without sending. */
  | 'overloaded';

/** The error a request rejects with when no reply came; `reason` says why, `message` says it to a person. */
export class ClusterRequestError extends Error {
  readonly reason: RequestFailureReason;

  constructor(reason: RequestFailureReason, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

export interface RequestClientOptions<Body, Tag extends string = string> {
  /** Where requests go and replies come from; the client listens from the first request (or listen()). */
  readonly channel: IpcChannel<RequestMessage<Body, Tag>>;
  /** The protocol's tag: only messages carrying it are looked at. */
  readonly tag: Tag;
  /** The message types that reply to a request (matched by id); other tagged messages go to `onMessage`. */
  readonly replyTypes: readonly string[];
  /** How long a request waits for its reply, unless the request says otherwise. */
  readonly timeoutMs: number;
  /** At most this many requests wait at once; more are refused at once (`overloaded`). Default 1000. */
  readonly maxPending?: number;
  /** Starts every error text (`cluster store: no answer from the primary to put within 2000 ms`). */
  readonly subject: string;
  /** Who answers, in error texts. Default `the primary`. */
  readonly peer?: string;
  /** The tagged messages that are not replies (requests or news from the other end), in order. */
  readonly onMessage?: (message: TaggedMessage) => void;
}

export const DEFAULT_MAX_PENDING_REQUESTS = 1000;

interface PendingRequest {
  /** Runs synchronously as the reply arrives, before any later message is handled. */
  readonly accept: (reply: TaggedMessage) => void;
  readonly fail: (error: ClusterRequestError) => void;
}

/**
 * Request ids are unique within the process, not only within a client: several clients with the same
 * tag may then share one channel, each ignoring the replies to the others.
 */
let lastRequestId = 0;

/** Sends requests on one channel and hands each reply to the request with its id. */
export class RequestClient<Body extends { readonly type: string }, Reply extends { readonly type: string }, Tag extends string = string> {
  readonly #channel: IpcChannel<RequestMessage<Body, Tag>>;
  readonly #tag: Tag;
  readonly #replyTypes: ReadonlySet<unknown>;
  readonly #timeoutMs: number;
  readonly #maxPending: number;
  readonly #subject: string;
  readonly #peer: string;
  readonly #onMessage: ((message: TaggedMessage) => void) | undefined;
  readonly #pending = new Map<number, PendingRequest>();
  #listening = false;
  /** Why the other end could not be reached lately, until a reply comes (health). */
  #lastError: string | undefined;

  constructor(options: RequestClientOptions<Body, Tag>) {
    this.#channel = options.channel;
    this.#tag = options.tag;
    this.#replyTypes = new Set(options.replyTypes);
    this.#timeoutMs = options.timeoutMs;
    this.#maxPending = options.maxPending ?? DEFAULT_MAX_PENDING_REQUESTS;
    this.#subject = options.subject;
    this.#peer = options.peer ?? 'the primary';
    this.#onMessage = options.onMessage;
  }

  /** Requests waiting for their reply. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Why the last request got no reply (timeout, send failure, channel closed), until a reply comes:
   * undefined while the other end answers. A refusal by the other end is a reply, not an outage.
   */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /**
   * Sends `body` as a request and resolves with what `accept` makes of its reply. `accept` runs as the
   * reply arrives, before any later message on the channel; what it throws rejects the request. Rejects
   * with a ClusterRequestError when no reply comes (see RequestFailureReason); never throws.
   */
  request<T>(body: Body, accept: (reply: Reply) => T, options: { readonly timeoutMs?: number } = {}): Promise<T> {
    this.listen();
    return new Promise<T>((resolve, reject) => {
      if (this.#pending.size >= this.#maxPending) {
        reject(this.#error('overloaded', `${this.#maxPending} requests already wait for ${this.#peer}: ${body.type} refused`));
        return;
      }
      const id = ++lastRequestId;
      const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
      const settle = (): boolean => {
        clearTimeout(timer);
        return this.#pending.delete(id);
      };
      const fail = (error: ClusterRequestError): void => {
        if (settle()) reject(error);
      };
      const timer = setTimeout(() => {
        this.#unreachable(fail, this.#error('timeout', `no answer from ${this.#peer} to ${body.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        accept: (reply) => {
          if (!settle()) return;
          this.#lastError = undefined;
          try {
            resolve(accept(reply as unknown as Reply));
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        },
        fail,
      });
      sendMessage(this.#channel, { ...body, tag: this.#tag, id }, (error) => {
        this.#unreachable(fail, this.#error('send-failed', `cannot send ${body.type} to ${this.#peer}: ${error.message}`, error));
        if (isChannelClosedError(error)) this.#channelClosed();
      });
    });
  }

  /** Listens for replies (and `onMessage`'s messages) now rather than from the first request. */
  listen(): void {
    if (this.#listening) return;
    this.#listening = true;
    this.#channel.on('message', this.#onChannelMessage);
    this.#channel.on('disconnect', this.#channelClosed);
    this.#channel.on('exit', this.#channelClosed);
  }

  /** Stops listening; requests still waiting fail (`closed`). A later request listens again. */
  close(): void {
    this.#stopListening();
    this.#failAll(() => this.#error('closed', `closed before ${this.#peer} answered`));
  }

  readonly #onChannelMessage = (message: unknown): void => {
    if (!isTagged(message, this.#tag)) return;
    if (!this.#replyTypes.has(message.type)) {
      this.#onMessage?.(message);
      return;
    }
    // A reply to a request that timed out, to another client's request, or to nobody: ignored.
    if (isRequestId(message.id)) this.#pending.get(message.id)?.accept(message);
  };

  /** The channel closed: nothing waiting will be answered, and nothing more will come. */
  readonly #channelClosed = (): void => {
    this.#stopListening();
    const error = (): ClusterRequestError => this.#error('disconnected', `the channel to ${this.#peer} closed`);
    this.#lastError = error().message;
    this.#failAll(error);
  };

  #stopListening(): void {
    if (!this.#listening) return;
    this.#listening = false;
    this.#channel.off('message', this.#onChannelMessage);
    this.#channel.off('disconnect', this.#channelClosed);
    this.#channel.off('exit', this.#channelClosed);
  }

  /** The other end cannot be reached: health says so until a reply comes. */
  #unreachable(fail: (error: ClusterRequestError) => void, error: ClusterRequestError): void {
    this.#lastError = error.message;
    fail(error);
  }

  #failAll(error: () => ClusterRequestError): void {
    for (const pending of [...this.#pending.values()]) pending.fail(error());
  }

  #error(reason: RequestFailureReason, text: string, cause?: Error): ClusterRequestError {
    return new ClusterRequestError(reason, `${this.#subject}: ${text}`, cause === undefined ? undefined : { cause });
  }
}
