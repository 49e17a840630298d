import { createAuthModule, type AuthModule } from './core/auth/module.js';
import { ensureBootstrapAdmin } from './core/auth/bootstrap.js';
import { createLedgerModule, type LedgerModule } from './ledger/module.js';
import { ledgerRoutes } from './ledger/routes.js';
import { buildServer, type App, type AppPlugin } from './platform/http/server.js';
import { PolicyEngine } from './policy/engine.js';
import { createRateLimiter } from './core/ratelimit/module.js';
import type { RateLimiter } from './core/ratelimit/limiter.js';
import { createActiveVersions, createGovernanceModule, type GovernanceModule } from './core/governance/module.js';
import type { ActiveVersions } from './core/governance/active.js';
import type { CanaryEventSource } from './core/governance/canary.js';
import { createDecisionsModule, type DecisionsModule } from './core/decisions/module.js';
import type { Platform } from './platform/platform.js';
import { createForgeModules, type ForgeModules } from './forge/module.js';
import { createScoringModule, type ScoringModule } from './forge/scoring/module.js';
import { variablesSecretFromConfig } from './forge/orchestrator/variables-secret.js';
import { createWorkerModule } from './forge/worker/module.js';
import { createFleetClient } from './forge/orchestrator/module.js';
import type { LabRuntime } from './forge/runtime/types.js';
import { createAccessForRole } from './forge/access/module.js';
import { createPortalForRole } from './forge/portal/module.js';
import { ScenarioStore } from './forge/orchestrator/store.js';
import { createConsoleModule, type ConsoleModule } from './core/console/module.js';
import { VERSION } from './version.js';
import type { RoleName } from './role-names.js';

