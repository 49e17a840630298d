// A FrostGate server (role all) in its own process for the HTTP benchmarks: prints one JSON line
// {port, keys, tenants} once it listens. Env: FG_DB_URL (Postgres) or none (PGlite in a temp dir),
// BENCH_TENANTS, BENCH_KEYS_PER_TENANT, BENCH_SCOPES (comma list).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { createPlatform } from '../../src/platform/platform.js';
import { buildRole } from '../../src/roles.js';
import { ensureBootstrapAdmin } from '../../src/core/auth/bootstrap.js';

const dataDir = mkdtempSync(path.join(tmpdir(), 'fg-bench-'));
const { config } = loadConfig({ FG_ENV: 'dev', FG_LOG_LEVEL: 'silent', FG_DATA_DIR: dataDir, ...process.env });
const platform = await createPlatform(config, { migrate: true });
const role = await buildRole(platform, 'all');
await ensureBootstrapAdmin(platform.db, config.bootstrapTenant, role.ledger.audit);
const tenants: string[] = [];
const keys: Record<string, string[]> = {};
const scopes = (process.env.BENCH_SCOPES ?? 'defend:write,ingest:write,decisions:read,bouncer:read').split(',') as never[];
for (let t = 0; t < Number(process.env.BENCH_TENANTS ?? 2); t++) {
  const tenant = `${process.env.BENCH_TENANT_PREFIX ?? 'bench'}-${t}`;
  await role.auth.store.createTenant(tenant);
  tenants.push(tenant);
  keys[tenant] = [];
  for (let k = 0; k < Number(process.env.BENCH_KEYS_PER_TENANT ?? 8); k++)
    keys[tenant].push((await role.auth.store.createKey({ tenantId: tenant, scopes })).key);
}
await role.app.listen({ host: '127.0.0.1', port: 0 });
const address = role.app.server.address();
process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0, tenants, keys, db: platform.db.kind })}\n`);
const stop = async () => {
  await platform.close();
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
