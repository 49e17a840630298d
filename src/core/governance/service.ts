import type { AuditTrail } from '../../ledger/audit.js';
import type { Bus } from '../../platform/bus/bus.js';
import type { Database, Tx } from '../../platform/db/database.js';
import type { ChangeStatus, GovernedKind } from '../../platform/db/schema.js';
import { AppError, conflict } from '../../platform/http/problem.js';
import { newId } from '../../platform/ids.js';
import type { Logger } from '../../platform/log.js';
import { deployAuthorizationRequest } from '../../policy/requests.js';
import type { PolicyEngine } from '../../policy/engine.js';
import type { Principal } from '../../platform/auth/principal.js';
import { hasScope } from '../../platform/auth/scopes.js';
import { DEPLOYED_SUBJECT, type ActiveVersions } from './active.js';
import { runCanary, type CanaryEventSource, type CanaryResult } from './canary.js';
import { changeView, reloadView, type ChangeView } from './change-view.js';
import { compileContent, InvalidContentError, versionOf } from './kinds.js';
import { assessRisk } from './risk.js';
import {
  activate,
  activeOf,
  approvalsOf,
  changeOfVersion,
  countApprovals,
  insertApproval,
  insertChange,
  listChanges,
  loadChange,
  markDeployed,
  markRolledBack,
  ownChangeId,
  restoreActive,
  setCanary,
  setChangeStatus,
  versionExists,
  type ChangeRow,
} from './store.js';
import { lineageOf, principalLineage, TWO_PERSON_DETAIL, twoPersonRefusal } from './two-person.js';

export const CHANGE_TTL_DAYS = 7;

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

/** Who acts: the key (or principal name) and the identity it acts for. */
interface Actor {
  readonly key: string;
  readonly subject: string;
}

type Outcome = { refused: AppError } | { view: ChangeView };

