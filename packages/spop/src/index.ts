/**
 * spop: HAProxy's Stream Processing Offload Protocol for Node.js.
 *
 * Layers, each usable alone: codec (bytes <-> frames), connection (the
 * protocol state machine), server (listening, lifecycle), handler (the API
 * message handlers are written against).
 */
export * from './codec/index.js';
export * from './handler/index.js';
export * from './connection/index.js';
export * from './server/index.js';
export * from './options.js';
export * from './logger.js';
export * from './events.js';
