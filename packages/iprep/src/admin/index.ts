/** The admin HTTP server, Prometheus metrics and the live status page. */
export {
  type AgentGauges,
  type ListSnapshot,
  type MessageSeries,
  type NamedCount,
  ReputationMetrics,
  type ReputationMetricsOptions,
  type ScoreBucket,
  type StatusCounts,
  type StatusSnapshot,
} from './metrics.js';
export { mergeStatus } from './status.js';
export {
  CLUSTER_METRICS_ENV,
  ClusterMetricsHub,
  type ClusterMetricsHubOptions,
  ClusterMetricsLink,
  type ClusterMetricsLinkOptions,
  type ClusterMetricsMessage,
  type FigureKind,
  type PeerFigures,
  type WorkerPeers,
  hasClusterMetricsHub,
} from './cluster.js';
export { AdminServer, type AdminServerOptions } from './server.js';
