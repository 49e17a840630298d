import path from 'node:path';
import type { BindTenant } from '../../platform/auth/tenant.js';
import type { AppPlugin } from '../../platform/http/server.js';
import type { Platform } from '../../platform/platform.js';
import { NetnsLabRuntime } from '../runtime/netns/driver.js';
import type { LabRuntime } from '../runtime/types.js';
import type { ScenarioTokens } from '../tokens/scenario-tokens.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import { connect } from 'nats';
import { ScenarioAdmission } from './admission.js';
import { WorkerFleet } from './fleet.js';
import { createOrchestratorMetrics, registerLabGauges } from './metrics.js';
import { orchestratorRoutes } from './routes.js';
import type { AuditTrail } from '../../ledger/audit.js';
import type { ScenarioAudit } from './service.js';
import { Orchestrator, type ExpiryGrader } from './service.js';
import { ScenarioStore } from './store.js';
import { variablesSecretFromConfig } from './variables-secret.js';
import { workerIdFrom } from '../worker/module.js';
import { FleetAuth, fleetSecretFromConfig } from '../worker/channel.js';
import { BusTelemetry, type TelemetrySink } from '../telemetry/publisher.js';

export interface OrchestratorModule {
  readonly orchestrator: Orchestrator;
  readonly store: ScenarioStore;
  /** Where this orchestrator's labs run (graders and terminals reach them through it). */
  readonly runtime: LabRuntime;
  readonly admission: ScenarioAdmission;
  readonly routes: AppPlugin;
  /**
   * Reconciles once, then runs the TTL sweeper and periodic reconcile until the platform closes;
   * with a grader, a running scenario is graded at TTL end before its lab goes.
   */
  start(options?: { gradeAtExpiry?: ExpiryGrader }): Promise<void>;
}

/**
 * The orchestrator of a server process: scenarios in the platform database, templates from the
 * offered catalog, labs in Linux namespaces under `<FG_DATA_DIR>/labs` or, with
 * FG_ORCHESTRATOR_PLACEMENT=workers, on worker agents (--role worker) reached over NATS.
 */
export function createOrchestratorModule(
  platform: Pick<Platform, 'config' | 'db' | 'log' | 'security' | 'health' | 'onClose' | 'metrics' | 'bus'>,
  deps: { catalog: TemplateCatalog; tokens: ScenarioTokens; bindTenant: BindTenant; audit?: Pick<AuditTrail, 'record'> },
): OrchestratorModule {
  const { config } = platform;
  // One process builds its labs itself (as `all` always did); with placement `workers` they go
  // to worker agents through NATS JetStream.
  const fleet = config.forge.placement === 'workers' ? new WorkerFleet({ auth: new FleetAuth(fleetSecretFromConfig(config)) }) : undefined;
  const local = fleet ? undefined : new NetnsLabRuntime({ stateDir: path.join(config.dataDir, 'labs'), egressDryRun: config.egress.dryRun });
  const runtime: LabRuntime = fleet ?? local!;
  const store = new ScenarioStore(platform.db);
  emitLabTransitions(store, new BusTelemetry(platform.bus, (err) => platform.log.debug({ err }, 'telemetry not published')));
  const orchestrator = new Orchestrator({
    store,
    runtime,
    catalog: deps.catalog,
    onProgress: (scenarioId, message) => platform.log.debug({ scenario_id: scenarioId }, message),
    onBackgroundError: (err) => platform.log.warn({ err }, 'scenario sweep or reconcile failed; retrying next interval'),
    variablesSecret: variablesSecretFromConfig(config),
    metrics: createOrchestratorMetrics(platform.metrics.registry),
    ...(deps.audit ? { audit: auditInTenant(platform.db, deps.audit) } : {}),
  });
  // Labs built here count as this host's; with workers, each worker counts its own.
  registerLabGauges(platform.metrics.registry, { worker: workerIdFrom(config.forge.worker.id), runtime, store, running: !fleet });
  const admission = new ScenarioAdmission({ orchestrator, catalog: deps.catalog, tokens: deps.tokens, security: platform.security });
  platform.health.register({
    name: 'labs',
    check: async () => {
      if (!fleet) return { driver: runtime.driver, dry_run: local!.egressDryRun };
      const workers = fleet.liveWorkers();
      // What placement can still use: the sum over live workers (0 free: new labs are refused with 503).
      const sum = (f: (w: (typeof workers)[number]) => number) => workers.reduce((n, w) => n + f(w), 0);
      return {
        driver: runtime.driver,
        workers,
        capacity: { workers: workers.length, labs: sum((w) => w.capacity), running: sum((w) => w.labs), free: sum((w) => Math.max(0, w.free)) },
      };
    },
  });
  return {
    orchestrator,
    store,
    runtime,
    admission,
    routes: { name: 'forge-orchestrator', plugin: orchestratorRoutes({ orchestrator, admission, bindTenant: deps.bindTenant }) },
    async start(options = {}) {
      if (fleet) {
        const nc = await connectFleet(config.nats.url, 'frostgate-orchestrator');
        await fleet.start(nc, {
          workerLost: async (workerId, scenarioIds) => {
            const failed = await orchestrator.failLost(scenarioIds, `worker ${workerId} stopped heartbeating; the lab was lost`);
            platform.log.warn({ worker_id: workerId, failed }, 'worker agent lost; its scenarios were marked failed');
          },
          workerReturned: async (workerId) => {
            const { removed } = await orchestrator.reconcile();
            platform.log.info({ worker_id: workerId, removed }, 'worker agent back; leftover labs reconciled');
          },
          error: (err) => platform.log.warn({ err }, 'worker fleet operation failed'),
        });
        await orchestrator.start(options);
        // The orchestrator's sweeps use the fleet: it stops first.
        platform.onClose(async () => {
          await orchestrator.stop();
          await fleet.stop();
          await nc.drain().catch(() => undefined);
        });
        return;
      }
      await orchestrator.start(options);
      platform.onClose(() => orchestrator.stop());
    },
  };
}

