export { BehaviourTracker, type BanEvent, type BehaviourTrackerOptions } from './tracker.js';
