import { sql, type Selectable } from 'kysely';
import type { Database, Tx } from '../../platform/db/database.js';
import type { ScenariosTable } from '../../platform/db/schema.js';
import { notFound } from '../../platform/http/problem.js';
import { ACTIVE_STATES, assertTransition, type ScenarioState } from './states.js';

export interface ScenarioDevice {
  readonly name: string;
  readonly kind: 'host' | 'router';
  readonly addresses: ReadonlyArray<{ readonly interface: string; readonly network: string; readonly address: string }>;
}

export interface Scenario {
  readonly scenario_id: string;
  readonly tenant_id: string;
  readonly template_id: string;
  readonly template_version: string;
  readonly track: string;
  readonly subject: string;
  readonly state: ScenarioState;
  readonly expires_at: string;
  readonly created_at: string;
  readonly updated_at: string;
  readonly error: string | null;
  readonly devices: readonly ScenarioDevice[];
  readonly runtime_ref: string | null;
  /** The attempt the lab is on (1 at spawn; a reset of a graded scenario starts the next). */
  readonly attempt: number;
}

export interface NewScenario {
  readonly scenario_id: string;
  readonly template_id: string;
  readonly template_version: string;
  readonly track: string;
  readonly subject: string;
  readonly expires_at: Date;
}

/** Fields a transition may set along with the state. */
export interface TransitionPatch {
  readonly error?: string | null;
  readonly devices?: readonly ScenarioDevice[];
  readonly runtime_ref?: string | null;
  /** Start the next attempt when the scenario is leaving `scored` (a reset of a graded lab). */
  readonly nextAttemptIfScored?: boolean;
}

/** Scenario rows. Every read and write runs inside the tenant's transaction (RLS). */
export class ScenarioStore {
  private readonly transitionListeners: Array<(scenario: Scenario) => void> = [];

