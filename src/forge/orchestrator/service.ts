import { AppError, unprocessable } from '../../platform/http/problem.js';
import { newId } from '../../platform/ids.js';
import type { ExecOptions, ExecResult, LabHandle, LabRuntime } from '../runtime/types.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import type { LabTemplate } from '../templates/load.js';
import { toLabSpec } from '../templates/to-spec.js';
import { scenarioVariables } from '../templates/variables.js';
import { ACTIVE_STATES, canTransition, LAB_LIVE_STATES, ScenarioStateError } from './states.js';
import type { OrchestratorMetrics } from './metrics.js';
import type { Scenario, ScenarioDevice, ScenarioStore } from './store.js';

export interface OrchestratorDeps {
  readonly store: ScenarioStore;
  readonly runtime: LabRuntime;
  /** Where reset finds the template version a scenario was created from; create() adds to it. */
  readonly catalog: TemplateCatalog;
  /** Injected so TTL behaviour is tested without waiting. */
  readonly clock?: () => Date;
  /** Human progress lines ("creating namespaces…", "device r1 ready"). */
  readonly onProgress?: (scenarioId: string, message: string) => void;
  /** Longest a scenario may live from its creation, extensions included. Default 24 h. */
  readonly maxLifetimeMinutes?: number;
  /** Called with failures of the background sweeper and reconciler (they never throw). */
  readonly onBackgroundError?: (err: unknown) => void;
  /**
   * Grades a scenario whose TTL ran out while it was running (the scoring service's complete
   * with reason `ttl`), before its lab is destroyed. Set where a grader exists (src/roles.ts);
   * the orchestrator does not depend on scoring. A 409 (being graded right now) leaves the
   * scenario to a later sweep.
   */
  readonly gradeAtExpiry?: (tenantId: string, scenarioId: string) => Promise<void>;
  /** Lab build times and reconciled leftovers (src/forge/orchestrator/metrics.ts). */
  readonly metrics?: OrchestratorMetrics;
  /**
   * Deployment secret the per-scenario template variables are derived from (FG_VARIABLES_SECRET);
   * the grader must use the same one. Without it the values follow from the scenario id alone.
   */
  readonly variablesSecret?: Uint8Array;
  /** Writes an entry to the tenant's audit ledger (each reset). */
  readonly audit?: ScenarioAudit;
}

/** An audit ledger entry in the scenario's tenant (src/ledger/audit.ts through the module). */
export type ScenarioAudit = (tenantId: string, entry: { action: string; actor: string; target: string; details: Record<string, unknown> }) => Promise<void>;

/** Grades a scenario whose time ran out, before its lab goes (the scoring module, wired by the role). */
export type ExpiryGrader = (tenantId: string, scenarioId: string) => Promise<void>;

export interface StartOptions {
  readonly sweepIntervalMs?: number;
  readonly reconcileIntervalMs?: number;
  /** Set when the role also grades: the sweeper then grades a running scenario at TTL end. */
  readonly gradeAtExpiry?: ExpiryGrader;
}

export const newScenarioId = (): string => newId('scn');

/**
 * Scenario lifecycle over a LabRuntime: the database row is the truth of what should exist,
 * the runtime holds what does; reconcile() and the TTL sweeper bring the second in line with
 * the first. Every state change goes through the store, which refuses illegal transitions.
 */
export class Orchestrator {
  private readonly store: ScenarioStore;
  private readonly runtime: LabRuntime;
  private readonly catalog: TemplateCatalog;
  private readonly clock: () => Date;
  private readonly progress: (scenarioId: string, message: string) => void;
  private readonly maxLifetimeMs: number;
  private readonly onBackgroundError: (err: unknown) => void;
  private gradeAtExpiry: ((tenantId: string, scenarioId: string) => Promise<void>) | undefined;
  private readonly variablesSecret: Uint8Array | undefined;
  private readonly metrics: OrchestratorMetrics | undefined;
  private readonly audit: ScenarioAudit | undefined;
  /** Scenarios this instance is building right now: reconcile must not tear them down. */
  private readonly inflight = new Set<string>();
  /** Open while reconcile runs: lab creation waits for it, so reconcile never sees a half-built lab of ours. */
  private reconciling: Promise<unknown> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private background: Promise<unknown> = Promise.resolve();

