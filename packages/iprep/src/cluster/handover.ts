/**
 * Connections handed from the old workers to the new ones in a rolling restart, through the primary
 * (the only process a cluster worker has a channel to). A retiring worker detaches each connection
 * (spop's `Agent.handOver`) and sends its socket with the negotiated state and the unread bytes; the
 * primary passes it to a worker of the new generation, which adopts it (`Agent.adopt`). Nothing is
 * closed, so HAProxy neither sees a DISCONNECT nor loses the NOTIFY it had already sent.
 *
 * Sockets travel as their bare handles: a net.Socket sent over IPC arrives as a Socket that starts
 * reading at once, and whatever the primary read on its way would be lost to the next worker.
 */
import cluster from 'node:cluster';
import { Socket } from 'node:net';
import type { Agent, DetachedConnection, Logger } from 'spop';
import { MAX_HANDOVER_UNREAD } from 'spop';
import { type TaggedMessage, isTagged, parentChannel } from './channel.js';

export const HANDOVER_TAG = 'iprep-handover';

/** A connection on its way: from the old worker to the primary ('connection'), then on to a new one ('adopt'). */
export interface HandoverMessage extends TaggedMessage<typeof HANDOVER_TAG> {
  readonly type: 'connection' | 'adopt';
  readonly state: unknown;
  /** The unread bytes, base64. */
  readonly unread: string;
}

/** Longest base64 text of MAX_HANDOVER_UNREAD bytes. */
const MAX_UNREAD_TEXT = Math.ceil(MAX_HANDOVER_UNREAD / 3) * 4;

/** A bare stream handle as IPC carries it (libuv's TCP or pipe wrap): it can be sent and closed. */
export interface NativeHandle {
  close(callback?: () => void): void;
}

/** True for a hand-over message of `type` whose fields have the right types and sizes (it crossed a process boundary). */
export function isHandoverMessage(message: unknown, type: HandoverMessage['type']): message is HandoverMessage {
  if (!isTagged(message, HANDOVER_TAG) || message.type !== type) return false;
  return typeof message.state === 'object' && message.state !== null && typeof message.unread === 'string' && message.unread.length <= MAX_UNREAD_TEXT;
}

/** True for something that looks like a handle IPC delivered. */
export function isNativeHandle(handle: unknown): handle is NativeHandle {
  return typeof handle === 'object' && handle !== null && typeof (handle as { close?: unknown }).close === 'function';
}

/** The bare handle of a socket (see the top of this file); undefined once it has none. */
function nativeHandle(socket: Socket): NativeHandle | undefined {
  const handle = (socket as unknown as { _handle?: unknown })._handle;
  return isNativeHandle(handle) ? handle : undefined;
}

/** A Socket around a handle IPC delivered; it reads once listened to. */
function socketOf(handle: NativeHandle): Socket {
  const SocketWithHandle = Socket as unknown as new (options: { handle: NativeHandle; readable: boolean; writable: boolean }) => Socket;
  return new SocketWithHandle({ handle, readable: true, writable: true });
}

/** Sends a message with a handle on the worker's channel to the primary; resolves with the error, if any. */
type SendWithHandle = (message: HandoverMessage, handle: NativeHandle) => Promise<Error | null>;

function sendToPrimary(message: HandoverMessage, handle: NativeHandle): Promise<Error | null> {
  return new Promise((resolve) => {
    try {
      const send = process.send as ((message: unknown, handle: unknown, options: object, callback: (error: Error | null) => void) => boolean) | undefined;
      if (send === undefined) return resolve(new Error('no IPC channel to a primary'));
      send.call(process, message, handle, {}, (error) => resolve(error));
    } catch (error) {
      resolve(error instanceof Error ? error : new Error(String(error)));
    }
  });
}

export interface HandOverOptions {
  /** Time the NOTIFY in flight on a connection get before it is closed instead (the shutdown timeout). */
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** How to reach the primary (tests). */
  readonly send?: SendWithHandle;
}

export interface HandOverSummary {
  /** Sent to the primary, for a new worker. */
  readonly sent: number;
  /** Closed instead, with an AGENT-DISCONNECT: not detachable, or the send failed. */
  readonly closed: number;
}

/**
 * In a retiring worker: stops listening and hands every connection to the primary. A connection
 * that cannot be detached, or whose send fails, is closed gracefully (AGENT-DISCONNECT 0, as a
 * SIGTERM does). This process's copy of each socket is closed once the send went out.
 */
