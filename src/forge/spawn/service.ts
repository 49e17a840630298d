import { createHash } from 'node:crypto';
import type { Database, Tx } from '../../platform/db/database.js';
import { AppError } from '../../platform/http/problem.js';
import { newId } from '../../platform/ids.js';
import type { Logger } from '../../platform/log.js';
import { spawnAuthorizationRequest, spawnRefusalKind } from '../../policy/requests.js';
import type { PolicyDecision } from '../../policy/types.js';
import type { PolicyEngine } from '../../policy/engine.js';
import type { ScenarioStore } from '../orchestrator/store.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import type { LabTemplate } from '../templates/load.js';
import { accessUrl, type AccessTokens } from './access.js';
import type { BillingLedger } from './billing.js';
import type { BillingMode } from '../../config/config.js';
import type { EntitlementService, StoredEntitlement } from './entitlements.js';
import type { ScenarioHandoff } from './handoff.js';
import type { SpawnMetrics, SpawnResult } from './metrics.js';
import { deleteSpawn, findSpawn, insertPendingSpawn, lockTenantSpawns, markLaunched, pendingSpawns, spawnsSince, type SpawnRow } from './store.js';
import type { ScenarioTokens } from '../tokens/scenario-tokens.js';

export interface QuotaLimits {
  readonly maxConcurrentPerSubject: number;
  readonly maxConcurrentPerTenant: number;
  readonly maxSpawnsPerDay: number;
}

