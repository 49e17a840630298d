import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Database } from '../../platform/db/database.js';
import { AppError } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import { spawnAuthorizationRequest, spawnRefusalKind } from '../../policy/requests.js';
import type { PolicyDecision } from '../../policy/types.js';
import type { PolicyEngine } from '../../policy/engine.js';
import { newScenarioId } from '../orchestrator/service.js';
import type { ScenarioStore } from '../orchestrator/store.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import type { LabTemplate } from '../templates/load.js';
import { accessUrl, type AccessTokens } from './access.js';
import type { BillingLedger } from './billing.js';
import type { BillingMode } from '../../config/config.js';
import type { EntitlementService, StoredEntitlement } from './entitlements.js';
import type { ScenarioHandoff } from './handoff.js';
import type { SpawnMetrics, SpawnResult } from './metrics.js';
import type { ScenarioTokens } from '../tokens/scenario-tokens.js';

export interface QuotaLimits {
  readonly maxConcurrentPerSubject: number;
  readonly maxConcurrentPerTenant: number;
  readonly maxSpawnsPerDay: number;
}

export interface SpawnRequest {
  readonly track: string;
  readonly subject: string;
  readonly requestId: string;
  readonly clientId?: string;
  /** An entitlement token the client presents; without one the learner's stored entitlement is used. */
  readonly entitlementToken?: string;
}

export interface SpawnContext {
  /** Key id (or principal) asking, for the audit ledger and the security log. */
  readonly actor: string;
  /** Origin access URLs are built under (FG_PUBLIC_URL or the request's). */
  readonly baseUrl: string;
}

export interface SpawnResponse {
  readonly request_id: string;
  readonly scenario_id: string;
  readonly access_url: string;
  readonly access_token: string;
  /** When the access token (and so the access URL) expires. */
  readonly expires_at: string;
  readonly sat: string;
  readonly scenario_expires_at: string | null;
  readonly state: string;
  /** true when this answers a retry of an earlier request_id (nothing new was launched). */
  readonly replayed: boolean;
}

export interface SpawnDeps {
  readonly db: Pick<Database, 'withTenant'>;
  readonly catalog: TemplateCatalog;
  readonly policy: Pick<PolicyEngine, 'authorize'>;
  readonly entitlements: EntitlementService;
  readonly billing: BillingLedger;
  readonly billingMode: BillingMode;
  readonly scenarios: Pick<ScenarioStore, 'countActive' | 'get'>;
  readonly tokens: Pick<ScenarioTokens, 'issue'>;
  readonly access: AccessTokens;
  /** Undefined when no orchestrator is reachable from this process: spawns are then 503. */
  readonly handoff: ScenarioHandoff | undefined;
  readonly limits: QuotaLimits;
  readonly metrics: SpawnMetrics;
  readonly security: Logger;
  readonly clock?: () => Date;
}

interface SpawnRow {
  readonly request_id: string;
  readonly body_digest: string;
  readonly subject: string;
  readonly track: string;
  readonly template_id: string;
  readonly template_version: string;
  readonly scenario_id: string;
  readonly entitlement_id: string | null;
  readonly status: 'pending' | 'launched';
}

/** How long a pending spawn holds quota: well past the HTTP handoff's 120 s deadline. */
const PENDING_HOLD_MS = 10 * 60_000;

/** Human words for each policy id a spawn can be refused by. */
const REFUSAL_TEXT: Readonly<Record<string, string>> = {
  'training.no_entitlement':
    'the learner holds no entitlement for this track with credits left; buy one, or exchange a receipt at POST /v1/entitlements/exchange',
  'training.entitlement_other_subject': 'the entitlement was issued to another learner',
  'training.entitlement_wrong_track': 'the entitlement is for another track',
  'training.entitlement_expired': 'the entitlement has expired',
  'training.no_credits': 'the entitlement has no credits left',
  'training.tier_insufficient': "the entitlement's tier does not cover this template",
  'spawn.entitlement_other_tenant': 'the entitlement belongs to another tenant',
  'spawn.entitlement_without_tenant': 'the entitlement names no tenant',
  'quota.subject_concurrent': 'the learner already has the most labs running at once',
  'quota.tenant_concurrent': 'the tenant already has the most labs running at once',
  'quota.daily_spawns': 'the learner reached the spawns allowed today (UTC)',
};

