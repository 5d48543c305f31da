/**
 * The node:cluster IPC channel as the primary's helpers and the workers' links use it: the shared
 * store (store/cluster.ts) and the admin figures of every worker (admin/cluster.ts).
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
