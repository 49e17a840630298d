import { sql } from 'kysely';
import type { Database } from '../../platform/db/database.js';
import { AppError } from '../../platform/http/problem.js';
import { normalizeIp } from '../engine/ip.js';
import { cidrContains, parseCidr, parseIp } from '../engine/ip.js';
import { PullPositions, type PullPosition } from './bouncer-positions.js';
import { applyLifts, liftedSince, readLifts, type LiftRow } from './block-removals.js';
import { blocksJson, toBlock, toDecision, type Block, type BlockRow, type CrowdSecDecision } from './crowdsec-format.js';

export interface StreamOptions {
  readonly startup: boolean;
  /** CrowdSec's `scopes` parameter (comma list); only `ip` has decisions here. */
  readonly scopes?: string;
}

export interface DecisionQuery {
  readonly ip?: string;
  readonly range?: string;
  readonly scope?: string;
  readonly value?: string;
  readonly type?: string;
}

function badQuery(field: string, message: string): AppError {
  return new AppError('validation_failed', `querystring/${field}: ${message}`, { errors: [{ path: `querystring/${field}`, message }] });
}

/** How stale a lookup may be: bouncers poll every few seconds, lookups come by the thousand. */
const ACTIVE_SET_TTL_MS = 1000;
/**
 * Past its TTL a loaded set keeps answering while one read refreshes it, so lookups do not queue
 * behind the database each second (that wait was the lookups' p99); never past this age, though:
 * an older set waits for the read, and a failing read then answers 503.
 */
const ACTIVE_SET_MAX_STALE_MS = 5000;
/**
 * How long a block that ended stays in the set: a stream pull reports it deleted from there when
 * the key's last pull is at most this old. An older position reads the database for it.
 */
export const ENDED_RETENTION_MS = 10 * 60_000;

/**
 * A tenant's blocks, one per IP (the one ending last), as of `readAtMs`: those in force, and those
 * that ended within ENDED_RETENTION_MS. Decisions are never updated and a tenant's commit order is
 * its ledger order (each group commits holding the log head), so a refresh reads only the rows
 * past `throughIndex` and drops what ended long ago: it costs what was decided since, not the size
 * of the block list (2,500 rows per tenant each second before). Lookups and the stream both answer
 * from it, so a storm of bouncer startups costs no database work.
 */
interface ActiveSet {
  readonly blocks: Map<string, Block>;
  /** Counts the reads that landed: a snapshot of an older generation is not reused. */
  generation: number;
  /** The last startup snapshot taken of the set. */
  snapshot?: Snapshot;
  /** Highest ledger index of the tenant's decisions the set has seen (-1: none); it holds every block decided up to it. */
  throughIndex: number;
  /** When the last read that landed started; -Infinity before the first. */
  readAtMs: number;
  /** Every block ending after this time is in the set (the first read's retention horizon, moved on by pruning). */
  knownEndsAfterMs: number;
  /** A decision of this process added a block: the next lookup waits for a read. */
  dirty: boolean;
  /** The read in progress, if any (single flight). */
  reading?: Promise<void>;
  /** Early removals whose blocks would still be in force (block-removals.ts), as of the last read. */
  lifts: readonly LiftRow[];
}

/** Startups within one such interval share one snapshot (and its serialization). */
const SNAPSHOT_QUANTUM_MS = 1000;

/** Every block in force as of `atMs`, for startups. */
interface Snapshot {
  readonly generation: number;
  readonly atMs: number;
  readonly throughIndex: number;
  readonly blocks: readonly Block[];
  /** The serialized answer, once a startup has asked for it. */
  body?: Buffer;
}

/** What one stream pull answers: durations are as of `atMs`. */
interface Pull {
  readonly new: readonly Block[];
  readonly deleted: readonly Block[];
  readonly atMs: number;
  readonly snapshot?: Snapshot;
}

export class BouncerDecisions {
  private readonly activeSets = new Map<string, ActiveSet>();
  private readonly positions: PullPositions;