  constructor(deps: OrchestratorDeps) {
    this.store = deps.store;
    this.runtime = deps.runtime;
    this.catalog = deps.catalog;
    this.clock = deps.clock ?? (() => new Date());
    this.progress = deps.onProgress ?? (() => undefined);
    this.maxLifetimeMs = (deps.maxLifetimeMinutes ?? 24 * 60) * 60_000;
    this.onBackgroundError = deps.onBackgroundError ?? (() => undefined);
    this.gradeAtExpiry = deps.gradeAtExpiry;
    this.variablesSecret = deps.variablesSecret;
    this.metrics = deps.metrics;
    this.audit = deps.audit;
  }

  /** Creates the scenario row and its lab; resolves once the lab runs (or throws, the row then `failed`). */
  async create(tenantId: string, template: LabTemplate, subject: string, opts: { scenarioId?: string } = {}): Promise<Scenario> {
    this.catalog.add(template);
    const scenarioId = opts.scenarioId ?? newScenarioId();
    const expiresAt = new Date(this.clock().getTime() + template.ttl_minutes * 60_000);
    await this.store.insert(tenantId, {
      scenario_id: scenarioId,
      template_id: template.id,
      template_version: template.version,
      track: template.track,
      subject,
      expires_at: expiresAt,
    });
    return this.provision(tenantId, scenarioId, template);
  }

  async get(tenantId: string, scenarioId: string): Promise<Scenario> {
    return this.store.get(tenantId, scenarioId);
  }

  async list(tenantId: string): Promise<Scenario[]> {
    return this.store.list(tenantId);
  }

