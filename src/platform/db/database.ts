import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { PGliteDialect } from './pglite-dialect.js';
import { loadMigrations, runMigrations, type MigrationResult, type MigrationSession } from './migrate.js';
import type { DB } from './schema.js';
import { assertTenantId } from './tenant-id.js';

export type Tx = Transaction<DB>;

export interface DatabaseOptions {
  /** Postgres URL; undefined means embedded PGlite. */
  readonly url?: string | undefined;
  /** Directory of the embedded database, or 'memory' for a throwaway one (tests). */
  readonly embeddedDir?: string;
  readonly poolSize?: number;
  /** Connections of the gate pool (Database.gate); default 2. */
  readonly gatePoolSize?: number;
  readonly appRole?: string;
  /** Apply pending migrations while opening (dev/test, and `frostgate migrate`). */
  readonly migrate?: boolean;
  readonly onMigrationApplied?: (name: string) => void;
}

export class DatabaseUnavailableError extends Error {
  readonly code = 'database_unavailable';
}

export class EmbeddedDatabaseLockedError extends Error {
  readonly code = 'embedded_db_locked';
}

/** A way into the database: a query builder and tenant-bound transactions on it. */
export interface DatabaseSession {
  /** Outside withTenant only global tables are visible: RLS hides every tenant row. */
  readonly db: Kysely<DB>;
  withTenant<T>(tenantId: string, fn: (tx: Tx) => Promise<T>): Promise<T>;
}

/**
 * The one database interface of the platform, over Postgres (pg) or embedded PGlite. Every
 * application query runs as the app role, which row-level security applies to; tenant data is
 * reachable only inside withTenant(), which sets app.tenant_id for that transaction.
 */
export interface Database extends DatabaseSession {
  readonly kind: 'postgres' | 'embedded';
  /** Where the data lives, for humans (URL without password, or directory). */
  readonly location: string;
  /**
   * The same database through a small pool of its own (FG_DB_GATE_POOL_SIZE), for the short reads
   * every request's gate makes: API-key lookups and deployed versions (the rate-limit policy). A
   * burst holding every connection of the main pool then slows its own route class instead of
   * refusing every request with 503. Embedded: the one session, like everything else.
   */
  readonly gate: DatabaseSession;
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  migrate(onApplied?: (name: string) => void): Promise<MigrationResult>;
  /** Migrations present as files but not applied to this database. */
  pendingMigrations(): Promise<string[]>;
  /**
   * Refreshes planner statistics where nothing else does: PGlite has no autovacuum, and without
   * statistics the planner scans instead of using indexes. A no-op on a Postgres server.
   */
  analyze(): Promise<void>;
  /** Round-trip latency in milliseconds; throws DatabaseUnavailableError. */
  ping(timeoutMs?: number): Promise<number>;
  close(): Promise<void>;
}

const APP_ROLE_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