  constructor(
    private readonly db: Database,
    private readonly clock: () => number = Date.now,
  ) {
    this.positions = new PullPositions(db, clock);
  }

  /** Starts writing stream positions behind (every POSITION_FLUSH_MS); close() writes the rest. */
  start(): void {
    this.positions.start();
  }

  async close(): Promise<void> {
    await this.positions.close();
  }

  /** Blocks in force now in the sets this process holds (tenants whose bouncers pulled from it). */
  activeBlockCount(nowMs: number = this.clock()): number {
    let n = 0;
    for (const set of this.activeSets.values()) for (const block of set.blocks.values()) if (block.untilMs > nowMs) n++;
    return n;
  }

  /** This process just decided a block for the tenant: its next lookup reads before answering. */
  invalidate(tenantId: string): void {
    const set = this.activeSets.get(tenantId);
    if (set) set.dirty = true;
  }

  private async activeSet(tenantId: string, nowMs: number): Promise<ActiveSet> {
    let set = this.activeSets.get(tenantId);
    if (!set) {
      set = { blocks: new Map(), generation: 0, throughIndex: -1, readAtMs: -Infinity, knownEndsAfterMs: Infinity, dirty: true, lifts: [] };
      this.activeSets.set(tenantId, set);
    }
    const age = nowMs - set.readAtMs;
    if (!set.dirty && age < ACTIVE_SET_TTL_MS) return set;
    if (!set.dirty && age < ACTIVE_SET_MAX_STALE_MS) {
      // A failed refresh leaves the set as it was; a later lookup tries again.
      this.refresh(tenantId, set, nowMs).catch(() => {});
      return set;
    }
    await this.refresh(tenantId, set, nowMs);
    return set;
  }

  /** Reads what the tenant decided past the set's index, and forgets blocks ended before the retention. */
  private refresh(tenantId: string, set: ActiveSet, nowMs: number): Promise<void> {
    if (set.reading) {
      // A read that started before this process's latest block may have missed it: read again after.
      if (!set.dirty) return set.reading;
      return set.reading.catch(() => {}).then(() => (set.dirty || set.reading ? this.refresh(tenantId, set, nowMs) : undefined));
    }
    const wasDirty = set.dirty;
    set.dirty = false;
    const after = set.throughIndex;
    const horizon = nowMs - ENDED_RETENTION_MS;
    const reading = this.db
      .withTenant(tenantId, async (tx) => {
        // One statement, one snapshot: the head index and the blocks decided up to it.
        const decided = await sql<BlockRow & { through: string | number | null }>`
          SELECT h.through, d.ledger_index, d.entity, d.rules_triggered, d.block_until
          FROM (SELECT max(ledger_index) AS through FROM decisions WHERE tenant_id = ${tenantId}) h
          LEFT JOIN decisions d ON d.tenant_id = ${tenantId} AND d.ledger_index > ${after} AND d.ledger_index <= h.through
            AND d.block_until > ${new Date(horizon)} AND d.entity LIKE 'ip:%'`.execute(tx);
        return { rows: decided.rows, lifts: await readLifts(tx, tenantId, horizon, nowMs) };
      })
      .then(({ rows, lifts }) => {
        for (const row of rows) {
          if (row.entity === null) continue;
          const block = toBlock(row);
          const held = set.blocks.get(block.ip);
          if (!held || block.untilMs > held.untilMs) set.blocks.set(block.ip, block);
        }
        const through = rows[0]?.through;
        if (through !== null && through !== undefined) set.throughIndex = Math.max(set.throughIndex, Number(through));
        applyLifts(set.blocks, lifts);
        set.lifts = lifts;
        for (const [ip, block] of set.blocks) if (block.untilMs <= horizon) set.blocks.delete(ip);
        set.knownEndsAfterMs = set.knownEndsAfterMs === Infinity ? horizon : Math.max(set.knownEndsAfterMs, horizon);
        set.readAtMs = Math.max(set.readAtMs, nowMs);
        set.generation++;
      })
      .catch((err: unknown) => {
        // A read owed to a new block is still owed: the next lookup waits for another.
        set.dirty ||= wasDirty;
        throw err;
      })
      .finally(() => {
        if (set.reading === reading) set.reading = undefined;
      });
    set.reading = reading;
    return reading;
  }

