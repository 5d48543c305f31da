export { ReputationEngine, type CompiledAllowlist, type CompiledList, type EngineConfig, type EngineDependencies } from './engine.js';
export { reputationHandler, VerdictActions, type ReputationHandlerOptions, type VerdictObserver } from './handler.js';
export { combine, harsher, thresholdAction, UNKNOWN_VERDICT, type Thresholds } from './verdict.js';
export { CoarseClock, type CoarseClockOptions } from './clock.js';
