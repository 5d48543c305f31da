export { randomScoreHandler, CHECK_CLIENT_IP, type RandomScoreOptions } from './random-score.js';
export { parseCli, USAGE } from './cli.js';
