/**
 * The node:cluster IPC channel as both ends use it: the channel type, serving the process at the
 * other end, the worker's channel to its parent, sending without throwing, and the message tag that
 * keeps each protocol's messages apart from any other IPC traffic.
 */

/**
 * One end of an IPC channel: a cluster Worker or a ChildProcess (in the primary), or the worker's own
 * process (see `parentChannel`). `send` must call back with the error rather than emit it.
 */
export interface IpcChannel<Message> {
  send(message: Message, callback: (error: Error | null) => void): boolean;
  on(event: 'message' | 'disconnect' | 'exit', listener: (message: unknown) => void): unknown;
  off(event: 'message' | 'disconnect' | 'exit', listener: (message: unknown) => void): unknown;
}

/**
 * Serves the process at the other end of `channel` (in the primary: a worker) until it disconnects or
 * exits: `onMessage` gets each message, `onDetach` runs once its listeners are gone. `attached` holds
 * the detach function of each channel served, so that serving one twice returns the first.
 */
export function serveChannel<Channel extends IpcChannel<never>>(
  attached: Map<Channel, () => void>,
  channel: Channel,
  onMessage: (message: unknown) => void,
  onDetach: () => void,
): () => void {
  const existing = attached.get(channel);
  if (existing !== undefined) return existing;
  const detach = (): void => {
    channel.off('message', onMessage);
    channel.off('disconnect', detach);
    channel.off('exit', detach);
    attached.delete(channel);
    onDetach();
  };
  channel.on('message', onMessage);
  channel.on('disconnect', detach);
  channel.on('exit', detach);
  attached.set(channel, detach);
  return detach;
}

/** The worker's channel to its parent (the cluster primary, or whoever forked it). */
export function parentChannel<Message>(): IpcChannel<Message> {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('this process has no IPC channel to a primary');
  return {
    send: (message, callback) => send(message, callback),
    on: (event, listener) => process.on(event, listener),
    off: (event, listener) => process.off(event, listener),
  };
}

/**
 * Sends `message` and never throws: a failure, reported by the channel later (it closed) or thrown at
 * once (the message cannot be serialized), goes to `onError`, once. Without `onError` it is dropped:
 * for messages whose loss the other end survives (it times out, or the process is going away).
 */
export function sendMessage<Message>(channel: IpcChannel<Message>, message: Message, onError: (error: Error) => void = () => {}): void {
  try {
    channel.send(message, (error) => {
      if (error) onError(error);
    });
  } catch (error) {
    onError(error instanceof Error ? error : new Error(String(error)));
  }
}

/** True for the error Node reports when sending on a channel that closed: nothing more will get through. */
export function isChannelClosedError(error: Error): boolean {
  return (error as { code?: unknown }).code === 'ERR_IPC_CHANNEL_CLOSED';
}

/** A message of one protocol: tagged with its name, every other field unchecked (it crossed a process boundary). */
export interface TaggedMessage<Tag extends string = string> {
  readonly tag: Tag;
  readonly type?: unknown;
  readonly id?: unknown;
  readonly [field: string]: unknown;
}

/** True when `message` belongs to the protocol named `tag`; other IPC traffic is left alone. */
export function isTagged<Tag extends string>(message: unknown, tag: Tag): message is TaggedMessage<Tag> {
  return typeof message === 'object' && message !== null && (message as { tag?: unknown }).tag === tag;
}

/** True for a request id as this module hands them out: a safe integer. */
export function isRequestId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}
