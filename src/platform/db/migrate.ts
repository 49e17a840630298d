import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../migrations');

/** The two operations migrations need, implemented by both the pg client and PGlite. */
export interface MigrationSession {
  /** Runs one or more statements without parameters. */
  exec(sql: string): Promise<void>;
  query<R>(sql: string, params?: unknown[]): Promise<R[]>;
}

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export interface MigrationResult {
  readonly applied: readonly string[];
  readonly alreadyApplied: number;
}

export class MigrationError extends Error {
  readonly code = 'migration_failed';
}

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;
// Arbitrary constant: every FrostGate process migrating the same database takes this lock.
const MIGRATION_LOCK_ID = 7_315_002;

export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE_PATTERN.exec(file);
    if (!match) throw new MigrationError(`migration file name ${file} does not match NNNN_name.sql`);
    const sql = await readFile(path.join(dir, file), 'utf8');
    migrations.push({ version: Number(match[1]), name: match[2]!, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) throw new MigrationError(`two migrations share version ${migrations[i]!.version}`);
  }
  return migrations;
}

/**
 * Applies every migration not yet recorded, in order, each in its own transaction, under an
 * advisory lock so concurrent starts do not race. An applied migration whose file changed is an
 * error: history is never rewritten silently.
 */
export async function runMigrations(session: MigrationSession, migrations: readonly Migration[], onApplied?: (name: string) => void): Promise<MigrationResult> {
  await session.exec(`SELECT pg_advisory_lock(${MIGRATION_LOCK_ID})`);
  try {
    await session.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const rows = await session.query<{ version: number; name: string; checksum: string }>(
      'SELECT version, name, checksum FROM schema_migrations ORDER BY version',
    );
    const done = new Map(rows.map((r) => [Number(r.version), r]));
    const applied: string[] = [];
    for (const m of migrations) {
      const previous = done.get(m.version);
      if (previous) {
        if (previous.checksum !== m.checksum) {
          throw new MigrationError(`migration ${String(m.version).padStart(4, '0')}_${m.name} was changed after it was applied; add a new migration instead`);
        }
        continue;
      }
      const label = `${String(m.version).padStart(4, '0')}_${m.name}`;
      await session.exec('BEGIN');
      try {
        await session.exec(m.sql);
        await session.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
        await session.exec('COMMIT');
      } catch (err) {
        await session.exec('ROLLBACK');
        throw new MigrationError(`migration ${label} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(label);
      onApplied?.(label);
    }
    return { applied, alreadyApplied: migrations.length - applied.length };
  } finally {
    await session.exec(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_ID})`);
  }
}
