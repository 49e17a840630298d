import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { LedgerService } from '../../ledger/service.js';
import { canonicalize } from '../../platform/crypto/canonical-json.js';
import type { Database, Tx } from '../../platform/db/database.js';
import { AppError, notFound } from '../../platform/http/problem.js';
import {
  decisionDiff,
  eventIssues,
  evaluate,
  MemoryWindowStore,
  normalizeIp,
  RedisWindowStore,
  type Decision,
  type DecisionDiff,
  type DiffableDecision,
  type EnforcementState,
  type SecurityEvent,
  type WindowStore,
} from '../engine/index.js';
import type { ActiveVersions } from '../governance/index.js';
import type { Redis } from '../../platform/cache/redis.js';
import { decodeCursor, encodeCursor, entityFilter } from './filters.js';
import type { DecisionMetrics } from './metrics.js';

export type DecisionPath = 'defend' | 'ingest';

/** One event to decide; `idempotencyKey` stands in for a missing event_id (ingest: `<batch>:<index>`). */
export interface DecisionInput {
  readonly event: SecurityEvent;
  readonly idempotencyKey?: string;
}

/** A tenant's requests waiting for the next group commit, and whether one is running. */
interface CommitLane {
  busy: boolean;
  readonly queue: Array<{ event: SecurityEvent; path: DecisionPath; resolve: (r: DecisionRecord) => void; reject: (e: unknown) => void }>;
}

/** Most decisions one group commit holds. */
const MAX_GROUP = 256;

function appliedBlockSeconds(decision: Decision): number {
  return Math.max(0, ...decision.mitigations.filter((m) => m.action === 'block_ip' && m.applied).map((m) => m.duration_s));
}

/** A decision as the API returns it. */
export interface DecisionRecord {
  readonly decision_id: string;
  readonly tenant_id: string;
  readonly event_id: string | null;
  readonly event_digest: string;
  readonly entity: string;
  readonly threat_level: Decision['threat_level'];
  readonly score: number;
  readonly rules_triggered: string[];
  readonly mitigations: Array<{ action: string; target: string | null; duration_s: number; applied: boolean; gated_by: string | null }>;
  readonly explanation: string;
  readonly ruleset_version: string;
  readonly doctrine_version: string;
  readonly decision_diff: DecisionDiff | null;
  readonly ledger_index: number;
  readonly path: DecisionPath;
  readonly occurred_at: string;
  readonly created_at: string;
}

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
function newDecisionId(): string {
  let id = 'dec_';
  for (const b of randomBytes(24)) id += ID_ALPHABET[b % ID_ALPHABET.length];
  return id;
}

const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

type Row = Awaited<ReturnType<DecisionService['rowById']>>;

/**
 * The one path from an event to a stored decision: validate, evaluate() with the tenant's
 * deployed ruleset and doctrine, diff against the previous decision about the same entity, and
 * store the decision with its ledger entry in one transaction. /defend and /ingest both call it.
 */
export class DecisionService {
  private readonly windows: WindowStore;

  constructor(
    private readonly db: Database,
    private readonly ledger: Pick<LedgerService, 'append'>,
    private readonly active: Pick<ActiveVersions, 'get'>,
    redis: Redis | undefined,
    private readonly metrics?: DecisionMetrics,
  ) {
    // Correlation state is shared across processes through Redis when configured.
    this.windows = redis ? new RedisWindowStore({ redis }) : new MemoryWindowStore();
  }

  private readonly committedListeners: Array<(tenantId: string, records: readonly DecisionRecord[]) => void> = [];

  /** Called after each commit with the decisions it stored (e.g. to refresh bouncer views). */
  onCommitted(listener: (tenantId: string, records: readonly DecisionRecord[]) => void): void {
    this.committedListeners.push(listener);
  }

  /** Validation problems of a raw event, each with its field path; [] when it can be decided. */
  issues(raw: unknown): Array<{ path: string; message: string }> {
    return eventIssues(raw, { nowMs: Date.now() });
  }

  /** Decides one event now (/defend): the decision and its ledger entry are committed on return. */
  async decide(tenantId: string, raw: unknown, path: DecisionPath): Promise<DecisionRecord> {
    const problems = this.issues(raw);
    if (problems.length > 0) throw new AppError('unprocessable', `${problems[0]!.path}: ${problems[0]!.message}`, { errors: problems });
    return this.groupCommit(tenantId, raw as SecurityEvent, path);
  }

  /**
   * Group commit: a tenant's decisions serialise on its ledger head, so requests that arrive while
   * one of the tenant's groups is committing wait and then commit together, in arrival order, in
   * the next group. An idle tenant's request commits at once; a busy one's share one transaction.
   */
  private readonly pending = new Map<string, CommitLane>();

