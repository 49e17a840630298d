import type { Bus } from '../../platform/bus/bus.js';
import type { Database } from '../../platform/db/database.js';
import type { GovernedKind } from '../../platform/db/schema.js';
import { compileContent, defaultContent, type GovernedContent } from './kinds.js';
import { activeWithContent } from './store.js';

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
const keyOf = (tenantId: string, kind: GovernedKind): string => `${tenantId}\u0000${kind}`;

export class ActiveVersions {
  private readonly cache = new Map<string, { at: number; value: ActiveVersion<GovernedKind> }>();
  /** The read under way per entry; an invalidation removes it, so its answer is not cached. */
  private readonly loading = new Map<string, Promise<ActiveVersion<GovernedKind>>>();
  private readonly defaults = new Map<GovernedKind, ActiveVersion<GovernedKind>>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly db: Database,
    bus: Pick<Bus, 'subscribe'>,
    private readonly ttlMs = ACTIVE_CACHE_TTL_MS,
  ) {
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
    const hit = this.cache.get(keyOf(tenantId, kind));
    return hit && Date.now() - hit.at < this.ttlMs ? (hit.value as ActiveVersion<K>) : undefined;
  }

  async get<K extends GovernedKind>(tenantId: string, kind: K): Promise<ActiveVersion<K>> {
    const fresh = this.peek(tenantId, kind);
    if (fresh) return fresh;
    const key = keyOf(tenantId, kind);
    let pending = this.loading.get(key);
    if (!pending) {
      // Cached only while still the entry's current read: invalidate() drops it from `loading`.
      const load: Promise<ActiveVersion<GovernedKind>> = this.read(tenantId, kind).then(
        (value) => {
          if (this.loading.get(key) === load) {
            this.loading.delete(key);
            this.cache.set(key, { at: Date.now(), value });
          }
          return value;
        },
        (err: unknown) => {
          if (this.loading.get(key) === load) this.loading.delete(key);
          throw err;
        },
      );
      this.loading.set(key, load);
      pending = load;
    }
    return pending as Promise<ActiveVersion<K>>;
  }

  /** Through the gate pool: every request's rate limit needs the deployed policy (Database.gate). */
  private async read<K extends GovernedKind>(tenantId: string, kind: K): Promise<ActiveVersion<K>> {
    const row = await this.db.gate.withTenant(tenantId, (tx) => activeWithContent(tx, tenantId, kind));
    if (!row) return this.defaultVersion(kind);
    const previous = this.cache.get(keyOf(tenantId, kind))?.value as ActiveVersion<K> | undefined;
    const content = previous?.version === row.version && previous.changeId !== null ? previous.content : compileContent(kind, row.content);
    return { version: row.version, content, changeId: row.change_id };
  }

  invalidate(tenantId: string, kind: GovernedKind): void {
    const key = keyOf(tenantId, kind);
    this.cache.delete(key);
    this.loading.delete(key);
  }

  close(): void {
    this.unsubscribe();
  }
}
