export { SpopConnection, type ConnectionState, type ConnectionHost } from './connection.js';
export { AgentStats } from './stats.js';
export * from './hello.js';
