export * from './data.js';
export * from './types.js';
