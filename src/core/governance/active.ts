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
 *
 * Concurrent misses of one entry share a single read (at thousands of requests a second, every
 * request arriving during the read would otherwise read and compile again), a read that an
 * invalidation overtook is not cached, and an expired entry whose version is still deployed keeps
 * its compiled content (versions are immutable).
 */
export class ActiveVersions {
  private readonly cache = new Map<string, { at: number; value: ActiveVersion<GovernedKind> }>();
  private readonly loading = new Map<string, Promise<ActiveVersion<GovernedKind>>>();
  /** Bumped by each invalidation, so a read that started before it is not cached after it. */
  private readonly generations = new Map<string, number>();
  private readonly defaults = new Map<GovernedKind, ActiveVersion<GovernedKind>>();
  private readonly unsubscribe: () => void;

  constructor(private readonly db: Database, bus: Pick<Bus, 'subscribe'>, private readonly ttlMs = ACTIVE_CACHE_TTL_MS) {
    this.unsubscribe = bus.subscribe(DEPLOYED_SUBJECT, (data) => {
      const { tenant, kind } = data as { tenant?: string; kind?: string };
      if (tenant && kind) this.invalidate(tenant, kind as GovernedKind);
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

  /** The cached version while it is fresh, without waiting; else undefined (then use get()). */
  peek<K extends GovernedKind>(tenantId: string, kind: K): ActiveVersion<K> | undefined {
    const hit = this.cache.get(`${tenantId}\u0000${kind}`);
    return hit && Date.now() - hit.at < this.ttlMs ? (hit.value as ActiveVersion<K>) : undefined;
  }

  async get<K extends GovernedKind>(tenantId: string, kind: K): Promise<ActiveVersion<K>> {
    const fresh = this.peek(tenantId, kind);
    if (fresh) return fresh;
    const key = `${tenantId}\u0000${kind}`;
    let pending = this.loading.get(key);
    if (!pending) {
      const load = this.load(tenantId, kind, key);
      pending = load;
      this.loading.set(key, load);
      const forget = () => {
        if (this.loading.get(key) === load) this.loading.delete(key);
      };
      load.then(forget, forget);
    }
    return pending as Promise<ActiveVersion<K>>;
  }

  private async load<K extends GovernedKind>(tenantId: string, kind: K, key: string): Promise<ActiveVersion<K>> {
    const generation = this.generations.get(key) ?? 0;
    const row = await this.db.withTenant(tenantId, (tx) =>
      tx
        .selectFrom('governed_active as a')
        .innerJoin('governed_versions as v', (j) => j.onRef('v.tenant_id', '=', 'a.tenant_id').onRef('v.kind', '=', 'a.kind').onRef('v.version', '=', 'a.version'))
        .select(['a.version', 'a.change_id', 'v.content'])
        .where('a.tenant_id', '=', tenantId)
        .where('a.kind', '=', kind)
        .executeTakeFirst(),
    );
    let value: ActiveVersion<K>;
    if (!row) value = this.defaultVersion(kind);
    else {
      const previous = this.cache.get(key)?.value as ActiveVersion<K> | undefined;
      const content = previous?.version === row.version && previous.changeId !== null ? previous.content : compileContent(kind, row.content);
      value = { version: row.version, content, changeId: row.change_id };
    }
    if ((this.generations.get(key) ?? 0) === generation) this.cache.set(key, { at: Date.now(), value });
    return value;
  }

  invalidate(tenantId: string, kind: GovernedKind): void {
    const key = `${tenantId}\u0000${kind}`;
    this.cache.delete(key);
    this.loading.delete(key);
    this.generations.set(key, (this.generations.get(key) ?? 0) + 1);
  }

  close(): void {
    this.unsubscribe();
  }
}
