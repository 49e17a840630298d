import path from 'node:path';
import { Reader, type Env } from './reader.js';
import { PROFILES, VARIABLE_NAMES, type Profile } from './variables.js';

export type RateLimitBackend = 'memory' | 'redis';
export type BillingMode = 'fake_charge' | 'stripe';

export interface Config {
  readonly env: Profile;
  readonly host: string;
  readonly port: number;
  /** True when FG_PORT was given explicitly (a role then keeps it instead of its own port). */
  readonly portExplicit: boolean;
  readonly dataDir: string;
  readonly storageDir: string;
  readonly storage: {
    readonly backend: 'filesystem' | 's3';
    readonly retentionDays: number;
    readonly s3: {
      readonly endpoint: string | undefined;
      readonly bucket: string | undefined;
      readonly region: string;
      readonly accessKeyId: string | undefined;
      readonly secretAccessKey: string | undefined;
      readonly prefix: string | undefined;
    };
  };
  readonly db: { readonly url: string | undefined; readonly poolSize: number; readonly gatePoolSize: number; readonly appRole: string };
  readonly redis: { readonly url: string | undefined };
  readonly nats: { readonly url: string | undefined };
  readonly rateLimit: { readonly backend: RateLimitBackend; readonly failOpen: boolean; readonly failOpenAcknowledged: boolean };
  readonly auth: {
    readonly enabled: boolean;
    readonly globalKey: string | undefined;
    readonly devBypass: boolean;
    readonly dbFailOpen: boolean;
    readonly dbFailOpenAcknowledged: boolean;
  };
  readonly egress: { readonly dryRun: boolean };
  /** The admin console's sign-in (src/core/console/). */
  readonly console: {
    readonly oidc: {
      readonly issuer: string | undefined;
      readonly clientId: string | undefined;
      readonly clientSecret: string | undefined;
      readonly redirectUrl: string | undefined;
      readonly groupsClaim: string;
      /** FG_OIDC_GROUP_MAP as written; parsed and checked by the console module. */
      readonly groupMap: string | undefined;
    };
    /** The embedded OpenID provider with demo users (dev and test only). */
    readonly embeddedIdp: boolean;
    readonly idleMinutes: number;
  };
  readonly ledger: {
    readonly origin: string;
    readonly checkpointIntervalS: number;
    readonly checkpointMaxEntries: number;
    readonly witness: 'storage' | 'off';
  };
  readonly keys: {
    readonly ledgerKeyPath: string | undefined;
    readonly tokenKeyPath: string | undefined;
    readonly signingKeyPath: string | undefined;
  };
  readonly secrets: {
    readonly sessionSecret: string | undefined;
    readonly receiptHmacSecret: string | undefined;
    readonly etHmacSecret: string | undefined;
  };
  readonly forge: {
    readonly billingMode: BillingMode;
    readonly stripeWebhookSecret: string | undefined;
    /** undefined: the installation's templates/ directory. */
    readonly templatesDir: string | undefined;
    readonly publicUrl: string | undefined;
    readonly quota: { readonly maxConcurrentPerSubject: number; readonly maxConcurrentPerTenant: number; readonly maxSpawnsPerDay: number };
    readonly orchestratorUrl: string | undefined;
    readonly orchestratorApiKey: string | undefined;
    /** undefined: dev/test derive one kept in the data dir (refused in staging/prod). */
    readonly variablesSecret: string | undefined;
    readonly fleetSecret: string | undefined;
    readonly placement: 'local' | 'workers';
    readonly worker: { readonly id: string | undefined; readonly capacity: number; readonly heartbeatMs: number };
  };
  readonly log: { readonly level: string };
  readonly http: { readonly bodyLimit: number; readonly trustProxy: boolean };
  /** /ingest backpressure: most events waiting to be decided, and most seconds of work they may stand for. */
  readonly ingest: { readonly maxBacklogEvents: number; readonly maxBacklogSeconds: number };
  readonly shutdownTimeoutMs: number;
  readonly bootstrapTenant: string;
  /** FG_* variables present in the environment that FrostGate does not know (likely typos). */
  readonly unknownVariables: readonly string[];
}

