/**
 * Every environment variable FrostGate reads, in one table. The parser, `frostgate config
 * check`, `frostgate config docs` and the README's configuration table all come from here,
 * so a variable cannot exist in code without being documented.
 */

export const PROFILES = ['dev', 'test', 'staging', 'prod'] as const;
export type Profile = (typeof PROFILES)[number];

export type VariableKind = 'string' | 'int' | 'bool' | 'enum' | 'url' | 'path' | 'secret' | 'duration';

export interface VariableSpec {
  readonly name: string;
  readonly kind: VariableKind;
  readonly description: string;
  /** Default as it would be written in the environment; undefined = unset. */
  readonly default?: string;
  readonly values?: readonly string[];
  /** What staging/prod accept, in words, for the README table. */
  readonly production: string;
}

export const VARIABLES: readonly VariableSpec[] = [
  {
    name: 'FG_ENV',
    kind: 'enum',
    values: PROFILES,
    default: 'dev',
    description: 'Profile: dev, test, staging or prod. staging and prod refuse unsafe configuration at startup.',
    production: 'staging or prod',
  },
  { name: 'FG_HOST', kind: 'string', default: '127.0.0.1', description: 'Listen address.', production: 'any' },
  { name: 'FG_PORT', kind: 'int', default: '8080', description: "Listen port. With --role and no FG_PORT, the role's own port is used.", production: 'any' },
  { name: 'FG_DATA_DIR', kind: 'path', default: './data', description: 'Directory for embedded state (PGlite database, lab state).', production: 'any' },
  {
    name: 'FG_STORAGE_DIR',
    kind: 'path',
    default: './storage',
    description: 'Root of the filesystem object store (scenario results, evidence).',
    production: 'any',
  },
  {
    name: 'FG_STORAGE_BACKEND',
    kind: 'enum',
    values: ['filesystem', 's3'],
    default: 'filesystem',
    description: 'Where scenario results and evidence are stored: files under FG_STORAGE_DIR, or an S3-compatible bucket (MinIO) named by FG_S3_*.',
    production: 'any (s3 for several scoreboard hosts)',
  },
  {
    name: 'FG_STORAGE_RETENTION_DAYS',
    kind: 'int',
    default: '90',
    description: 'Scenario results older than this many days are removed: by a sweeper on the filesystem, by a bucket lifecycle rule on S3.',
    production: 'any',
  },
  {
    name: 'FG_S3_ENDPOINT',
    kind: 'url',
    description: 'S3 endpoint for FG_STORAGE_BACKEND=s3, e.g. http://minio:9000 (path-style requests, SigV4).',
    production: 'required with FG_STORAGE_BACKEND=s3',
  },
  {
    name: 'FG_S3_BUCKET',
    kind: 'string',
    description: 'Bucket holding scenario results (FG_STORAGE_BACKEND=s3).',
    production: 'required with FG_STORAGE_BACKEND=s3',
  },
  { name: 'FG_S3_REGION', kind: 'string', default: 'us-east-1', description: 'Region the S3 requests are signed for.', production: 'any' },
  { name: 'FG_S3_ACCESS_KEY_ID', kind: 'string', description: 'S3 access key id (FG_STORAGE_BACKEND=s3).', production: 'required with FG_STORAGE_BACKEND=s3' },
  {
    name: 'FG_S3_SECRET_ACCESS_KEY',
    kind: 'secret',
    description: 'S3 secret access key (FG_STORAGE_BACKEND=s3).',
    production: 'required with FG_STORAGE_BACKEND=s3',
  },
  { name: 'FG_S3_PREFIX', kind: 'string', description: 'Key prefix inside the bucket, e.g. frostgate/. Unset: none.', production: 'any' },
  {
    name: 'FG_DB_URL',
    kind: 'url',
    description: 'Postgres URL (postgres://user@host:port/db). Unset: embedded PGlite under FG_DATA_DIR.',
    production: 'required (embedded DB refused)',
  },
  { name: 'FG_DB_POOL_SIZE', kind: 'int', default: '10', description: 'Connections in the Postgres pool.', production: 'any' },
  {
    name: 'FG_DB_GATE_POOL_SIZE',
    kind: 'int',
    default: '2',
    description:
      "Connections in a second Postgres pool kept for the auth gate's reads (API-key lookups, the " +
      'deployed rate-limit policy), so a burst that fills the main pool cannot refuse every request.',
    production: 'any',
  },
  {
    name: 'FG_DB_APP_ROLE',
    kind: 'string',
    default: 'frostgate_app',
    description: 'Database role without BYPASSRLS that every application transaction runs as.',
    production: 'any',
  },
  {
    name: 'FG_REDIS_URL',
    kind: 'url',
    description: 'Redis URL (redis://:password@host:port). Unset: in-memory rate limits and correlation windows.',
    production: 'required, with a password',
  },
  {
    name: 'FG_NATS_URL',
    kind: 'url',
    description: 'NATS JetStream URL (nats://host:port). Unset: in-process bus backed by the database.',
    production: 'recommended',
  },
  {
    name: 'FG_RL_BACKEND',
    kind: 'enum',
    values: ['memory', 'redis'],
    description: 'Rate-limit backend. Default: redis when FG_REDIS_URL is set, else memory.',
    production: 'redis',
  },
  {
    name: 'FG_RL_FAIL_OPEN',
    kind: 'bool',
    default: 'false',
    description: 'Let requests through when the rate-limit store is down. Has effect only with FG_RL_FAIL_OPEN_ACKNOWLEDGED=true.',
    production: 'discouraged',
  },
  {
    name: 'FG_RL_FAIL_OPEN_ACKNOWLEDGED',
    kind: 'bool',
    default: 'false',
    description: 'Acknowledges FG_RL_FAIL_OPEN; every fail-open pass then logs CRITICAL and is counted.',
    production: 'discouraged',
  },
  {
    name: 'FG_AUTH_ENABLED',
    kind: 'bool',
    default: 'true',
    description: 'API key authentication. Disabling is allowed only in dev and test.',
    production: 'true only',
  },
  { name: 'FG_API_KEY', kind: 'secret', description: 'Global API key accepted for every scope. dev and test only.', production: 'must be unset' },
  {
    name: 'FG_DEV_AUTH_BYPASS',
    kind: 'bool',
    default: 'false',
    description: 'Admin console login bypass for local development. dev only.',
    production: 'must be unset',
  },
  {
    name: 'FG_AUTH_DB_FAIL_OPEN',
    kind: 'bool',
    default: 'false',
    description: 'Accept requests when the key store cannot be read. Has effect only with FG_AUTH_DB_FAIL_OPEN_ACKNOWLEDGED=true.',
    production: 'discouraged',
  },
  {
    name: 'FG_AUTH_DB_FAIL_OPEN_ACKNOWLEDGED',
    kind: 'bool',
    default: 'false',
    description: 'Acknowledges FG_AUTH_DB_FAIL_OPEN; every fail-open decision then logs CRITICAL and is counted.',
    production: 'discouraged',
  },
  {
    name: 'FG_EGRESS_DRY_RUN',
    kind: 'bool',
    default: 'false',
    description: 'Compute lab egress rules without applying them. dev only.',
    production: 'must be false',
  },
  {
    name: 'FG_LEDGER_KEY_PATH',
    kind: 'path',
    description: 'Ed25519 private key (PEM) signing ledger checkpoints. Unset: an ephemeral key (dev/test only).',
    production: 'required',
  },
  {
    name: 'FG_LEDGER_ORIGIN',
    kind: 'string',
    default: 'frostgate.ledger',
    description: 'Origin prefix of ledger checkpoints; the origin of each log is ORIGIN/TENANT/LOG.',
    production: "your deployment's name",
  },
  {
    name: 'FG_CHECKPOINT_INTERVAL_S',
    kind: 'int',
    default: '10',
    description: 'A new signed checkpoint is issued when a log grew and its last checkpoint is this many seconds old.',
    production: 'any',
  },
  {
    name: 'FG_CHECKPOINT_MAX_ENTRIES',
    kind: 'int',
    default: '1000',
    description: '... or when this many entries were appended since the last checkpoint.',
    production: 'any',
  },
  {
    name: 'FG_LEDGER_WITNESS',
    kind: 'enum',
    values: ['storage', 'off'],
    description:
      'Checkpoint witness: every signed ledger checkpoint, once checked to extend the ' +
      'previous one, is exported to the object store (FG_STORAGE_*, under ledger-witness/), ' +
      'append-only; frostgate verify holds the database against it. Keep that store off ' +
      'the database host (docs/ledger.md). Unset: storage, except off in the test profile.',
    production: 'storage, on a store the database host cannot write',
  },
  {
    name: 'FG_TOKEN_KEY_PATH',
    kind: 'path',
    description: 'Ed25519 private key (PEM) signing scenario access and entitlement tokens. Unset: ephemeral (dev/test only).',
    production: 'required',
  },
  {
    name: 'SIGNING_KEY_PATH',
    kind: 'path',
    description:
      "Ed25519 private key (PEM) signing Forge verdicts; its public key is published in the object store's verdict-keys.json and at GET " +
      '/v1/verdicts/keys. Unset (dev/test only): in dev a key generated once into FG_DATA_DIR/keys, in test an ephemeral one that is never published.',
    production: 'required',
  },
  {
    name: 'FG_OIDC_ISSUER',
    kind: 'url',
    description:
      'OpenID Connect issuer the admin console signs people in with (authorization code + PKCE). Unset in dev/test: an embedded provider with two demo users (FG_OIDC_EMBEDDED).',
    production: 'required for the admin and all roles, https only',
  },
  { name: 'FG_OIDC_CLIENT_ID', kind: 'string', description: "The console's client id at FG_OIDC_ISSUER.", production: 'required with FG_OIDC_ISSUER' },
  { name: 'FG_OIDC_CLIENT_SECRET', kind: 'secret', description: "The console's client secret at FG_OIDC_ISSUER.", production: 'required with FG_OIDC_ISSUER' },
  {
    name: 'FG_OIDC_REDIRECT_URL',
    kind: 'url',
    description: "The console's callback URL registered at the IdP (…/auth/callback). Unset: the address the server listens on + /auth/callback.",
    production: 'https, behind the public name',
  },
  {
    name: 'FG_OIDC_GROUPS_CLAIM',
    kind: 'string',
    default: 'groups',
    description: 'The ID token or userinfo claim listing the groups or roles FG_OIDC_GROUP_MAP maps.',
    production: 'any',
  },
  {
    name: 'FG_OIDC_GROUP_MAP',
    kind: 'string',
    description:
      "Which IdP groups may sign in, and as what: 'group=tenant:scope,scope;group2=tenant:scope'. A person's groups must name one tenant; their scopes add up. Unset: frostgate-admins=<FG_BOOTSTRAP_TENANT>:admin.",
    production: 'any',
  },
  {
    name: 'FG_OIDC_EMBEDDED',
    kind: 'bool',
    description:
      'Serve an embedded OpenID provider with two demo users in this process. Default: true in dev and test when FG_OIDC_ISSUER is unset. dev and test only.',
    production: 'must be unset',
  },
  {
    name: 'FG_SESSION_IDLE_MINUTES',
    kind: 'int',
    default: '30',
    description: 'A console session unused this long ends (it ends 8 hours after sign-in in any case).',
    production: 'any',
  },
  {
    name: 'FG_SESSION_SECRET',
    kind: 'secret',
    description: 'Secret for admin console sessions and CSRF tokens (>= 32 bytes).',
    production: 'required, >= 32 bytes, no placeholder',
  },
  {
    name: 'RECEIPT_HMAC_SECRET',
    kind: 'secret',
    description: 'HMAC secret verifying purchase receipts (>= 32 bytes).',
    production: 'required, >= 32 bytes, no placeholder',
  },
  {
    name: 'ET_HMAC_SECRET',
    kind: 'secret',
    description: 'HMAC secret for entitlement tokens (>= 32 bytes).',
    production: 'required, >= 32 bytes, no placeholder',
  },
  {
    name: 'BILLING_MODE',
    kind: 'enum',
    values: ['fake_charge', 'stripe'],
    description:
      'How spawns are paid for. fake_charge charges nothing and records a billing event (dev and staging only); stripe ' +
      'grants entitlements from verified Stripe checkout webhooks. Unset: stripe in prod, fake_charge elsewhere.',
    production: 'stripe in prod (fake_charge refused)',
  },
  {
    name: 'STRIPE_WEBHOOK_SECRET',
    kind: 'secret',
    description: 'Signing secret (whsec_...) of the Stripe webhook endpoint POST /v1/billing/stripe/webhook. Unset: the webhook refuses every event.',
    production: 'required with BILLING_MODE=stripe',
  },
  {
    name: 'FG_TEMPLATES_DIR',
    kind: 'path',
    description:
      'Directory of lab templates (*.yaml) offered to spawns; their tracks are the valid tracks. Unset: the templates/ directory of this installation.',
    production: 'any',
  },
  {
    name: 'FG_PUBLIC_URL',
    kind: 'url',
    description: 'Base URL learners reach the platform at, for access URLs (https://labs.example.com). Unset: the scheme and host of the spawn request.',
    production: 'recommended',
  },
  {
    name: 'FG_QUOTA_MAX_CONCURRENT_PER_SUBJECT',
    kind: 'int',
    default: '2',
    description: 'Labs one learner may have at once (spawns beyond it get 429).',
    production: 'any',
  },
  {
    name: 'FG_QUOTA_MAX_CONCURRENT_PER_TENANT',
    kind: 'int',
    default: '20',
    description: 'Labs one tenant may have at once (spawns beyond it get 429).',
    production: 'any',
  },
  {
    name: 'FG_QUOTA_MAX_SPAWNS_PER_DAY',
    kind: 'int',
    default: '10',
    description: 'Spawns one learner may make per UTC day (spawns beyond it get 429).',
    production: 'any',
  },
  {
    name: 'FG_ORCHESTRATOR_URL',
    kind: 'url',
    description:
      'Orchestrator base URL a spawn-only process hands scenarios to (POST /v1/scenarios with the SAT). Unset: the orchestrator of this process (role all).',
    production: 'required for --role spawn',
  },
  {
    name: 'FG_ORCHESTRATOR_API_KEY',
    kind: 'secret',
    description: 'API key (scope forge:operate) the spawn role presents to FG_ORCHESTRATOR_URL.',
    production: 'required with FG_ORCHESTRATOR_URL',
  },
  {
    name: 'FG_VARIABLES_SECRET',
    kind: 'secret',
    description:
      'Secret the per-scenario template variables (flags, passwords) are derived from; the orchestrator and the grader must share ' +
      'it. Unset (dev/test only): in dev a random secret kept in FG_DATA_DIR/variables.secret, in test a random one per process.',
    production: 'required, >= 32 bytes, no placeholder',
  },
  {
    name: 'FG_FLEET_SECRET',
    kind: 'secret',
    description:
      'Secret sealing every message between orchestrators, scoreboards, lab pages and worker agents on NATS (lab jobs, exec, ' +
      'terminals, replies): all of them must share it. Unset (dev/test only): in dev a random secret kept in FG_DATA_DIR/fleet.secret, ' +
      'in test a random one per process.',
    production: 'required with FG_ORCHESTRATOR_PLACEMENT=workers and on workers, >= 32 bytes',
  },
  {
    name: 'FG_WORKER_ID',
    kind: 'string',
    description: 'Name of this worker agent (--role worker) in the fleet: [a-z0-9-], unique per worker. Unset: the host name.',
    production: 'unique per worker',
  },
  {
    name: 'FG_WORKER_CAPACITY',
    kind: 'int',
    default: '20',
    description: 'Labs this worker agent runs at once; the orchestrator places a lab on the worker with the most free capacity.',
    production: 'any',
  },
  {
    name: 'FG_WORKER_HEARTBEAT_MS',
    kind: 'int',
    default: '2000',
    description: 'How often a worker agent announces itself; an orchestrator counts a worker dead after 5 missed heartbeats and marks its labs failed.',
    production: 'any',
  },
  {
    name: 'FG_ORCHESTRATOR_PLACEMENT',
    kind: 'enum',
    values: ['local', 'workers'],
    default: 'local',
    description:
      'Where the orchestrator builds labs: in its own process (local), or on worker ' +
      'agents (--role worker) through NATS JetStream (workers; needs FG_NATS_URL).',
    production: 'any (workers for several lab hosts)',
  },
  {
    name: 'FG_LOG_LEVEL',
    kind: 'enum',
    values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
    default: 'info',
    description: 'Log level of the JSON logs on stdout.',
    production: 'any',
  },
  {
    name: 'FG_BODY_LIMIT',
    kind: 'int',
    default: '1048576',
    description: 'Largest accepted request body in bytes, /ingest batches included (/defend takes at most 64 KiB); above it: 413.',
    production: 'any',
  },
  {
    name: 'FG_INGEST_MAX_BACKLOG_EVENTS',
    kind: 'int',
    default: '100000',
    description:
      'Backpressure of /ingest: while this many accepted events (all tenants and processes) wait to be decided, a batch that would add to them is refused whole with 503 and Retry-After.',
    production: 'any (at least 1000, one full batch)',
  },
  {
    name: 'FG_INGEST_MAX_BACKLOG_S',
    kind: 'int',
    default: '120',
    description:
      'Backpressure of /ingest in seconds of work: the waiting events divided by the rate this process decides at while busy (applied once it has decided a batch); above it, 503 with Retry-After.',
    production: 'any',
  },
  { name: 'FG_TRUST_PROXY', kind: 'bool', default: 'false', description: 'Trust X-Forwarded-* headers (only behind a proxy you run).', production: 'any' },
  {
    name: 'FG_SHUTDOWN_TIMEOUT_MS',
    kind: 'int',
    default: '10000',
    description: 'How long a graceful shutdown waits for in-flight requests.',
    production: 'any',
  },
  {
    name: 'FG_BOOTSTRAP_TENANT',
    kind: 'string',
    default: 'default',
    description: 'Tenant created on first start, owning the bootstrap admin key.',
    production: 'any',
  },
] as const;

export const VARIABLE_NAMES: ReadonlySet<string> = new Set(VARIABLES.map((v) => v.name));