  /** Pushes the expiry out by `minutes` from now or from the current expiry, whichever is later. */
  async extend(tenantId: string, scenarioId: string, minutes: number): Promise<Scenario> {
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 24 * 60) throw unprocessable('extend by 1..1440 whole minutes');
    return this.store.updateExpiry(tenantId, scenarioId, (current) => {
      if (!LAB_LIVE_STATES.has(current.state)) throw new ScenarioStateError(scenarioId, current.state, 'extend');
      const from = Math.max(this.clock().getTime(), Date.parse(current.expires_at));
      const next = from + minutes * 60_000;
      const cap = Date.parse(current.created_at) + this.maxLifetimeMs;
      if (next > cap) throw unprocessable(`scenario ${scenarioId} may live at most ${this.maxLifetimeMs / 60_000} minutes; it expires ${current.expires_at}`);
      return new Date(next);
    });
  }

  /**
   * Rebuilds the lab from the template version it was created from (the initial state). A
   * graded scenario starts its next attempt (the graded ones keep their scores and files); a
   * running one restarts the attempt it is on.
   */
  async reset(tenantId: string, scenarioId: string, actor = 'system'): Promise<Scenario> {
    const current = await this.store.get(tenantId, scenarioId);
    const template = this.catalog.get(current.template_id, current.template_version);
    if (!template)
      throw new AppError('conflict', `template ${current.template_id}@${current.template_version} is no longer loaded; the scenario cannot be reset`);
    const moved = await this.store.transition(tenantId, scenarioId, 'provisioning', { error: null, nextAttemptIfScored: true });
    // Audited once the reset is certain (the transition took), before the lab is rebuilt.
    await this.audit?.(tenantId, {
      action: 'scenario.reset',
      actor,
      target: scenarioId,
      details: { from_state: current.state, from_attempt: current.attempt, attempt: moved.attempt },
    });
    this.inflight.add(scenarioId);
    try {
      this.progress(scenarioId, 'removing the current lab…');
      await this.runtime.destroy(scenarioId);
      return await this.provision(tenantId, scenarioId, template, true);
    } finally {
      this.inflight.delete(scenarioId);
    }
  }

  /** Marks the scenario destroyed, then removes its lab (reconcile finishes the job if this crashes). */
  async destroy(tenantId: string, scenarioId: string): Promise<Scenario> {
    const done = await this.store.transition(tenantId, scenarioId, 'destroyed');
    this.progress(scenarioId, 'removing the lab…');
    await this.runtime.destroy(scenarioId);
    return done;
  }

  /** Runs a command in a device of a live scenario of this tenant. */
  async exec(tenantId: string, scenarioId: string, device: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const current = await this.store.get(tenantId, scenarioId);
    if (!LAB_LIVE_STATES.has(current.state)) throw new ScenarioStateError(scenarioId, current.state, 'exec');
    return this.runtime.exec(scenarioId, device, argv, opts);
  }

  /**
   * Expires every active scenario past its TTL (any tenant) and removes its lab. Returns their ids.
   * A running scenario is graded first (when a grader is wired in); one being graded is left
   * alone until its grading ends, so a grader never loses its lab underneath it.
   */
  async sweepExpired(): Promise<string[]> {
    const expired: string[] = [];
    for (const { scenario_id, tenant_id } of await this.store.expired(this.clock())) {
      if (!(await this.gradeBeforeExpiry(tenant_id, scenario_id))) continue;
      try {
        await this.store.transition(tenant_id, scenario_id, 'expired');
      } catch (err) {
        if (!(err instanceof ScenarioStateError)) throw err;
        // Moved on meanwhile: destroyed by someone, or failed (grading failed). A failed
        // scenario's lab still goes now rather than at the next reconcile.
        if (err.from === 'failed') await this.runtime.destroy(scenario_id);
        continue;
      }
      this.progress(scenario_id, 'expired: removing the lab…');
      await this.runtime.destroy(scenario_id);
      expired.push(scenario_id);
    }
    return expired;
  }

  /** false: leave the scenario for a later sweep (it is being graded). */
  private async gradeBeforeExpiry(tenantId: string, scenarioId: string): Promise<boolean> {
    const current = await this.store.get(tenantId, scenarioId);
    if (current.state === 'grading' && !this.gradeAtExpiry) return false;
    if ((current.state !== 'running' && current.state !== 'grading') || !this.gradeAtExpiry) return true;
    this.progress(scenarioId, 'expired: grading before the lab is removed…');
    try {
      // For a `grading` row the grader answers 409 while its grading is in progress and takes
      // over a stale one (a grader that crashed), so an abandoned grading does not pin the lab.
      await this.gradeAtExpiry(tenantId, scenarioId);
      return true;
    } catch (err) {
      // Someone else is grading it right now: its result stands, the lab is removed next sweep.
      if (err instanceof AppError && err.extensions.reason === 'grading_in_progress') return false;
      // Ungradable (failed, template gone, already moved on): expiry still removes the lab.
      this.onBackgroundError(err);
      return true;
    }
  }

  /**
   * Marks failed the scenarios whose lab was lost with the host it ran on (a worker agent that
   * stopped heartbeating); their labs are removed when that host is reconciled. A scored
   * scenario keeps its score and state. Returns the ids marked failed.
   */
  async failLost(scenarioIds: readonly string[], reason: string): Promise<string[]> {
    const failed: string[] = [];
    for (const row of await this.store.states(scenarioIds)) {
      if (row.state === 'scored' || !ACTIVE_STATES.has(row.state)) continue;
      try {
        await this.store.transition(row.tenant_id, row.scenario_id, 'failed', { error: reason.slice(0, 2000) });
        this.progress(row.scenario_id, `failed: ${reason}`);
        failed.push(row.scenario_id);
      } catch (err) {
        if (!(err instanceof ScenarioStateError)) throw err;
      }
    }
    return failed;
  }

  /**
   * Removes every runtime lab whose scenario is not live in the database (unknown, destroyed,
   * expired, failed, or left `provisioning` by a process that died), except labs this instance
   * is building right now. A scenario found half-built that way is marked failed.
   */
  async reconcile(): Promise<{ removed: string[] }> {
    const run = this.reconciling.then(() => this.reconcileOnce());
    this.reconciling = run.catch(() => undefined);
    return run;
  }

  private async reconcileOnce(): Promise<{ removed: string[] }> {
    const labs = await this.runtime.list();
    const ids = labs.map((l) => l.scenarioId).filter((id): id is string => id !== undefined);
    const rows = await this.store.states(ids);
    const keep = new Set<string>(this.inflight);
    for (const row of rows) {
      if (LAB_LIVE_STATES.has(row.state)) keep.add(row.scenario_id);
      else if ((row.state === 'provisioning' || row.state === 'pending') && !this.inflight.has(row.scenario_id)) {
        await this.store
          .transition(row.tenant_id, row.scenario_id, 'failed', { error: 'provisioning was interrupted (the orchestrator stopped); the lab was removed' })
          .catch((err: unknown) => {
            if (!(err instanceof ScenarioStateError)) throw err;
          });
      }
    }
    const result = await this.runtime.reconcile(keep);
    this.metrics?.leftoversRemoved.inc(result.removed.length);
    // A running or grading scenario whose lab reconcile removed (the runtime removes labs it can
    // no longer reach: those built under an earlier version's names) has failed; saying
    // `running` would send the learner to a terminal with nothing behind it. A scored one keeps
    // its verdict, and a reset rebuilds its lab.
    for (const row of await this.store.states(result.removed)) {
      if (!LAB_LIVE_STATES.has(row.state) || !canTransition(row.state, 'failed')) continue;
      await this.store
        .transition(row.tenant_id, row.scenario_id, 'failed', {
          error: 'its lab was built by an earlier FrostGate version under names this one cannot reach, and reconcile removed it; spawn a new scenario',
        })
        .catch((err: unknown) => {
          if (!(err instanceof ScenarioStateError)) throw err; // it moved on meanwhile (destroyed, expired)
        });
    }
    return result;
  }

  /** Reconciles once, then sweeps and reconciles periodically until stop(). */
  async start(opts: StartOptions = {}): Promise<void> {
    if (opts.gradeAtExpiry) this.gradeAtExpiry = opts.gradeAtExpiry;
    await this.reconcile();
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const timer = setInterval(() => {
        // One background job at a time: a slow sweep never overlaps a reconcile.
        this.background = this.background.then(fn).catch(this.onBackgroundError);
      }, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(opts.sweepIntervalMs ?? 15_000, () => this.sweepExpired());
    every(opts.reconcileIntervalMs ?? 60_000, () => this.reconcile());
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.background;
  }

  private async provision(tenantId: string, scenarioId: string, template: LabTemplate, alreadyProvisioning = false): Promise<Scenario> {
    this.inflight.add(scenarioId);
    try {
      if (!alreadyProvisioning) await this.store.transition(tenantId, scenarioId, 'provisioning');
      this.progress(scenarioId, `creating namespaces for ${template.topology.devices.length} devices and ${template.topology.networks.length} networks…`);
      let handle: LabHandle;
      const stopTimer = this.metrics?.labBuild.startTimer({ driver: this.runtime.driver });
      try {
        await this.reconciling;
        handle = await this.runtime.create(toLabSpec(template, scenarioId, scenarioVariables(template.variables, scenarioId, this.variablesSecret)));
        stopTimer?.({ result: 'ok' });
      } catch (err) {
        stopTimer?.({ result: 'failed' });
        await this.store.transition(tenantId, scenarioId, 'failed', { error: (err as Error).message.slice(0, 2000) }).catch(() => undefined);
        throw err;
      }
      for (const d of handle.devices) this.progress(scenarioId, `device ${d.name} ready (${d.addresses.map((a) => a.address).join(', ') || 'no addresses'})`);
      const devices: ScenarioDevice[] = handle.devices.map((d) => ({ name: d.name, kind: d.kind, addresses: d.addresses }));
      try {
        return await this.store.transition(tenantId, scenarioId, 'running', { devices, runtime_ref: `${this.runtime.driver}:${handle.prefix}` });
      } catch (err) {
        // Destroyed or expired while it was being built: the lab must not outlive the row.
        await this.runtime.destroy(scenarioId);
        throw err;
      }
    } finally {
      this.inflight.delete(scenarioId);
    }
  }
}