export interface RunningRole {
  readonly app: App;
  readonly auth: AuthModule;
  readonly ledger: LedgerModule;
  readonly policy: PolicyEngine;
  readonly limiter: RateLimiter;
  /** Built by the roles that serve the core API (all, core, admin). */
  readonly governance?: GovernanceModule;
  readonly decisions?: DecisionsModule;
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
/** Roles that serve the core API (decisions, governance, keys, ledger). */
const CORE_ROLES: ReadonlySet<RoleName> = new Set(['all', 'core', 'admin']);
/** Roles that grade and serve results. */
const SCORING_ROLES: ReadonlySet<RoleName> = new Set(['all', 'scoreboard', 'admin']);

/** The modules a role serves: each is built only where its routes or workers run. */
interface RoleParts {
  readonly core?: { readonly governance: GovernanceModule; readonly decisions: DecisionsModule };
  readonly forge: ForgeModules;
  readonly scoring?: ScoringModule;
  readonly access?: { readonly routes: AppPlugin };
  /** The learner portal (with spawn). */
  readonly portal?: AppPlugin;
  readonly console?: ConsoleModule;
}

/** The plugins of each role; every role runs behind the same auth gate. */
function pluginsFor(role: RoleName, auth: AuthModule, ledger: LedgerModule, parts: RoleParts): AppPlugin[] {
  const core = parts.core
    ? [
        auth.routes,
        parts.core.decisions.routes,
        parts.core.governance.routes,
        { name: 'ledger', plugin: ledgerRoutes({ ledger: ledger.ledger, bindTenant: auth.bindTenant }) },
      ]
    : [];
  const scoreboard = parts.scoring ? [parts.scoring.routes] : [];
  const access = [...(parts.access ? [parts.access.routes] : []), ...(parts.portal ? [parts.portal] : [])];
  const consolePlugins = parts.console ? [parts.console.routes] : [];
  switch (role) {
    case 'all':
      return [...core, ...parts.forge.plugins, ...scoreboard, ...access, ...consolePlugins];
    case 'core':
      return core;
    case 'spawn':
      return [...parts.forge.plugins, ...access];
    case 'orchestrator':
      return [...parts.forge.plugins];
    case 'admin':
      // The console's pages drive the same API keys do, so the admin role serves it too.
      return [...core, ...scoreboard, ...consolePlugins];
    case 'worker':
      return [];
    case 'scoreboard':
      return [...scoreboard];
  }
}

/**
 * Builds a role bottom-up, each module after everything it reads, so nothing is bound late:
 * ledger, deployed policy versions, the rate limiter (its invalid-key guard protects the auth
 * gate), auth, then the core and Forge modules the role serves; the orchestrator starts once the
 * scoring that grades at TTL end exists.
 */
export async function buildRole(platform: Platform, role: RoleName, options: RoleOptions = {}): Promise<RunningRole> {
  const ledger = await createLedgerModule(platform);
  const active = createActiveVersions(platform);
  const limiter = createRateLimiter(
    platform,
    ledger.audit,
    async (tenantId) => {
      const deployed = await active.get(tenantId, 'ratelimit');
      return deployed.changeId ? deployed.content.compiled : undefined;
    },
    (tenantId, detail) => ledger.failOpen.note(tenantId, 'ratelimit', detail),
  );
  const consoleModule = CONSOLE_ROLES.has(role)
    ? createConsoleModule(platform, { audit: ledger.audit, ...(options.consoleClock ? { now: options.consoleClock } : {}) })
    : undefined;
  const auth = createAuthModule(platform, {
    ...(consoleModule ? { sessions: consoleModule.authenticate } : {}),
    audit: ledger.audit,
    onFailOpen: (tenantId, detail) => ledger.failOpen.note(tenantId, 'auth', detail),
    invalidKeyGuard: limiter,
  });
  // Loaded and validated once at startup (a broken policy set stops the process); readiness reports it.
  const policy = await PolicyEngine.load();
  platform.health.register(policy.healthCheck());
  const core = CORE_ROLES.has(role) ? await buildCore(platform, role, { active, ledger, auth, policy }, options) : undefined;
  const forge = await createForgeModules(
    platform,
    { audit: ledger.audit, policy, bindTenant: auth.bindTenant },
    { spawn: role === 'all' || role === 'spawn', orchestrator: role === 'all' || role === 'orchestrator', grading: role === 'scoreboard' || role === 'admin' },
  );
  // The worker role builds labs orchestrators place on it (FG_ORCHESTRATOR_PLACEMENT=workers); no HTTP routes.
  if (role === 'worker') await createWorkerModule(platform);
  // Where graders and lab pages reach labs: through the orchestrator's runtime, else (labs on
  // workers, orchestrator in another process) through a fleet client of their own.
  const needsLabs = role === 'all' || role === 'scoreboard' || role === 'admin' || role === 'spawn';
  const labs: LabRuntime | undefined =
    forge.orchestrator?.runtime ??
    (needsLabs && platform.config.forge.placement === 'workers' ? await createFleetClient(platform, `frostgate-${role}`) : undefined);
  const scoring = SCORING_ROLES.has(role)
    ? await createScoringModule(platform, {
        bindTenant: auth.bindTenant,
        audit: ledger.audit,
        ledger: ledger.ledger,
        catalog: forge.catalog,
        // Same secret as the orchestrator that placed the variables into the lab.
        variableSecret: variablesSecretFromConfig(platform.config),
        // Checks run where the lab is (on a worker agent when labs are placed on workers).
        ...(labs ? { runtime: labs } : {}),
      })
    : undefined;
  if (forge.orchestrator) {
    // TTL end grades a running scenario before its lab goes (the orchestrator knows no scoring).
    const grader = scoring?.scoring;
    await forge.orchestrator.start(
      grader
        ? { gradeAtExpiry: (tenantId, scenarioId) => grader.complete(tenantId, scenarioId, { reason: 'ttl', actor: 'system:ttl' }).then(() => undefined) }
        : {},
    );
  }
  // The learner's lab page goes with spawn (it serves the access URLs spawn hands out).
  const access =
    forge.spawn && forge.tokens
      ? createAccessForRole(platform, {
          catalog: forge.catalog,
          tokens: forge.tokens,
          ...(forge.orchestrator ? { orchestrator: forge.orchestrator.orchestrator } : {}),
          ...(labs ? { runtime: labs } : {}),
          ...(scoring ? { scoring: scoring.scoring, storage: scoring.storage } : {}),
          policy,
          audit: ledger.audit,
        })
      : undefined;
  // The learner portal goes with spawn too: it starts labs through spawn and hands out access links.
  const portal =
    forge.spawn && forge.tokens
      ? await createPortalForRole(platform, {
          tokens: forge.tokens,
          spawn: forge.spawn,
          scenarios: new ScenarioStore(platform.db),
          catalog: forge.catalog,
          bindTenant: auth.bindTenant,
          ...(scoring ? { scoring: scoring.scoring } : {}),
        })
      : undefined;
  const parts: RoleParts = {
    forge,
    ...(core ? { core } : {}),
    ...(scoring ? { scoring } : {}),
    ...(access ? { access } : {}),
    ...(portal ? { portal } : {}),
    ...(consoleModule ? { console: consoleModule } : {}),
  };
  const app = await buildServer(platform, { role, version: VERSION, gate: auth.gate, limiter: limiter.hook, plugins: pluginsFor(role, auth, ledger, parts) });
  platform.onClose(() => app.close());
  return {
    app,
    auth,
    ledger,
    policy,
    limiter,
    forge,
    ...(core ? { governance: core.governance, decisions: core.decisions } : {}),
    ...(consoleModule ? { console: consoleModule } : {}),
  };
}

/** Decisions, then governance, whose canaries replay the events decisions were made from. */
async function buildCore(
  platform: Platform,
  role: RoleName,
  deps: { active: ActiveVersions; ledger: LedgerModule; auth: AuthModule; policy: PolicyEngine },
  options: RoleOptions,
): Promise<NonNullable<RoleParts['core']>> {
  const decisions = await createDecisionsModule(platform, {
    active: deps.active,
    bindTenant: deps.auth.bindTenant,
    // The admin role serves the API for the console; the core processes drain the ingest queue.
    consumeIngest: role === 'all' || role === 'core',
    audit: deps.ledger.audit,
  });
  const governance = createGovernanceModule(platform, {
    active: deps.active,
    audit: deps.ledger.audit,
    policy: deps.policy,
    bindTenant: deps.auth.bindTenant,
    events: options.canaryEvents ?? decisions.service,
  });
  return { governance, decisions };
}

export { ensureBootstrapAdmin };
