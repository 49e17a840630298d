export type * from './types.js';
export { LabRuntimeError, type LabErrorCode } from './errors.js';
export { validateLabSpec, describeLimits, DEFAULT_LIMITS, WRITABLE_ROOTS } from './spec.js';
export { NetnsLabRuntime, type NetnsRuntimeOptions } from './netns/driver.js';
export { DockerLabRuntime, dockerAvailable, type DockerRuntimeOptions } from './docker/driver.js';
