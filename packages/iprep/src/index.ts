/**
 * iprep-spoa: an IP-reputation SPOE agent for HAProxy, built on the spop
 * library. The `spoa` command is its front door; everything it is made of is
 * exported for embedding and for other agents:
 *
 *   net/        addresses and ranges as bytes
 *   table/      longest-prefix-match interval tables, RFC 6890 special ranges
 *   sources/    list formats, files and URLs with a last good copy
 *   behaviour/  per-client rates, penalties and bans
 *   decisions/  manual and behaviour decisions, their hot-path index
 *   store/      decisions and counters in memory or shared through Redis
 *   engine/     the combination rules and the SPOE handler
 *   config/     the YAML configuration
 *   admin/      the admin API, Prometheus metrics and the status page
 */
export * from './types.js';
export * from './net/address.js';
export * from './table/index.js';
export * from './sources/index.js';
export * from './behaviour/index.js';
export * from './decisions/index.js';
export * from './store/index.js';
export * from './engine/index.js';
export * from './config/index.js';
export * from './admin/index.js';
export { IprepService, type IprepServiceOptions } from './service.js';
export { runReputationAgent, type ReputationAgent, type ReputationAgentOptions } from './reputation-agent.js';
export { randomScoreHandler, CHECK_CLIENT_IP, type RandomScoreOptions } from './random-score.js';
export { parseCli, resolveConfig, USAGE, type CliFlags } from './cli.js';