  /** `GET /v1/decisions`: blocks in force matching the query; null (CrowdSec's answer) when none. */
  async query(tenantId: string, q: DecisionQuery): Promise<CrowdSecDecision[] | null> {
    if (q.type !== undefined && q.type.toLowerCase() !== 'ban') return null;
    if (q.scope !== undefined && q.scope.toLowerCase() !== 'ip' && q.scope.toLowerCase() !== 'range') return null;
    let ip: string | undefined;
    const given = q.ip ?? (q.scope?.toLowerCase() !== 'range' ? q.value : undefined);
    if (given !== undefined) {
      const normalized = normalizeIp(given);
      if (!normalized) throw badQuery(q.ip !== undefined ? 'ip' : 'value', 'must be an IPv4 or IPv6 address');
      ip = normalized;
    }
    const rangeText = q.range ?? (q.scope?.toLowerCase() === 'range' ? q.value : undefined);
    const parsedRange = rangeText === undefined ? undefined : parseCidr(rangeText);
    if (parsedRange && !parsedRange.ok)
      throw badQuery(q.range !== undefined ? 'range' : 'value', `must be a CIDR such as 192.0.2.0/24 (${parsedRange.reason})`);
    const range = parsedRange?.ok ? parsedRange.cidr : undefined;
    const nowMs = this.clock();
    const active = (await this.activeSet(tenantId, nowMs)).blocks;
    let rows: Block[];
    if (ip) {
      const block = active.get(ip);
      rows = block && block.untilMs > nowMs ? [block] : [];
    } else {
      rows = [...active.values()].filter((b) => b.untilMs > nowMs);
    }
    const matching = range
      ? rows.filter((r) => {
          const addr = parseIp(r.ip);
          return addr !== undefined && cidrContains(range, addr);
        })
      : rows;
    return matching.length === 0 ? null : matching.map((r) => toDecision(r, nowMs));
  }

  /**
   * `GET /v1/decisions/stream`: on startup (or a key's first pull) every block in force; then what
   * changed since this key's last pull: IPs whose answering block was decided since (new) and IPs
   * whose last block ended since (deleted). Answered from the tenant's set, like lookups; the key's
   * position is written behind (PullPositions), so it survives restarts and spans processes.
   */
  async stream(tenantId: string, keyId: string, opts: StreamOptions): Promise<{ new: CrowdSecDecision[]; deleted: CrowdSecDecision[] }> {
    const pull = await this.pull(tenantId, keyId, opts);
    return { new: pull.new.map((b) => toDecision(b, pull.atMs)), deleted: pull.deleted.map((b) => toDecision(b, pull.atMs)) };
  }

  /** The same answer as stream(), serialized: what the route sends (it is StreamResponseSchema). */
  async streamBody(tenantId: string, keyId: string, opts: StreamOptions): Promise<Buffer> {
    const pull = await this.pull(tenantId, keyId, opts);
    const render = () => Buffer.from(`{"new":${blocksJson(pull.new, pull.atMs)},"deleted":${blocksJson(pull.deleted, pull.atMs)}}`);
    // A snapshot is shared by the startups of its second: serialized once, for all of them.
    if (pull.snapshot) return (pull.snapshot.body ??= render());
    return render();
  }

