import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { sha256Hex } from './canonical.js';
import { WindowStoreError } from './errors.js';

/**
 * Correlation window state. A window is a set of members with times (event time, not wall
 * clock): `record` adds one member at `atMs`, drops members at or before `atMs - windowMs`, and
 * returns how many members lie in (atMs - windowMs, atMs], all as one atomic step.
 *
 * - count mode: a member per event (its event id when it has one, so re-evaluating the same
 *   event does not count twice; otherwise a fresh unique member);
 * - distinct mode: the member is the distinct value; its time is the latest time it was seen.
 *
 * Both implementations give the same counts for the same sequence of records.
 */
export interface WindowRecord {
  /** Names one counter (tenant, rule, key values); see windowKey(). The store adds its namespace. */
  readonly key: string;
  readonly atMs: number;
  readonly windowMs: number;
  readonly mode: 'count' | 'distinct';
  /** distinct: the value; count: an event id or undefined. */
  readonly member: string | undefined;
}

export interface WindowStore {
  record(op: WindowRecord): Promise<number>;
}

/** The counter name for a rule's window and an event's key values (bounded length, no separators leak). */
export function windowKey(tenantId: string, ruleId: string, keyFields: readonly string[], keyValues: readonly string[], distinct: string | undefined): string {
  const digest = sha256Hex(JSON.stringify([keyFields, distinct ?? null, keyValues])).slice(0, 40);
  return `${tenantId}:${ruleId}:${digest}`;
}

/** Distinct values as members: short ones verbatim, long ones by digest (bounded memory). */
export function distinctMember(value: string): string {
  return value.length <= 64 ? `v:${value}` : `h:${createHash('sha256').update(value).digest('hex')}`;
}

interface Entry {
  readonly score: number;
  readonly member: string;
}

function before(a: Entry, score: number, member: string): boolean {
  return a.score < score || (a.score === score && a.member < member);
}

/** Members of one window ordered by (time, member), with an index by member. */
class WindowState {
  readonly byMember = new Map<string, number>();
  readonly sorted: Entry[] = [];
  windowMs = 0;

  private indexOf(score: number, member: string): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(this.sorted[mid]!, score, member)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the first entry with time > score. */
  private upperBound(score: number): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]!.score <= score) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  trimThrough(score: number): void {
    const n = this.upperBound(score);
    if (n === 0) return;
    for (const e of this.sorted.splice(0, n)) this.byMember.delete(e.member);
  }

  set(member: string, score: number, onlyIfGreater: boolean): void {
    const old = this.byMember.get(member);
    if (old !== undefined) {
      if (onlyIfGreater && old >= score) return;
      this.sorted.splice(this.indexOf(old, member), 1);
    }
    this.sorted.splice(this.indexOf(score, member), 0, { score, member });
    this.byMember.set(member, score);
  }

  countThrough(score: number): number {
    return this.upperBound(score);
  }

  newest(): number {
    return this.sorted.at(-1)?.score ?? -Infinity;
  }
}

export interface MemoryWindowStoreOptions {
  /** Windows idle (in event time) for longer than their length plus this are dropped. Default 10 min. */
  readonly graceMs?: number;
  /** How many records between sweeps of idle windows. Default 4096. */
  readonly sweepEvery?: number;
}

/** Window state in this process: for embedded mode, tests and canary replays (a fresh one has no side effects). */
export class MemoryWindowStore implements WindowStore {
  private readonly windows = new Map<string, WindowState>();
  private readonly graceMs: number;
  private readonly sweepEvery: number;
  private sequence = 0;
  private sinceSweep = 0;
  private latestMs = -Infinity;

  constructor(options: MemoryWindowStoreOptions = {}) {
    this.graceMs = options.graceMs ?? 600_000;
    this.sweepEvery = options.sweepEvery ?? 4096;
  }

  record(op: WindowRecord): Promise<number> {
    return Promise.resolve(this.recordNow(op));
  }

  /** The same as record(), synchronously (JavaScript runs it without interleaving: atomic). */
  recordNow(op: WindowRecord): number {
    let state = this.windows.get(op.key);
    if (!state) {
      state = new WindowState();
      this.windows.set(op.key, state);
    }
    state.windowMs = op.windowMs;
    state.trimThrough(op.atMs - op.windowMs);
    const member = op.member ?? `n:${++this.sequence}`;
    state.set(member, op.atMs, op.mode === 'distinct');
    const count = state.countThrough(op.atMs);
    if (op.atMs > this.latestMs) this.latestMs = op.atMs;
    if (++this.sinceSweep >= this.sweepEvery) this.sweep();
    return count;
  }

  /** Number of live windows (for tests and metrics). */
  get size(): number {
    return this.windows.size;
  }

  private sweep(): void {
    this.sinceSweep = 0;
    for (const [key, state] of this.windows) {
      if (state.newest() <= this.latestMs - state.windowMs - this.graceMs) this.windows.delete(key);
    }
  }
}

/**
 * One atomic step per record (Lua runs without interleaving across all clients): trim, add,
 * count, refresh TTL. KEYS[1] window; ARGV: at_ms, exclusive lower bound "(lo", lo, member,
 * mode ('c' | 'd'), ttl_ms. ZADD GT (Redis >= 6.2) keeps a distinct value's latest time.
 */
const RECORD_SCRIPT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if ARGV[5] == 'd' then
  redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[4])
else
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
end
local n = redis.call('ZCOUNT', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return n
`;
const RECORD_SHA = createHash('sha1').update(RECORD_SCRIPT).digest('hex');

export interface RedisWindowStoreOptions {
  readonly redis: Redis;
  /** Namespace for every key; tests use a unique one. Default `fg:win:`. */
  readonly prefix?: string;
  /**
   * Keys expire (wall clock) this long after their window length since the last record, so idle
   * counters disappear. Default 10 min; keep it above the event-time lag of the slowest consumer.
   */
  readonly ttlGraceMs?: number;
}

/** Window state in Redis: sorted sets keyed by tenant + rule + key values, shared by all processes. */
export class RedisWindowStore implements WindowStore {
  private readonly redis: Redis;
  readonly prefix: string;
  private readonly ttlGraceMs: number;

  constructor(options: RedisWindowStoreOptions) {
    this.redis = options.redis;
    this.prefix = options.prefix ?? 'fg:win:';
    this.ttlGraceMs = options.ttlGraceMs ?? 600_000;
  }

  async record(op: WindowRecord): Promise<number> {
    const lo = op.atMs - op.windowMs;
    const args = [
      String(op.atMs),
      `(${lo}`,
      String(lo),
      op.member ?? `n:${randomUUID()}`,
      op.mode === 'distinct' ? 'd' : 'c',
      String(op.windowMs + this.ttlGraceMs),
    ];
    const key = this.prefix + op.key;
    try {
      let result: unknown;
      try {
        result = await this.redis.evalsha(RECORD_SHA, 1, key, ...args);
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        result = await this.redis.eval(RECORD_SCRIPT, 1, key, ...args);
      }
      if (typeof result !== 'number') throw new Error(`unexpected reply ${String(result)}`);
      return result;
    } catch (err) {
      throw new WindowStoreError(`correlation window update failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Deletes every key under this store's prefix (tests, tenant removal). */
  async clear(): Promise<number> {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) deleted += await this.redis.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
  }
}