export interface ConfigReport {
  readonly config: Config | undefined;
  /** Values that cannot be parsed: refused in every profile. */
  readonly errors: readonly string[];
  /** Unsafe settings: refused at startup in staging and prod, reported in dev and test. */
  readonly productionProblems: readonly string[];
  readonly warnings: readonly string[];
}

export class ConfigError extends Error {
  readonly code = 'config_invalid';
  constructor(readonly problems: readonly string[]) {
    super(`refusing to start, configuration has ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Placeholder values seen in example files and audits; a secret starting with one is refused. */
const PLACEHOLDER_SECRETS = [/^change-?me/i, /^forgeadmin/i, /^password/i, /^secret$/i, /^default/i, /^example/i, /^test-?secret/i, /^x+$/i, /^dev-?key/i];
export const MIN_SECRET_BYTES = 32;

export function secretProblem(name: string, value: string | undefined): string | undefined {
  if (value === undefined || value === '') return `${name} is missing`;
  if (PLACEHOLDER_SECRETS.some((re) => re.test(value))) return `${name} is a placeholder value; generate one with: openssl rand -base64 48`;
  if (Buffer.byteLength(value, 'utf8') < MIN_SECRET_BYTES)
    return `${name} is shorter than ${MIN_SECRET_BYTES} bytes; generate one with: openssl rand -base64 48`;
  return undefined;
}

function redisHasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

/** The rules refused in staging and prod. Each returns a problem naming the fix, or nothing. */
function productionProblems(c: Config, isSet: (name: string) => boolean): string[] {
  const problems: string[] = [];
  if (!c.db.url) problems.push('embedded database (PGlite) is not for production: set FG_DB_URL to a Postgres server');
  if (c.rateLimit.backend === 'memory') problems.push('memory rate-limit backend does not work across processes: set FG_REDIS_URL (and FG_RL_BACKEND=redis)');
  if (c.redis.url && !redisHasPassword(c.redis.url)) problems.push('Redis without a password: put the password in FG_REDIS_URL (redis://:PASSWORD@host:6379)');
  if (!c.auth.enabled) problems.push('FG_AUTH_ENABLED=0 disables authentication: allowed only in dev and test');
  if (isSet('FG_API_KEY')) problems.push('FG_API_KEY (global key) is allowed only in dev and test: unset it and use scoped keys (frostgate keys create)');
  if (isSet('FG_DEV_AUTH_BYPASS')) problems.push('FG_DEV_AUTH_BYPASS is set: development login bypass is allowed only in dev; unset it');
  if (c.egress.dryRun) problems.push('FG_EGRESS_DRY_RUN=true leaves lab egress open: allowed only in dev');
  if (!c.keys.ledgerKeyPath) problems.push('FG_LEDGER_KEY_PATH is missing: ledger checkpoints would be signed by an ephemeral key');
  if (!c.keys.tokenKeyPath) problems.push('FG_TOKEN_KEY_PATH is missing: access tokens would be signed by an ephemeral key');
  if (!c.keys.signingKeyPath) problems.push('SIGNING_KEY_PATH is missing: verdicts would be signed by an ephemeral key and unverifiable after a restart');
  for (const [name, value] of [
    ['FG_SESSION_SECRET', c.secrets.sessionSecret],
    ['RECEIPT_HMAC_SECRET', c.secrets.receiptHmacSecret],
    ['ET_HMAC_SECRET', c.secrets.etHmacSecret],
    ['FG_VARIABLES_SECRET', c.forge.variablesSecret],
  ] as const) {
    const problem = secretProblem(name, value);
    if (problem) problems.push(problem);
  }
  // Workers need it too; their role is not known here, so they refuse to start without it (fleetSecretFromConfig).
  if (c.forge.placement === 'workers' || isSet('FG_FLEET_SECRET')) {
    const problem = secretProblem('FG_FLEET_SECRET', c.forge.fleetSecret);
    if (problem) problems.push(problem);
  }
  if (c.unknownVariables.length > 0) problems.push(`unknown FG_* variable(s): ${c.unknownVariables.join(', ')} (typo? see frostgate config docs)`);
  return problems;
}

/** The console's sign-in settings that no profile accepts (staging/prod refuse more, below). */
function consoleProblems(c: Config): string[] {
  const problems: string[] = [];
  const { oidc, embeddedIdp } = c.console;
  const devProfile = c.env === 'dev' || c.env === 'test';
  if (embeddedIdp && !devProfile) problems.push('FG_OIDC_EMBEDDED: the embedded OpenID provider and its demo users are allowed only in dev and test');
  if (embeddedIdp && oidc.issuer) problems.push('FG_OIDC_EMBEDDED and FG_OIDC_ISSUER are both set: sign in with one provider');
  if (oidc.issuer && (!oidc.clientId || !oidc.clientSecret)) problems.push('FG_OIDC_ISSUER needs FG_OIDC_CLIENT_ID and FG_OIDC_CLIENT_SECRET');
  if (!devProfile && oidc.issuer?.startsWith('http:'))
    problems.push('FG_OIDC_ISSUER must use https outside dev and test (sign-in codes and tokens would travel in clear)');
  if (!devProfile && oidc.redirectUrl?.startsWith('http:')) problems.push('FG_OIDC_REDIRECT_URL must use https outside dev and test');
  return problems;
}

export function isProductionProfile(env: Profile): boolean {
  return env === 'staging' || env === 'prod';
}

/** Makes a configured path absolute against the working directory. */
type Resolve = (p: string | undefined) => string | undefined;

function readStorage(r: Reader): Config['storage'] {
  return Object.freeze({
    backend: r.oneOf('FG_STORAGE_BACKEND', ['filesystem', 's3'] as const) ?? 'filesystem',
    retentionDays: r.int('FG_STORAGE_RETENTION_DAYS', 1, 36_500),
    s3: Object.freeze({
      endpoint: r.url('FG_S3_ENDPOINT', ['http:', 'https:']),
      bucket: r.string('FG_S3_BUCKET'),
      region: r.string('FG_S3_REGION') ?? 'us-east-1',
      accessKeyId: r.string('FG_S3_ACCESS_KEY_ID'),
      secretAccessKey: r.string('FG_S3_SECRET_ACCESS_KEY'),
      prefix: r.string('FG_S3_PREFIX'),
    }),
  });
}

function readDb(r: Reader): Config['db'] {
  return Object.freeze({
    url: r.url('FG_DB_URL', ['postgres:', 'postgresql:']),
    poolSize: r.int('FG_DB_POOL_SIZE', 1, 500),
    gatePoolSize: r.int('FG_DB_GATE_POOL_SIZE', 1, 50),
    appRole: r.string('FG_DB_APP_ROLE') ?? 'frostgate_app',
  });
}

function readAuth(r: Reader): Config['auth'] {
  return Object.freeze({
    enabled: r.bool('FG_AUTH_ENABLED'),
    globalKey: r.string('FG_API_KEY'),
    devBypass: r.bool('FG_DEV_AUTH_BYPASS'),
    dbFailOpen: r.bool('FG_AUTH_DB_FAIL_OPEN'),
    dbFailOpenAcknowledged: r.bool('FG_AUTH_DB_FAIL_OPEN_ACKNOWLEDGED'),
  });
}

function readConsole(r: Reader, profile: Profile): Config['console'] {
  return Object.freeze({
    oidc: Object.freeze({
      issuer: r.url('FG_OIDC_ISSUER', ['http:', 'https:']),
      clientId: r.string('FG_OIDC_CLIENT_ID'),
      clientSecret: r.string('FG_OIDC_CLIENT_SECRET'),
      redirectUrl: r.url('FG_OIDC_REDIRECT_URL', ['http:', 'https:']),
      groupsClaim: r.string('FG_OIDC_GROUPS_CLAIM') ?? 'groups',
      groupMap: r.string('FG_OIDC_GROUP_MAP'),
    }),
    embeddedIdp: r.isSet('FG_OIDC_EMBEDDED') ? r.bool('FG_OIDC_EMBEDDED') : (profile === 'dev' || profile === 'test') && !r.isSet('FG_OIDC_ISSUER'),
    idleMinutes: r.int('FG_SESSION_IDLE_MINUTES', 1, 480),
  });
}

function readLedger(r: Reader, profile: Profile): Config['ledger'] {
  return Object.freeze({
    origin: r.string('FG_LEDGER_ORIGIN') ?? 'frostgate.ledger',
    checkpointIntervalS: r.int('FG_CHECKPOINT_INTERVAL_S', 1, 86_400),
    checkpointMaxEntries: r.int('FG_CHECKPOINT_MAX_ENTRIES', 1, 10_000_000),
    // Tests start many servers on one working directory: they name their own store to witness.
    witness: r.oneOf('FG_LEDGER_WITNESS', ['storage', 'off'] as const) ?? (profile === 'test' ? 'off' : 'storage'),
  });
}

function readKeys(r: Reader, resolve: Resolve): Config['keys'] {
  return Object.freeze({
    ledgerKeyPath: resolve(r.string('FG_LEDGER_KEY_PATH')),
    tokenKeyPath: resolve(r.string('FG_TOKEN_KEY_PATH')),
    signingKeyPath: resolve(r.string('SIGNING_KEY_PATH')),
  });
}

function readSecrets(r: Reader): Config['secrets'] {
  return Object.freeze({
    sessionSecret: r.string('FG_SESSION_SECRET'),
    receiptHmacSecret: r.string('RECEIPT_HMAC_SECRET'),
    etHmacSecret: r.string('ET_HMAC_SECRET'),
  });
}

function readForge(r: Reader, profile: Profile, resolve: Resolve): Config['forge'] {
  return Object.freeze({
    // fake_charge is the default everywhere but prod, where it is refused (settingErrors).
    billingMode: r.oneOf('BILLING_MODE', ['fake_charge', 'stripe'] as const) ?? (profile === 'prod' ? 'stripe' : 'fake_charge'),
    stripeWebhookSecret: r.string('STRIPE_WEBHOOK_SECRET'),
    templatesDir: resolve(r.string('FG_TEMPLATES_DIR')),
    publicUrl: r.url('FG_PUBLIC_URL', ['http:', 'https:']),
    quota: Object.freeze({
      maxConcurrentPerSubject: r.int('FG_QUOTA_MAX_CONCURRENT_PER_SUBJECT', 0, 10_000),
      maxConcurrentPerTenant: r.int('FG_QUOTA_MAX_CONCURRENT_PER_TENANT', 0, 1_000_000),
      maxSpawnsPerDay: r.int('FG_QUOTA_MAX_SPAWNS_PER_DAY', 0, 1_000_000),
    }),
    orchestratorUrl: r.url('FG_ORCHESTRATOR_URL', ['http:', 'https:']),
    orchestratorApiKey: r.string('FG_ORCHESTRATOR_API_KEY'),
    variablesSecret: r.string('FG_VARIABLES_SECRET'),
    fleetSecret: r.string('FG_FLEET_SECRET'),
    placement: r.oneOf('FG_ORCHESTRATOR_PLACEMENT', ['local', 'workers'] as const) ?? 'local',
    worker: Object.freeze({
      id: r.string('FG_WORKER_ID'),
      capacity: r.int('FG_WORKER_CAPACITY', 1, 10_000),
      heartbeatMs: r.int('FG_WORKER_HEARTBEAT_MS', 100, 600_000),
    }),
  });
}

/** Settings that are each valid but wrong together; they stop startup in every profile. */
function settingErrors(config: Config, isSet: (name: string) => boolean): string[] {
  const errors: string[] = [];
  if (config.storage.backend === 's3') {
    const missing = (['FG_S3_ENDPOINT', 'FG_S3_BUCKET', 'FG_S3_ACCESS_KEY_ID', 'FG_S3_SECRET_ACCESS_KEY'] as const).filter((n) => !isSet(n));
    if (missing.length > 0) errors.push(`FG_STORAGE_BACKEND=s3 needs ${missing.join(', ')}`);
  }
  if (config.auth.devBypass && config.env !== 'dev') errors.push('FG_DEV_AUTH_BYPASS is allowed only with FG_ENV=dev');
  errors.push(...consoleProblems(config));
  if (config.forge.billingMode === 'fake_charge' && config.env === 'prod')
    errors.push('BILLING_MODE=fake_charge charges nothing: allowed in dev, test and staging only, never in prod; use BILLING_MODE=stripe');
  if (config.forge.orchestratorUrl && !config.forge.orchestratorApiKey)
    errors.push('FG_ORCHESTRATOR_URL needs FG_ORCHESTRATOR_API_KEY (a key with scope forge:operate): the orchestrator refuses a handoff without one');
  if (config.forge.placement === 'workers' && !config.nats.url)
    errors.push('FG_ORCHESTRATOR_PLACEMENT=workers needs FG_NATS_URL: labs are placed on worker agents through NATS JetStream');
  if (config.forge.worker.id !== undefined && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(config.forge.worker.id))
    errors.push('FG_WORKER_ID must be 1-63 characters of a-z, 0-9 and -');
  return errors;
}

/** Settings that start but probably do not do what the operator meant. */
function settingWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.rateLimit.failOpen) {
    warnings.push(
      config.rateLimit.failOpenAcknowledged
        ? 'FG_RL_FAIL_OPEN is acknowledged: rate limits pass when Redis is down, and every pass logs CRITICAL'
        : 'FG_RL_FAIL_OPEN=true has no effect without FG_RL_FAIL_OPEN_ACKNOWLEDGED=true: rate limits stay fail-closed',
    );
  }
  if (config.auth.dbFailOpen && !config.auth.dbFailOpenAcknowledged) {
    warnings.push('FG_AUTH_DB_FAIL_OPEN=true has no effect without FG_AUTH_DB_FAIL_OPEN_ACKNOWLEDGED=true: authentication stays fail-closed');
  }
  // The webhook fails closed (every event refused), so this warns rather than stops startup.
  if (config.forge.billingMode === 'stripe' && !config.forge.stripeWebhookSecret)
    warnings.push('BILLING_MODE=stripe without STRIPE_WEBHOOK_SECRET: the Stripe webhook refuses every event, so no purchase grants an entitlement');
  if (config.unknownVariables.length > 0) warnings.push(`unknown FG_* variable(s): ${config.unknownVariables.join(', ')}`);
  if (isProductionProfile(config.env) && config.ledger.witness === 'off')
    warnings.push(
      'FG_LEDGER_WITNESS=off: no checkpoint leaves the database, so frostgate verify cannot catch a consistent ' +
        'rewrite by someone with database write access unless you keep checkpoints elsewhere yourself (docs/ledger.md)',
    );
  return warnings;
}

/** Parses the environment once. Never throws: every problem is in the report. */
export function parseConfig(env: Env = process.env, cwd: string = process.cwd()): ConfigReport {
  const r = new Reader(env);
  const profile = r.oneOf('FG_ENV', PROFILES) ?? 'dev';
  const redisUrl = r.url('FG_REDIS_URL', ['redis:', 'rediss:']);
  const backendRaw = r.oneOf('FG_RL_BACKEND', ['memory', 'redis'] as const);
  const backend: RateLimitBackend = backendRaw ?? (redisUrl ? 'redis' : 'memory');
  if (backend === 'redis' && !redisUrl) r.errors.push('FG_RL_BACKEND=redis needs FG_REDIS_URL');
  const resolve: Resolve = (p) => (p === undefined ? undefined : path.resolve(cwd, p));
  const unknownVariables = Object.keys(env)
    .filter((k) => k.startsWith('FG_') && !VARIABLE_NAMES.has(k))
    .sort();

  // Parse errors are listed in the order variables are read here.
  const config: Config = Object.freeze({
    env: profile,
    host: r.string('FG_HOST') ?? '127.0.0.1',
    port: r.int('FG_PORT', 0, 65535),
    portExplicit: r.isSet('FG_PORT'),
    dataDir: resolve(r.string('FG_DATA_DIR')) ?? path.resolve(cwd, 'data'),
    storageDir: resolve(r.string('FG_STORAGE_DIR')) ?? path.resolve(cwd, 'storage'),
    storage: readStorage(r),
    db: readDb(r),
    redis: Object.freeze({ url: redisUrl }),
    nats: Object.freeze({ url: r.url('FG_NATS_URL', ['nats:', 'tls:']) }),
    rateLimit: Object.freeze({ backend, failOpen: r.bool('FG_RL_FAIL_OPEN'), failOpenAcknowledged: r.bool('FG_RL_FAIL_OPEN_ACKNOWLEDGED') }),
    auth: readAuth(r),
    egress: Object.freeze({ dryRun: r.bool('FG_EGRESS_DRY_RUN') }),
    console: readConsole(r, profile),
    ledger: readLedger(r, profile),
    keys: readKeys(r, resolve),
    secrets: readSecrets(r),
    forge: readForge(r, profile, resolve),
    log: Object.freeze({ level: r.oneOf('FG_LOG_LEVEL', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const) ?? 'info' }),
    http: Object.freeze({ bodyLimit: r.int('FG_BODY_LIMIT', 1024, 256 * 1024 * 1024), trustProxy: r.bool('FG_TRUST_PROXY') }),
    ingest: Object.freeze({
      maxBacklogEvents: r.int('FG_INGEST_MAX_BACKLOG_EVENTS', 1000, 1_000_000_000),
      maxBacklogSeconds: r.int('FG_INGEST_MAX_BACKLOG_S', 1, 86_400),
    }),
    shutdownTimeoutMs: r.int('FG_SHUTDOWN_TIMEOUT_MS', 0, 600_000),
    bootstrapTenant: r.string('FG_BOOTSTRAP_TENANT') ?? 'default',
    unknownVariables: Object.freeze(unknownVariables),
  });

  const isSet = (n: string) => r.isSet(n);
  const errors = [...r.errors, ...settingErrors(config, isSet)];
  return { config, errors, productionProblems: productionProblems(config, isSet), warnings: settingWarnings(config) };
}

/** The problems that stop startup in this profile. */
export function startupProblems(report: ConfigReport): string[] {
  const refused = [...report.errors];
  if (report.config && isProductionProfile(report.config.env)) refused.push(...report.productionProblems);
  return refused;
}

/** Parse once and refuse to continue on any startup problem. */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): { config: Config; warnings: readonly string[] } {
  const report = parseConfig(env, cwd);
  const refused = startupProblems(report);
  if (refused.length > 0 || !report.config) throw new ConfigError(refused);
  return { config: report.config, warnings: report.warnings };
}

const SECRET_FIELDS = new Set([
  'globalKey',
  'sessionSecret',
  'receiptHmacSecret',
  'etHmacSecret',
  'stripeWebhookSecret',
  'orchestratorApiKey',
  'secretAccessKey',
  'variablesSecret',
  'fleetSecret',
]);

function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '****';
    return u.toString();
  } catch {
    return '****';
  }
}

/** The config with secrets and URL passwords masked, for printing. */
export function maskedConfig(config: Config): Record<string, unknown> {
  const walk = (value: unknown, key: string): unknown => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k)]));
    }
    if (typeof value === 'string' && SECRET_FIELDS.has(key)) return '****';
    if (typeof value === 'string' && key === 'url') return maskUrl(value);
    return value;
  };
  return walk(config, '') as Record<string, unknown>;
}