function connectFleet(url: string | undefined, name: string) {
  if (!url) throw new Error('FG_ORCHESTRATOR_PLACEMENT=workers needs FG_NATS_URL: labs are reached on their workers through NATS');
  return connect({ servers: url, name, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 3000 });
}

/**
 * The labs of the fleet for a process without the orchestrator (a split lab page or scoreboard
 * when FG_ORCHESTRATOR_PLACEMENT=workers): it finds each lab's worker and reaches it there
 * (shells, grading checks, copies). Losing or regaining a worker is the orchestrator's business.
 */
export async function createFleetClient(platform: Pick<Platform, 'config' | 'log' | 'onClose'>, name: string): Promise<WorkerFleet> {
  const { config } = platform;
  const fleet = new WorkerFleet({ auth: new FleetAuth(fleetSecretFromConfig(config)) });
  const nc = await connectFleet(config.nats.url, name);
  await fleet.start(nc, {
    workerLost: async () => undefined,
    workerReturned: async () => undefined,
    error: (err) => platform.log.warn({ err }, 'worker fleet operation failed'),
  });
  platform.onClose(async () => {
    await fleet.stop();
    await nc.drain().catch(() => undefined);
  });
  return fleet;
}

/** Lab lifecycle telemetry: every state a scenario enters, from whichever process moved it. */
export function emitLabTransitions(store: Pick<ScenarioStore, 'onTransition'>, telemetry: TelemetrySink): void {
  store.onTransition((s) =>
    telemetry.emit({
      kind: 'lab',
      event: s.state,
      tenant_id: s.tenant_id,
      scenario_id: s.scenario_id,
      track: s.track,
      ...(s.error ? { details: { error: s.error } } : {}),
    }),
  );
}

/** An audit entry in its own tenant transaction (a reset changes the scenario row separately). */
function auditInTenant(db: Pick<Platform['db'], 'withTenant'>, audit: Pick<AuditTrail, 'record'>): ScenarioAudit {
  return async (tenantId, entry) => {
    await db.withTenant(tenantId, async (tx) => {
      await audit.record(tx, tenantId, entry);
    });
  };
}
