import type { Database } from '../platform/db/database.js';
import type { Logger } from '../platform/log.js';
import type { AuditTrail } from './audit.js';

export type FailOpenComponent = 'auth' | 'ratelimit';

interface Pending {
  readonly tenantId: string;
  readonly component: FailOpenComponent;
  readonly minute: string;
  count: number;
  readonly first: Record<string, unknown>;
}

export const FAIL_OPEN_FLUSH_MS = 10_000;

/**
 * Fail-open passes in the audit ledger, one entry per tenant, component and minute with a count.
 * The dependency that failed may be the database itself (auth fail-open), so entries wait in
 * memory and are written as soon as the database answers again: none is dropped while the
 * process lives, and each pass is also logged CRITICAL at once.
 */
export class FailOpenAudit {
  private readonly pending = new Map<string, Pending>();
  private readonly timer: NodeJS.Timeout;
  private flushing = false;

  constructor(
    private readonly db: Database,
    private readonly audit: AuditTrail,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => void this.flush(), FAIL_OPEN_FLUSH_MS);
    this.timer.unref();
  }

  note(tenantId: string, component: FailOpenComponent, detail: Record<string, unknown>): void {
    const minute = new Date().toISOString().slice(0, 16);
    const key = `${tenantId}\u0000${component}\u0000${minute}`;
    const p = this.pending.get(key);
    if (p) p.count++;
    else this.pending.set(key, { tenantId, component, minute, count: 1, first: detail });
    void this.flush();
  }

  /** Writes what is pending; entries whose write fails stay for the next attempt. */
  async flush(): Promise<void> {
    if (this.flushing || this.pending.size === 0) return;
    this.flushing = true;
    try {
      for (const [key, p] of [...this.pending]) {
        try {
          await this.db.withTenant(p.tenantId, (tx) =>
            this.audit.record(tx, p.tenantId, {
              action: `fail_open.${p.component}`,
              actor: 'system',
              details: { minute: p.minute, passes: p.count, first: p.first },
            }),
          );
          this.pending.delete(key);
        } catch (err) {
          this.log.warn({ err, component: p.component }, 'fail-open audit entry not written yet; retrying');
          break;
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