  private async pull(tenantId: string, keyId: string, opts: StreamOptions): Promise<Pull> {
    const wantsIp = opts.scopes === undefined || opts.scopes.split(',').some((s) => s.trim().toLowerCase() === 'ip');
    const nowMs = this.clock();
    let set = await this.activeSet(tenantId, nowMs);
    const last = opts.startup ? undefined : await this.positions.get(tenantId, keyId);
    if (!last) {
      const snapshot = this.snapshot(set, nowMs);
      this.positions.record(tenantId, keyId, { ledgerIndex: snapshot.throughIndex, pullAtMs: snapshot.atMs });
      return wantsIp ? { new: snapshot.blocks, deleted: [], atMs: snapshot.atMs, snapshot } : { new: [], deleted: [], atMs: snapshot.atMs };
    }
    if (last.ledgerIndex > set.throughIndex) {
      // Another process answered this key from further on than this set has read: catch up first,
      // or the blocks in between would never reach the bouncer.
      set.dirty = true;
      set = await this.activeSet(tenantId, nowMs);
    }
    const position: PullPosition = { ledgerIndex: Math.max(set.throughIndex, last.ledgerIndex), pullAtMs: nowMs };
    const inForce: Block[] = [];
    const ended: Block[] = [];
    if (wantsIp) {
      for (const block of set.blocks.values()) {
        if (block.untilMs > nowMs) {
          if (block.ledgerIndex > last.ledgerIndex) inForce.push(block);
        } else if (block.untilMs > last.pullAtMs) {
          ended.push(block);
        }
      }
    }
    const endedBlocks = !wantsIp ? [] : last.pullAtMs >= set.knownEndsAfterMs ? ended : await this.endedSince(tenantId, set, last.pullAtMs, nowMs);
    const deleted = wantsIp ? withLifted(endedBlocks, liftedSince(set.lifts, set.blocks, last.pullAtMs, nowMs)) : [];
    this.positions.record(tenantId, keyId, position);
    return { new: inForce, deleted, atMs: nowMs };
  }

  /**
   * Every block in force at the start of the current second, shared by all startups of that second
   * while the set is unchanged. Their positions are that second's start, so a block that ended
   * during it (still listed, with a duration under a second) is reported deleted by the next pull.
   */
  private snapshot(set: ActiveSet, nowMs: number): Snapshot {
    const atMs = nowMs - (nowMs % SNAPSHOT_QUANTUM_MS);
    const held = set.snapshot;
    if (held && held.generation === set.generation && held.atMs === atMs) return held;
    const blocks: Block[] = [];
    for (const block of set.blocks.values()) if (block.untilMs > atMs) blocks.push(block);
    const snapshot: Snapshot = { generation: set.generation, atMs, throughIndex: set.throughIndex, blocks };
    set.snapshot = snapshot;
    return snapshot;
  }

  /** IPs whose last block ended in (sinceMs, nowMs], for a position older than the set remembers. */
  private async endedSince(tenantId: string, set: ActiveSet, sinceMs: number, nowMs: number): Promise<Block[]> {
    const rows = await this.db.withTenant(tenantId, (tx) =>
      tx
        .selectFrom('decisions as d')
        .distinctOn('d.entity')
        .select(['d.ledger_index', 'd.entity', 'd.rules_triggered', 'd.block_until'])
        .where('d.tenant_id', '=', tenantId)
        .where('d.entity', 'like', 'ip:%')
        .where('d.block_until', '>', new Date(sinceMs))
        .where('d.block_until', '<=', new Date(nowMs))
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('decisions as a')
                .select(sql`1`.as('one'))
                .where('a.tenant_id', '=', tenantId)
                .whereRef('a.entity', '=', 'd.entity')
                .where('a.block_until', '>', new Date(nowMs)),
            ),
          ),
        )
        .orderBy('d.entity')
        .orderBy('d.block_until', 'desc')
        .execute(),
    );
    // A block this set holds in force (decided after the statement's snapshot) is not deleted.
    return rows
      .map((r) => toBlock({ ledger_index: r.ledger_index, entity: r.entity, rules_triggered: r.rules_triggered, block_until: r.block_until! }))
      .filter((b) => !((set.blocks.get(b.ip)?.untilMs ?? 0) > nowMs));
  }
}

/** Ended blocks and lifted ones, one per IP. */
function withLifted(ended: Block[], lifted: readonly Block[]): Block[] {
  if (lifted.length === 0) return ended;
  const ips = new Set(ended.map((b) => b.ip));
  return [...ended, ...lifted.filter((b) => !ips.has(b.ip))];
}
