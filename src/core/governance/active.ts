import type { Bus } from '../../platform/bus/bus.js';
import type { Database } from '../../platform/db/database.js';
import type { GovernedKind } from '../../platform/db/schema.js';
import { compileContent, defaultContent, type GovernedContent } from './kinds.js';

export const DEPLOYED_SUBJECT = 'fg.governance.deployed';

/** Upper bound for a node that missed the bus message to pick up a deploy (it re-reads then). */
export const ACTIVE_CACHE_TTL_MS = 5_000;

export interface ActiveVersion<K extends GovernedKind> {
  readonly version: string;
  readonly content: GovernedContent[K];
  readonly changeId: string | null;
}

/**
 * The deployed version of each governed object per tenant, as the engine and limiter use it.
 * Cached; a deploy or rollback on any node publishes on the bus and every node drops its cache,
 * and a missed message costs at most ACTIVE_CACHE_TTL_MS.
 */
export class ActiveVersions {
  private readonly cache = new Map<string, { at: number; value: ActiveVersion<GovernedKind> }>();
  private readonly defaults = new Map<GovernedKind, ActiveVersion<GovernedKind>>();
  private readonly unsubscribe: () => void;

  constructor(private readonly db: Database, bus: Pick<Bus, 'subscribe'>, private readonly ttlMs = ACTIVE_CACHE_TTL_MS) {
    this.unsubscribe = bus.subscribe(DEPLOYED_SUBJECT, (data) => {
      const { tenant, kind } = data as { tenant?: string; kind?: string };
      if (tenant && kind) this.cache.delete(`${tenant}\u0000${kind}`);
    });
  }

  defaultVersion<K extends GovernedKind>(kind: K): ActiveVersion<K> {
    let d = this.defaults.get(kind);
    if (!d) {
      const { version, source } = defaultContent(kind);
      d = { version, content: compileContent(kind, source), changeId: null };
      this.defaults.set(kind, d);
    }
    return d as ActiveVersion<K>;
  }

  async get<K extends GovernedKind>(tenantId: string, kind: K): Promise<ActiveVersion<K>> {
    const key = `${tenantId}\u0000${kind}`;
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.value as ActiveVersion<K>;
    const row = await this.db.withTenant(tenantId, (tx) =>
      tx
        .selectFrom('governed_active as a')
        .innerJoin('governed_versions as v', (j) => j.onRef('v.tenant_id', '=', 'a.tenant_id').onRef('v.kind', '=', 'a.kind').onRef('v.version', '=', 'a.version'))
        .select(['a.version', 'a.change_id', 'v.content'])
        .where('a.tenant_id', '=', tenantId)
        .where('a.kind', '=', kind)
        .executeTakeFirst(),
    );
    const value: ActiveVersion<K> = row ? { version: row.version, content: compileContent(kind, row.content), changeId: row.change_id } : this.defaultVersion(kind);
    this.cache.set(key, { at: Date.now(), value });
    return value;
  }

  invalidate(tenantId: string, kind: GovernedKind): void {
    this.cache.delete(`${tenantId}\u0000${kind}`);
  }

  close(): void {
    this.unsubscribe();
  }
}