export async function handOverConnections(agent: Agent, options: HandOverOptions): Promise<HandOverSummary> {
  const send = options.send ?? sendToPrimary;
  const before = agent.connections.size;
  let sent = 0;
  let failed = 0;
  const closing: Promise<void>[] = [];
  const receive = async (detached: DetachedConnection): Promise<void> => {
    const handle = nativeHandle(detached.socket);
    const message: HandoverMessage = { tag: HANDOVER_TAG, type: 'connection', state: detached.state, unread: detached.unread.toString('base64') };
    const error = handle === undefined ? new Error('the socket has no handle') : await send(message, handle);
    if (error === null) {
      sent++;
      // The handle is on its way (the kernel holds it): our copy of the descriptor can go.
      detached.socket.destroy();
      return;
    }
    failed++;
    options.logger.warn('connection hand-over failed: closing it', { error: error.message });
    // Adopted back by this closing agent, it answers what it read and says DISCONNECT 0.
    const connection = agent.adopt(detached.socket, detached.state, detached.unread);
    if (connection !== undefined) closing.push(connection.closed);
  };
  await agent.handOver(receive, { timeout: options.timeoutMs });
  await Promise.all(closing);
  const summary = { sent, closed: before - sent };
  options.logger.info('connections handed over to the new workers', { ...summary, failed });
  return summary;
}

export interface AdoptOptions {
  readonly logger: Logger;
}

/**
 * In every worker: adopts the connections the primary passes on (each checked: the message, then the
 * state by `Agent.adopt`). Returns the function that stops listening.
 */
export function adoptHandedConnections(agent: Agent, options: AdoptOptions): () => void {
  const onMessage = (message: unknown, handle: unknown): void => {
    if (!isTagged(message, HANDOVER_TAG)) return;
    if (!isNativeHandle(handle)) return;
    if (!isHandoverMessage(message, 'adopt')) {
      options.logger.warn('malformed connection hand-over: closing the connection');
      handle.close();
      return;
    }
    const connection = agent.adopt(socketOf(handle), message.state, Buffer.from(message.unread, 'base64'));
    if (connection !== undefined) options.logger.debug('connection adopted', { connection: connection.info.id });
  };
  const channel = parentChannel<never>();
  channel.on('message', onMessage as (message: unknown) => void);
  return () => channel.off('message', onMessage as (message: unknown) => void);
}

/**
 * In the primary: passes a connection a retiring worker sent on to `target` (a worker of the new
 * generation), or back to the sender when there is none, whose closing agent then ends it with
 * AGENT-DISCONNECT 0. The primary's copy of the handle is closed once it went out.
 */
export function forwardConnection(
  message: HandoverMessage,
  handle: NativeHandle,
  target: { send(message: HandoverMessage, handle: NativeHandle, callback: (error: Error | null) => void): void } | undefined,
  sender: { send(message: HandoverMessage, handle: NativeHandle, callback: (error: Error | null) => void): void },
  logger: Logger,
): void {
  const adopt: HandoverMessage = { tag: HANDOVER_TAG, type: 'adopt', state: message.state, unread: message.unread };
  const via = target ?? sender;
  if (target === undefined) logger.warn('no new worker to hand a connection to: it goes back to its worker, which closes it');
  try {
    via.send(adopt, handle, (error) => {
      if (error !== null) logger.warn('connection hand-over: cannot pass it on: closed', { error: error.message });
      handle.close();
    });
  } catch (error) {
    logger.warn('connection hand-over: cannot pass it on: closed', { error: String(error) });
    handle.close();
  }
}

export interface ServeHandOversOptions {
  /** Time the NOTIFY in flight on a connection get before it is closed instead (the shutdown timeout). */
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** Called once this worker handed its connections over (or closed them): it then leaves as after SIGTERM. */
  readonly onHandedOver: () => void;
}

/**
 * In a node:cluster worker, before it reports ready: adopts the connections the primary passes on,
 * and when the primary asks (a rolling restart), hands this worker's own over, then `onHandedOver`.
 * A no-op outside a cluster worker.
 */
export function serveHandOvers(agent: Agent, options: ServeHandOversOptions): void {
  if (!cluster.isWorker || process.send === undefined) return;
  adoptHandedConnections(agent, options);
  const channel = parentChannel<never>();
  const onMessage = (message: unknown): void => {
    if (!isTagged(message, HANDOVER_TAG) || message.type !== 'hand-over') return;
    channel.off('message', onMessage);
    options.logger.info('handing the connections over to the new workers');
    void handOverConnections(agent, options)
      .catch((error: unknown) => options.logger.error('connection hand-over failed', { error: String(error) }))
      .finally(options.onHandedOver);
  };
  channel.on('message', onMessage);
}
