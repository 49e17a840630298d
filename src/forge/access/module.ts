import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AppPlugin } from '../../platform/http/server.js';
import type { Platform } from '../../platform/platform.js';
import type { Orchestrator } from '../orchestrator/service.js';
import { ScenarioStore } from '../orchestrator/store.js';
import { NetnsLabRuntime } from '../runtime/netns/driver.js';
import type { LabRuntime } from '../runtime/types.js';
import type { ObjectStorage } from '../../platform/storage/types.js';
import type { ScoringService } from '../scoring/service.js';
import type { ScenarioTokens } from '../tokens/scenario-tokens.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import { scoringGradingPort } from './grading.js';
import type { PolicyEngine } from '../../policy/engine.js';
import type { AuditTrail } from '../../ledger/audit.js';
import { accessPlugin, type AccessModule } from './routes.js';
import { createAccessContext } from './context.js';
import type { AccessDeps } from './types.js';
import { BusTelemetry, type TelemetrySink } from '../telemetry/publisher.js';

export interface AccessRoleDeps {
  readonly catalog: TemplateCatalog;
  /** The process's scenario tokens (the ones spawn signs access tokens with). */
  readonly tokens: ScenarioTokens;
  /** Where the labs are (the orchestrator's runtime or a fleet client); absent: this host's netns labs. */
  readonly runtime?: Pick<LabRuntime, 'spawnShell' | 'openShell'>;
  /** Present when this process runs the orchestrator: extend is offered then. */
  readonly orchestrator?: Orchestrator;
  /** Present when this process runs the scoreboard: Submit grades then. */
  readonly scoring?: Pick<ScoringService, 'complete' | 'score' | 'storage'>;
  /** The evidence object store; recordings are copied there when it is not FG_STORAGE_DIR itself. */
  readonly storage?: Pick<ObjectStorage, 'kind' | 'put'>;
  /** The extension gate (policies/extend.cedar). */
  readonly policy?: Pick<PolicyEngine, 'authorize'>;
  /** The audit ledger: each extension and each ended lab is an entry. */
  readonly audit?: Pick<AuditTrail, 'record'>;
}

/** The learner's lab page, its terminals (WebSocket to a PTY in each device), extend, submit, results and End lab. */
export function createAccessModule(deps: AccessDeps): AccessModule {
  const ctx = createAccessContext(deps);
  return { plugin: accessPlugin(ctx), terminals: ctx.terminals };
}

/**
 * The learner's lab page of a server process. Terminals attach to the labs where they run: the
 * orchestrator's runtime or fleet client it is given (labs on worker agents: the shell runs on
 * the worker and is relayed), else this host's netns labs (state under <FG_DATA_DIR>/labs); the
 * recording is written here either way, under
 * FG_STORAGE_DIR/scenarios/{id}/recordings/, where the scoreboard packs them into the evidence.
 */
export function createAccessForRole(
  platform: Pick<Platform, 'config' | 'db' | 'security' | 'onClose' | 'bus'>,
  deps: AccessRoleDeps,
): { module: AccessModule; routes: AppPlugin } {
  const { config } = platform;
  const runtime = deps.runtime ?? new NetnsLabRuntime({ stateDir: path.join(config.dataDir, 'labs'), egressDryRun: config.egress.dryRun });
  const store = new ScenarioStore(platform.db);
  const module = createAccessModule({
    tokens: deps.tokens,
    // Without the orchestrator in this process, scenarios are read from the database and not extended here.
    scenarios: deps.orchestrator ?? {
      get: (tenantId, scenarioId) => store.get(tenantId, scenarioId),
      extend: () => Promise.reject(new Error('extend needs the orchestrator')),
    },
    runtime,
    templates: deps.catalog,
    storageDir: config.storageDir,
    extendMinutes: deps.orchestrator ? 15 : 0,
    security: platform.security,
    onSession: sessionTelemetry(store, new BusTelemetry(platform.bus, (err) => platform.security.debug({ err }, 'telemetry not published'))),
    ...(deps.storage && deps.storage.kind !== 'filesystem' ? { publishRecording: copyRecordingTo(deps.storage, config.storageDir) } : {}),
    ...(deps.scoring ? { grading: scoringGradingPort(deps.scoring) } : {}),
    ...(deps.policy ? { policy: deps.policy } : {}),
    ...(deps.audit ? { audit: auditIn(platform.db, deps.audit) } : {}),
  });
  return { module, routes: { name: 'forge-access', plugin: module.plugin } };
}

/** Copies a recording to the same key in another object store (recordings are small: read whole). */
export function copyRecordingTo(storage: Pick<ObjectStorage, 'put'>, storageDir: string) {
  return async (_scenarioId: string, file: string): Promise<void> => {
    const key = path.relative(storageDir, file).split(path.sep).join('/');
    await storage.put(key, await readFile(file));
  };
}

/** Session telemetry, filed under the scenario's tenant (looked up: a terminal knows its scenario, not its tenant). */
function sessionTelemetry(store: Pick<ScenarioStore, 'states'>, telemetry: TelemetrySink) {
  return (event: 'started' | 'ended', owner: { scenarioId: string; device: string; subject: string }, sessionId: string): void => {
    void store.states([owner.scenarioId]).then(
      ([row]) => {
        if (row)
          telemetry.emit({
            kind: 'session',
            event,
            tenant_id: row.tenant_id,
            scenario_id: owner.scenarioId,
            details: { session_id: sessionId, device: owner.device },
          });
      },
      () => undefined, // best effort, as every telemetry event
    );
  };
}

/** An audit entry in its own tenant transaction (the learner's actions change no other row). */
function auditIn(db: Pick<Platform['db'], 'withTenant'>, audit: Pick<AuditTrail, 'record'>) {
  return async (tenantId: string, entry: { action: string; actor: string; target: string; details: Record<string, unknown> }): Promise<void> => {
    await db.withTenant(tenantId, async (tx) => {
      await audit.record(tx, tenantId, entry);
    });
  };
}
