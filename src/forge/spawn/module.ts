import { randomBytes } from 'node:crypto';
import type { BindTenant } from '../../platform/auth/tenant.js';
import type { AuditTrail } from '../../ledger/audit.js';
import type { AppPlugin } from '../../platform/http/server.js';
import type { Platform } from '../../platform/platform.js';
import type { PolicyEngine } from '../../policy/engine.js';
import type { ScenarioStore } from '../orchestrator/store.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import { AccessTokens } from './access.js';
import { BillingLedger } from './billing.js';
import { EntitlementService } from './entitlements.js';
import type { ScenarioHandoff } from './handoff.js';
import { createSpawnMetrics } from './metrics.js';
import { spawnRoutes } from './routes.js';
import { SpawnService } from './service.js';
import { StripeWebhook } from './stripe-webhook.js';
import type { ScenarioTokens } from '../tokens/scenario-tokens.js';

export interface SpawnModule {
  readonly service: SpawnService;
  readonly entitlements: EntitlementService;
  readonly access: AccessTokens;
  readonly routes: AppPlugin;
}

export interface SpawnModuleDeps {
  readonly audit: AuditTrail;
  readonly policy: PolicyEngine;
  readonly bindTenant: BindTenant;
  readonly catalog: TemplateCatalog;
  readonly tokens: ScenarioTokens;
  /** The orchestrator's scenarios (quota counts and the state of a retried spawn). */
  readonly scenarios: Pick<ScenarioStore, 'countActive' | 'get'>;
  readonly handoff: ScenarioHandoff | undefined;
}

export function createSpawnModule(platform: Pick<Platform, 'config' | 'db' | 'metrics' | 'security' | 'log'>, deps: SpawnModuleDeps): SpawnModule {
  const { config } = platform;
  // Unset secrets are refused at startup in staging and prod; dev and test get per-process ones.
  const ephemeral = (name: string) => {
    platform.log.warn(`${name} is unset: using an ephemeral secret (dev/test only); receipts and entitlement tokens do not survive a restart`);
    return randomBytes(32).toString('base64');
  };
  const secrets = {
    receiptHmacSecret: config.secrets.receiptHmacSecret ?? ephemeral('RECEIPT_HMAC_SECRET'),
    etHmacSecret: config.secrets.etHmacSecret ?? ephemeral('ET_HMAC_SECRET'),
  };
  const billing = new BillingLedger(deps.audit);
  const entitlements = new EntitlementService(platform.db, billing, secrets, config.forge.billingMode, config.env);
  const access = new AccessTokens(deps.tokens);
  const service = new SpawnService({
    db: platform.db,
    catalog: deps.catalog,
    policy: deps.policy,
    entitlements,
    billing,
    billingMode: config.forge.billingMode,
    scenarios: deps.scenarios,
    tokens: deps.tokens,
    access,
    handoff: deps.handoff,
    limits: config.forge.quota,
    metrics: createSpawnMetrics(platform.metrics.registry),
    security: platform.security,
  });
  const stripe = new StripeWebhook({ secret: config.forge.stripeWebhookSecret, entitlements, security: platform.security });
  return {
    service,
    entitlements,
    access,
    routes: {
      name: 'forge-spawn',
      plugin: spawnRoutes({ spawn: service, entitlements, stripe, bindTenant: deps.bindTenant, publicUrl: config.forge.publicUrl }),
    },
  };
}
