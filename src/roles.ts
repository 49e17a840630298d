import { createAuthModule, type AuthModule } from './core/auth/module.js';
import { ensureBootstrapAdmin } from './core/auth/bootstrap.js';
import { createLedgerModule, type LedgerModule } from './ledger/module.js';
import { ledgerRoutes } from './ledger/routes.js';
import { buildServer, type App, type AppPlugin } from './platform/http/server.js';
import { PolicyEngine } from './policy/engine.js';
import { createRateLimiter } from './core/ratelimit/module.js';
import type { RateLimiter } from './core/ratelimit/limiter.js';
import { createGovernanceModule, type GovernanceModule } from './core/governance/module.js';
import type { CanaryEventSource } from './core/governance/canary.js';
import { createDecisionsModule, type DecisionsModule } from './core/decisions/module.js';
import type { Platform } from './platform/platform.js';
import { createForgeModules, type ForgeModules } from './forge/module.js';
import { createScoringModule } from './forge/scoring/module.js';
import { variablesSecretFromConfig } from './forge/orchestrator/variables-secret.js';
import { createWorkerModule } from './forge/worker/module.js';
import { createAccessForRole } from './forge/access/module.js';
import { createConsoleModule, type ConsoleModule } from './core/console/module.js';
import { VERSION } from './version.js';
import type { RoleName } from './role-names.js';

export interface RunningRole {
  readonly app: App;
  readonly auth: AuthModule;
  readonly ledger: LedgerModule;
  readonly policy: PolicyEngine;
  readonly limiter: RateLimiter;
  readonly governance: GovernanceModule;
  readonly decisions: DecisionsModule;
  readonly forge: ForgeModules;
  /** The operators' console (roles all and admin); start() it once the server listens. */
  readonly console?: ConsoleModule;
}

export interface RoleOptions {
  /** Where governance canaries read the tenant's recent events; default: the decision store. */
  readonly canaryEvents?: CanaryEventSource;
  /** The clock console sessions expire by (tests move it). */
  readonly consoleClock?: () => Date;
}

/** Roles that serve the operators' console, and with it the API its pages call. */
const CONSOLE_ROLES: ReadonlySet<RoleName> = new Set(['all', 'admin']);

/** The plugins of each role; every role runs behind the same auth gate. */
function pluginsFor(
  role: RoleName,
  auth: AuthModule,
  ledger: LedgerModule,
  governance: GovernanceModule,
  decisions: DecisionsModule,
  forge: ForgeModules,
  scoreboard: readonly AppPlugin[],
  access: readonly AppPlugin[],
  consolePlugins: readonly AppPlugin[],
): AppPlugin[] {
  const core = [
    auth.routes,
    decisions.routes,
    governance.routes,
    { name: 'ledger', plugin: ledgerRoutes({ ledger: ledger.ledger, bindTenant: auth.bindTenant }) },
  ];
  switch (role) {
    case 'all':
      return [...core, ...forge.plugins, ...scoreboard, ...access, ...consolePlugins];
    case 'core':
      return core;
    case 'spawn':
      return [...forge.plugins, ...access];
    case 'orchestrator':
      return [...forge.plugins];
    case 'admin':
      // The console's pages drive the same API keys do, so the admin role serves it too.
      return [...core, ...scoreboard, ...consolePlugins];
    case 'worker':
      return [];
    case 'scoreboard':
      return [...scoreboard];
  }
}

