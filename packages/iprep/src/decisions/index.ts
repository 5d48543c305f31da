export { DecisionIndex, type DecisionIndexOptions } from './decision-index.js';
export {
  DEFAULT_DECISION_SCORES,
  banDecision,
  decisionKey,
  describeTarget,
  makeDecision,
  parseDecisionTarget,
  type DecisionTarget,
} from './decision.js';
