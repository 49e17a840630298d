export { createAccessModule, ACCESS_ROUTES, type AccessModule } from './routes.js';
export { accessLimits, DEFAULT_ACCESS_LIMITS, type AccessLimits } from './limits.js';
export { recordingsDir, parseAsciicast, type AsciicastHeader, type AsciicastEvent } from './recording.js';
export { ACCESS_COOKIE, accessBasePath } from './cookie.js';
export { CLOSE } from './protocol.js';
export type { AccessDeps, GradingPort, ScoreView, CriterionResultView } from './types.js';
export { scoringGradingPort } from './grading.js';
export { createAccessForRole, copyRecordingTo, type AccessRoleDeps } from './module.js';
