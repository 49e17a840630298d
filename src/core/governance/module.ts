import type { AuditTrail } from '../../ledger/audit.js';
import type { AppPlugin } from '../../platform/http/server.js';
import type { Platform } from '../../platform/platform.js';
import type { PolicyEngine } from '../../policy/engine.js';
import type { BindTenant } from '../../platform/auth/tenant.js';
import { ActiveVersions } from './active.js';
import type { CanaryEventSource } from './canary.js';
import { governanceRoutes } from './routes.js';
import { GovernanceService } from './service.js';

export interface GovernanceModule {
  readonly active: ActiveVersions;
  readonly service: GovernanceService;
  readonly routes: AppPlugin;
}

/**
 * The deployed versions of governed policies (rules, doctrine, rate limits). Built first in a
 * role: decisions, the rate limiter and governance itself all read it.
 */
export function createActiveVersions(platform: Pick<Platform, 'db' | 'bus' | 'onClose'>): ActiveVersions {
  const active = new ActiveVersions(platform.db, platform.bus);
  platform.onClose(() => active.close());
  return active;
}

export function createGovernanceModule(
  platform: Pick<Platform, 'db' | 'bus' | 'security' | 'metrics'>,
  deps: { active: ActiveVersions; audit: AuditTrail; policy: PolicyEngine; bindTenant: BindTenant; events: CanaryEventSource },
): GovernanceModule {
  const { active } = deps;
  const service = new GovernanceService({
    db: platform.db,
    audit: deps.audit,
    active,
    policy: deps.policy,
    bus: platform.bus,
    security: platform.security,
    events: deps.events,
    metrics: platform.metrics.governance,
  });
  return { active, service, routes: { name: 'governance', plugin: governanceRoutes({ service, bindTenant: deps.bindTenant }) } };
}
