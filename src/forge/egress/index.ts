export { buildDeviceRuleset, type DeviceEgressInput } from './ruleset.js';
export { applyEgressRuleset, listEgressRuleset, EgressApplyError, type ApplyEgressOptions } from './apply.js';
