import { Writable } from 'node:stream';
import { parseConfig, type Config } from '../../src/config/config.js';
import type { App } from '../../src/platform/http/server.js';
import { createPlatform, type Platform } from '../../src/platform/platform.js';
import { buildRole, type RoleOptions } from '../../src/roles.js';
import { ensureBootstrapAdmin } from '../../src/core/auth/bootstrap.js';
import type { RoleName } from '../../src/role-names.js';
import type { AuthModule } from '../../src/core/auth/module.js';
import type { LedgerModule } from '../../src/ledger/module.js';
import type { RateLimiter } from '../../src/core/ratelimit/limiter.js';
import type { GovernanceModule } from '../../src/core/governance/module.js';
import type { DecisionsModule } from '../../src/core/decisions/module.js';
import { createThrowawayDatabase } from './postgres.js';
import { startThrowawayNats } from './servers.js';

export type DbKind = 'embedded' | 'postgres';

/** A config for tests: the test profile, silent logs, overrides on top. */
export function testConfig(env: Record<string, string> = {}): Config {
  const report = parseConfig({ FG_ENV: 'test', FG_LOG_LEVEL: 'silent', FG_DATA_DIR: '/nonexistent-test-data', ...env });
  if (report.errors.length > 0 || !report.config) throw new Error(`bad test config: ${report.errors.join('; ')}`);
  return report.config;
}

/** Collects the JSON log lines a platform writes. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  }
}

export interface TestApp {
  readonly app: App;
  readonly platform: Platform;
  readonly auth: AuthModule;
  readonly ledger: LedgerModule;
  readonly limiter: RateLimiter;
  readonly governance: GovernanceModule;
  readonly decisions: DecisionsModule;
  /** Admin key of the bootstrap tenant, generated for this run. */
  readonly adminKey: string;
  readonly tenantId: string;
  readonly logs: LogCapture | undefined;
  close(): Promise<void>;
}

export interface TestAppOptions {
  readonly db?: DbKind;
  readonly role?: RoleName;
  readonly env?: Record<string, string>;
  readonly captureLogs?: boolean;
  readonly roleOptions?: RoleOptions;
}

/** A whole platform on a throwaway database (PGlite in memory or a fresh Postgres database). */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const dbKind = options.db ?? 'embedded';
  // An FG_DB_URL in env reuses that database (several platforms on one database); otherwise a fresh one.
  const pgdb = dbKind === 'postgres' && !options.env?.FG_DB_URL ? await createThrowawayDatabase() : undefined;
  const logs = options.captureLogs ? new LogCapture() : undefined;
  const config = testConfig({ ...(options.captureLogs ? { FG_LOG_LEVEL: 'info' } : {}), ...(pgdb ? { FG_DB_URL: pgdb.url } : {}), ...options.env });
  let platform: Platform | undefined;
  try {
    platform = await createPlatform(config, { embeddedDir: 'memory', ...(logs ? { logDestination: logs } : {}) });
    const { app, auth, ledger, limiter, governance, decisions } = await buildRole(platform, options.role ?? 'all', options.roleOptions);
    const boot = await ensureBootstrapAdmin(platform.db, config.bootstrapTenant, ledger.audit);
    const p = platform;
    const role = options.role ?? 'all';
    return {
      app,
      platform: p,
      auth,
      ledger,
      limiter,
      // Only the roles that serve the core API build these; a test of another role that reaches for them is wrong.
      get governance() {
        if (!governance) throw new Error(`the ${role} role builds no governance module`);
        return governance;
      },
      get decisions() {
        if (!decisions) throw new Error(`the ${role} role builds no decisions module`);
        return decisions;
      },
      adminKey: boot.key!,
      tenantId: boot.tenantId,
      logs,
      async close() {
        await p.close();
        await pgdb?.drop();
      },
    };
  } catch (err) {
    await platform?.close();
    await pgdb?.drop();
    throw err;
  }
}

/**
 * A test app for any role; the worker role gets a throwaway NATS (it takes its jobs from JetStream
 * and refuses to start without it), stopped when the app closes.
 */
export async function startRoleApp(role: RoleName, options: Omit<TestAppOptions, 'role'> = {}): Promise<TestApp> {
  if (role !== 'worker') return startTestApp({ ...options, role });
  const nats = await startThrowawayNats();
  try {
    const t = await startTestApp({ ...options, role, env: { ...options.env, FG_NATS_URL: nats.url } });
    const closeApp = t.close.bind(t);
    // Not a spread: it would read the getters of modules the worker role does not build.
    return Object.assign(t, {
      async close() {
        await closeApp();
        await nats.stop();
        await nats.dispose();
      },
    });
  } catch (err) {
    await nats.stop();
    await nats.dispose();
    throw err;
  }
}
