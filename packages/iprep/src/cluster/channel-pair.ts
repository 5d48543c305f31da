/**
 * Two ends of an in-process IPC channel, like a node:cluster worker and the primary's handle on it:
 * for unit tests of code that talks over IPC, without forking. Messages travel as JSON copies
 * (what cannot be serialized throws at once, as with Node's channel), in order, on a later turn.
 */
import { EventEmitter } from 'node:events';
import type { IpcChannel } from './channel.js';

export interface ChannelPair<Message> {
  /** The primary's end: what a cluster Worker or a ChildProcess is to the primary. */
  readonly primaryEnd: IpcChannel<Message>;
  /** The worker's end: what `parentChannel()` is in the worker. */
  readonly workerEnd: IpcChannel<Message>;
  /** The worker exits: the primary's end emits `exit`, and later sends fail. */
  exit(): void;
  /** The channel closes: both ends emit `disconnect`, and later sends fail. */
  disconnect(): void;
}

export function channelPair<Message = unknown>(): ChannelPair<Message> {
  const primary = new EventEmitter();
  const worker = new EventEmitter();
  let closed = false;
  const end = (self: EventEmitter, other: EventEmitter): IpcChannel<Message> => ({
    send: (message, callback) => {
      if (closed) {
        // As Node reports a send on a closed channel: to the callback, on a later turn.
        const error = Object.assign(new Error('Channel closed'), { code: 'ERR_IPC_CHANNEL_CLOSED' });
        process.nextTick(callback, error);
        return false;
      }
      const copy: unknown = JSON.parse(JSON.stringify(message));
      setImmediate(() => {
        if (!closed) other.emit('message', copy);
        callback(null);
      });
      return true;
    },
    on: (event, listener) => self.on(event, listener),
    off: (event, listener) => self.off(event, listener),
  });
  return {
    primaryEnd: end(primary, worker),
    workerEnd: end(worker, primary),
    exit: () => {
      closed = true;
      primary.emit('exit');
    },
    disconnect: () => {
      closed = true;
      primary.emit('disconnect');
      worker.emit('disconnect');
    },
  };
}