export async function buildRole(platform: Platform, role: RoleName, options: RoleOptions = {}): Promise<RunningRole> {
  // The limiter is built after governance (it follows governed policies), which needs the auth
  // module; the gate reaches the limiter's invalid-key guard through this late binding.
  let limiterRef: RateLimiter | undefined;
  const ledger = await createLedgerModule(platform);
  const consoleModule = CONSOLE_ROLES.has(role)
    ? createConsoleModule(platform, { audit: ledger.audit, ...(options.consoleClock ? { now: options.consoleClock } : {}) })
    : undefined;
  const auth = createAuthModule(platform, {
    ...(consoleModule ? { sessions: consoleModule.authenticate } : {}),
    audit: ledger.audit,
    onFailOpen: (tenantId, detail) => ledger.failOpen.note(tenantId, 'auth', detail),
    invalidKeyGuard: {
      recordInvalidKey: async (source) => (limiterRef ? limiterRef.recordInvalidKey(source) : { blocked: false, delayMs: 0, retryAfterS: 0 }),
    },
  });
  // Loaded and validated once at startup (a broken policy set stops the process); readiness reports it.
  const policy = await PolicyEngine.load();
  platform.health.register(policy.healthCheck());
  // Canaries replay the events decisions were made from; the decision store needs the deployed
  // versions governance holds, so the source is bound late.
  let decisionsRef: DecisionsModule | undefined;
  const storedEvents: CanaryEventSource = { recentEvents: async (tenant, limit) => (decisionsRef ? decisionsRef.service.recentEvents(tenant, limit) : []) };
  const governance = createGovernanceModule(platform, {
    audit: ledger.audit,
    policy,
    bindTenant: auth.bindTenant,
    events: options.canaryEvents ?? storedEvents,
  });
  const decisions = await createDecisionsModule(platform, {
    active: governance.active,
    bindTenant: auth.bindTenant,
    consumeIngest: role === 'all' || role === 'core',
    audit: ledger.audit,
  });
  decisionsRef = decisions;
  const limiter = createRateLimiter(
    platform,
    ledger.audit,
    async (tenantId) => {
      const active = await governance.active.get(tenantId, 'ratelimit');
      return active.changeId ? active.content.compiled : undefined;
    },
    (tenantId, detail) => ledger.failOpen.note(tenantId, 'ratelimit', detail),
  );
  limiterRef = limiter;
  const forge = await createForgeModules(
    platform,
    { audit: ledger.audit, policy, bindTenant: auth.bindTenant },
    { spawn: role === 'all' || role === 'spawn', orchestrator: role === 'all' || role === 'orchestrator' },
  );
  // The worker role builds labs orchestrators place on it (FG_ORCHESTRATOR_PLACEMENT=workers); no HTTP routes.
  if (role === 'worker') await createWorkerModule(platform);
  const scoring =
    role === 'all' || role === 'scoreboard' || role === 'admin'
      ? await createScoringModule(platform, {
          bindTenant: auth.bindTenant,
          audit: ledger.audit,
          ledger: ledger.ledger,
          catalog: forge.catalog,
          // Same secret as the orchestrator that placed the variables into the lab.
          variableSecret: variablesSecretFromConfig(platform.config),
          // Checks run where the lab is (on a worker agent when labs are placed on workers).
          ...(forge.orchestrator ? { runtime: forge.orchestrator.runtime } : {}),
        })
      : undefined;
  // TTL end grades a running scenario before its lab goes (the orchestrator knows no scoring).
  if (scoring && forge.orchestrator) {
    const grader = scoring.scoring;
    forge.orchestrator.orchestrator.setExpiryGrader(async (tenantId, scenarioId) => {
      await grader.complete(tenantId, scenarioId, { reason: 'ttl', actor: 'system:ttl' });
    });
  }
  // The learner's lab page goes with spawn (it serves the access URLs spawn hands out).
  const access =
    forge.spawn && forge.tokens
      ? createAccessForRole(platform, {
          catalog: forge.catalog,
          tokens: forge.tokens,
          ...(forge.orchestrator ? { orchestrator: forge.orchestrator.orchestrator } : {}),
          ...(scoring ? { scoring: scoring.scoring, storage: scoring.storage } : {}),
          policy,
          audit: ledger.audit,
        })
      : undefined;
  const app = await buildServer(platform, {
    role,
    version: VERSION,
    gate: auth.gate,
    limiter: limiter.hook,
    plugins: pluginsFor(
      role,
      auth,
      ledger,
      governance,
      decisions,
      forge,
      scoring ? [scoring.routes] : [],
      access ? [access.routes] : [],
      consoleModule ? [consoleModule.routes] : [],
    ),
  });
  platform.onClose(() => app.close());
  return { app, auth, ledger, policy, limiter, governance, decisions, forge, ...(consoleModule ? { console: consoleModule } : {}) };
}

export { ensureBootstrapAdmin };
