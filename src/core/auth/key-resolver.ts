import type { Bus } from '../../platform/bus/bus.js';
import type { KeyIndex, Screen } from './key-index.js';
import type { KeyRecord, KeyStore } from './store.js';

/**
 * How long a looked-up key is trusted before the database is asked again. This is the documented
 * revocation bound across nodes when a bus message is lost; on the revoking node and on nodes that
 * receive the revocation message it takes effect at once.
 */
export const KEY_CACHE_TTL_MS = 5_000;
/** last_used_at is written in one batch per interval, never per request. */
export const TOUCH_FLUSH_MS = 30_000;
export const KEY_REVOKED_SUBJECT = 'fg.auth.key_revoked';

export type Lookup =
  | { readonly status: 'found'; readonly record: KeyRecord; readonly stale: false }
  | { readonly status: 'absent' }
  | { readonly status: 'store_unavailable'; readonly error: Error; readonly stale?: KeyRecord };

interface CacheEntry {
  readonly record: KeyRecord | undefined;
  readonly fetchedAt: number;
}

export class KeyResolver {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly touched = new Map<string, Date>();
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Pick<KeyStore, 'lookup' | 'touch'>,
    bus: Pick<Bus, 'subscribe'>,
    private readonly ttlMs = KEY_CACHE_TTL_MS,
    private readonly now: () => number = Date.now,
    /** Screens presented keys before any record is read (unknown ids and wrong secrets alike); without one, every id is looked up. */
    private readonly index?: KeyIndex,
  ) {
    this.unsubscribe = bus.subscribe(KEY_REVOKED_SUBJECT, (data) => {
      const id = (data as { id?: unknown }).id;
      if (typeof id === 'string') this.invalidate(id);
    });
    this.timer = setInterval(() => void this.flushTouches().catch(() => {}), TOUCH_FLUSH_MS);
    this.timer.unref();
  }

  /** Whether a key with this id and (the start of) this digest exists, answered the same way for unknown ids and wrong secrets. */
  screen(id: string, digest: Uint8Array): Promise<Screen> {
    return this.index ? this.index.screen(id, digest) : Promise.resolve({ status: 'unindexed' });
  }

  async resolve(id: string): Promise<Lookup> {
    const cached = this.cache.get(id);
    if (cached && this.now() - cached.fetchedAt < this.ttlMs) {
      return cached.record ? { status: 'found', record: cached.record, stale: false } : { status: 'absent' };
    }
    try {
      const record = await this.store.lookup(id);
      this.cache.set(id, { record, fetchedAt: this.now() });
      if (this.cache.size > 50_000) this.cache.delete(this.cache.keys().next().value as string);
      return record ? { status: 'found', record, stale: false } : { status: 'absent' };
    } catch (err) {
      return { status: 'store_unavailable', error: err as Error, ...(cached?.record ? { stale: cached.record } : {}) };
    }
  }

  invalidate(id: string): void {
    this.cache.delete(id);
  }

  touch(id: string): void {
    this.touched.set(id, new Date(this.now()));
  }

  async flushTouches(): Promise<void> {
    if (this.touched.size === 0) return;
    const batch = new Map(this.touched);
    this.touched.clear();
    const latest = new Date(Math.max(...[...batch.values()].map((d) => d.getTime())));
    await this.store.touch([...batch.keys()], latest);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.unsubscribe();
    await this.flushTouches().catch(() => {});
  }
}
