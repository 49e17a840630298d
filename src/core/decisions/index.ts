import type { LedgerService } from '../../ledger/service.js';
import type { AppPlugin } from '../../platform/http/server.js';
import type { Platform } from '../../platform/platform.js';
import type { BindTenant } from '../auth/tenant.js';
import type { ActiveVersions } from '../governance/index.js';
import { createDecisionMetrics } from './metrics.js';
import { decisionRoutes } from './routes.js';
import { DecisionService } from './service.js';

export { DecisionService, type DecisionRecord, type DecisionPath } from './service.js';
export { createDecisionMetrics, type DecisionMetrics } from './metrics.js';

export interface DecisionsModule {
  readonly service: DecisionService;
  readonly routes: AppPlugin;
}

export function createDecisionsModule(platform: Pick<Platform, 'db' | 'redis' | 'metrics'>, deps: { ledger: LedgerService; active: ActiveVersions; bindTenant: BindTenant }): DecisionsModule {
  const service = new DecisionService(platform.db, deps.ledger, deps.active, platform.redis, createDecisionMetrics(platform.metrics.registry));
  return { service, routes: { name: 'decisions', plugin: decisionRoutes({ service, bindTenant: deps.bindTenant }) } };
}
