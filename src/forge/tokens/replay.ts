import { sql } from 'kysely';
import type { Redis } from '../../platform/cache/redis.js';
import type { Database } from '../../platform/db/database.js';

/**
 * Remembers token ids (jti) until their token expires, so each one-time token is used once.
 * claim() is atomic across processes: exactly one caller gets true for a jti.
 */
export interface ReplayGuard {
  claim(jti: string, expiresAt: Date): Promise<boolean>;
}

export class RedisReplayGuard implements ReplayGuard {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'fg:jti:',
  ) {}

  async claim(jti: string, expiresAt: Date): Promise<boolean> {
    const ttlMs = Math.max(1000, expiresAt.getTime() - Date.now());
    const set = await this.redis.set(this.prefix + jti, '1', 'PX', ttlMs, 'NX');
    return set === 'OK';
  }
}

export class DatabaseReplayGuard implements ReplayGuard {
  private lastSweep = 0;
  constructor(private readonly db: Database) {}

  async claim(jti: string, expiresAt: Date): Promise<boolean> {
    const r = await sql<{ jti: string }>`INSERT INTO used_token_ids (jti, expires_at) VALUES (${jti}, ${expiresAt.toISOString()}::timestamptz)
      ON CONFLICT (jti) DO NOTHING RETURNING jti`.execute(this.db.db);
    if (Date.now() - this.lastSweep > 60_000) {
      this.lastSweep = Date.now();
      await sql`DELETE FROM used_token_ids WHERE expires_at < now() - interval '1 minute'`.execute(this.db.db);
    }
    return r.rows.length === 1;
  }
}
