import { createScoringMetrics } from './metrics.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { BindTenant } from '../../platform/auth/tenant.js';
import type { AuditTrail } from '../../ledger/audit.js';
import type { LedgerService } from '../../ledger/service.js';
import type { AppPlugin } from '../../platform/http/server.js';
import type { Platform } from '../../platform/platform.js';
import { ScenarioStore } from '../orchestrator/store.js';
import { NetnsLabRuntime } from '../runtime/netns/driver.js';
import type { LabRuntime } from '../runtime/types.js';
import { storageFromConfig } from '../../platform/storage/from-config.js';
import type { ObjectStorage } from '../../platform/storage/types.js';
import { emitLabTransitions } from '../orchestrator/module.js';
import { BusTelemetry } from '../telemetry/publisher.js';
import { storageHealth } from '../../platform/storage/health.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import { scoringRoutes } from './routes.js';
import { ScoringService } from './service.js';
import { loadVerdictSigningKey } from './verdict.js';
import { publishVerdictKey, VERDICT_KEYS_OBJECT } from './verdict-keys.js';

export interface ScoringModule {
  readonly scoring: ScoringService;
  readonly storage: ObjectStorage;
  readonly routes: AppPlugin;
}

const SWEEP_INTERVAL_MS = 60 * 60_000;
const AUDIT_SCAN_ENTRIES = 2000;

/** The scenario's entries of the tenant audit log (the most recent ones), for audit.jsonl. */
export function ledgerAuditSource(ledger: Pick<LedgerService, 'size' | 'entries'>) {
  return async (tenantId: string, scenarioId: string): Promise<Array<Record<string, unknown>>> => {
    const size = await ledger.size(tenantId, 'audit');
    const out: Array<Record<string, unknown>> = [];
    for (let start = Math.max(0, size - AUDIT_SCAN_ENTRIES); start < size; start += 1000) {
      for (const e of await ledger.entries(tenantId, 'audit', start, Math.min(size, start + 1000))) {
        const record = e.record as Record<string, unknown>;
        if (record.target === scenarioId) out.push({ ledger_index: e.index, ...record });
      }
    }
    return out;
  };
}

/**
 * The scoreboard of a server process: grading on completion, results in object storage with a
 * retention sweeper (filesystem) or lifecycle rule (S3), verdicts signed with SIGNING_KEY_PATH
 * (dev: a key kept in the data directory; an ephemeral key only in test or an in-memory dev
 * database), the key published in the object store's verdict-keys.json.
 */
export async function createScoringModule(
  platform: Pick<Platform, 'config' | 'db' | 'log' | 'onClose' | 'health' | 'metrics' | 'bus'>,
  deps: {
    bindTenant: BindTenant;
    audit: AuditTrail;
    ledger: Pick<LedgerService, 'size' | 'entries'>;
    catalog: TemplateCatalog;
    runtime?: LabRuntime;
    storage?: ObjectStorage;
    variableSecret?: Uint8Array;
  },
): Promise<ScoringModule> {
  const { config } = platform;
  // dev keeps its generated key next to its data (verdicts stay verifiable against the published set).
  const persistDevKey = config.env === 'dev' && platform.db.location !== 'memory';
  const signingKey = await loadVerdictSigningKey({
    keyPath: config.keys.signingKeyPath,
    allowEphemeral: config.env === 'dev' || config.env === 'test',
    dataDir: persistDevKey ? config.dataDir : undefined,
  });
  platform.log.info({ key_id: signingKey.keyId, key_source: signingKey.ephemeral ? 'ephemeral' : signingKey.source }, 'verdict signing key loaded');
  const storage = deps.storage ?? storageFromConfig(config);
  // A key the published set lists as retired stops startup here (VerdictError verdict_key_retired).
  const published = await publishVerdictKey(storage, signingKey);
  if (published.changed && !signingKey.ephemeral) {
    platform.log.info(
      { key_id: signingKey.keyId, retired_key_id: published.retired, location: storage.locate(VERDICT_KEYS_OBJECT) },
      'verdict key published as current in verdict-keys.json',
    );
  }
  const runtime = deps.runtime ?? new NetnsLabRuntime({ stateDir: path.join(config.dataDir, 'labs'), egressDryRun: config.egress.dryRun });
  const telemetry = new BusTelemetry(platform.bus, (err) => platform.log.debug({ err }, 'telemetry not published'));
  const scenarios = new ScenarioStore(platform.db);
  emitLabTransitions(scenarios, telemetry);
  const scoring = new ScoringService({
    db: platform.db,
    scenarios,
    telemetry,
    runtime,
    templates: (id, version) => deps.catalog.get(id, version),
    storage,
    signingKey,
    audit: deps.audit,
    auditSource: ledgerAuditSource(deps.ledger),
    compression: existsSync('/usr/bin/zstd') ? 'zstd' : 'gzip',
    metrics: createScoringMetrics(platform.metrics.registry),
    ...(deps.variableSecret ? { variableSecret: deps.variableSecret } : {}),
  });

  const retain = () =>
    storage.enforceRetention('scenarios/', config.storage.retentionDays).then(
      (r) => r.removed.length > 0 && platform.log.info({ removed: r.removed.length, mechanism: r.mechanism }, 'expired scenario results removed'),
      (err: unknown) => platform.log.warn({ err }, 'result retention failed; retrying next interval'),
    );
  void retain();
  if (storage.kind === 'filesystem') {
    const timer = setInterval(() => void retain(), SWEEP_INTERVAL_MS);
    timer.unref();
    platform.onClose(() => clearInterval(timer));
  }
  platform.health.register(storageHealth(storage));
  platform.health.register({
    name: 'scoreboard',
    check: async () => ({ storage: storage.kind, verdict_key_id: signingKey.keyId, ephemeral_key: signingKey.ephemeral }),
  });
  return { scoring, storage, routes: { name: 'forge-scoreboard', plugin: scoringRoutes({ scoring, bindTenant: deps.bindTenant }) } };
}
