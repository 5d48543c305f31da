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
