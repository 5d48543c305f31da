export { ConfigError, defaultConfig, loadConfigFile, parseConfig, parseDuration, type ConfigProblem } from './load.js';
export { defaultWorkers } from './defaults.js';
