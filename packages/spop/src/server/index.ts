export { Agent, closeOnSignals, type HandOverReceiver, type ListenOptions, type CloseOptions } from './agent.js';