  private groupCommit(tenantId: string, event: SecurityEvent, path: DecisionPath): Promise<DecisionRecord> {
    return new Promise<DecisionRecord>((resolve, reject) => {
      let lane = this.pending.get(tenantId);
      if (!lane) {
        lane = { busy: false, queue: [] };
        this.pending.set(tenantId, lane);
      }
      lane.queue.push({ event, path, resolve, reject });
      if (!lane.busy) void this.drainLane(tenantId, lane);
    });
  }

  private async drainLane(tenantId: string, lane: CommitLane): Promise<void> {
    lane.busy = true;
    try {
      while (lane.queue.length > 0) {
        // One path per group (the stored `path` of each decision); a mixed queue commits in runs.
        const first = lane.queue[0]!;
        let n = 1;
        while (n < lane.queue.length && n < MAX_GROUP && lane.queue[n]!.path === first.path) n++;
        const group = lane.queue.splice(0, n);
        try {
          const records = await this.decideMany(tenantId, group.map((g) => ({ event: g.event })), first.path);
          group.forEach((g, i) => g.resolve(records[i]!));
        } catch (err) {
          for (const g of group) g.reject(err);
        }
      }
    } finally {
      lane.busy = false;
      if (lane.queue.length === 0) this.pending.delete(tenantId);
    }
  }

  /**
   * Decides validated events in order and commits all their decisions and ledger entries in one
   * transaction (group commit). An event whose idempotency key (its event_id, else the caller's
   * key) was decided before, here or in an earlier call, gets that earlier decision back.
   */
  async decideMany(tenantId: string, inputs: readonly DecisionInput[], path: DecisionPath, inTransaction?: (tx: Tx, records: readonly DecisionRecord[]) => Promise<void>): Promise<DecisionRecord[]> {
    if (inputs.length === 0) return [];
    const keys = inputs.map((i) => i.event.event_id ?? i.idempotencyKey ?? null);
    const known = await this.byEventIds(tenantId, keys.filter((k): k is string => k !== null));
    const [ruleset, doctrine] = await Promise.all([this.active.get(tenantId, 'ruleset'), this.active.get(tenantId, 'doctrine')]);
    const pendingBlocks: Array<{ occurredMs: number; untilMs: number }> = [];
    const enforcement = this.enforcement(pendingBlocks);
    const fresh: Array<{ index: number; key: string | null; event: SecurityEvent; decision: Decision }> = [];
    const firstIndexOfKey = new Map<string, number>();
    for (const [index, input] of inputs.entries()) {
      const key = keys[index]!;
      if (key !== null && (known.has(key) || firstIndexOfKey.has(key))) continue;
      if (key !== null) firstIndexOfKey.set(key, index);
      const stopTimer = this.metrics?.evaluateSeconds.startTimer({ path });
      let decision: Decision;
      try {
        decision = await evaluate(input.event, { tenantId, ruleset: ruleset.content.compiled, doctrine: doctrine.content.compiled, windows: this.windows, enforcement });
      } finally {
        stopTimer?.();
      }
      const occurredMs = Date.parse(input.event.occurred_at);
      const blockS = appliedBlockSeconds(decision);
      if (blockS > 0) pendingBlocks.push({ occurredMs, untilMs: occurredMs + blockS * 1000 });
      fresh.push({ index, key, event: input.event, decision });
    }
    const firstOf = (key: string) => firstIndexOfKey.get(key)!;
    let result: { stored: DecisionRecord[]; ordered: DecisionRecord[] };
    try {
      result = await this.db.withTenant(tenantId, async (tx) => {
        const stored = await this.store(tx, tenantId, fresh, path);
        const byIndex = new Map(fresh.map((f, i) => [f.index, stored[i]!]));
        const ordered = inputs.map((_, index) => {
          const key = keys[index]!;
          return byIndex.get(index) ?? (key !== null ? known.get(key) ?? byIndex.get(firstOf(key)) : undefined)!;
        });
        await inTransaction?.(tx, ordered);
        return { stored, ordered };
      });
    } catch (err) {
      // Decided concurrently by another request (same event_id): each event is decided once.
      if (isUniqueViolation(err) && fresh.some((f) => f.key !== null)) return this.decideMany(tenantId, inputs, path, inTransaction);
      throw err;
    }
    for (const r of result.stored) this.metrics?.decisions.inc({ threat_level: r.threat_level, path });
    if (result.stored.length > 0) for (const listener of this.committedListeners) listener(tenantId, result.stored);
    return result.ordered;
  }

