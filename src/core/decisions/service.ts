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

  /** Validation problems of a raw event, each with its field path; [] when it can be decided. */
  issues(raw: unknown): Array<{ path: string; message: string }> {
    return eventIssues(raw, { nowMs: Date.now() });
  }

  async decide(tenantId: string, raw: unknown, path: DecisionPath): Promise<DecisionRecord> {
    const problems = this.issues(raw);
    if (problems.length > 0) throw new AppError('unprocessable', `${problems[0]!.path}: ${problems[0]!.message}`, { errors: problems });
    const event = raw as SecurityEvent;
    if (event.event_id) {
      const existing = await this.byEventId(tenantId, event.event_id);
      if (existing) return existing;
    }
    const [ruleset, doctrine] = await Promise.all([this.active.get(tenantId, 'ruleset'), this.active.get(tenantId, 'doctrine')]);
    const stopTimer = this.metrics?.evaluateSeconds.startTimer({ path });
    let decision: Decision;
    try {
      decision = await evaluate(event, { tenantId, ruleset: ruleset.content.compiled, doctrine: doctrine.content.compiled, windows: this.windows, enforcement: this.enforcement() });
    } finally {
      stopTimer?.();
    }
    try {
      const stored = await this.db.withTenant(tenantId, (tx) => this.store(tx, tenantId, event, decision, path));
      this.metrics?.decisions.inc({ threat_level: stored.threat_level, path });
      return stored;
    } catch (err) {
      if (event.event_id && isUniqueViolation(err)) {
        const existing = await this.byEventId(tenantId, event.event_id);
        if (existing) return existing; // decided concurrently by another request: decided once
      }
      throw err;
    }
  }

  private async store(tx: Tx, tenantId: string, event: SecurityEvent, decision: Decision, path: DecisionPath): Promise<DecisionRecord> {
    const previous = await tx
      .selectFrom('decisions')
      .select(['threat_level', 'rules_triggered', 'mitigations', 'ruleset_version', 'doctrine_version', 'score'])
      .where('tenant_id', '=', tenantId)
      .where('entity', '=', decision.entity)
      .orderBy('created_at', 'desc')
      .orderBy('decision_id', 'desc')
      .limit(1)
      .executeTakeFirst();
    const diff = decisionDiff(previous ? { ...previous, mitigations: previous.mitigations as DiffableDecision['mitigations'] } : null, decision);
    const decisionId = newDecisionId();
    const eventDigest = createHash('sha256').update(canonicalize(event)).digest('hex');
    const mitigations = decision.mitigations.map((m) => ({ action: m.action, target: m.target, duration_s: m.duration_s, applied: m.applied, gated_by: m.gated_by }));
    const occurredAt = new Date(event.occurred_at).toISOString();
    const blockS = Math.max(0, ...decision.mitigations.filter((m) => m.action === 'block_ip' && m.applied).map((m) => m.duration_s));
    const record = {
      type: 'decision',
      decision_id: decisionId,
      tenant_id: tenantId,
      event_id: event.event_id ?? null,
      event_digest: eventDigest,
      entity: decision.entity,
      threat_level: decision.threat_level,
      score: decision.score,
      rules_triggered: [...decision.rules_triggered],
      mitigations,
      ruleset_version: decision.ruleset_version,
      doctrine_version: decision.doctrine_version,
      occurred_at: occurredAt,
      path,
    };
    const [entry] = await this.ledger.append(tx, tenantId, 'decisions', [record]);
    const row = await tx
      .insertInto('decisions')
      .values({
        decision_id: decisionId,
        tenant_id: tenantId,
        event_id: event.event_id ?? null,
        event_digest: eventDigest,
        event: JSON.stringify(event),
        entity: decision.entity,
        threat_level: decision.threat_level,
        score: decision.score,
        rules_triggered: [...decision.rules_triggered],
        mitigations: JSON.stringify(mitigations),
        explanation: decision.explanation,
        ruleset_version: decision.ruleset_version,
        doctrine_version: decision.doctrine_version,
        decision_diff: JSON.stringify(diff),
        ledger_index: entry!.index,
        path,
        occurred_at: occurredAt,
        block_until: blockS > 0 ? new Date(Date.now() + blockS * 1000) : null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toRecord(row);
  }

  /** Blocks in force and applied, from the decisions themselves. */
  private enforcement(): EnforcementState {
    return {
      activeBlocks: async (tenantId, atMs) => {
        const r = await this.db.withTenant(tenantId, (tx) => tx.selectFrom('decisions').select((e) => e.fn.countAll<number>().as('n')).where('tenant_id', '=', tenantId).where('block_until', '>', new Date(atMs)).executeTakeFirstOrThrow());
        return Number(r.n);
      },
      blocksApplied: async (tenantId, sinceMs, atMs) => {
        const r = await this.db.withTenant(tenantId, (tx) =>
          tx.selectFrom('decisions').select((e) => e.fn.countAll<number>().as('n')).where('tenant_id', '=', tenantId).where('block_until', 'is not', null).where('occurred_at', '>', new Date(sinceMs)).where('occurred_at', '<=', new Date(atMs)).executeTakeFirstOrThrow(),
        );
        return Number(r.n);
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

  private async byEventId(tenantId: string, eventId: string): Promise<DecisionRecord | undefined> {
    const row = await this.db.withTenant(tenantId, (tx) => tx.selectFrom('decisions').selectAll().where('tenant_id', '=', tenantId).where('event_id', '=', eventId).executeTakeFirst());
    return row ? toRecord(row) : undefined;
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
      // Compared with the stored timestamp (microseconds), never one rounded through a JS Date.
      // A cursor naming a row this tenant cannot see (RLS) yields NULL and so an empty page.
      if (after) q = q.where(sql<boolean>`(created_at, decision_id) < ((SELECT c.created_at FROM decisions c WHERE c.decision_id = ${after}), ${after})`);
      return q.orderBy('created_at', 'desc').orderBy('decision_id', 'desc').limit(f.limit + 1).execute();
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
      return q.orderBy('created_at', 'desc').limit(1000).execute();
    });
    return rows.map(toRecord);
  }

  /** The tenant's most recent events, oldest first: what governance canaries replay. */
  async recentEvents(tenantId: string, limit: number): Promise<SecurityEvent[]> {
    const rows = await this.db.withTenant(tenantId, (tx) => tx.selectFrom('decisions').select(['event', 'created_at', 'decision_id']).where('tenant_id', '=', tenantId).orderBy('created_at', 'desc').orderBy('decision_id', 'desc').limit(limit).execute());
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
