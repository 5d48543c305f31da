/** The admin HTTP server, Prometheus metrics and the live status page. */
export {
  type AgentGauges,
  type ListSnapshot,
  type NamedCount,
  ReputationMetrics,
  type ReputationMetricsOptions,
  type ScoreBucket,
  type StatusSnapshot,
} from './metrics.js';
export { AdminServer, type AdminServerOptions } from './server.js';