  constructor(
    private readonly db: Pick<Database, 'withTenant' | 'db'>,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async insert(tenantId: string, s: NewScenario): Promise<Scenario> {
    const now = this.clock();
    const row = await this.db.withTenant(tenantId, (tx) =>
      tx
        .insertInto('scenarios')
        .values({ ...s, tenant_id: tenantId, state: 'pending', created_at: now, updated_at: now, error: null, devices: '[]', runtime_ref: null })
        .returningAll()
        .executeTakeFirstOrThrow(),
    );
    return toScenario(row);
  }

  /** Another tenant's scenario is not found (404), never revealed. */
  async get(tenantId: string, scenarioId: string): Promise<Scenario> {
    const row = await this.db.withTenant(tenantId, (tx) => tx.selectFrom('scenarios').selectAll().where('scenario_id', '=', scenarioId).executeTakeFirst());
    if (!row) throw notFound(`scenario ${scenarioId}`);
    return toScenario(row);
  }

  async list(tenantId: string, opts: { states?: readonly ScenarioState[] } = {}): Promise<Scenario[]> {
    const rows = await this.db.withTenant(tenantId, (tx) => {
      let q = tx.selectFrom('scenarios').selectAll().orderBy('created_at', 'desc').orderBy('scenario_id');
      if (opts.states && opts.states.length > 0) q = q.where('state', 'in', [...opts.states]);
      return q.execute();
    });
    return rows.map(toScenario);
  }

  /** A learner's scenarios, newest first (the learner portal's "my labs"). */
  async listForSubject(tenantId: string, subject: string, limit: number): Promise<Scenario[]> {
    const rows = await this.db.withTenant(tenantId, (tx) =>
      tx.selectFrom('scenarios').selectAll().where('subject', '=', subject).orderBy('created_at', 'desc').orderBy('scenario_id').limit(limit).execute(),
    );
    return rows.map(toScenario);
  }

  /** Called with the scenario after each committed transition (telemetry). */
  onTransition(listener: (scenario: Scenario) => void): void {
    this.transitionListeners.push(listener);
  }

  /** Moves a scenario to `to` under a row lock, refusing a transition the lifecycle does not allow. */
  async transition(tenantId: string, scenarioId: string, to: ScenarioState, patch: TransitionPatch = {}): Promise<Scenario> {
    const moved = await this.transitionIn(tenantId, scenarioId, to, patch);
    for (const listener of this.transitionListeners) listener(moved);
    return moved;
  }

  private async transitionIn(tenantId: string, scenarioId: string, to: ScenarioState, patch: TransitionPatch): Promise<Scenario> {
    return this.db.withTenant(tenantId, async (tx) => {
      const current = await lockRow(tx, scenarioId);
      assertTransition(scenarioId, current.state, to);
      const row = await tx
        .updateTable('scenarios')
        .set({
          state: to,
          updated_at: this.clock(),
          ...(patch.error !== undefined ? { error: patch.error } : {}),
          ...(patch.devices !== undefined ? { devices: JSON.stringify(patch.devices) } : {}),
          ...(patch.runtime_ref !== undefined ? { runtime_ref: patch.runtime_ref } : {}),
          ...(patch.nextAttemptIfScored && current.state === 'scored' ? { attempt: current.attempt + 1 } : {}),
        })
        .where('scenario_id', '=', scenarioId)
        .returningAll()
        .executeTakeFirstOrThrow();
      return toScenario(row);
    });
  }

  /**
   * Sets a new expiry computed from the locked row, when `allowed(state)`; `compute` may throw
   * (for example when the lifetime cap is reached).
   */
  async updateExpiry(tenantId: string, scenarioId: string, compute: (current: Scenario) => Date): Promise<Scenario> {
    return this.db.withTenant(tenantId, async (tx) => {
      const current = toScenario(await lockRow(tx, scenarioId));
      const expiresAt = compute(current);
      const row = await tx
        .updateTable('scenarios')
        .set({ expires_at: expiresAt, updated_at: this.clock() })
        .where('scenario_id', '=', scenarioId)
        .returningAll()
        .executeTakeFirstOrThrow();
      return toScenario(row);
    });
  }

  /**
   * Inside the caller's tenant transaction (RLS scopes it to that tenant): scenarios whose lab
   * exists or may yet exist, of the whole tenant or of one subject, leaving out `excluding`.
   * The spawn quotas count with it, in the transaction that admits the spawn.
   */
  async countActive(tx: Tx, opts: { subject?: string; excluding?: readonly string[] } = {}): Promise<number> {
    let q = tx
      .selectFrom('scenarios')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('state', 'in', [...ACTIVE_STATES]);
    if (opts.subject !== undefined) q = q.where('subject', '=', opts.subject);
    if (opts.excluding && opts.excluding.length > 0) q = q.where('scenario_id', 'not in', [...opts.excluding]);
    const row = await q.executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Across tenants: active scenarios whose expiry is at or before `now`. */
  async expired(now: Date, limit = 100): Promise<Array<{ scenario_id: string; tenant_id: string }>> {
    const res = await sql<{
      scenario_id: string;
      tenant_id: string;
    }>`SELECT scenario_id, tenant_id FROM fg_scenarios_expired(${now.toISOString()}::timestamptz, ${limit}::int)`.execute(this.db.db);
    return res.rows;
  }

  /** Across tenants: the state of each given scenario that has a row. */
  async states(scenarioIds: readonly string[]): Promise<Array<{ scenario_id: string; tenant_id: string; state: ScenarioState }>> {
    if (scenarioIds.length === 0) return [];
    const res = await sql<{
      scenario_id: string;
      tenant_id: string;
      state: ScenarioState;
    }>`SELECT scenario_id, tenant_id, state FROM fg_scenario_states(${[...scenarioIds]}::text[])`.execute(this.db.db);
    return res.rows;
  }
}

async function lockRow(tx: Tx, scenarioId: string): Promise<Selectable<ScenariosTable>> {
  const row = await tx.selectFrom('scenarios').selectAll().where('scenario_id', '=', scenarioId).forUpdate().executeTakeFirst();
  if (!row) throw notFound(`scenario ${scenarioId}`);
  return row;
}

function toScenario(row: Selectable<ScenariosTable>): Scenario {
  return {
    scenario_id: row.scenario_id,
    tenant_id: row.tenant_id,
    template_id: row.template_id,
    template_version: row.template_version,
    track: row.track,
    subject: row.subject,
    state: row.state,
    expires_at: new Date(row.expires_at).toISOString(),
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
    error: row.error,
    devices: (typeof row.devices === 'string' ? JSON.parse(row.devices) : row.devices) as ScenarioDevice[],
    runtime_ref: row.runtime_ref,
    attempt: Number(row.attempt),
  };
}
