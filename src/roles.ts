import { createAuthModule, ensureBootstrapAdmin, type AuthModule } from './core/auth/index.js';
import { createLedgerModule, type LedgerModule } from './ledger/module.js';
import { ledgerRoutes } from './ledger/routes.js';
import { buildServer, type App, type AppPlugin } from './platform/http/server.js';
import { PolicyEngine } from './policy/index.js';
import { createRateLimiter, type RateLimiter } from './core/ratelimit/index.js';
import { createGovernanceModule, type CanaryEventSource, type GovernanceModule } from './core/governance/index.js';
import { createDecisionsModule, type DecisionsModule } from './core/decisions/index.js';
import type { Platform } from './platform/platform.js';
import { VERSION } from './version.js';

/**
 * A role is a set of plugins on one port. `all` runs every plugin in one process (npm start);
 * the others split the product across processes and machines, each on the seed's port.
 */
export const ROLE_PORTS = {
  all: 8080,
  core: 8080,
  admin: 8081,
  spawn: 8082,
  orchestrator: 8083,
  worker: 8084,
  scoreboard: 8086,
} as const;

export type RoleName = keyof typeof ROLE_PORTS;
export const ROLE_NAMES = Object.keys(ROLE_PORTS) as RoleName[];

export function isRoleName(value: string): value is RoleName {
  return Object.hasOwn(ROLE_PORTS, value);
}

export interface RunningRole {
  readonly app: App;
  readonly auth: AuthModule;
  readonly ledger: LedgerModule;
  readonly policy: PolicyEngine;
  readonly limiter: RateLimiter;
  readonly governance: GovernanceModule;
  readonly decisions: DecisionsModule;
}

export interface RoleOptions {
  /** Where governance canaries read the tenant's recent events; default: the decision store. */
  readonly canaryEvents?: CanaryEventSource;
}

/** The plugins of each role; every role runs behind the same auth gate. */
function pluginsFor(role: RoleName, auth: AuthModule, ledger: LedgerModule, governance: GovernanceModule, decisions: DecisionsModule): AppPlugin[] {
  const core = [auth.routes, decisions.routes, governance.routes, { name: 'ledger', plugin: ledgerRoutes({ ledger: ledger.ledger, bindTenant: auth.bindTenant }) }];
  switch (role) {
    case 'all':
      return [...core];
    case 'core':
      return core;
    case 'admin':
    case 'spawn':
    case 'orchestrator':
    case 'worker':
    case 'scoreboard':
      return [];
  }
}

export async function buildRole(platform: Platform, role: RoleName, options: RoleOptions = {}): Promise<RunningRole> {
  // The limiter is built after governance (it follows governed policies), which needs the auth
  // module; the gate reaches the limiter's invalid-key guard through this late binding.
  let limiterRef: RateLimiter | undefined;
  const ledger = await createLedgerModule(platform);
  const auth = createAuthModule(platform, {
    audit: ledger.audit,
    onFailOpen: (tenantId, detail) => ledger.failOpen.note(tenantId, 'auth', detail),
    invalidKeyGuard: { recordInvalidKey: async (source) => (limiterRef ? limiterRef.recordInvalidKey(source) : { blocked: false, delayMs: 0, retryAfterS: 0 }) },
  });
  // Loaded and validated once at startup (a broken policy set stops the process); readiness reports it.
  const policy = await PolicyEngine.load();
  platform.health.register(policy.healthCheck());
  // Canaries replay the events decisions were made from; the decision store needs the deployed
  // versions governance holds, so the source is bound late.
  let decisionsRef: DecisionsModule | undefined;
  const storedEvents: CanaryEventSource = { recentEvents: async (tenant, limit) => (decisionsRef ? decisionsRef.service.recentEvents(tenant, limit) : []) };
  const governance = createGovernanceModule(platform, { audit: ledger.audit, policy, bindTenant: auth.bindTenant, events: options.canaryEvents ?? storedEvents });
  const decisions = await createDecisionsModule(platform, { ledger: ledger.ledger, active: governance.active, bindTenant: auth.bindTenant, consumeIngest: role === 'all' || role === 'core' });
  decisionsRef = decisions;
  const limiter = createRateLimiter(platform, ledger.audit, async (tenantId) => {
    const active = await governance.active.get(tenantId, 'ratelimit');
    return active.changeId ? active.content.compiled : undefined;
  }, (tenantId, detail) => ledger.failOpen.note(tenantId, 'ratelimit', detail));
  limiterRef = limiter;
  const app = await buildServer(platform, { role, version: VERSION, gate: auth.gate, limiter: limiter.hook, plugins: pluginsFor(role, auth, ledger, governance, decisions) });
  platform.onClose(() => app.close());
  return { app, auth, ledger, policy, limiter, governance, decisions };
}

export { ensureBootstrapAdmin };
