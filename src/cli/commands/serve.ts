import { loadConfig, type Config } from '../../config/config.js';
import { ROLE_NAMES, ROLE_PORTS, isRoleName, type RoleName } from '../../role-names.js';
import { VERSION } from '../../version.js';
import { JSON_OPTION, type Command } from '../command.js';
import { CliError, UsageError } from '../errors.js';
import { printErr } from '../output.js';

export const serveCommand: Command = {
  name: 'serve',
  options: { role: { type: 'string' }, ...JSON_OPTION },
  help: `Usage: frostgate serve [--role <name>] [--json]

Starts FrostGate. With no FG_DB_URL/FG_REDIS_URL/FG_NATS_URL it runs embedded: PGlite under
FG_DATA_DIR, in-memory rate limits, an in-process bus. In dev and test, migrations apply
automatically; in staging and prod run 'frostgate migrate' first. On the first start it creates
the bootstrap tenant and prints an admin API key once.

Options:
  --role <name>   one of: ${ROLE_NAMES.join(', ')} (default all). Without FG_PORT a role listens
                  on its own port: ${ROLE_NAMES.map((r) => `${r} ${ROLE_PORTS[r]}`).join(', ')}
  --json          print the startup summary as one JSON object (for scripts)
  -h, --help      this help

Environment: FG_ENV, FG_HOST, FG_PORT, FG_DATA_DIR, FG_DB_URL, FG_REDIS_URL, FG_NATS_URL and the rest
listed by 'frostgate config docs'. SIGTERM or SIGINT stops accepting, drains in-flight
requests (up to FG_SHUTDOWN_TIMEOUT_MS), closes pools and exits 0.

Examples:
  frostgate serve
  FG_PORT=9000 frostgate serve --role core
  FG_ENV=prod FG_DB_URL=postgres://fg@db/fg FG_REDIS_URL=redis://:pw@redis:6379 frostgate serve`,
  async run({ values }) {
    const roleArg = (values.role as string | undefined) ?? 'all';
    if (!isRoleName(roleArg)) throw new UsageError(`unknown role ${JSON.stringify(roleArg)}; roles: ${ROLE_NAMES.join(', ')}`);
    const { config, warnings } = loadConfig();
    return serve(config, roleArg, warnings, values.json === true);
  },
};

