export {
  ConfigError,
  defaultConfig,
  loadConfigFile,
  parseConfig,
  parseDuration,
  readConfigFile,
  validateConfig,
  type ConfigProblem,
  type ConfigSource,
} from './load.js';
export { defaultWorkers } from './defaults.js';
