export { SpopConnection, type ConnectionState } from './connection.js';
export { AgentStats } from './stats.js';
export * from './hello.js';
