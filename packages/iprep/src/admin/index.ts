export { type AgentGauges, type ListSnapshot, type NamedCount, ReputationMetrics, type ReputationMetricsOptions, type ScoreBucket, type StatusSnapshot } from './metrics.js';
export { AdminServer, type AdminServerOptions } from './server.js';
export { decisionInputFromJson, parseDuration } from './decision-input.js';
