/** Counters kept by an agent across all its connections (plain numbers: cheap to bump, easy to export). */
export class AgentStats {
  /** Connections open now. */
  connections = 0;
  connectionsTotal = 0;
  healthChecks = 0;
  /** NOTIFY frames received and ACK frames sent. */
  notifies = 0;
  acks = 0;
  /** NOTIFY frames being processed now. */
  inFlight = 0;
  /** Messages with no registered handler (answered with no actions). */
  unknownMessages = 0;
  handlerErrors = 0;
  handlerTimeouts = 0;
  /** ACKs whose actions would not fit the negotiated frame size, sent empty instead. */
  oversizedAcks = 0;
  /** Connections closed because the peer broke the protocol. */
  protocolErrors = 0;
  /** Connections whose HAProxy sent a HAPROXY-DISCONNECT. */
  haproxyDisconnects = 0;
  /** Connections closed at accept: beyond `maxConnections`, or refused by `allowConnection`. */
  refusedConnections = 0;
  deniedConnections = 0;
  /** Connections cut for sending no HELLO in time, or no NOTIFY within `idleTimeout` after it. */
  helloTimeouts = 0;
  idleTimeouts = 0;
  /** Bytes held now in partial frames across connections (at most `maxBufferedBytes`). */
  partialFrameBytes = 0;
  /** Connections closed because their partial frame would have exceeded `maxBufferedBytes`. */
  bufferLimitDisconnects = 0;
  /** Connections cut for holding a partial frame longer than `partialFrameTimeout`. */
  partialFrameTimeouts = 0;
  /** Connections handed to another agent (`detach`), taken from one (`adopt`), and refused by `adopt`. */
  connectionsDetached = 0;
  connectionsAdopted = 0;
  adoptionsRefused = 0;

  /** A copy of every counter, for export. */
  snapshot(): Readonly<Record<Exclude<keyof AgentStats, 'snapshot'>, number>> {
    return { ...this };
  }
}
