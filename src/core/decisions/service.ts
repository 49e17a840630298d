import { createHash } from 'node:crypto';
import { newId } from '../../platform/ids.js';
import { sql, type SelectQueryBuilder } from 'kysely';
import { MerkleFrontier } from '../../ledger/merkle.js';
import { planAppend } from '../../ledger/service.js';
import { canonicalize } from '../../platform/crypto/canonical-json.js';
import type { Database, Tx } from '../../platform/db/database.js';
import type { DB } from '../../platform/db/schema.js';
import { assertTenantId } from '../../platform/db/tenant-id.js';
import { AppError, notFound } from '../../platform/http/problem.js';
import { decisionDiff, type DecisionDiff, type DiffableDecision } from '../engine/diff.js';
import { entityKey, evaluate, type Decision } from '../engine/evaluate.js';
import { eventIssues, type SecurityEvent } from '../engine/event.js';
import { MemoryWindowStore, RedisWindowStore, type WindowStore } from '../engine/windows.js';
import { normalizeIp } from '../engine/ip.js';
import type { EnforcementState } from '../engine/doctrine.js';
import type { ActiveVersions } from '../governance/active.js';
import type { Redis } from '../../platform/cache/redis.js';
import { BlockTally, TALLY_RETAIN_MS, type TalliedBlock } from './block-tally.js';
import { decodeCursor, encodeCursor, entityFilter } from './filters.js';
import { GroupPipeline, type InFlightGroup, type PendingBlock } from './group-pipeline.js';
import { decisionIntegrity, type DecisionIntegrity } from './integrity.js';
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

/** `n` decision ids (platform/ids.ts draws the CSPRNG in pooled blocks, not once per id). */
function newDecisionIds(n: number): string[] {
  return Array.from({ length: n }, () => newId('dec'));
}

/** What a group commit reads before it hashes: see fg_decision_group_read (migration 0014). */
interface GroupState {
  readonly frontier: MerkleFrontier;
  readonly previous: ReadonlyMap<string, DiffableDecision>;
  readonly known: ReadonlyMap<string, DecisionRecord>;
}

/** An event decided in this group (not known before), at its index in the caller's inputs. */
interface FreshDecision {
  readonly index: number;
  readonly key: string | null;
  readonly event: SecurityEvent;
  readonly decision: Decision;
}

/** A group's records built on a state: what fg_decision_group_append stores, and what it leads to. */
interface PlannedGroup {
  readonly startSize: number;
  /** The frontier it was hashed onto (hex, largest subtree first): the write checks it is still the log's. */
  readonly startFrontier: readonly string[];
  readonly endFrontier: MerkleFrontier;
  readonly lastByEntity: ReadonlyMap<string, DiffableDecision>;
  /** fg_decision_group_append's column arrays (migration 0019). */
  readonly columns: readonly unknown[];
  readonly stored: DecisionRecord[];
  /** The blocks it applies, at their ledger indices. */
  readonly blocks: TalliedBlock[];
}

/** The outcome of a group's first stage. */
interface PreparedGroup {
  readonly inputs: readonly DecisionInput[];
  readonly keys: ReadonlyArray<string | null>;
  readonly uniqueKeys: readonly string[];
  readonly entities: readonly string[];
  readonly firstIndexOfKey: ReadonlyMap<string, number>;
  readonly fresh: readonly FreshDecision[];
  readonly state: GroupState;
  readonly planned: PlannedGroup;
  readonly inFlight: InFlightGroup | undefined;
}

/** Reads again after this many conflicts with other processes appending to the same log. */
const MAX_WRITE_ATTEMPTS = 20;
const isSerializationFailure = (err: unknown) => (err as { code?: string }).code === '40001';

const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

type Row = Awaited<ReturnType<DecisionService['rowById']>>;
type BlockCountQuery = SelectQueryBuilder<DB, 'decisions', { n: number }>;

/**
 * The one path from an event to a stored decision: validate, evaluate() with the tenant's
 * deployed ruleset and doctrine, diff against the previous decision about the same entity, and
 * store the decision with its ledger entry in one transaction. /defend and /ingest both call it.
 */
export class DecisionService {
  private readonly windows: WindowStore;

