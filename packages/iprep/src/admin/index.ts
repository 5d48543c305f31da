/** The admin HTTP server, Prometheus metrics and the live status page. */
export {
  type AgentCounters,
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
  type LeftOutWorker,
  type PeerFigures,
  type PeerRequestKind,
  type WorkerPeers,
  hasClusterMetricsHub,
} from './cluster.js';
export {
  AgentWorkers,
  type AgentWorkersOptions,
  type ClusterHealth,
  type ClusterReloadResult,
  type HealthReport,
  type MissingWorkerHealth,
  type WorkerHealth,
  type WorkerReload,
  mergeHealth,
  mergeReload,
  workerHealth,
  workerReload,
} from './workers.js';
export { AdminServer, type AdminServerOptions } from './server.js';
