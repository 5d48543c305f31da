/**
 * What the test suites and benchmarks share. Importing this index (or ./processes, ./haproxy)
 * registers the clean-up that stops every tracked process when the test file ends; suites that
 * need only ports or polling import ./ports or ./wait.
 */
export * from './event-loop.js';
export * from './haproxy.js';
export * from './http.js';
export * from './load.js';
export * from './paths.js';
export * from './ports.js';
export * from './processes.js';
export * from './redis.js';
export * from './wait.js';
export * from './reputation-stack.js';