function safeLocation(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '****';
  return u.toString();
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DatabaseUnavailableError(`${what} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A transaction bound to a tenant: row-level security shows it that tenant's rows only. */
async function withTenantOn<T>(db: Kysely<DB>, tenantId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  assertTenantId(tenantId);
  return db.transaction().execute(async (tx) => {
    await sql`SELECT set_config('app.tenant_id', ${tenantId}, true)`.execute(tx);
    return fn(tx);
  });
}

abstract class BaseDatabase implements Database {
  abstract readonly kind: 'postgres' | 'embedded';
  abstract readonly location: string;
  abstract readonly db: Kysely<DB>;
  abstract readonly gate: DatabaseSession;
  abstract migrate(onApplied?: (name: string) => void): Promise<MigrationResult>;
  abstract analyze(): Promise<void>;
  abstract close(): Promise<void>;

  withTenant<T>(tenantId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return withTenantOn(this.db, tenantId, fn);
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  async pendingMigrations(): Promise<string[]> {
    const applied = new Set(
      (await sql<{ version: number }>`SELECT version FROM schema_migrations`.execute(this.db).catch(() => ({ rows: [] }))).rows.map((r) => Number(r.version)),
    );
    return (await loadMigrations()).filter((m) => !applied.has(m.version)).map((m) => `${String(m.version).padStart(4, '0')}_${m.name}`);
  }

  async ping(timeoutMs = 2000): Promise<number> {
    const started = performance.now();
    try {
      await withTimeout(sql`SELECT 1`.execute(this.db), timeoutMs, 'database');
    } catch (err) {
      if (err instanceof DatabaseUnavailableError) throw err;
      throw new DatabaseUnavailableError(`database unavailable: ${(err as Error).message}`, { cause: err });
    }
    return performance.now() - started;
  }
}

/** A pool of app-role connections. */
function appRolePool(url: string, max: number, appRole: string): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30_000,
    types: { getTypeParser: typeParser },
  });
  // An idle client that loses its server emits here; the next query reports the failure.
  pool.on('error', () => {});
  // Queries queue on a client in order, so the role is set before the first query runs.
  pool.on('connect', (client) => {
    // pg-pool drops its error listener while a client is checked out, and pg emits 'error' when
    // the server goes away: without a listener of our own that is an uncaught exception that
    // kills the process. The failing query rejects anyway, and the broken client is discarded.
    client.on('error', () => {});
    client.query(`SET ROLE ${appRole}`).catch(() => client.release(true));
  });
  return pool;
}

class PostgresDatabase extends BaseDatabase {
  readonly kind = 'postgres' as const;
  readonly location: string;
  readonly db: Kysely<DB>;
  readonly gate: DatabaseSession;
  private readonly gateDb: Kysely<DB>;

  constructor(
    private readonly url: string,
    poolSize: number,
    gatePoolSize: number,
    private readonly appRole: string,
  ) {
    super();
    this.location = safeLocation(url);
    this.db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: appRolePool(url, poolSize, appRole) }) });
    const gateDb = new Kysely<DB>({ dialect: new PostgresDialect({ pool: appRolePool(url, gatePoolSize, appRole) }) });
    this.gateDb = gateDb;
    this.gate = { db: gateDb, withTenant: (tenantId, fn) => withTenantOn(gateDb, tenantId, fn) };
  }

  async migrate(onApplied?: (name: string) => void): Promise<MigrationResult> {
    // Migrations run as the connecting (owner) role, on a client outside the app-role pool.
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      const session: MigrationSession = {
        exec: async (text) => void (await client.query(text)),
        query: async <R>(text: string, params?: unknown[]) => (await client.query(text, params)).rows as R[],
      };
      return await runMigrations(session, withAppRole(await loadMigrations(), this.appRole), onApplied);
    } finally {
      await client.end();
    }
  }

  async analyze(): Promise<void> {}

  async close(): Promise<void> {
    await Promise.all([this.db.destroy(), this.gateDb.destroy()]);
  }
}

class EmbeddedDatabase extends BaseDatabase {
  readonly kind = 'embedded' as const;
  readonly db: Kysely<DB>;
  /** PGlite has one session: the gate shares it (a query there waits only for the statement in progress). */
  readonly gate: DatabaseSession = this;

  constructor(
    private readonly pg: PGlite,
    readonly location: string,
    private readonly appRole: string,
    private readonly lockFile: string | undefined,
  ) {
    super();
    this.db = new Kysely<DB>({ dialect: new PGliteDialect(pg) });
  }

  async migrate(onApplied?: (name: string) => void): Promise<MigrationResult> {
    // PGlite has one session: step out of the app role for the migration, then back in.
    // Migrations run before the platform serves anything, so nothing else shares the session.
    await this.pg.exec('RESET ROLE');
    try {
      const session: MigrationSession = {
        exec: async (text) => void (await this.pg.exec(text)),
        query: async <R>(text: string, params?: unknown[]) => (await this.pg.query<R>(text, params)).rows,
      };
      return await runMigrations(session, withAppRole(await loadMigrations(), this.appRole), onApplied);
    } finally {
      await this.enterAppRole();
    }
  }

  async analyze(): Promise<void> {
    // Holds the session for the duration: the app role may not ANALYZE tables it does not own.
    await this.db.connection().execute(async (conn) => {
      await sql`RESET ROLE`.execute(conn);
      try {
        await sql`ANALYZE`.execute(conn);
      } finally {
        await sql.raw(`SET ROLE ${this.appRole}`).execute(conn);
      }
    });
  }

  async enterAppRole(): Promise<void> {
    const exists = await this.pg.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1', [this.appRole]);
    if ((exists.rows[0]?.n ?? 0) > 0) await this.pg.exec(`SET ROLE ${this.appRole}`);
  }

  async close(): Promise<void> {
    await this.db.destroy();
    if (this.lockFile) await rm(this.lockFile, { force: true });
  }
}

/** int8 as number (ledger indices and counters stay far below 2^53), the rest as pg does. */
function typeParser(oid: number, format?: 'text' | 'binary') {
  if (oid === 20) return (v: string) => Number(v);
  return pg.types.getTypeParser(oid, format);
}

/** Migrations are written for the default role name; a configured name replaces it. */
function withAppRole<T extends { sql: string }>(migrations: T[], role: string): T[] {
  if (role === 'frostgate_app') return migrations;
  return migrations.map((m) => ({ ...m, sql: m.sql.replaceAll('frostgate_app', role) }));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** PGlite has no multi-process safety: one process owns a data directory at a time. */
async function lockEmbeddedDir(dir: string): Promise<string> {
  const lockFile = path.join(dir, 'frostgate.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockFile, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return lockFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (owner && owner !== process.pid && isAlive(owner)) {
        throw new EmbeddedDatabaseLockedError(
          `the embedded database in ${dir} is in use by process ${owner}; stop that process, use its HTTP API, or set FG_DATA_DIR to another directory`,
        );
      }
      await rm(lockFile, { force: true }); // stale lock of a process that is gone
    }
  }
  throw new EmbeddedDatabaseLockedError(`could not lock ${lockFile}`);
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const appRole = options.appRole ?? 'frostgate_app';
  if (!APP_ROLE_PATTERN.test(appRole)) throw new Error(`FG_DB_APP_ROLE ${JSON.stringify(appRole)} is not a plain role name`);
  let database: Database;
  if (options.url) {
    database = new PostgresDatabase(options.url, options.poolSize ?? 10, options.gatePoolSize ?? 2, appRole);
    if (options.migrate) {
      try {
        await database.migrate(options.onMigrationApplied);
      } catch (err) {
        await database.close();
        throw err;
      }
    }
    return database;
  }
  const dir = options.embeddedDir ?? 'memory';
  let lockFile: string | undefined;
  let dataDir: string | undefined;
  if (dir !== 'memory') {
    dataDir = path.join(dir, 'pglite');
    await mkdir(dataDir, { recursive: true });
    lockFile = await lockEmbeddedDir(dir);
  }
  const pglite = await PGlite.create(dataDir ?? 'memory://', { parsers: { 20: (v: string) => Number(v) } });
  const embedded = new EmbeddedDatabase(pglite, dataDir ?? 'memory', appRole, lockFile);
  try {
    if (options.migrate) await embedded.migrate(options.onMigrationApplied);
    else await embedded.enterAppRole();
  } catch (err) {
    await embedded.close();
    throw err;
  }
  return embedded;
}