/**
 * POST /v1/spawn: the monetization choke point. In order: the track must be offered (422
 * naming the valid ones); a known request_id answers its earlier scenario (409 when the body
 * differs); the entitlement, the training and spawn gates and the quotas are one Cedar decision
 * (403 for a training refusal, 429 for a quota), taken under a per-tenant lock together with the
 * reservation of a credit and the pending spawn row, so concurrent spawns cannot overrun a limit;
 * then the SAT goes to the orchestrator, and only once the lab runs is the credit charged
 * (billing event and audit ledger entry). A lab that cannot be built costs nothing.
 */
export class SpawnService {
  private readonly clock: () => Date;

  constructor(private readonly deps: SpawnDeps) {
    this.clock = deps.clock ?? (() => new Date());
  }

  /** Tracks offered: those of the templates present. */
  tracks(): string[] {
    return [...new Set(this.deps.catalog.list().map((t) => t.track))].sort();
  }

  async spawn(tenantId: string, req: SpawnRequest, ctx: SpawnContext): Promise<SpawnResponse> {
    const template = this.templateFor(req.track);
    if (!template) {
      this.count('unknown', 'invalid_track');
      const valid = this.tracks();
      throw new AppError(
        'unprocessable',
        `track ${JSON.stringify(req.track)} is not offered; valid tracks: ${valid.join(', ') || '(none: no templates are loaded)'}`,
        { reason: 'unknown_track', valid_tracks: valid },
      );
    }
    const digest = bodyDigest(req);
    const presented = req.entitlementToken !== undefined ? await this.presentedEntitlement(req, tenantId, ctx) : undefined;
    const now = this.clock();

    const admitted = await this.deps.db.withTenant(tenantId, async (tx) => {
      // One spawn decision at a time per tenant: counting, deciding and reserving are atomic.
      await sql`SELECT pg_advisory_xact_lock(hashtext(${`fg_spawn:${tenantId}`}))`.execute(tx);
      const existing = await sql<SpawnRow>`SELECT * FROM spawn_requests WHERE request_id = ${req.requestId}`.execute(tx);
      if (existing.rows[0]) return { kind: 'existing' as const, row: existing.rows[0] };

      const entitlement = await this.deps.entitlements.forSpawn(tx, {
        subject: req.subject,
        track: req.track,
        now,
        ...(presented ? { entitlementId: presented } : {}),
      });
      // A pending spawn counts as a running lab while its handoff may still be under way; one older
      // than that (its process died between handoff and bookkeeping) no longer holds quota.
      const pendingSince = new Date(now.getTime() - PENDING_HOLD_MS).toISOString();
      const pending = await sql<{
        scenario_id: string;
        subject: string;
      }>`SELECT scenario_id, subject FROM spawn_requests WHERE status = 'pending' AND created_at > ${pendingSince}::timestamptz`.execute(tx);
      const pendingIds = pending.rows.map((r) => r.scenario_id);
      const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
      const today = await sql<{
        n: string;
      }>`SELECT count(*) AS n FROM spawn_requests WHERE subject = ${req.subject} AND created_at >= ${dayStart.toISOString()}::timestamptz`.execute(tx);
      const usage = {
        activeLabsSubject:
          pending.rows.filter((r) => r.subject === req.subject).length +
          (await this.deps.scenarios.countActive(tx, { subject: req.subject, excluding: pendingIds })),
        activeLabsTenant: pending.rows.length + (await this.deps.scenarios.countActive(tx, { excluding: pendingIds })),
        spawnsToday: Number(today.rows[0]?.n ?? 0),
      };
      const decision = this.deps.policy.authorize(
        spawnAuthorizationRequest({
          subject: req.subject,
          tenant: tenantId,
          template: { id: template.id, track: template.track, tier: template.tier },
          ...(entitlement ? { entitlement: entitlementInput(entitlement) } : {}),
          now,
          usage,
          limits: this.deps.limits,
        }),
      );
      if (decision.decision !== 'allow') return { kind: 'refused' as const, decision, usage };
      if (!entitlement || !(await this.deps.entitlements.reserveCredit(tx, entitlement.entitlement_id))) {
        // Cedar allowed only with credits left, and the lock keeps them; reaching here is a bug.
        throw new AppError('internal', 'the entitlement allowed by policy has no credit to reserve');
      }
      const scenarioId = newScenarioId();
      await sql`INSERT INTO spawn_requests (tenant_id, request_id, body_digest, subject, track, template_id, template_version, scenario_id, entitlement_id, client_id, status, created_at)
        VALUES (${tenantId}, ${req.requestId}, ${digest}, ${req.subject}, ${req.track}, ${template.id}, ${template.version}, ${scenarioId}, ${entitlement.entitlement_id}, ${req.clientId ?? null}, 'pending', ${now.toISOString()}::timestamptz)`.execute(
        tx,
      );
      return { kind: 'admitted' as const, scenarioId, entitlement };
    });

    if (admitted.kind === 'existing') return this.replay(tenantId, req, digest, admitted.row, ctx);
    if (admitted.kind === 'refused') this.refuse(tenantId, req, ctx, admitted.decision, admitted.usage);

    const { scenarioId, entitlement } = admitted;
    const claims = { tenant: tenantId, subject: req.subject, scenarioId, track: template.track };
    const sat = await this.deps.tokens.issue('sat', { ...claims, template: `${template.id}@${template.version}` });
    let scenario;
    try {
      if (!this.deps.handoff)
        throw new AppError('unavailable', 'no orchestrator is reachable from this process: set FG_ORCHESTRATOR_URL, or run the orchestrator role here', {
          reason: 'no_orchestrator',
        });
      scenario = await this.deps.handoff.submit(tenantId, sat.token);
    } catch (err) {
      await this.deps.db.withTenant(tenantId, async (tx) => {
        await sql`DELETE FROM spawn_requests WHERE request_id = ${req.requestId} AND scenario_id = ${scenarioId}`.execute(tx);
        await this.deps.entitlements.releaseCredit(tx, entitlement.entitlement_id);
      });
      this.count(req.track, 'failed');
      this.deps.security.warn(
        {
          type: 'spawn_failed',
          tenant_id: tenantId,
          subject: req.subject,
          track: req.track,
          request_id: req.requestId,
          scenario_id: scenarioId,
          err: (err as Error).message,
        },
        'spawn admitted but the lab was not built; nothing was charged',
      );
      if (err instanceof AppError) throw err;
      throw new AppError('unavailable', `the lab could not be built: ${(err as Error).message}`, { reason: 'handoff_failed' });
    }

    await this.deps.db.withTenant(tenantId, async (tx) => {
      await sql`UPDATE spawn_requests SET status = 'launched', launched_at = now() WHERE request_id = ${req.requestId}`.execute(tx);
      await this.deps.billing.record(tx, tenantId, ctx.actor, {
        kind: 'charge',
        mode: this.deps.billingMode,
        subject: req.subject,
        track: template.track,
        entitlementId: entitlement.entitlement_id,
        scenarioId,
        credits: 1,
        amountCents: 0,
        externalRef: req.requestId,
      });
    });
    this.count(req.track, 'created');
    const access = await this.deps.access.issue(claims);
    return {
      request_id: req.requestId,
      scenario_id: scenarioId,
      access_url: accessUrl(ctx.baseUrl, scenarioId, access.token),
      access_token: access.token,
      expires_at: access.expiresAt.toISOString(),
      sat: sat.token,
      scenario_expires_at: scenario.expires_at,
      state: scenario.state,
      replayed: false,
    };
  }

