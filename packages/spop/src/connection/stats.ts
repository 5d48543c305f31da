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

  snapshot(): Readonly<Record<Exclude<keyof AgentStats, 'snapshot'>, number>> {
    return { ...this } ;
  }
}
