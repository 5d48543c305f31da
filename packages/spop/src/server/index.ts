export { Agent, closeOnSignals, type ListenOptions, type CloseOptions } from './agent.js';
