import { sql } from 'kysely';
import type { Database } from '../../platform/db/database.js';

/** Where a bouncer key's stream left off: the blocks it has seen up to, and when it pulled. */
export interface PullPosition {
  /** Highest ledger index of the tenant's decisions the pull answered from (-1: none). */
  readonly ledgerIndex: number;
  readonly pullAtMs: number;
}

/** How often positions served since the last write are written, in one statement per tenant. */
export const POSITION_FLUSH_MS = 2_000;
/** A position this process served is used without reading the database while younger than this. */
export const POSITION_TRUST_MS = 60_000;
const MAX_HELD = 100_000;

const keyOf = (tenantId: string, keyId: string) => `${tenantId}\u0000${keyId}`;

/**
 * The stream positions of bouncer keys: held in memory for the pulls this process serves, written
 * behind to bouncer_pulls (every POSITION_FLUSH_MS and at close), read from it for a key this
 * process has not served lately. A pull therefore needs no database connection in the common case.
 *
 * A position read may be older than the bouncer's last pull (not yet written by the process that
 * served it, or lost in a crash). That is safe: an older position only repeats blocks the bouncer
 * already holds (an add of a present element, a delete of an absent one); it never skips one. A
 * newer one could, so a write never replaces a later pull's position.
 */
export class PullPositions {
  private readonly held = new Map<string, { tenantId: string; keyId: string; position: PullPosition; servedAtMs: number }>();
  private readonly unsaved = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly clock: () => number = Date.now,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.flush().catch(() => {}), POSITION_FLUSH_MS);
    this.timer.unref();
  }

  /** The key's last position: this process's own while recent, else the newer of it and the stored one. */
  async get(tenantId: string, keyId: string): Promise<PullPosition | undefined> {
    const mine = this.held.get(keyOf(tenantId, keyId));
    if (mine && this.clock() - mine.servedAtMs < POSITION_TRUST_MS) return mine.position;
    const row = await this.db.withTenant(tenantId, (tx) =>
      tx.selectFrom('bouncer_pulls').select(['last_pull_at', 'last_ledger_index']).where('key_id', '=', keyId).executeTakeFirst(),
    );
    const stored = row ? { ledgerIndex: Number(row.last_ledger_index), pullAtMs: new Date(row.last_pull_at).getTime() } : undefined;
    if (!mine) return stored;
    return stored && stored.pullAtMs > mine.position.pullAtMs ? stored : mine.position;
  }

  /** The position a pull just answered up to; written with the next flush. */
  record(tenantId: string, keyId: string, position: PullPosition): void {
    const key = keyOf(tenantId, keyId);
    this.held.delete(key); // re-inserted last: the map's order is the eviction order
    this.held.set(key, { tenantId, keyId, position, servedAtMs: this.clock() });
    this.unsaved.add(key);
    if (this.held.size > MAX_HELD) {
      const oldest = this.held.keys().next().value as string;
      if (!this.unsaved.has(oldest)) this.held.delete(oldest);
    }
  }

  /** Writes the positions served since the last flush; one that fails stays unsaved for the next. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async write(): Promise<void> {
    const byTenant = new Map<string, Array<{ keyId: string; position: PullPosition }>>();
    for (const key of this.unsaved) {
      const entry = this.held.get(key);
      if (!entry) continue;
      const list = byTenant.get(entry.tenantId) ?? [];
      list.push({ keyId: entry.keyId, position: entry.position });
      byTenant.set(entry.tenantId, list);
    }
    this.unsaved.clear();
    const failures: unknown[] = [];
    for (const [tenantId, rows] of byTenant) {
      try {
        await this.db.withTenant(tenantId, (tx) =>
          sql`
            INSERT INTO bouncer_pulls (key_id, tenant_id, last_pull_at, last_ledger_index)
            SELECT k, ${tenantId}, to_timestamp(t / 1000.0), i
            FROM unnest(${rows.map((r) => r.keyId)}::text[], ${rows.map((r) => r.position.pullAtMs)}::float8[], ${rows.map((r) => r.position.ledgerIndex)}::bigint[]) AS u(k, t, i)
            ON CONFLICT (key_id) DO UPDATE SET last_pull_at = excluded.last_pull_at, last_ledger_index = excluded.last_ledger_index
              WHERE bouncer_pulls.last_pull_at < excluded.last_pull_at`.execute(tx),
        );
      } catch (err) {
        // Still owed, unless a later pull of the key is already waiting to be written.
        for (const r of rows) this.unsaved.add(keyOf(tenantId, r.keyId));
        failures.push(err);
      }
    }
    if (failures.length > 0) throw failures[0];
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flushing?.catch(() => {});
    await this.flush();
  }
}
