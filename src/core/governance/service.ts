import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { AuditTrail } from '../../ledger/audit.js';
import type { Bus } from '../../platform/bus/bus.js';
import type { Database, Tx } from '../../platform/db/database.js';
import type { ChangeStatus, GovernedKind } from '../../platform/db/schema.js';
import { AppError, conflict, notFound } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import { deployAuthorizationRequest, type PolicyEngine } from '../../policy/index.js';
import type { Principal } from '../auth/principal.js';
import { hasScope } from '../auth/scopes.js';
import { DEPLOYED_SUBJECT, type ActiveVersions } from './active.js';
import { runCanary, type CanaryEventSource, type CanaryResult } from './canary.js';
import { compileContent, InvalidContentError, versionOf } from './kinds.js';
import { assessRisk } from './risk.js';

export const CHANGE_TTL_DAYS = 7;
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export interface ChangeView {
  readonly id: string;
  readonly kind: GovernedKind;
  readonly version: string;
  readonly status: ChangeStatus;
  readonly origin: 'human' | 'analyzer';
  readonly risk: 'low' | 'medium' | 'high';
  readonly risk_reasons: string[];
  readonly required_approvals: number;
  readonly approver_scope: string;
  readonly approvals: Array<{ principal: string; subject: string; decision: 'approve' | 'reject'; reason: string | null; at: string }>;
  readonly justification: string;
  readonly author: string;
  readonly base_version: string;
  readonly previous_version: string | null;
  readonly canary: CanaryResult | null;
  readonly content: unknown;
  readonly created_at: string;
  readonly expires_at: string;
  readonly deployed_at: string | null;
  readonly rolled_back_at: string | null;
  readonly rollback_reason: string | null;
}

export interface ProposeInput {
  readonly kind: GovernedKind;
  readonly content: unknown;
  readonly justification: string;
  readonly origin: 'human' | 'analyzer';
}

export interface GovernanceDeps {
  readonly db: Database;
  readonly audit: AuditTrail;
  readonly active: ActiveVersions;
  readonly policy: Pick<PolicyEngine, 'authorize'>;
  readonly bus: Pick<Bus, 'publish'>;
  readonly security: Logger;
  readonly events: CanaryEventSource;
  readonly metrics?: { inc(labels: { action: string; result: string }): void };
}