  /** A retry: the same scenario with fresh tokens (tokens are never stored); another body is 409. */
  private async replay(tenantId: string, req: SpawnRequest, digest: string, row: SpawnRow, ctx: SpawnContext): Promise<SpawnResponse> {
    if (row.body_digest !== digest) {
      this.count(row.track, 'conflict');
      throw new AppError(
        'conflict',
        `request_id ${req.requestId} was already used for another spawn (track ${row.track}, subject ${row.subject}); use a new request_id for a new spawn`,
        { reason: 'request_id_reused', scenario_id: row.scenario_id },
      );
    }
    const scenario = await this.deps.scenarios.get(tenantId, row.scenario_id).catch((err: unknown) => {
      if (err instanceof AppError && err.code === 'not_found') return undefined; // still being handed off
      throw err;
    });
    const claims = { tenant: tenantId, subject: row.subject, scenarioId: row.scenario_id, track: row.track };
    const [access, sat] = await Promise.all([
      this.deps.access.issue(claims),
      this.deps.tokens.issue('sat', { ...claims, template: `${row.template_id}@${row.template_version}` }),
    ]);
    this.count(row.track, 'replayed');
    return {
      request_id: req.requestId,
      scenario_id: row.scenario_id,
      access_url: accessUrl(ctx.baseUrl, row.scenario_id, access.token),
      access_token: access.token,
      expires_at: access.expiresAt.toISOString(),
      sat: sat.token,
      scenario_expires_at: scenario?.expires_at ?? null,
      state: scenario?.state ?? row.status,
      replayed: true,
    };
  }

