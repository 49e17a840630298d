export { buildSwitchRuleset, deviceMark, type SwitchEgressInput } from './ruleset.js';
export { enforceEgressScript, listEgressRuleset, EgressApplyError } from './apply.js';