  private async store(tx: Tx, tenantId: string, fresh: ReadonlyArray<{ key: string | null; event: SecurityEvent; decision: Decision }>, path: DecisionPath): Promise<DecisionRecord[]> {
    if (fresh.length === 0) return [];
    const entities = [...new Set(fresh.map((f) => f.decision.entity))];
    const previousRows = await tx
      .selectFrom('decisions')
      .distinctOn('entity')
      .select(['entity', 'threat_level', 'rules_triggered', 'mitigations', 'ruleset_version', 'doctrine_version', 'score'])
      .where('tenant_id', '=', tenantId)
      .where('entity', 'in', entities)
      .orderBy('entity')
      .orderBy('ledger_index', 'desc')
      .execute();
    const previous = new Map<string, DiffableDecision>(previousRows.map((p) => [p.entity, { ...p, mitigations: p.mitigations as DiffableDecision['mitigations'] }]));
    const records = fresh.map(({ key, event, decision }) => {
      const diff = decisionDiff(previous.get(decision.entity) ?? null, decision);
      previous.set(decision.entity, decision);
      const mitigations = decision.mitigations.map((m) => ({ action: m.action, target: m.target, duration_s: m.duration_s, applied: m.applied, gated_by: m.gated_by }));
      const occurredAt = new Date(event.occurred_at);
      const blockS = appliedBlockSeconds(decision);
      return {
        type: 'decision',
        decision_id: newDecisionId(),
        tenant_id: tenantId,
        event_id: key,
        event_digest: createHash('sha256').update(canonicalize(event)).digest('hex'),
        entity: decision.entity,
        threat_level: decision.threat_level,
        score: decision.score,
        rules_triggered: [...decision.rules_triggered],
        mitigations,
        explanation: decision.explanation,
        decision_diff: diff,
        ruleset_version: decision.ruleset_version,
        doctrine_version: decision.doctrine_version,
        occurred_at: occurredAt.toISOString(),
        // A block runs from the event that earned it: replays and late batches decide the same.
        block_until: blockS > 0 ? new Date(occurredAt.getTime() + blockS * 1000).toISOString() : null,
        path,
      };
    });
    const entries = await this.ledger.append(tx, tenantId, 'decisions', records);
    // One timestamp for the group: ordering within it is the ledger index.
    const createdAt = new Date();
    const rows = records.map((r, i) => ({
      decision_id: r.decision_id,
      tenant_id: tenantId,
      event_id: r.event_id,
      event_digest: r.event_digest,
      event: JSON.stringify(fresh[i]!.event),
      entity: r.entity,
      threat_level: r.threat_level,
      score: r.score,
      rules_triggered: r.rules_triggered,
      mitigations: JSON.stringify(r.mitigations),
      explanation: r.explanation,
      ruleset_version: r.ruleset_version,
      doctrine_version: r.doctrine_version,
      decision_diff: JSON.stringify(r.decision_diff),
      ledger_index: entries[i]!.index,
      path,
      occurred_at: r.occurred_at,
      block_until: r.block_until,
      created_at: createdAt,
    }));
    await tx.insertInto('decisions').values(rows).execute();
    // The stored values are known here: no RETURNING round trip of the whole group.
    return records.map((r, i): DecisionRecord => ({
      decision_id: r.decision_id,
      tenant_id: tenantId,
      event_id: r.event_id,
      event_digest: r.event_digest,
      entity: r.entity,
      threat_level: r.threat_level,
      score: r.score,
      rules_triggered: r.rules_triggered,
      mitigations: r.mitigations,
      explanation: r.explanation,
      ruleset_version: r.ruleset_version,
      doctrine_version: r.doctrine_version,
      decision_diff: r.decision_diff,
      ledger_index: entries[i]!.index,
      path,
      occurred_at: r.occurred_at,
      created_at: createdAt.toISOString(),
    }));
  }

  /** Blocks in force and applied, from stored decisions plus those of the group being decided. */
  private enforcement(pending: ReadonlyArray<{ occurredMs: number; untilMs: number }>): EnforcementState {
    return {
      activeBlocks: async (tenantId, atMs) => {
        const r = await this.db.withTenant(tenantId, (tx) => tx.selectFrom('decisions').select((e) => e.fn.countAll<number>().as('n')).where('tenant_id', '=', tenantId).where('block_until', '>', new Date(atMs)).executeTakeFirstOrThrow());
        return Number(r.n) + pending.filter((p) => p.untilMs > atMs).length;
      },
      blocksApplied: async (tenantId, sinceMs, atMs) => {
        const r = await this.db.withTenant(tenantId, (tx) =>
          tx.selectFrom('decisions').select((e) => e.fn.countAll<number>().as('n')).where('tenant_id', '=', tenantId).where('block_until', 'is not', null).where('occurred_at', '>', new Date(sinceMs)).where('occurred_at', '<=', new Date(atMs)).executeTakeFirstOrThrow(),
        );
        return Number(r.n) + pending.filter((p) => p.occurredMs > sinceMs && p.occurredMs <= atMs).length;
      },
    };
  }

