export { SpopConnection, type ConnectionState } from './connection.js';
export { AgentStats } from './stats.js';
export * from './hello.js';
export { type ConnectionHandoverState, type DetachedConnection, MAX_HANDOVER_UNREAD } from './handover.js';
