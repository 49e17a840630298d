import { createAuthModule, ensureBootstrapAdmin, type AuthModule } from './core/auth/index.js';
import { createLedgerModule, type LedgerModule } from './ledger/module.js';
import { ledgerRoutes } from './ledger/routes.js';
import { buildServer, type App, type AppPlugin } from './platform/http/server.js';
import { PolicyEngine } from './policy/index.js';
import { createRateLimiter, type RateLimiter } from './core/ratelimit/index.js';
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
}

/** The plugins of each role; every role runs behind the same auth gate. */
function pluginsFor(role: RoleName, auth: AuthModule, ledger: LedgerModule): AppPlugin[] {
  const core = [auth.routes, { name: 'ledger', plugin: ledgerRoutes({ ledger: ledger.ledger, bindTenant: auth.bindTenant }) }];
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

export async function buildRole(platform: Platform, role: RoleName): Promise<RunningRole> {
  const auth = createAuthModule(platform);
  const ledger = await createLedgerModule(platform);
  // Loaded and validated once at startup (a broken policy set stops the process); readiness reports it.
  const policy = await PolicyEngine.load();
  platform.health.register(policy.healthCheck());
  const limiter = createRateLimiter(platform, ledger.audit);
  const app = await buildServer(platform, { role, version: VERSION, gate: auth.gate, limiter: limiter.hook, plugins: pluginsFor(role, auth, ledger) });
  platform.onClose(() => app.close());
  return { app, auth, ledger, policy, limiter };
}

export { ensureBootstrapAdmin };
