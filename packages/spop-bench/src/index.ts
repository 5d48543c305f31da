/**
 * spop-bench: load generation and measurement for SPOP agents (the library
 * behind the `spop-bench` command), on the public API of spop.
 */
export {
  runLoad,
  type LoadOptions,
  type LoadResult,
  type LoadTarget,
  type LoadPhase,
  type AddressFamily,
} from './load.js';
export { LatencyHistogram, type LatencySummary } from './histogram.js';
export {
  readProcessStats,
  readTreeStats,
  treeCpuDelta,
  treeSystemDelta,
  processTree,
  childPids,
  clockTicksPerSecond,
  type ProcessStats,
  type TreeStats,
} from './process-stats.js';
export { startFloorAgent, type FloorAgent, type FloorAgentOptions } from './floor-agent.js';
export { spawnAgent, splitCommand, type SpawnedAgent, type SpawnAgentOptions } from './agent-process.js';
export {
  runBench,
  parseBenchArgs,
  type BenchCliOptions,
  type BenchHooks,
  type BenchReport,
  type RunReport,
  type TargetSummary,
  type Ratios,
} from './cli.js';