export interface SpawnRequest {
  readonly track: string;
  /** A template of the track (GET /v1/catalog lists them); unset: the track's first template by id. */
  readonly template?: string;
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

interface SpawnUsage {
  readonly activeLabsSubject: number;
  readonly activeLabsTenant: number;
  readonly spawnsToday: number;
}

type Admission =
  | { readonly kind: 'existing'; readonly row: SpawnRow }
  | { readonly kind: 'refused'; readonly decision: PolicyDecision; readonly usage: SpawnUsage }
  | { readonly kind: 'admitted'; readonly scenarioId: string; readonly entitlement: StoredEntitlement };

/** How long a pending spawn holds quota: well past the HTTP handoff's 120 s deadline. */
const PENDING_HOLD_MS = 10 * 60_000;

/** Human words for each policy id a spawn can be refused by. */
const REFUSAL_TEXT: Readonly<Record<string, string>> = {
  'training.no_entitlement':
    'the learner holds no entitlement for this track with credits left; buy one, or exchange a receipt at POST /v1/entitlements/exchange (dev and staging: frostgate receipts issue, or POST /v1/receipts)',
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
    const template = this.offeredTemplate(req.track, req.template);
    const digest = bodyDigest(req);
    const presented = req.entitlementToken !== undefined ? await this.presentedEntitlement(req, tenantId, ctx) : undefined;
    const admitted = await this.admit(tenantId, req, template, digest, presented);
    if (admitted.kind === 'existing') return this.replay(tenantId, req, digest, admitted.row, ctx);
    if (admitted.kind === 'refused') this.refuse(tenantId, req, ctx, admitted.decision, admitted.usage);
    const { scenarioId, entitlement } = admitted;
    const claims = { tenant: tenantId, subject: req.subject, scenarioId, track: template.track };
    const sat = await this.deps.tokens.issue('sat', { ...claims, template: `${template.id}@${template.version}` });
    const scenario = await this.launch(tenantId, req, scenarioId, entitlement, sat.token);
    await this.charge(tenantId, req, ctx, template, scenarioId, entitlement);
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

  /** The template the track spawns, or 422 naming the valid tracks. */
  /** The template a spawn launches (422 naming the valid tracks or the track's templates). */
  private offeredTemplate(track: string, id: string | undefined): LabTemplate {
    const template = this.templateFor(track, id);
    if (template) return template;
    if (id !== undefined && this.tracks().includes(track)) {
      this.count(track, 'invalid_track');
      const valid = this.templatesOf(track).map((t) => t.id);
      throw new AppError('unprocessable', `template ${JSON.stringify(id)} is not offered in track ${track}; its templates: ${valid.join(', ')}`, {
        reason: 'unknown_template',
        valid_templates: valid,
      });
    }
    this.count('unknown', 'invalid_track');
    const valid = this.tracks();
    throw new AppError(
      'unprocessable',
      `track ${JSON.stringify(track)} is not offered; valid tracks: ${valid.join(', ') || '(none: no templates are loaded)'}`,
      { reason: 'unknown_track', valid_tracks: valid },
    );
  }

  /**
   * Under the tenant's spawn lock: an earlier request with this id, or the Cedar decision over the
   * entitlement and the usage counted now, and when allowed the reserved credit and the pending row.
   */
  private async admit(tenantId: string, req: SpawnRequest, template: LabTemplate, digest: string, presented: string | undefined): Promise<Admission> {
    const now = this.clock();
    return this.deps.db.withTenant(tenantId, async (tx) => {
      await lockTenantSpawns(tx, tenantId);
      const existing = await findSpawn(tx, req.requestId);
      if (existing) return { kind: 'existing', row: existing };
      const entitlement = await this.deps.entitlements.forSpawn(tx, {
        subject: req.subject,
        track: req.track,
        now,
        ...(presented ? { entitlementId: presented } : {}),
      });
      const usage = await this.usage(tx, req.subject, now);
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
      if (decision.decision !== 'allow') return { kind: 'refused', decision, usage };
      if (!entitlement || !(await this.deps.entitlements.reserveCredit(tx, entitlement.entitlement_id))) {
        // Cedar allowed only with credits left, and the lock keeps them; reaching here is a bug.
        throw new AppError('internal', 'the entitlement allowed by policy has no credit to reserve');
      }
      const scenarioId = newId('scn');
      await insertPendingSpawn(tx, {
        tenantId,
        requestId: req.requestId,
        bodyDigest: digest,
        subject: req.subject,
        track: req.track,
        templateId: template.id,
        templateVersion: template.version,
        scenarioId,
        entitlementId: entitlement.entitlement_id,
        clientId: req.clientId ?? null,
        createdAt: now,
      });
      return { kind: 'admitted', scenarioId, entitlement };
    });
  }

  /**
   * Running labs of the learner and the tenant, and the learner's spawns today (UTC). A pending
   * spawn counts as a running lab while its handoff may still be under way; one older than that
   * (its process died between handoff and bookkeeping) no longer holds quota.
   */
  private async usage(tx: Tx, subject: string, now: Date): Promise<SpawnUsage> {
    const pending = await pendingSpawns(tx, new Date(now.getTime() - PENDING_HOLD_MS));
    const pendingIds = pending.map((r) => r.scenario_id);
    const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    return {
      activeLabsSubject: pending.filter((r) => r.subject === subject).length + (await this.deps.scenarios.countActive(tx, { subject, excluding: pendingIds })),
      activeLabsTenant: pending.length + (await this.deps.scenarios.countActive(tx, { excluding: pendingIds })),
      spawnsToday: await spawnsSince(tx, subject, dayStart),
    };
  }

  /** Hands the SAT to the orchestrator; a lab that cannot be built releases its row and credit. */
  private async launch(tenantId: string, req: SpawnRequest, scenarioId: string, entitlement: StoredEntitlement, sat: string) {
    try {
      if (!this.deps.handoff)
        throw new AppError('unavailable', 'no orchestrator is reachable from this process: set FG_ORCHESTRATOR_URL, or run the orchestrator role here', {
          reason: 'no_orchestrator',
        });
      return await this.deps.handoff.submit(tenantId, sat);
    } catch (err) {
      await this.deps.db.withTenant(tenantId, async (tx) => {
        await deleteSpawn(tx, req.requestId, scenarioId);
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
  }

  /** The lab runs: the spawn is launched and its credit charged (billing event and audit entry). */
  private async charge(tenantId: string, req: SpawnRequest, ctx: SpawnContext, template: LabTemplate, scenarioId: string, entitlement: StoredEntitlement) {
    await this.deps.db.withTenant(tenantId, async (tx) => {
      await markLaunched(tx, req.requestId);
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

  private refuse(tenantId: string, req: SpawnRequest, ctx: SpawnContext, decision: PolicyDecision, usage: SpawnUsage): never {
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

  /**
   * The catalogue: every offered template by track, and with `subject`, what that learner's
   * entitlement allows: the same Cedar training gate a spawn passes, asked for each template
   * with no labs running (quotas are a spawn-time matter, not a property of the entitlement).
   */
  async catalog(tenantId: string, subject: string | undefined): Promise<CatalogView> {
    const now = this.clock();
    const tracks = await Promise.all(
      this.tracks().map(async (track) => {
        const entitlement = subject ? await this.deps.db.withTenant(tenantId, (tx) => this.deps.entitlements.forSpawn(tx, { subject, track, now })) : undefined;
        const templates = this.templatesOf(track).map((t) => {
          const view: CatalogTemplate = {
            id: t.id,
            version: t.version,
            title: t.title,
            description: t.description ?? '',
            tier: t.tier,
            difficulty: t.difficulty ?? null,
            duration_minutes: t.ttl_minutes,
            devices: t.topology.devices.length,
          };
          if (!subject) return view;
          const decision = this.deps.policy.authorize(
            spawnAuthorizationRequest({
              subject,
              tenant: tenantId,
              template: { id: t.id, track: t.track, tier: t.tier },
              ...(entitlement ? { entitlement: entitlementInput(entitlement) } : {}),
              now,
              usage: { activeLabsSubject: 0, activeLabsTenant: 0, spawnsToday: 0 },
              limits: this.deps.limits,
            }),
          );
          const reasons = decision.decision === 'allow' ? [] : [...decision.reasons];
          return { ...view, allowed: decision.decision === 'allow', refusals: reasons.map((r) => ({ reason: r, detail: REFUSAL_TEXT[r] ?? r })) };
        });
        return {
          track,
          templates,
          ...(subject
            ? {
                entitlement: entitlement
                  ? {
                      entitlement_id: entitlement.entitlement_id,
                      tier: entitlement.tier,
                      credits_left: entitlement.credits - entitlement.credits_used,
                      expires_at: entitlement.expires_at,
                    }
                  : null,
              }
            : {}),
        };
      }),
    );
    return { ...(subject ? { subject } : {}), tracks };
  }

  private templatesOf(track: string): LabTemplate[] {
    return this.deps.catalog
      .list()
      .filter((t) => t.track === track)
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  /** The template a spawn launches: the one named (of this track), else the track's first by id. */
  private templateFor(track: string, id: string | undefined): LabTemplate | undefined {
    const of = this.templatesOf(track);
    return id === undefined ? of[0] : of.find((t) => t.id === id);
  }

  private count(track: string, result: SpawnResult): void {
    const known = this.tracks().includes(track) ? track : 'unknown';
    this.deps.metrics.spawns.inc({ track: known, result });
  }
}

export interface CatalogTemplate {
  readonly id: string;
  readonly version: string;
  readonly title: string;
  readonly description: string;
  readonly tier: string;
  readonly difficulty: string | null;
  readonly duration_minutes: number;
  readonly devices: number;
  /** With a subject: whether the learner's entitlement lets them spawn it, and if not why. */
  readonly allowed?: boolean;
  readonly refusals?: Array<{ reason: string; detail: string }>;
}

export interface CatalogView {
  readonly subject?: string;
  readonly tracks: Array<{
    readonly track: string;
    readonly templates: CatalogTemplate[];
    readonly entitlement?: { entitlement_id: string; tier: string; credits_left: number; expires_at: string } | null;
  }>;
}

function entitlementInput(e: StoredEntitlement) {
  return { track: e.track, tier: e.tier, credits: e.credits - e.credits_used, expiresAt: new Date(e.expires_at), subject: e.subject, tenant: e.tenant_id };
}

/** What makes two spawns "the same request": track, subject and template when named (request_id is the key itself). */
function bodyDigest(req: SpawnRequest): string {
  return createHash('sha256')
    .update(JSON.stringify(req.template === undefined ? [req.track, req.subject] : [req.track, req.subject, req.template]))
    .digest('hex');
}

function secondsToNextUtcDay(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}