async function serve(config: Config, role: RoleName, warnings: readonly string[], json: boolean): Promise<number> {
  // Loaded here, not at the top: `serve --help` and usage errors need none of the platform.
  const [{ createPlatform }, { buildRole, ensureBootstrapAdmin }] = await Promise.all([import('../../platform/platform.js'), import('../../roles.js')]);
  const platform = await createPlatform(config);
  for (const w of warnings) platform.log.warn({ type: 'config_warning' }, w);
  let stopping = false;
  try {
    if (config.env === 'staging' || config.env === 'prod') {
      const pending = await platform.db.pendingMigrations();
      if (pending.length > 0)
        throw new CliError('schema_behind', `the database schema is behind (${pending.join(', ')} not applied)`, 'run: frostgate migrate');
    }
    const { app, ledger, console: operatorConsole } = await buildRole(platform, role);
    const bootstrap = await ensureBootstrapAdmin(platform.db, config.bootstrapTenant, ledger.audit);
    const port = config.portExplicit ? config.port : ROLE_PORTS[role];
    const address = await app.listen({ host: config.host, port });
    const url = address.startsWith('http') ? address : `http://${config.host}:${port}`;
    const signIn = operatorConsole ? await operatorConsole.start(url) : undefined;
    const basics = {
      version: VERSION,
      profile: config.env,
      role,
      url,
      openapi: `${url}/openapi.json`,
      health: `${url}/health/ready`,
      metrics: `${url}/metrics`,
      database: platform.db.kind === 'embedded' ? `embedded PGlite in ${platform.db.location}` : platform.db.location,
      data_dir: config.dataDir,
      rate_limit_backend: config.rateLimit.backend,
      bus: platform.bus.kind,
      bootstrap_tenant: bootstrap.tenantId,
      bootstrap_key_id: bootstrap.keyId,
      ...(bootstrap.key ? { bootstrap_admin_key: bootstrap.key } : {}),
    };
    const summary = {
      ...basics,
      ...(signIn
        ? {
            console: signIn.consoleUrl,
            console_login: signIn.loginUrl,
            oidc_issuer: signIn.issuer,
            demo_users: signIn.demoUsers.map((u) => ({ username: u.username, password: u.password })),
          }
        : {}),
    };
    // Printed to stderr, not through the logger: the key must never reach a log pipeline.
    if (json) printErr(JSON.stringify(summary));
    else printErr(banner(basics, bootstrap.key, platform.db.kind === 'embedded', consoleBanner(signIn)));
    platform.log.info({ role, url, profile: config.env, bootstrap_key_id: bootstrap.keyId }, 'frostgate listening');
  } catch (err) {
    await platform.close();
    throw err;
  }

  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      platform.log.info({ signal }, 'shutting down: draining in-flight requests');
      const force = setTimeout(() => {
        platform.log.error({ timeout_ms: config.shutdownTimeoutMs }, 'shutdown timed out; exiting with in-flight work abandoned');
        resolve(1);
      }, config.shutdownTimeoutMs);
      force.unref();
      platform
        .close()
        .then(() => {
          clearTimeout(force);
          platform.log.info('shutdown complete');
          resolve(0);
        })
        .catch((err: unknown) => {
          platform.log.error({ err }, 'error during shutdown');
          resolve(1);
        });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

/** The console's lines of the banner: where to sign in, and the embedded IdP's demo people (dev and test). */
function consoleBanner(
  signIn: { consoleUrl: string; loginUrl: string; issuer: string; demoUsers: readonly { username: string; password: string }[] } | undefined,
): string[] {
  if (!signIn) return [];
  const lines = ['', `  Console   ${signIn.consoleUrl}  (sign in: ${signIn.loginUrl}, OpenID provider ${signIn.issuer})`];
  if (signIn.demoUsers.length > 0) {
    lines.push('  Demo users of the embedded OpenID provider (dev only; new passwords each start):');
    for (const u of signIn.demoUsers) lines.push(`    ${u.username.padEnd(8)} ${u.password}`);
  }
  return lines;
}

/** The curl line the restart banner prints; $FG_ADMIN_KEY is the admin key the first start printed. */
function createKeyHint(url: string): string {
  return (
    `curl -H "X-API-Key: $FG_ADMIN_KEY" -H 'content-type: application/json' -d ` +
    `'{"scopes":["defend:write","decisions:read"],"name":"sensor-1"}' ${url}/keys`
  );
}

function banner(s: Record<string, string>, key: string | undefined, embedded: boolean, consoleLines: readonly string[]): string {
  const lines = [
    '',
    `FrostGate ${s.version} — profile ${s.profile}, role ${s.role}`,
    `  API       ${s.url}`,
    `  OpenAPI   ${s.openapi}`,
    `  Ready     ${s.health}`,
    `  Metrics   ${s.metrics}`,
    `  Database  ${s.database}`,
    `  Data dir  ${s.data_dir}`,
    `  Limits    ${s.rate_limit_backend} rate limiter, ${s.bus} bus`,
  ];
  if (key) {
    lines.push(
      '',
      `  Bootstrap admin API key for tenant ${s.bootstrap_tenant} (shown once, store it now):`,
      `    ${key}`,
      '',
      `  Try: curl -H 'X-API-Key: ${key}' ${s.url}/health/detailed`,
    );
  } else {
    // Over HTTP, not `frostgate keys create`: that command cannot open an embedded database this server holds.
    lines.push(
      '',
      `  Bootstrap admin key ${s.bootstrap_key_id} was issued on an earlier start and is not shown again.`,
      `  Create more keys with an admin key over HTTP (POST /keys)${embedded ? '; the CLI cannot open the database while this server holds it' : ''}:`,
      `    ${createKeyHint(s.url!)}`,
    );
  }
  lines.push(...consoleLines, '', '  Stop with Ctrl-C.', '');
  return lines.join('\n');
}