function newChangeId(): string {
  let id = 'chg_';
  for (const b of randomBytes(20)) id += ID_ALPHABET[b % ID_ALPHABET.length];
  return id;
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

/**
 * Change control for what decides: nobody changes a ruleset, doctrine or rate-limit policy
 * alone. Every step is checked here, written with its audit-ledger entry in one transaction,
 * and the deploy decision itself is a Cedar policy (policies/governance.cedar).
 */
export class GovernanceService {
  constructor(private readonly deps: GovernanceDeps) {}

  /** Counts every operation by outcome; refusals are the interesting part of the dashboard. */
  private async counted<T>(action: string, op: () => Promise<T>): Promise<T> {
    try {
      const out = await op();
      this.deps.metrics?.inc({ action, result: 'ok' });
      return out;
    } catch (err) {
      this.deps.metrics?.inc({ action, result: err instanceof AppError ? err.code : 'error' });
      throw err;
    }
  }

  private actor(principal: Principal): { key: string; subject: string } {
    return { key: principal.keyId ?? principal.subject, subject: principal.subject };
  }

  private async load(tx: Tx, tenantId: string, id: string, lock = false) {
    let q = tx.selectFrom('governance_changes').selectAll().where('id', '=', id).where('tenant_id', '=', tenantId);
    if (lock) q = q.forUpdate();
    const row = await q.executeTakeFirst();
    if (!row) throw notFound(`change ${id}`);
    return row;
  }

  private async view(tx: Tx, row: Awaited<ReturnType<GovernanceService['load']>>): Promise<ChangeView> {
    const approvals = await tx.selectFrom('governance_approvals').selectAll().where('change_id', '=', row.id).orderBy('at').execute();
    return {
      id: row.id,
      kind: row.kind,
      version: row.version,
      status: row.status,
      origin: row.origin,
      risk: row.risk,
      risk_reasons: row.risk_reasons,
      required_approvals: row.required_approvals,
      approver_scope: row.approver_scope,
      approvals: approvals.map((a) => ({ principal: a.principal_key, subject: a.principal_subject, decision: a.decision, reason: a.reason, at: iso(a.at)! })),
      justification: row.justification,
      author: row.author_key,
      base_version: row.base_version,
      previous_version: row.previous_version,
      canary: (row.canary as CanaryResult | null) ?? null,
      content: row.content,
      created_at: iso(row.created_at)!,
      expires_at: iso(row.expires_at)!,
      deployed_at: iso(row.deployed_at),
      rolled_back_at: iso(row.rolled_back_at),
      rollback_reason: row.rollback_reason,
    };
  }

  async propose(tenantId: string, principal: Principal, input: ProposeInput): Promise<ChangeView> {
    return this.counted('propose', () => this.doPropose(tenantId, principal, input));
  }

  private async doPropose(tenantId: string, principal: Principal, input: ProposeInput): Promise<ChangeView> {
    let compiled;
    try {
      compiled = compileContent(input.kind, input.content);
    } catch (err) {
      if (err instanceof InvalidContentError) throw new AppError('unprocessable', err.message, { errors: err.problems });
      throw err;
    }
    const version = versionOf(input.kind, input.content);
    const current = await this.deps.active.get(tenantId, input.kind);
    if (version === current.version) throw conflict(`version ${version} is already the deployed ${input.kind}; give the proposal a new version`);
    const assessment = assessRisk(input.kind, current.content.source, compiled.source);
    const actor = this.actor(principal);
    const id = newChangeId();
    return this.deps.db.withTenant(tenantId, async (tx) => {
      const existing = await tx.selectFrom('governed_versions').select('version').where('tenant_id', '=', tenantId).where('kind', '=', input.kind).where('version', '=', version).executeTakeFirst();
      if (existing) throw conflict(`${input.kind} version ${version} already exists; versions are immutable, choose a new one`);
      const row = await tx
        .insertInto('governance_changes')
        .values({
          id,
          tenant_id: tenantId,
          kind: input.kind,
          version,
          content: JSON.stringify(input.content),
          justification: input.justification,
          origin: input.origin,
          risk: assessment.risk,
          risk_reasons: assessment.reasons,
          required_approvals: assessment.requiredApprovals,
          approver_scope: assessment.approverScope,
          status: 'proposed',
          author_key: actor.key,
          author_subject: actor.subject,
          base_version: current.version,
          previous_version: null,
          canary: null,
          expires_at: new Date(Date.now() + CHANGE_TTL_DAYS * 86_400_000),
          deployed_at: null,
          rolled_back_at: null,
          rollback_reason: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await this.deps.audit.record(tx, tenantId, { action: 'governance.propose', actor: actor.key, target: id, reason: input.justification, details: { kind: input.kind, version, risk: assessment.risk, origin: input.origin } });
      return this.view(tx, row);
    });
  }

  async get(tenantId: string, id: string): Promise<ChangeView> {
    return this.deps.db.withTenant(tenantId, async (tx) => this.view(tx, await this.load(tx, tenantId, id)));
  }

  async list(tenantId: string, opts: { status?: ChangeStatus; limit?: number } = {}): Promise<ChangeView[]> {
    return this.deps.db.withTenant(tenantId, async (tx) => {
      let q = tx.selectFrom('governance_changes').selectAll().where('tenant_id', '=', tenantId).orderBy('created_at', 'desc').limit(opts.limit ?? 100);
      if (opts.status) q = q.where('status', '=', opts.status);
      const rows = await q.execute();
      return Promise.all(rows.map((r) => this.view(tx, r)));
    });
  }

  /** Expired proposals become `expired` when touched; nothing acts on them after. */
  private async expireIfDue(tx: Tx, row: Awaited<ReturnType<GovernanceService['load']>>): Promise<ChangeStatus> {
    if ((row.status === 'proposed' || row.status === 'approved') && new Date(row.expires_at).getTime() <= Date.now()) {
      await tx.updateTable('governance_changes').set({ status: 'expired' }).where('id', '=', row.id).execute();
      return 'expired';
    }
    return row.status;
  }

  async approve(tenantId: string, principal: Principal, id: string, reason?: string): Promise<ChangeView> {
    return this.counted('approve', () => this.doApprove(tenantId, principal, id, reason));
  }

  private async doApprove(tenantId: string, principal: Principal, id: string, reason?: string): Promise<ChangeView> {
    const actor = this.actor(principal);
    type Outcome = { refused: AppError } | { view: ChangeView };
    const result = await this.deps.db.withTenant(tenantId, async (tx): Promise<Outcome> => {
      const row = await this.load(tx, tenantId, id, true);
      const status = await this.expireIfDue(tx, row);
      if (status !== 'proposed' && status !== 'approved') return { refused: conflict(`change ${id} is ${status}; only proposed changes can be approved`, { change_status: status }) };
      if (actor.key === row.author_key || actor.subject === row.author_subject) {
        return { refused: new AppError('forbidden', 'the author of a change cannot approve it; another principal must', { reason: 'self_approval' }) };
      }
      if (!hasScope(principal.scopes, row.approver_scope)) {
        return { refused: new AppError('missing_scope', `this ${row.risk}-risk change needs approvers holding ${row.approver_scope}`, { missing_scopes: [row.approver_scope] }) };
      }
      const inserted = await sql<{ change_id: string }>`
        INSERT INTO governance_approvals (change_id, tenant_id, principal_key, principal_subject, decision, reason)
        VALUES (${id}, ${tenantId}, ${actor.key}, ${actor.subject}, 'approve', ${reason ?? null})
        ON CONFLICT DO NOTHING RETURNING change_id`.execute(tx);
      if (inserted.rows.length === 0) return { refused: conflict(`${actor.key} already approved change ${id}`) };
      const count = await tx.selectFrom('governance_approvals').select((e) => e.fn.countAll<number>().as('n')).where('change_id', '=', id).where('decision', '=', 'approve').executeTakeFirstOrThrow();
      if (Number(count.n) >= row.required_approvals) await tx.updateTable('governance_changes').set({ status: 'approved' }).where('id', '=', id).execute();
      await this.deps.audit.record(tx, tenantId, { action: 'governance.approve', actor: actor.key, target: id, ...(reason ? { reason } : {}), details: { approvals: Number(count.n), required: row.required_approvals } });
      return { view: await this.view(tx, await this.load(tx, tenantId, id)) };
    });
    if ('refused' in result) {
      this.deps.security.warn({ type: 'governance', action: 'approve_refused', change_id: id, key_id: actor.key, reason: result.refused.detail }, 'governance approval refused');
      throw result.refused;
    }
    this.deps.security.info({ type: 'governance', action: 'approve', change_id: id, key_id: actor.key }, 'governance change approved');
    return result.view;
  }

  async reject(tenantId: string, principal: Principal, id: string, reason: string): Promise<ChangeView> {
    return this.counted('reject', () => this.doReject(tenantId, principal, id, reason));
  }

  private async doReject(tenantId: string, principal: Principal, id: string, reason: string): Promise<ChangeView> {
    const actor = this.actor(principal);
    return this.transitionFrom(tenantId, id, ['proposed', 'approved'], 'rejected', async (tx, row) => {
      if (!hasScope(principal.scopes, row.approver_scope)) throw new AppError('missing_scope', `rejecting needs ${row.approver_scope}`, { missing_scopes: [row.approver_scope] });
      await tx.insertInto('governance_approvals').values({ change_id: id, tenant_id: tenantId, principal_key: actor.key, principal_subject: actor.subject, decision: 'reject', reason }).onConflict((oc) => oc.doNothing()).execute();
      await this.deps.audit.record(tx, tenantId, { action: 'governance.reject', actor: actor.key, target: id, reason });
      this.deps.security.info({ type: 'governance', action: 'reject', change_id: id, key_id: actor.key, reason }, 'governance change rejected');
    });
  }

  async withdraw(tenantId: string, principal: Principal, id: string, reason?: string): Promise<ChangeView> {
    return this.counted('withdraw', () => this.doWithdraw(tenantId, principal, id, reason));
  }

  private async doWithdraw(tenantId: string, principal: Principal, id: string, reason?: string): Promise<ChangeView> {
    const actor = this.actor(principal);
    return this.transitionFrom(tenantId, id, ['proposed', 'approved'], 'withdrawn', async (tx, row) => {
      if (actor.key !== row.author_key && actor.subject !== row.author_subject) throw new AppError('forbidden', 'only the author can withdraw a change; others can reject it');
      await this.deps.audit.record(tx, tenantId, { action: 'governance.withdraw', actor: actor.key, target: id, ...(reason ? { reason } : {}) });
    });
  }

  private async transitionFrom(tenantId: string, id: string, from: ChangeStatus[], to: ChangeStatus, check: (tx: Tx, row: Awaited<ReturnType<GovernanceService['load']>>) => Promise<void>): Promise<ChangeView> {
    return this.deps.db.withTenant(tenantId, async (tx) => {
      const row = await this.load(tx, tenantId, id, true);
      const status = await this.expireIfDue(tx, row);
      if (!from.includes(status)) throw conflict(`change ${id} is ${status}; cannot move it to ${to}`, { change_status: status });
      await check(tx, row);
      await tx.updateTable('governance_changes').set({ status: to }).where('id', '=', id).execute();
      return this.view(tx, await this.load(tx, tenantId, id));
    });
  }

  /** Replays recent events through deployed and proposed versions; stores the result on the change. */
  async canary(tenantId: string, principal: Principal, id: string, limit = 1000): Promise<ChangeView> {
    return this.counted('canary', () => this.doCanary(tenantId, principal, id, limit));
  }

  private async doCanary(tenantId: string, principal: Principal, id: string, limit: number): Promise<ChangeView> {
    const change = await this.get(tenantId, id);
    if (change.status !== 'proposed' && change.status !== 'approved') throw conflict(`change ${id} is ${change.status}; canaries run on proposed or approved changes`, { change_status: change.status });
    const [ruleset, doctrine] = await Promise.all([this.deps.active.get(tenantId, 'ruleset'), this.deps.active.get(tenantId, 'doctrine')]);
    const deployed = { ruleset: ruleset.content.compiled, doctrine: doctrine.content.compiled };
    const proposed = {
      ruleset: change.kind === 'ruleset' ? compileContent('ruleset', change.content).compiled : deployed.ruleset,
      doctrine: change.kind === 'doctrine' ? compileContent('doctrine', change.content).compiled : deployed.doctrine,
    };
    const events = await this.deps.events.recentEvents(tenantId, limit);
    const result = await runCanary(tenantId, events, deployed, proposed);
    const actor = this.actor(principal);
    return this.deps.db.withTenant(tenantId, async (tx) => {
      await tx.updateTable('governance_changes').set({ canary: JSON.stringify(result) }).where('id', '=', id).execute();
      await this.deps.audit.record(tx, tenantId, { action: 'governance.canary', actor: actor.key, target: id, details: { events_replayed: result.events_replayed, decisions_changed: result.decisions_changed, newly_blocked: result.newly_blocked.length } });
      return this.view(tx, await this.load(tx, tenantId, id));
    });
  }

  /** Atomic switch to the change's version, if the Cedar deploy gate allows it. */
  async deploy(tenantId: string, principal: Principal, id: string): Promise<ChangeView> {
    return this.counted('deploy', () => this.doDeploy(tenantId, principal, id));
  }

  private async doDeploy(tenantId: string, principal: Principal, id: string): Promise<ChangeView> {
    const actor = this.actor(principal);
    // A refusal is returned, not thrown, so its audit entry commits.
    const outcome = await this.deps.db.withTenant(tenantId, async (tx): Promise<{ refused: AppError } | { view: ChangeView }> => {
      const row = await this.load(tx, tenantId, id, true);
      const status = await this.expireIfDue(tx, row);
      if (status !== 'approved' && status !== 'proposed') return { refused: conflict(`change ${id} is ${status}; only approved changes deploy`, { change_status: status }) };
      const approvals = await tx.selectFrom('governance_approvals').select((e) => e.fn.countAll<number>().as('n')).where('change_id', '=', id).where('decision', '=', 'approve').executeTakeFirstOrThrow();
      const canary = row.canary as CanaryResult | null;
      const decision = this.deps.policy.authorize(
        deployAuthorizationRequest({
          operator: actor.subject,
          change: {
            id,
            tenant: tenantId,
            kind: row.kind,
            risk: row.risk,
            origin: row.origin,
            approvals: Number(approvals.n),
            requiredApprovals: row.required_approvals,
            ...(canary ? { canary: { passed: canary.passed, eventsReplayed: canary.events_replayed, decisionsChanged: canary.decisions_changed, newlyBlockedEntities: canary.newly_blocked.length } } : {}),
          },
        }),
      );
      if (decision.decision !== 'allow') {
        await this.deps.audit.record(tx, tenantId, { action: 'governance.deploy_refused', actor: actor.key, target: id, details: { policy_version: decision.version, reasons: decision.reasons } });
        return { refused: new AppError('conflict', `the deploy gate refused change ${id}: ${decision.reasons.length > 0 ? decision.reasons.join(', ') : 'no policy permits it (approvals or canary missing)'}`, { reasons: decision.reasons, policy_version: decision.version }) };
      }
      const current = await tx.selectFrom('governed_active').select(['version']).where('tenant_id', '=', tenantId).where('kind', '=', row.kind).executeTakeFirst();
      await tx.insertInto('governed_versions').values({ tenant_id: tenantId, kind: row.kind, version: row.version, content: JSON.stringify(row.content), change_id: id }).onConflict((oc) => oc.doNothing()).execute();
      await tx
        .insertInto('governed_active')
        .values({ tenant_id: tenantId, kind: row.kind, version: row.version, change_id: id })
        .onConflict((oc) => oc.columns(['tenant_id', 'kind']).doUpdateSet({ version: row.version, change_id: id, deployed_at: sql`now()` }))
        .execute();
      await tx.updateTable('governance_changes').set({ status: 'deployed', deployed_at: new Date(), previous_version: current?.version ?? row.base_version }).where('id', '=', id).execute();
      await this.deps.audit.record(tx, tenantId, { action: 'governance.deploy', actor: actor.key, target: id, details: { kind: row.kind, version: row.version, previous_version: current?.version ?? row.base_version, policy_version: decision.version } });
      return { view: await this.view(tx, await this.load(tx, tenantId, id)) };
    });
    if ('refused' in outcome) {
      this.deps.security.warn({ type: 'governance', action: 'deploy_refused', change_id: id, key_id: actor.key, reason: outcome.refused.detail }, 'governance deploy refused');
      throw outcome.refused;
    }
    const view = outcome.view;
    await this.announce(tenantId, view.kind, view.version);
    this.deps.security.info({ type: 'governance', action: 'deploy', change_id: id, key_id: actor.key, kind: view.kind, version: view.version }, 'governance change deployed');
    return view;
  }

  /** Restores the version that ran before this change; decisions after it name that version. */
  async rollback(tenantId: string, principal: Principal, id: string, reason: string): Promise<ChangeView> {
    return this.counted('rollback', () => this.doRollback(tenantId, principal, id, reason));
  }

  private async doRollback(tenantId: string, principal: Principal, id: string, reason: string): Promise<ChangeView> {
    const actor = this.actor(principal);
    const view = await this.deps.db.withTenant(tenantId, async (tx) => {
      const row = await this.load(tx, tenantId, id, true);
      if (row.status !== 'deployed') throw conflict(`change ${id} is ${row.status}; only a deployed change can be rolled back`, { change_status: row.status });
      const active = await tx.selectFrom('governed_active').select(['change_id']).where('tenant_id', '=', tenantId).where('kind', '=', row.kind).forUpdate().executeTakeFirst();
      if (active?.change_id !== id) throw conflict(`change ${id} is no longer the active ${row.kind}; roll back the change that replaced it first`);
      const previous = row.previous_version ?? row.base_version;
      const previousRow = await tx.selectFrom('governed_versions').select(['change_id']).where('tenant_id', '=', tenantId).where('kind', '=', row.kind).where('version', '=', previous).executeTakeFirst();
      if (previousRow) {
        await tx.updateTable('governed_active').set({ version: previous, change_id: previousRow.change_id, deployed_at: sql`now()` }).where('tenant_id', '=', tenantId).where('kind', '=', row.kind).execute();
      } else {
        // The previous version was the shipped default: no row means "run the default".
        await tx.deleteFrom('governed_active').where('tenant_id', '=', tenantId).where('kind', '=', row.kind).execute();
      }
      await tx.updateTable('governance_changes').set({ status: 'rolled_back', rolled_back_at: new Date(), rollback_reason: reason }).where('id', '=', id).execute();
      await this.deps.audit.record(tx, tenantId, { action: 'governance.rollback', actor: actor.key, target: id, reason, details: { kind: row.kind, restored_version: previous } });
      return this.view(tx, await this.load(tx, tenantId, id));
    });
    await this.announce(tenantId, view.kind, view.previous_version ?? view.base_version);
    this.deps.security.warn({ type: 'governance', action: 'rollback', change_id: id, key_id: actor.key, reason }, 'governance change rolled back');
    return view;
  }

  private async announce(tenantId: string, kind: GovernedKind, version: string): Promise<void> {
    this.deps.active.invalidate(tenantId, kind);
    await this.deps.bus.publish(DEPLOYED_SUBJECT, { tenant: tenantId, kind, version });
  }
}