/** What the audit ledger and the security log say about a refused step (never the request body). */
function refusalDetails(refused: AppError, actor: Actor): Record<string, unknown> {
  return {
    code: refused.code,
    reason: refused.extensions.reason ?? null,
    detail: refused.detail,
    identity: actor.subject,
    ...(refused.extensions.missing_scopes ? { missing_scopes: refused.extensions.missing_scopes } : {}),
  };
}

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

  private actor(principal: Principal): Actor {
    return { key: principal.keyId ?? principal.subject, subject: principal.subject };
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
    const id = newId('chg');
    return this.deps.db.withTenant(tenantId, async (tx) => {
      if (await versionExists(tx, tenantId, input.kind, version))
        throw conflict(`${input.kind} version ${version} already exists; versions are immutable, choose a new one`);
      const row = await insertChange(tx, {
        id,
        tenant_id: tenantId,
        kind: input.kind,
        version,
        content: input.content,
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
        expires_at: new Date(Date.now() + CHANGE_TTL_DAYS * 86_400_000),
        deployed_at: null,
        rolled_back_at: null,
        rollback_reason: null,
      });
      await this.deps.audit.record(tx, tenantId, {
        action: 'governance.propose',
        actor: actor.key,
        target: id,
        reason: input.justification,
        details: { kind: input.kind, version, risk: assessment.risk, origin: input.origin },
      });
      return changeView(tx, row);
    });
  }

  async get(tenantId: string, id: string): Promise<ChangeView> {
    return this.deps.db.withTenant(tenantId, (tx) => reloadView(tx, tenantId, id));
  }

  async list(tenantId: string, opts: { status?: ChangeStatus; limit?: number } = {}): Promise<ChangeView[]> {
    return this.deps.db.withTenant(tenantId, async (tx) => {
      const rows = await listChanges(tx, tenantId, opts);
      return Promise.all(rows.map((r) => changeView(tx, r)));
    });
  }

  /** Expired proposals become `expired` when touched; nothing acts on them after. */
  private async expireIfDue(tx: Tx, row: ChangeRow): Promise<ChangeStatus> {
    if ((row.status === 'proposed' || row.status === 'approved') && new Date(row.expires_at).getTime() <= Date.now()) {
      await setChangeStatus(tx, row.id, 'expired');
      return 'expired';
    }
    return row.status;
  }

  /**
   * One governance step in one transaction. A refusal is returned, not thrown: its audit entry
   * (`governance.<action>_refused`) commits like a success's, with whatever the step wrote before
   * refusing (an expiry); then it is security-logged and thrown.
   */
  private async refusable(tenantId: string, action: string, actor: Actor, id: string, body: (tx: Tx) => Promise<Outcome>): Promise<ChangeView> {
    const outcome = await this.deps.db.withTenant(tenantId, async (tx) => {
      const out = await body(tx);
      if ('refused' in out)
        await this.deps.audit.record(tx, tenantId, {
          action: `governance.${action}_refused`,
          actor: actor.key,
          target: id,
          details: refusalDetails(out.refused, actor),
        });
      return out;
    });
    if ('refused' in outcome) {
      this.deps.security.warn(
        { type: 'governance', action: `${action}_refused`, change_id: id, key_id: actor.key, ...refusalDetails(outcome.refused, actor) },
        `governance ${action} refused`,
      );
      throw outcome.refused;
    }
    return outcome.view;
  }

  /**
   * Audits a step refused before it reached the service (the gate's scope check), in a transaction
   * of its own; never throws, so the original refusal is what the caller sees.
   */
  async recordRefusal(tenantId: string, principal: Principal, action: string, id: string | undefined, refused: AppError): Promise<void> {
    const actor = this.actor(principal);
    try {
      await this.deps.db.withTenant(tenantId, async (tx) => {
        // The id came from a URL nothing has checked yet: named only when it is this tenant's change.
        const own = id ? await ownChangeId(tx, tenantId, id) : undefined;
        await this.deps.audit.record(tx, tenantId, {
          action: `governance.${action}_refused`,
          actor: actor.key,
          ...(own ? { target: own } : {}),
          details: refusalDetails(refused, actor),
        });
      });
      this.deps.metrics?.inc({ action, result: refused.code });
    } catch (err) {
      this.deps.security.error(
        { type: 'governance', action: `${action}_refused`, change_id: id ?? null, key_id: actor.key, error: (err as Error).message },
        'could not audit a refused governance step',
      );
    }
  }

  async approve(tenantId: string, principal: Principal, id: string, reason?: string): Promise<ChangeView> {
    return this.counted('approve', () => this.doApprove(tenantId, principal, id, reason));
  }

  private async doApprove(tenantId: string, principal: Principal, id: string, reason?: string): Promise<ChangeView> {
    const actor = this.actor(principal);
    const view = await this.refusable(tenantId, 'approve', actor, id, async (tx) => {
      const row = await loadChange(tx, tenantId, id, true);
      const status = await this.expireIfDue(tx, row);
      if (status !== 'proposed' && status !== 'approved')
        return { refused: conflict(`change ${id} is ${status}; only proposed changes can be approved`, { change_status: status }) };
      const earlier = await approvalsOf(tx, id);
      if (earlier.some((a) => a.principal_key === actor.key || a.principal_subject === actor.subject))
        return { refused: conflict(`${actor.subject} (${actor.key}) already acted on change ${id}`) };
      const author = await lineageOf(tx, row.author_key, row.author_subject);
      const approver = await principalLineage(tx, principal);
      const others = await Promise.all(earlier.map((a) => lineageOf(tx, a.principal_key, a.principal_subject)));
      const twoPerson = twoPersonRefusal(author, approver, others);
      if (twoPerson) return { refused: new AppError('two_person_rule', TWO_PERSON_DETAIL[twoPerson], { reason: twoPerson }) };
      if (!hasScope(principal.scopes, row.approver_scope)) {
        return {
          refused: new AppError('missing_scope', `this ${row.risk}-risk change needs approvers holding ${row.approver_scope}`, {
            missing_scopes: [row.approver_scope],
          }),
        };
      }
      await insertApproval(tx, {
        change_id: id,
        tenant_id: tenantId,
        principal_key: actor.key,
        principal_subject: actor.subject,
        decision: 'approve',
        reason: reason ?? null,
      });
      const approvals = await countApprovals(tx, id);
      if (approvals >= row.required_approvals) await setChangeStatus(tx, id, 'approved');
      await this.deps.audit.record(tx, tenantId, {
        action: 'governance.approve',
        actor: actor.key,
        target: id,
        ...(reason ? { reason } : {}),
        details: { approvals, required: row.required_approvals, identity: actor.subject },
      });
      return { view: await reloadView(tx, tenantId, id) };
    });
    this.deps.security.info({ type: 'governance', action: 'approve', change_id: id, key_id: actor.key, identity: actor.subject }, 'governance change approved');
    return view;
  }

  async reject(tenantId: string, principal: Principal, id: string, reason: string): Promise<ChangeView> {
    return this.counted('reject', () => this.doReject(tenantId, principal, id, reason));
  }

  private async doReject(tenantId: string, principal: Principal, id: string, reason: string): Promise<ChangeView> {
    const actor = this.actor(principal);
    const view = await this.refusable(tenantId, 'reject', actor, id, async (tx) => {
      const row = await loadChange(tx, tenantId, id, true);
      const status = await this.expireIfDue(tx, row);
      if (status !== 'proposed' && status !== 'approved')
        return { refused: conflict(`change ${id} is ${status}; cannot move it to rejected`, { change_status: status }) };
      if (!hasScope(principal.scopes, row.approver_scope))
        return { refused: new AppError('missing_scope', `rejecting needs ${row.approver_scope}`, { missing_scopes: [row.approver_scope] }) };
      await insertApproval(
        tx,
        { change_id: id, tenant_id: tenantId, principal_key: actor.key, principal_subject: actor.subject, decision: 'reject', reason },
        true,
      );
      await setChangeStatus(tx, id, 'rejected');
      await this.deps.audit.record(tx, tenantId, { action: 'governance.reject', actor: actor.key, target: id, reason, details: { identity: actor.subject } });
      return { view: await reloadView(tx, tenantId, id) };
    });
    this.deps.security.info({ type: 'governance', action: 'reject', change_id: id, key_id: actor.key, reason }, 'governance change rejected');
    return view;
  }

  async withdraw(tenantId: string, principal: Principal, id: string, reason?: string): Promise<ChangeView> {
    return this.counted('withdraw', () => this.doWithdraw(tenantId, principal, id, reason));
  }

  private async doWithdraw(tenantId: string, principal: Principal, id: string, reason?: string): Promise<ChangeView> {
    const actor = this.actor(principal);
    return this.refusable(tenantId, 'withdraw', actor, id, async (tx) => {
      const row = await loadChange(tx, tenantId, id, true);
      const status = await this.expireIfDue(tx, row);
      if (status !== 'proposed' && status !== 'approved')
        return { refused: conflict(`change ${id} is ${status}; cannot move it to withdrawn`, { change_status: status }) };
      if (actor.key !== row.author_key && actor.subject !== row.author_subject)
        return { refused: new AppError('forbidden', 'only the author can withdraw a change; others can reject it', { reason: 'not_author' }) };
      await setChangeStatus(tx, id, 'withdrawn');
      await this.deps.audit.record(tx, tenantId, { action: 'governance.withdraw', actor: actor.key, target: id, ...(reason ? { reason } : {}) });
      return { view: await reloadView(tx, tenantId, id) };
    });
  }

  /** Replays recent events through deployed and proposed versions; stores the result on the change. */
  async canary(tenantId: string, principal: Principal, id: string, limit = 1000): Promise<ChangeView> {
    return this.counted('canary', () => this.doCanary(tenantId, principal, id, limit));
  }

  private async doCanary(tenantId: string, principal: Principal, id: string, limit: number): Promise<ChangeView> {
    const change = await this.get(tenantId, id);
    if (change.status !== 'proposed' && change.status !== 'approved')
      throw conflict(`change ${id} is ${change.status}; canaries run on proposed or approved changes`, { change_status: change.status });
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
      await setCanary(tx, id, result);
      await this.deps.audit.record(tx, tenantId, {
        action: 'governance.canary',
        actor: actor.key,
        target: id,
        details: { events_replayed: result.events_replayed, decisions_changed: result.decisions_changed, newly_blocked: result.newly_blocked.length },
      });
      return reloadView(tx, tenantId, id);
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
      const row = await loadChange(tx, tenantId, id, true);
      const status = await this.expireIfDue(tx, row);
      if (status !== 'approved' && status !== 'proposed')
        return { refused: conflict(`change ${id} is ${status}; only approved changes deploy`, { change_status: status }) };
      const approvals = await countApprovals(tx, id);
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
            approvals,
            requiredApprovals: row.required_approvals,
            ...(canary
              ? {
                  canary: {
                    passed: canary.passed,
                    eventsReplayed: canary.events_replayed,
                    decisionsChanged: canary.decisions_changed,
                    newlyBlockedEntities: canary.newly_blocked.length,
                  },
                }
              : {}),
          },
        }),
      );
      if (decision.decision !== 'allow') {
        await this.deps.audit.record(tx, tenantId, {
          action: 'governance.deploy_refused',
          actor: actor.key,
          target: id,
          details: { policy_version: decision.version, reasons: decision.reasons },
        });
        return {
          refused: new AppError(
            'conflict',
            `the deploy gate refused change ${id}: ${decision.reasons.length > 0 ? decision.reasons.join(', ') : 'no policy permits it (approvals or canary missing)'}`,
            { reasons: decision.reasons, policy_version: decision.version },
          ),
        };
      }
      const current = await activeOf(tx, tenantId, row.kind);
      await activate(tx, tenantId, row.kind, row.version, row.content, id);
      await markDeployed(tx, id, current?.version ?? row.base_version);
      await this.deps.audit.record(tx, tenantId, {
        action: 'governance.deploy',
        actor: actor.key,
        target: id,
        details: { kind: row.kind, version: row.version, previous_version: current?.version ?? row.base_version, policy_version: decision.version },
      });
      return { view: await reloadView(tx, tenantId, id) };
    });
    if ('refused' in outcome) {
      this.deps.security.warn(
        { type: 'governance', action: 'deploy_refused', change_id: id, key_id: actor.key, reason: outcome.refused.detail },
        'governance deploy refused',
      );
      throw outcome.refused;
    }
    const view = outcome.view;
    await this.announce(tenantId, view.kind, view.version);
    this.deps.security.info(
      { type: 'governance', action: 'deploy', change_id: id, key_id: actor.key, kind: view.kind, version: view.version },
      'governance change deployed',
    );
    return view;
  }

  /** Restores the version that ran before this change; decisions after it name that version. */
  async rollback(tenantId: string, principal: Principal, id: string, reason: string): Promise<ChangeView> {
    return this.counted('rollback', () => this.doRollback(tenantId, principal, id, reason));
  }

  private async doRollback(tenantId: string, principal: Principal, id: string, reason: string): Promise<ChangeView> {
    const actor = this.actor(principal);
    const view = await this.deps.db.withTenant(tenantId, async (tx) => {
      const row = await loadChange(tx, tenantId, id, true);
      if (row.status !== 'deployed') throw conflict(`change ${id} is ${row.status}; only a deployed change can be rolled back`, { change_status: row.status });
      const active = await activeOf(tx, tenantId, row.kind, true);
      if (active?.change_id !== id) throw conflict(`change ${id} is no longer the active ${row.kind}; roll back the change that replaced it first`);
      const previous = row.previous_version ?? row.base_version;
      // No stored previous version means the shipped default ran before: the pointer goes.
      await restoreActive(tx, tenantId, row.kind, previous, await changeOfVersion(tx, tenantId, row.kind, previous));
      await markRolledBack(tx, id, reason);
      await this.deps.audit.record(tx, tenantId, {
        action: 'governance.rollback',
        actor: actor.key,
        target: id,
        reason,
        details: { kind: row.kind, restored_version: previous },
      });
      return reloadView(tx, tenantId, id);
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
