/**
 * iprep-spoa: an IP-reputation SPOE agent for HAProxy, built on the spop
 * library. The `spoa` command is its front door; this module is what a
 * program embedding the reputation engine needs:
 *
 *   - the configuration: load, parse and validate the YAML file;
 *   - the service (lists, decisions, behaviour, reloads) and the SPOE
 *     handlers to register on a spop Agent, or all of reputation mode wired
 *     around one (runReputationAgent);
 *   - the admin API and Prometheus metrics (admin/README.md);
 *   - the types they speak (types.ts).
 *
 * What they are built from (tables, list sources, stores, the node:cluster
 * plumbing between processes, the command line) stays inside the package.
 */
export * from './types.js';
export {
  ConfigError,
  defaultConfig,
  loadConfigFile,
  parseConfig,
  readConfigFile,
  validateConfig,
  type ConfigProblem,
  type ConfigSource,
} from './config/index.js';
export { IprepService, type IprepServiceOptions } from './service.js';
export {
  CoarseClock,
  type CoarseClockOptions,
  VerdictActions,
  reputationHandler,
  type ReputationEngine,
  type ReputationHandlerOptions,
  type VerdictObserver,
} from './engine/index.js';
export type { BehaviourTracker } from './behaviour/index.js';
export { runReputationAgent, type ReputationAgent, type ReputationAgentOptions } from './reputation-agent.js';
export { randomScoreHandler, CHECK_CLIENT_IP, type RandomScoreOptions } from './random-score.js';
export {
  AdminServer,
  type AdminServerOptions,
  ReputationMetrics,
  type ReputationMetricsOptions,
  type AgentGauges,
  type StatusSnapshot,
} from './admin/index.js';
