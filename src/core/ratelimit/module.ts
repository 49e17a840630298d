import type { AuditTrail } from '../../ledger/audit.js';
import type { Platform } from '../../platform/platform.js';
import { RateLimiter, type BypassAudit } from './limiter.js';
import { DEFAULT_RATE_LIMIT_POLICY, type RateLimitPolicy } from './policy.js';

/** The limiter of a role, auditing bypass use into the tenant's audit log. */
export function createRateLimiter(
  platform: Pick<Platform, 'config' | 'redis' | 'metrics' | 'security' | 'db'>,
  audit: AuditTrail,
  policyFor?: (tenantId: string) => Promise<RateLimitPolicy | undefined>,
  onFailOpen?: (tenantId: string, detail: Record<string, unknown>) => void,
  policy: RateLimitPolicy = DEFAULT_RATE_LIMIT_POLICY,
): RateLimiter {
  if (platform.config.rateLimit.failOpen && !platform.config.rateLimit.failOpenAcknowledged) {
    platform.security.warn(
      { type: 'config_warning', component: 'ratelimit' },
      'FG_RL_FAIL_OPEN=true without FG_RL_FAIL_OPEN_ACKNOWLEDGED=true has no effect: rate limits stay fail-closed',
    );
  }
  const bypassAudit: BypassAudit = {
    recordBypass: (tenantId, keyId, route, minute) =>
      platform.db.withTenant(tenantId, async (tx) => {
        await audit.record(tx, tenantId, {
          action: 'ratelimit.bypass',
          actor: keyId,
          target: route,
          details: { minute, aggregated: 'first use per key per minute' },
        });
      }),
  };
  return new RateLimiter(
    {
      config: platform.config,
      redis: platform.redis,
      metrics: { failOpenTriggered: platform.metrics.failOpenTriggered, rateLimit: platform.metrics.rateLimit },
      security: platform.security,
      audit: bypassAudit,
      ...(policyFor ? { policyFor } : {}),
      ...(onFailOpen ? { onFailOpen } : {}),
    },
    policy,
  );
}