  async rowById(tx: Tx, tenantId: string, id: string) {
    return tx.selectFrom('decisions').selectAll().where('tenant_id', '=', tenantId).where('decision_id', '=', id).executeTakeFirst();
  }

  async get(tenantId: string, id: string): Promise<DecisionRecord> {
    const row = await this.db.withTenant(tenantId, (tx) => this.rowById(tx, tenantId, id));
    if (!row) throw notFound(`decision ${id}`);
    return toRecord(row);
  }

  private async byEventIds(tenantId: string, keys: readonly string[]): Promise<Map<string, DecisionRecord>> {
    if (keys.length === 0) return new Map();
    const rows = await this.db.withTenant(tenantId, (tx) => tx.selectFrom('decisions').selectAll().where('tenant_id', '=', tenantId).where('event_id', 'in', [...new Set(keys)]).execute());
    return new Map(rows.map((row) => [row.event_id!, toRecord(row)]));
  }

  async list(tenantId: string, f: { threat_level?: string; since?: string; until?: string; entity?: string; rule?: string; cursor?: string; limit: number }): Promise<{ decisions: DecisionRecord[]; next_cursor: string | null }> {
    const after = f.cursor === undefined ? undefined : decodeCursor(f.cursor);
    const entity = f.entity === undefined ? undefined : entityFilter('querystring/entity', f.entity);
    const rows = await this.db.withTenant(tenantId, (tx) => {
      let q = tx.selectFrom('decisions').selectAll().where('tenant_id', '=', tenantId);
      if (f.threat_level) q = q.where('threat_level', '=', f.threat_level as DecisionRecord['threat_level']);
      if (f.since) q = q.where('created_at', '>=', new Date(f.since));
      if (f.until) q = q.where('created_at', '<', new Date(f.until));
      if (entity) q = q.where('entity', '=', entity);
      if (f.rule) q = q.where(sql<boolean>`${f.rule} = ANY(rules_triggered)`);
      // Paging follows the ledger order, a strict per-tenant order (a group commit shares created_at).
      // A cursor naming a row this tenant cannot see (RLS) yields NULL and so an empty page.
      if (after) q = q.where(sql<boolean>`ledger_index < (SELECT c.ledger_index FROM decisions c WHERE c.decision_id = ${after})`);
      return q.orderBy('ledger_index', 'desc').limit(f.limit + 1).execute();
    });
    const page = rows.slice(0, f.limit).map(toRecord);
    const last = page[page.length - 1];
    const next = rows.length > f.limit && last ? encodeCursor(last.decision_id) : null;
    return { decisions: page, next_cursor: next };
  }

  /** Unexpired, applied block decisions, optionally for one address. */
  async activeBlocks(tenantId: string, ip?: string): Promise<DecisionRecord[]> {
    let entity: string | undefined;
    if (ip !== undefined) {
      const normalized = normalizeIp(ip);
      if (!normalized) throw new AppError('validation_failed', 'querystring/ip: must be an IPv4 or IPv6 address', { errors: [{ path: 'querystring/ip', message: 'not an IP address' }] });
      entity = `ip:${normalized}`;
    }
    const rows = await this.db.withTenant(tenantId, (tx) => {
      let q = tx.selectFrom('decisions').selectAll().where('tenant_id', '=', tenantId).where('block_until', '>', new Date());
      if (entity) q = q.where('entity', '=', entity);
      return q.orderBy('ledger_index', 'desc').limit(1000).execute();
    });
    return rows.map(toRecord);
  }

  /** The tenant's most recent events, oldest first: what governance canaries replay. */
  async recentEvents(tenantId: string, limit: number): Promise<SecurityEvent[]> {
    const rows = await this.db.withTenant(tenantId, (tx) => tx.selectFrom('decisions').select(['event']).where('tenant_id', '=', tenantId).orderBy('ledger_index', 'desc').limit(limit).execute());
    return rows.reverse().map((r) => r.event as SecurityEvent);
  }
}

function toRecord(row: NonNullable<Row>): DecisionRecord {
  return {
    decision_id: row.decision_id,
    tenant_id: row.tenant_id,
    event_id: row.event_id,
    event_digest: row.event_digest,
    entity: row.entity,
    threat_level: row.threat_level,
    score: row.score,
    rules_triggered: row.rules_triggered,
    mitigations: row.mitigations as DecisionRecord['mitigations'],
    explanation: row.explanation,
    ruleset_version: row.ruleset_version,
    doctrine_version: row.doctrine_version,
    decision_diff: (row.decision_diff as DecisionDiff | null) ?? null,
    ledger_index: Number(row.ledger_index),
    path: row.path,
    occurred_at: new Date(row.occurred_at).toISOString(),
    created_at: new Date(row.created_at).toISOString(),
  };
}