  private refuse(tenantId: string, req: SpawnRequest, ctx: SpawnContext, decision: PolicyDecision, usage: Record<string, number>): never {
    const kind = spawnRefusalKind(decision);
    const reasons = [...decision.reasons];
    this.deps.security.warn(
      {
        type: 'spawn_refused',
        tenant_id: tenantId,
        subject: req.subject,
        track: req.track,
        request_id: req.requestId,
        actor: ctx.actor,
        refusal: kind,
        reasons,
        errors: decision.errors,
        usage,
        policy_version: decision.version,
      },
      'spawn refused by policy',
    );
    if (kind === 'error') {
      this.count(req.track, 'refused_policy');
      throw new AppError('internal', 'the spawn policy could not be evaluated; the request id identifies it in the server logs');
    }
    const detail = reasons.map((r) => REFUSAL_TEXT[r] ?? r).join('; ') || 'no policy allows this spawn';
    const ext = { reason: kind === 'quota' ? 'quota_exceeded' : 'policy_denied', reasons, limits: this.deps.limits, usage, policy_version: decision.version };
    if (kind === 'quota') {
      this.count(req.track, 'refused_quota');
      const headers: Record<string, string> =
        reasons.length === 1 && reasons[0] === 'quota.daily_spawns' ? { 'retry-after': String(secondsToNextUtcDay(this.clock())) } : {};
      throw new AppError('rate_limited', `spawn refused: ${detail}`, ext, headers);
    }
    this.count(req.track, reasons.some((r) => r.startsWith('training.') || r.startsWith('spawn.')) ? 'refused_entitlement' : 'refused_policy');
    throw new AppError('forbidden', `spawn refused: ${detail}`, ext);
  }

  /** The entitlement a presented token names, after checking its signature, expiry and tenant. */
  private async presentedEntitlement(req: SpawnRequest, tenantId: string, ctx: SpawnContext): Promise<string> {
    try {
      const et = await this.deps.entitlements.verifyToken(req.entitlementToken ?? '');
      if (et.tenant !== tenantId) throw new AppError('forbidden', 'entitlement token refused: it belongs to another tenant', { reason: 'entitlement_invalid' });
      return et.jti;
    } catch (err) {
      if (err instanceof AppError) {
        this.count(req.track, 'refused_entitlement');
        this.deps.security.warn(
          {
            type: 'spawn_refused',
            tenant_id: tenantId,
            subject: req.subject,
            track: req.track,
            request_id: req.requestId,
            actor: ctx.actor,
            refusal: 'entitlement_invalid',
            detail: err.detail,
          },
          'spawn refused: entitlement token',
        );
      }
      throw err;
    }
  }

  /** The template a track spawns: its only one, or the first by id when it has several. */
  private templateFor(track: string): LabTemplate | undefined {
    return this.deps.catalog
      .list()
      .filter((t) => t.track === track)
      .sort((a, b) => a.id.localeCompare(b.id))[0];
  }

  private count(track: string, result: SpawnResult): void {
    const known = this.tracks().includes(track) ? track : 'unknown';
    this.deps.metrics.spawns.inc({ track: known, result });
  }
}

function entitlementInput(e: StoredEntitlement) {
  return { track: e.track, tier: e.tier, credits: e.credits - e.credits_used, expiresAt: new Date(e.expires_at), subject: e.subject, tenant: e.tenant_id };
}

/** What makes two spawns "the same request": track and subject (request_id is the key itself). */
function bodyDigest(req: SpawnRequest): string {
  return createHash('sha256')
    .update(JSON.stringify([req.track, req.subject]))
    .digest('hex');
}

function secondsToNextUtcDay(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}
