import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Database } from '../../platform/db/database.js';
import { AppError } from '../../platform/http/problem.js';
import type { AuditTrail } from '../../ledger/audit.js';

/** A session lasts at most this long after sign-in, however active (the Core seed's 8 hours). */
export const SESSION_MAX_AGE_MS = 8 * 60 * 60 * 1000;
/** last_seen_at is written at most this often per session: idle limits are minutes, not seconds. */
const TOUCH_EVERY_MS = 30_000;

export type Clock = () => Date;

/** Who signed in, as the IdP said and the group map allowed. */
export interface SignedInPerson {
  readonly tenantId: string;
  /** The IdP subject, prefixed `oidc:`: the identity approvals and audit entries carry. */
  readonly subject: string;
  readonly name: string;
  readonly email: string;
  readonly scopes: readonly string[];
}

export interface ActiveSession extends SignedInPerson {
  readonly id: string;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  readonly expiresAt: Date;
}

/** What a cookie resolves to; each way to fail is its own case, for the security log. */
export type SessionLookup =
  | { readonly status: 'active'; readonly session: ActiveSession }
  | { readonly status: 'unknown' | 'revoked' | 'expired' | 'idle' | 'tenant_disabled'; readonly id?: string; readonly tenantId?: string };

export interface SessionInfo {
  readonly id: string;
  readonly subject: string;
  readonly name: string;
  readonly email: string;
  readonly scopes: string[];
  readonly created_at: string;
  readonly last_seen_at: string;
  readonly expires_at: string;
  readonly revoked_at: string | null;
  readonly user_agent: string;
  readonly ip: string;
}

const digestOf = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();
const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

/**
 * Console sessions in the database: the browser holds a 256-bit random secret, the table only its
 * digest, so a database reader cannot sign in as anyone. Expiry is judged against the injected
 * clock (absolute: 8 h after sign-in; idle: FG_SESSION_IDLE_MINUTES since last use).
 */
export class SessionStore {
  constructor(
    private readonly db: Database,
    private readonly audit: AuditTrail | undefined,
    private readonly idleMs: number,
    private readonly now: Clock = () => new Date(),
  ) {}

  /** Opens a session; returns the cookie secret (never stored) and the session. */
  async create(person: SignedInPerson, client: { userAgent: string; ip: string }): Promise<{ secret: string; session: ActiveSession }> {
    const secret = randomBytes(32).toString('base64url');
    const id = `cs_${randomBytes(12).toString('base64url')}`;
    const at = this.now();
    const expiresAt = new Date(at.getTime() + SESSION_MAX_AGE_MS);
    await this.db.withTenant(person.tenantId, async (tx) => {
      await tx
        .insertInto('console_sessions')
        .values({
          id,
          tenant_id: person.tenantId,
          digest: digestOf(secret),
          subject: person.subject,
          name: person.name,
          email: person.email,
          scopes: [...person.scopes],
          created_at: at,
          last_seen_at: at,
          expires_at: expiresAt,
          revoked_at: null,
          revoked_by: null,
          user_agent: client.userAgent.slice(0, 300),
          ip: client.ip,
        })
        .execute();
      await this.audit?.record(tx, person.tenantId, {
        action: 'console.sign_in',
        actor: person.subject,
        target: id,
        details: { name: person.name, scopes: person.scopes, ip: client.ip },
      });
    });
    return { secret, session: { ...person, id, createdAt: at, lastSeenAt: at, expiresAt } };
  }

  /** The session a cookie secret names, judged now; an active one is marked as used. */
  async authenticate(secret: string): Promise<SessionLookup> {
    const result = await sql<{
      id: string;
      tenant_id: string;
      subject: string;
      name: string;
      scopes: string[];
      created_at: Date;
      last_seen_at: Date;
      expires_at: Date;
      revoked_at: Date | null;
      tenant_disabled: boolean;
    }>`SELECT * FROM fg_console_session_lookup(${digestOf(secret)})`.execute(this.db.gate.db);
    const row = result.rows[0];
    if (!row) return { status: 'unknown' };
    const ref = { id: row.id, tenantId: row.tenant_id };
    const now = this.now().getTime();
    if (row.revoked_at) return { status: 'revoked', ...ref };
    if (new Date(row.expires_at).getTime() <= now) return { status: 'expired', ...ref };
    const lastSeen = new Date(row.last_seen_at).getTime();
    if (lastSeen + this.idleMs <= now) return { status: 'idle', ...ref };
    if (row.tenant_disabled) return { status: 'tenant_disabled', ...ref };
    if (now - lastSeen >= TOUCH_EVERY_MS) {
      await this.db.withTenant(row.tenant_id, (tx) =>
        tx
          .updateTable('console_sessions')
          .set({ last_seen_at: new Date(now) })
          .where('id', '=', row.id)
          .where('revoked_at', 'is', null)
          .execute(),
      );
    }
    return {
      status: 'active',
      session: {
        id: row.id,
        tenantId: row.tenant_id,
        subject: row.subject,
        name: row.name,
        email: '',
        scopes: row.scopes,
        createdAt: new Date(row.created_at),
        lastSeenAt: new Date(Math.max(lastSeen, now)),
        expiresAt: new Date(row.expires_at),
      },
    };
  }

  /** The tenant's sessions still open (or every one of `subject`'s, when named), newest first. */
  async list(tenantId: string, subject?: string): Promise<SessionInfo[]> {
    const now = this.now();
    const idleCutoff = new Date(now.getTime() - this.idleMs);
    const rows = await this.db.withTenant(tenantId, (tx) => {
      let q = tx
        .selectFrom('console_sessions')
        .selectAll()
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .where('last_seen_at', '>', idleCutoff);
      if (subject !== undefined) q = q.where('subject', '=', subject);
      return q.orderBy('created_at', 'desc').limit(500).execute();
    });
    return rows.map((r) => ({
      id: r.id,
      subject: r.subject,
      name: r.name,
      email: r.email,
      scopes: r.scopes,
      created_at: iso(r.created_at)!,
      last_seen_at: iso(r.last_seen_at)!,
      expires_at: iso(r.expires_at)!,
      revoked_at: iso(r.revoked_at),
      user_agent: r.user_agent,
      ip: r.ip,
    }));
  }

  /**
   * Revokes a session of the tenant. `onlySubject` restricts it to that person's own sessions
   * (someone without the admin scope ends only their own). Audited with who and why.
   */
  async revoke(tenantId: string, id: string, actor: string, reason: 'sign_out' | 'revoked', onlySubject?: string): Promise<void> {
    await this.db.withTenant(tenantId, async (tx) => {
      let q = tx.updateTable('console_sessions').set({ revoked_at: this.now(), revoked_by: actor }).where('id', '=', id).where('revoked_at', 'is', null);
      if (onlySubject !== undefined) q = q.where('subject', '=', onlySubject);
      const updated = await q.returning(['id', 'subject']).executeTakeFirst();
      if (!updated) throw new AppError('not_found', `no open console session ${id}${onlySubject !== undefined ? ' of yours' : ''} in this tenant`);
      await this.audit?.record(tx, tenantId, {
        action: reason === 'sign_out' ? 'console.sign_out' : 'console.session_revoke',
        actor,
        target: id,
        details: { subject: updated.subject },
      });
    });
  }
}
