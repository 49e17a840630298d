import type { KeyStore } from './store.js';

/** Most keys one node screens in memory (about 100 bytes each); beyond it the gate asks the store per id. */
export const MAX_INDEXED_KEYS = 250_000;
/** Each refresh re-reads keys created this long before the newest one seen: a slow transaction commits late. */
export const REFRESH_OVERLAP_MS = 5 * 60_000;
/** At most this long between full reloads (done at the next refresh). */
export const FULL_RELOAD_MS = 10 * 60_000;

/** What the index says about a presented key, before any record is read. */
export type Screen =
  /** A key with this id exists and its digest begins like the presented key's: read its record. */
  | { readonly status: 'indexed' }
  /** No key with this id and digest, even after a refresh that began once the request had arrived. */
  | { readonly status: 'unknown' }
  /** The index outgrew MAX_INDEXED_KEYS: the caller looks the id up instead. */
  | { readonly status: 'unindexed' }
  | { readonly status: 'store_unavailable'; readonly error: Error };

/** The first 6 bytes of a digest as a number: enough to tell a wrong secret (1 in 2^48 slips on to the record check). */
function prefixOf(digest: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < 6; i++) n = n * 256 + (digest[i] ?? 0);
  return n;
}

export interface KeyIndexOptions {
  readonly max?: number;
  readonly now?: () => number;
  /** Told once when the index outgrows `max` and stops screening. */
  readonly onOverflow?: (size: number) => void;
}

/**
 * Every key id of every tenant, held in memory with the start of its digest, so that an unknown key
 * id and a wrong secret for a real one take the same path: neither is answered from a record, and
 * both wait for one refresh of the index that began after the request arrived (shared by every
 * request waiting, so a flood of invalid keys costs the database one query at a time). The refresh
 * is also how keys made elsewhere (another node, the CLI) become known: their first use waits for it.
 */
export class KeyIndex {
  private prefixes = new Map<string, number>();
  /** Refreshes started so far; a request needs one numbered above the count it saw on arrival. */
  private started = 0;
  private current: { readonly n: number; readonly done: Promise<void> } | undefined;
  private queued: Promise<void> | undefined;
  private since: Date | undefined;
  private lastFull = 0;
  private overflowed = false;
  private readonly max: number;
  private readonly now: () => number;

  constructor(
    private readonly store: Pick<KeyStore, 'keyIndexSince'>,
    private readonly options: KeyIndexOptions = {},
  ) {
    this.max = options.max ?? MAX_INDEXED_KEYS;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.prefixes.size;
  }

  async screen(keyId: string, digest: Uint8Array): Promise<Screen> {
    if (this.overflowed) return { status: 'unindexed' };
    const arrival = this.started;
    const prefix = prefixOf(digest);
    if (this.prefixes.get(keyId) === prefix) return { status: 'indexed' };
    try {
      await this.refreshStartedAfter(arrival);
    } catch (err) {
      return { status: 'store_unavailable', error: err as Error };
    }
    if (this.overflowed) return { status: 'unindexed' };
    return this.prefixes.get(keyId) === prefix ? { status: 'indexed' } : { status: 'unknown' };
  }

  /** Waits for a refresh numbered above `arrival`: the running one if it is, else one queued behind it. */
  private refreshStartedAfter(arrival: number): Promise<void> {
    if (this.current && this.current.n > arrival) return this.current.done;
    if (!this.current) return this.start();
    this.queued ??= this.current.done
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.start();
      });
    return this.queued;
  }

  private start(): Promise<void> {
    const n = ++this.started;
    const done = this.load().finally(() => {
      if (this.current?.n === n) this.current = undefined;
    });
    this.current = { n, done };
    return done;
  }

  private async load(): Promise<void> {
    const full = this.since === undefined || this.now() - this.lastFull >= FULL_RELOAD_MS;
    const rows = await this.store.keyIndexSince(full ? null : this.since!);
    const next = full ? new Map<string, number>() : this.prefixes;
    let newest = this.since ? this.since.getTime() + REFRESH_OVERLAP_MS : -Infinity;
    for (const row of rows) {
      next.set(row.id, prefixOf(row.digestPrefix));
      if (row.createdAt.getTime() > newest) newest = row.createdAt.getTime();
    }
    if (next.size > this.max) {
      this.overflowed = true;
      this.prefixes = new Map();
      this.options.onOverflow?.(next.size);
      return;
    }
    this.prefixes = next;
    if (full) this.lastFull = this.now();
    if (Number.isFinite(newest)) this.since = new Date(newest - REFRESH_OVERLAP_MS);
  }
}