  constructor(
    private readonly db: Database,
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
   * the tenant's previous group is being prepared wait and then go together, in arrival order, in
   * the next group. An idle tenant's request goes at once; a busy one's share one write.
   */
  private readonly pending = new Map<string, CommitLane>();
  private readonly pipelines = new Map<string, GroupPipeline>();

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
    let previousWrite: Promise<unknown> = Promise.resolve();
    try {
      while (lane.queue.length > 0) {
        // One path per group (the stored `path` of each decision); a mixed queue commits in runs.
        const first = lane.queue[0]!;
        let n = 1;
        while (n < lane.queue.length && n < MAX_GROUP && lane.queue[n]!.path === first.path) n++;
        const group = lane.queue.splice(0, n);
        const staged = this.decideStaged(
          tenantId,
          group.map((g) => ({ event: g.event })),
          first.path,
        );
        staged.done.then(
          (records) => group.forEach((g, i) => g.resolve(records[i]!)),
          (err: unknown) => group.forEach((g) => g.reject(err)),
        );
        // The next group forms while this one is written. One turn of the event loop first, so
        // requests already received are parsed and join it: with the embedded database, whose
        // queries run on this thread, the queue would otherwise hold one request at a time.
        await staged.prepared;
        // Nor does it form while the group before this one still waits for the database: it
        // could only queue behind it, so requests arriving meanwhile join it instead (fewer,
        // larger groups under load; an idle lane is not held back).
        await previousWrite.catch(() => undefined);
        previousWrite = staged.done;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      lane.busy = false;
      if (lane.queue.length === 0) this.pending.delete(tenantId);
    }
  }

  /**
   * Decides validated events in order and stores all their decisions and ledger entries in one
   * statement (group commit). An event whose idempotency key (its event_id, else the caller's
   * key) was decided before, here or in an earlier call, gets that earlier decision back.
   */
  async decideMany(
    tenantId: string,
    inputs: readonly DecisionInput[],
    path: DecisionPath,
    inTransaction?: (tx: Tx, records: readonly DecisionRecord[]) => Promise<void>,
  ): Promise<DecisionRecord[]> {
    if (inputs.length === 0) return [];
    return this.decideStaged(tenantId, inputs, path, inTransaction).done;
  }

  /**
   * decideMany in its two stages: `prepared` settles once the group is read, evaluated and hashed
   * (a caller with more events may start the next group then), `done` once it is stored.
   *
   * Two round trips: one read (known keys, previous decisions, the log's frontier) and one write
   * that checks under the head lock that the log is still where the group was built; when another
   * process appended meanwhile, the group is read, hashed and written again (its decisions stand).
   * `inTransaction` runs in the write's transaction with the decisions in input order.
   */
  decideStaged(
    tenantId: string,
    inputs: readonly DecisionInput[],
    path: DecisionPath,
    inTransaction?: (tx: Tx, records: readonly DecisionRecord[]) => Promise<void>,
  ): { prepared: Promise<void>; done: Promise<DecisionRecord[]> } {
    let pipeline = this.pipelines.get(tenantId);
    if (!pipeline) {
      pipeline = new GroupPipeline();
      this.pipelines.set(tenantId, pipeline);
    }
    const p = pipeline;
    p.users++;
    this.metrics?.groupSize.observe({ path }, inputs.length);
    const staged = p.run(
      () => this.prepareGroup(tenantId, inputs, path, p),
      (group) => this.writeGroup(tenantId, group, path, p, inTransaction),
    );
    const release = () => {
      if (--p.users === 0 && this.pipelines.get(tenantId) === p) this.pipelines.delete(tenantId);
    };
    staged.done.then(release, release);
    return staged;
  }

  /** Stage one: read, evaluate each event not decided before, build and hash the group. */
  private async prepareGroup(tenantId: string, inputs: readonly DecisionInput[], path: DecisionPath, pipeline: GroupPipeline): Promise<PreparedGroup> {
    const keys = inputs.map((i) => i.event.event_id ?? i.idempotencyKey ?? null);
    const uniqueKeys = [...new Set(keys.filter((k): k is string => k !== null))];
    const entities = [...new Set(inputs.map((i) => entityKey(i.event)))];
    const inFlight = pipeline.inFlight;
    const [read, ruleset, doctrine] = await Promise.all([
      this.readGroup(tenantId, uniqueKeys, entities),
      this.active.get(tenantId, 'ruleset'),
      this.active.get(tenantId, 'doctrine'),
    ]);
    // A read that does not see the group still being written builds on that group: its frontier,
    // its decisions as the previous ones per entity, and its own blocks (those of the groups before
    // it are in the database by then, below the read's size, and counted from there only).
    const builtOn = inFlight && read.frontier.size === inFlight.startSize ? inFlight : undefined;
    const state: GroupState = builtOn
      ? { frontier: builtOn.endFrontier, previous: new Map([...read.previous, ...builtOn.lastByEntity]), known: read.known }
      : read;
    const ownBlocks: PendingBlock[] = [];
    const enforcement = await this.enforcement(tenantId, read.frontier.size, builtOn?.blocks ?? [], ownBlocks);
    const fresh: FreshDecision[] = [];
    const firstIndexOfKey = new Map<string, number>();
    for (const [index, input] of inputs.entries()) {
      const key = keys[index]!;
      if (key !== null && (state.known.has(key) || firstIndexOfKey.has(key))) continue;
      if (key !== null) firstIndexOfKey.set(key, index);
      const stopTimer = this.metrics?.evaluateSeconds.startTimer({ path });
      let decision: Decision;
      try {
        decision = await evaluate(input.event, {
          tenantId,
          ruleset: ruleset.content.compiled,
          doctrine: doctrine.content.compiled,
          windows: this.windows,
          enforcement,
        });
      } finally {
        stopTimer?.();
      }
      const occurredMs = Date.parse(input.event.occurred_at);
      const blockS = appliedBlockSeconds(decision);
      if (blockS > 0) ownBlocks.push({ occurredMs, untilMs: occurredMs + blockS * 1000 });
      fresh.push({ index, key, event: input.event, decision });
    }
    const planned = this.plan(tenantId, state, fresh, path);
    let inFlightNow: InFlightGroup | undefined;
    if (fresh.length > 0) {
      inFlightNow = { startSize: state.frontier.size, endFrontier: planned.endFrontier, lastByEntity: planned.lastByEntity, blocks: ownBlocks };
      pipeline.inFlight = inFlightNow;
    }
    return { inputs, keys, uniqueKeys, entities, firstIndexOfKey, fresh, state, planned, inFlight: inFlightNow };
  }

  /** Stage two: write the group, reading and building it again after a lost race. */
  private async writeGroup(
    tenantId: string,
    group: PreparedGroup,
    path: DecisionPath,
    pipeline: GroupPipeline,
    inTransaction: ((tx: Tx, records: readonly DecisionRecord[]) => Promise<void>) | undefined,
  ): Promise<DecisionRecord[]> {
    let { fresh, state, planned } = group;
    const order = (stored: readonly DecisionRecord[]) => {
      const byIndex = new Map(fresh.map((f, i) => [f.index, stored[i]!]));
      return group.inputs.map((_, index) => {
        const key = group.keys[index]!;
        return byIndex.get(index) ?? (key !== null ? (state.known.get(key) ?? byIndex.get(group.firstIndexOfKey.get(key)!)) : undefined)!;
      });
    };
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.writePlanned(tenantId, planned, inTransaction && ((tx, records) => inTransaction(tx, order(records))));
          break;
        } catch (err) {
          const conflict = isSerializationFailure(err);
          // Decided concurrently by another request (same event_id): each event is decided once.
          const duplicate = isUniqueViolation(err) && fresh.some((f) => f.key !== null);
          if ((!conflict && !duplicate) || attempt >= MAX_WRITE_ATTEMPTS) throw err;
          if (conflict) this.metrics?.groupConflicts.inc();
          // The group before this one has settled by now: read again (every key, so the inputs
          // known at the first read still find their decisions), drop what others decided.
          state = await this.readGroup(tenantId, group.uniqueKeys, group.entities);
          fresh = fresh.filter((f) => f.key === null || !state.known.has(f.key));
          planned = this.plan(tenantId, state, fresh, path);
        }
      }
    } finally {
      if (pipeline.inFlight === group.inFlight) pipeline.inFlight = undefined;
    }
    if (planned.stored.length > 0) this.tallies.get(tenantId)?.advance(planned.startSize, planned.endFrontier.size, planned.blocks);
    for (const r of planned.stored) {
      this.metrics?.decisions.inc({ threat_level: r.threat_level, path });
      for (const rule of r.rules_triggered) this.metrics?.rulesTriggered.inc({ rule });
    }
    if (planned.stored.length > 0) for (const listener of this.committedListeners) listener(tenantId, planned.stored);
    return order(planned.stored);
  }

  /** One round trip: the decisions already made for `keys`, the last one per entity, the log's frontier. */
  private async readGroup(tenantId: string, keys: readonly string[], entities: readonly string[]): Promise<GroupState> {
    assertTenantId(tenantId);
    const { rows } = await sql<{
      state: { size: number; frontier: string[]; previous: Array<DiffableDecision & { entity: string }>; known: NonNullable<Row>[] };
    }>`
      SELECT fg_decision_group_read(${tenantId}, ${keys}::text[], ${entities}::text[]) AS state`.execute(this.db.db);
    const state = rows[0]!.state;
    return {
      frontier: MerkleFrontier.fromNodes(
        Number(state.size),
        state.frontier.map((hash) => Buffer.from(hash, 'hex')),
      ),
      previous: new Map(state.previous.map((p) => [p.entity, p])),
      known: new Map(state.known.map((row) => [row.event_id!, toRecord(row)])),
    };
  }

  /** The group's records on `state`: diffs against the previous decisions, ledger entries on its frontier. */
  private plan(tenantId: string, state: GroupState, fresh: readonly FreshDecision[], path: DecisionPath): PlannedGroup {
    const previous = new Map(state.previous);
    const ids = newDecisionIds(fresh.length);
    const records = fresh.map(({ key, event, decision }, i) => {
      const diff = decisionDiff(previous.get(decision.entity) ?? null, decision);
      previous.set(decision.entity, decision);
      const mitigations = decision.mitigations.map((m) => ({
        action: m.action,
        target: m.target,
        duration_s: m.duration_s,
        applied: m.applied,
        gated_by: m.gated_by,
      }));
      const occurredAt = new Date(event.occurred_at);
      const blockS = appliedBlockSeconds(decision);
      return {
        type: 'decision',
        decision_id: ids[i]!,
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
    const appended = planAppend(state.frontier, records);
    // One timestamp for the group: ordering within it is the ledger index.
    const createdAt = new Date().toISOString();
    // fg_decision_group_append's arguments after the expected size and frontier: a typed array per column.
    const columns = [
      appended.frontier.size,
      appended.rows.map((e) => e.idx),
      appended.rows.map((e) => e.record_json),
      appended.nodes.map((n) => n.level),
      appended.nodes.map((n) => n.index),
      appended.nodes.map((n) => n.hash.toString('hex')),
      records.map((r) => r.decision_id),
      records.map((r) => r.event_id),
      records.map((r) => r.event_digest),
      fresh.map((f) => JSON.stringify(f.event)),
      records.map((r) => r.entity),
      records.map((r) => r.threat_level),
      records.map((r) => r.score),
      records.map((r) => textArrayLiteral(r.rules_triggered)),
      records.map((r) => JSON.stringify(r.mitigations)),
      records.map((r) => r.explanation),
      records.map((r) => r.ruleset_version),
      records.map((r) => r.doctrine_version),
      records.map((r) => (r.decision_diff === null ? null : JSON.stringify(r.decision_diff))),
      appended.entries.map((e) => e.index),
      records.map((r) => r.occurred_at),
      records.map((r) => r.block_until),
      path,
      createdAt,
    ] as const;
    // The stored values are known here: nothing is read back.
    const stored = records.map((r, i): DecisionRecord => ({
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
      ledger_index: appended.entries[i]!.index,
      path,
      occurred_at: r.occurred_at,
      created_at: createdAt,
    }));
    return {
      startSize: state.frontier.size,
      startFrontier: state.frontier.nodes().map((n) => n.hash.toString('hex')),
      endFrontier: appended.frontier,
      lastByEntity: previous,
      columns,
      stored,
      blocks: records.flatMap((r, i) =>
        r.block_until === null ? [] : [{ index: appended.entries[i]!.index, occurredMs: Date.parse(r.occurred_at), untilMs: Date.parse(r.block_until) }],
      ),
    };
  }

  /**
   * Stores a planned group with fg_decision_group_append: a statement of its own (one round trip)
   * or, when there is follow-up work that must commit with it, in a tenant transaction.
   */
  private async writePlanned(
    tenantId: string,
    planned: PlannedGroup,
    inTransaction: ((tx: Tx, records: readonly DecisionRecord[]) => Promise<void>) | undefined,
  ): Promise<void> {
    if (planned.stored.length === 0) {
      if (inTransaction) await this.db.withTenant(tenantId, (tx) => inTransaction(tx, []));
      return;
    }
    const c = planned.columns;
    const write = sql`SELECT fg_decision_group_append(${tenantId}, ${planned.startSize}, ${planned.startFrontier}::text[], ${c[0]}::bigint,
      ${c[1]}::bigint[], ${c[2]}::text[], ${c[3]}::smallint[], ${c[4]}::bigint[], ${c[5]}::text[],
      ${c[6]}::text[], ${c[7]}::text[], ${c[8]}::text[], ${c[9]}::text[], ${c[10]}::text[], ${c[11]}::text[], ${c[12]}::integer[], ${c[13]}::text[],
      ${c[14]}::text[], ${c[15]}::text[], ${c[16]}::text[], ${c[17]}::text[], ${c[18]}::text[], ${c[19]}::bigint[], ${c[20]}::timestamptz[],
      ${c[21]}::timestamptz[], ${c[22]}::text, ${c[23]}::timestamptz)`;
    if (inTransaction) {
      await this.db.withTenant(tenantId, async (tx) => {
        await write.execute(tx);
        await inTransaction(tx, planned.stored);
      });
    } else {
      await write.execute(this.db.db);
    }
  }

  /** Per tenant, its applied blocks as of a prefix of its log (block-tally.ts). */
  private readonly tallies = new Map<string, BlockTally>();

  /** The tenant's tally brought up to ledger size `size`: a read only of what other processes appended. */
  private async tallyAt(tenantId: string, size: number): Promise<BlockTally> {
    const nowMs = Date.now();
    let tally = this.tallies.get(tenantId);
    if (!tally) {
      const horizonMs = nowMs - TALLY_RETAIN_MS;
      tally = BlockTally.loaded(size, horizonMs, await this.blocksIn(tenantId, 0, size, horizonMs), nowMs);
      this.tallies.set(tenantId, tally);
    } else if (tally.synced < size) {
      const from = tally.synced;
      tally.advance(from, size, await this.blocksIn(tenantId, from, size, tally.horizonMs));
    }
    tally.prune(nowMs);
    return tally;
  }

  /** Applied blocks of ledger indices [from, to) ending after `horizonMs`. */
  private async blocksIn(tenantId: string, from: number, to: number, horizonMs: number): Promise<TalliedBlock[]> {
    if (to <= from) return [];
    const rows = await this.db.withTenant(tenantId, (tx) =>
      tx
        .selectFrom('decisions')
        .select(['ledger_index', 'occurred_at', 'block_until'])
        .where('tenant_id', '=', tenantId)
        .where('block_until', '>', new Date(horizonMs))
        .where('ledger_index', '>=', from)
        .where('ledger_index', '<', to)
        .execute(),
    );
    return rows.map((r) => ({ index: Number(r.ledger_index), occurredMs: new Date(r.occurred_at).getTime(), untilMs: new Date(r.block_until!).getTime() }));
  }

  /**
   * Blocks in force and applied as a group built on ledger size `size` sees them: those stored below
   * it (the tally; the database for counts reaching past the tally's horizon), those of the group
   * it is built on (`before`, not stored yet), and its own so far (`own`, grows as it is evaluated).
   * Each block counts once, however the writes of the groups around it land meanwhile.
   */
  private async enforcement(tenantId: string, size: number, before: readonly PendingBlock[], own: readonly PendingBlock[]): Promise<EnforcementState> {
    const tally = await this.tallyAt(tenantId, size);
    const inForce = (atMs: number) => before.filter((p) => p.untilMs > atMs).length + own.filter((p) => p.untilMs > atMs).length;
    const appliedIn = (sinceMs: number, atMs: number) => {
      const within = (p: PendingBlock) => p.occurredMs > sinceMs && p.occurredMs <= atMs;
      return before.filter(within).length + own.filter(within).length;
    };
    return {
      activeBlocks: (_tenant, atMs) => {
        const held = tally.activeAt(size, atMs);
        if (held !== undefined) return held + inForce(atMs);
        return this.countBlocks(tenantId, size, (q) => q.where('block_until', '>', new Date(atMs))).then((n) => n + inForce(atMs));
      },
      blocksApplied: (_tenant, sinceMs, atMs) => {
        const held = tally.appliedIn(size, sinceMs, atMs);
        if (held !== undefined) return held + appliedIn(sinceMs, atMs);
        return this.countBlocks(tenantId, size, (q) => q.where('occurred_at', '>', new Date(sinceMs)).where('occurred_at', '<=', new Date(atMs))).then(
          (n) => n + appliedIn(sinceMs, atMs),
        );
      },
    };
  }

  /** Applied blocks below ledger size `size` that `where` selects: counts reaching past the tally's horizon. */
  private async countBlocks(tenantId: string, size: number, where: (q: BlockCountQuery) => BlockCountQuery): Promise<number> {
    const r = await this.db.withTenant(tenantId, (tx) =>
      where(
        tx
          .selectFrom('decisions')
          .select((e) => e.fn.countAll<number>().as('n'))
          .where('tenant_id', '=', tenantId)
          .where('block_until', 'is not', null)
          .where('ledger_index', '<', size),
      ).executeTakeFirstOrThrow(),
    );
    return Number(r.n);
  }

  async rowById(tx: Tx, tenantId: string, id: string) {
    return tx.selectFrom('decisions').selectAll().where('tenant_id', '=', tenantId).where('decision_id', '=', id).executeTakeFirst();
  }

  async get(tenantId: string, id: string): Promise<DecisionRecord> {
    const row = await this.db.withTenant(tenantId, (tx) => this.rowById(tx, tenantId, id));
    if (!row) throw notFound(`decision ${id}`);
    return toRecord(row);
  }

  /**
   * One decision with whether its row still matches its ledger record (integrity.ts): the row and
   * its ledger entry in one query (a primary-key join), compared in the process.
   */
  async getChecked(tenantId: string, id: string): Promise<DecisionRecord & { integrity: DecisionIntegrity }> {
    const found = await this.db.withTenant(tenantId, (tx) =>
      tx
        .selectFrom('decisions as d')
        .leftJoin('ledger_entries as e', (j) => j.onRef('e.tenant_id', '=', 'd.tenant_id').on('e.log', '=', 'decisions').onRef('e.idx', '=', 'd.ledger_index'))
        .selectAll('d')
        .select('e.record_json')
        .where('d.tenant_id', '=', tenantId)
        .where('d.decision_id', '=', id)
        .executeTakeFirst(),
    );
    if (!found) throw notFound(`decision ${id}`);
    const { record_json: recordJson, ...row } = found;
    return { ...toRecord(row), integrity: decisionIntegrity(row, recordJson) };
  }

  async list(
    tenantId: string,
    f: { threat_level?: string; since?: string; until?: string; entity?: string; rule?: string; cursor?: string; limit: number },
  ): Promise<{ decisions: DecisionRecord[]; next_cursor: string | null }> {
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
      return q
        .orderBy('ledger_index', 'desc')
        .limit(f.limit + 1)
        .execute();
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
      if (!normalized)
        throw new AppError('validation_failed', 'querystring/ip: must be an IPv4 or IPv6 address', {
          errors: [{ path: 'querystring/ip', message: 'not an IP address' }],
        });
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
    const rows = await this.db.withTenant(tenantId, (tx) =>
      tx.selectFrom('decisions').select(['event']).where('tenant_id', '=', tenantId).orderBy('ledger_index', 'desc').limit(limit).execute(),
    );
    return rows.reverse().map((r) => r.event as SecurityEvent);
  }
}

/** A Postgres text[] literal (each element quoted): rules_triggered, one per decision in a text[] argument. */
function textArrayLiteral(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, (ch) => `\\${ch}`)}"`).join(',')}}`;
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
