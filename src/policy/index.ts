/** Public interface of the policy module: the Cedar engine, its errors and request builders. */
export { PolicyEngine } from './engine.js';
export { PolicyLoadError, formatIssue, type PolicyIssue, type PolicyLoadErrorCode } from './errors.js';
export { DEFAULT_POLICY_DIR } from './load.js';
export {
  deployAuthorizationRequest,
  spawnAuthorizationRequest,
  spawnRefusalKind,
  extendAuthorizationRequest,
  type ExtendPolicyInput,
  type DeployPolicyInput,
  type SpawnPolicyInput,
  type Tier,
} from './requests.js';
export type {
  AuthorizationRequest,
  CedarValue,
  EntityUid,
  PolicyBundle,
  PolicyDecision,
  PolicyEntity,
  PolicyHealth,
  PolicySources,
  SchemaJsonObject,
} from './types.js';
