import { ConfigError } from '../config/config.js';
import { isDependencyUnavailable } from '../platform/dependency-errors.js';
import { AppError, type ProblemCode } from '../platform/http/problem.js';

/**
 * The closed set of codes a failed command reports (README, "Command line"). With --json the
 * error is one JSON object on stderr, {"error": {code, message, fix?, ...}}; the code is for
 * scripts and never changes meaning, the message is for people.
 */
export const CLI_ERRORS = {
  usage: { exit: 2, meaning: 'the command line is wrong: unknown command, option or subcommand, a missing or extra argument' },
  config_invalid: { exit: 1, meaning: 'the FG_* environment is refused; `problems` lists every reason' },
  invalid_input: { exit: 1, meaning: 'a value was refused: tenant id, scope, duration, template or rule content' },
  not_found: { exit: 1, meaning: 'the tenant, key, scenario or device named does not exist' },
  conflict: { exit: 1, meaning: 'the request conflicts with what exists: a duplicate, a wrong lifecycle state, an output file that exists' },
  forbidden: { exit: 1, meaning: 'the operation is not allowed for this principal or tenant' },
  database_locked: { exit: 1, meaning: 'a running server holds the embedded database under FG_DATA_DIR; use its HTTP API or stop it' },
  unavailable: { exit: 1, meaning: 'a dependency could not be reached or refused the connection (database, object storage)' },
  port_in_use: { exit: 1, meaning: "serve cannot listen: another process holds the port (FG_PORT, or the role's own port)" },
  schema_behind: { exit: 1, meaning: 'the database lacks migrations this version needs; run frostgate migrate' },
  migration_failed: { exit: 1, meaning: 'a migration could not be applied, or one applied earlier has changed' },
  invalid_file: { exit: 1, meaning: 'an input file cannot be read, or its content is not what the command takes; `problems` lists why when known' },
  lab_failed: { exit: 1, meaning: 'the lab runtime could not build or run the lab (it needs root and Linux namespaces)' },
  internal: { exit: 1, meaning: 'an unexpected error: a bug; the message says what failed' },
} as const satisfies Record<string, { exit: number; meaning: string }>;

export type CliErrorCode = keyof typeof CLI_ERRORS;

/** What a failed command reports: its code, a message for people, and how to fix it when known. */
export interface CliFailure {
  readonly code: CliErrorCode;
  readonly message: string;
  readonly fix?: string;
  /** Further machine-readable detail: `problems` of a refused configuration or template. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Problem codes of the HTTP API that the stores also throw, as CLI codes. */
const FROM_PROBLEM: Readonly<Record<ProblemCode, CliErrorCode>> = {
  validation_failed: 'invalid_input',
  malformed_json: 'invalid_input',
  bad_request: 'invalid_input',
  api_key_in_query: 'invalid_input',
  invalid_tenant: 'invalid_input',
  unprocessable: 'invalid_input',
  payload_too_large: 'invalid_input',
  unsupported_media_type: 'invalid_input',
  unauthorized: 'forbidden',
  forbidden: 'forbidden',
  missing_scope: 'forbidden',
  tenant_mismatch: 'forbidden',
  two_person_rule: 'forbidden',
  not_found: 'not_found',
  method_not_allowed: 'internal',
  conflict: 'conflict',
  rate_limited: 'unavailable',
  internal: 'internal',
  integrity_failure: 'internal',
  unavailable: 'unavailable',
};

/** The `code` members of the platform's typed errors, as CLI codes. */
const FROM_DOMAIN_CODE: Readonly<Record<string, CliErrorCode>> = {
  config_invalid: 'config_invalid',
  embedded_db_locked: 'database_locked',
  database_unavailable: 'unavailable',
  dependency_unreachable: 'unavailable',
  migration_failed: 'migration_failed',
  invalid_tenant: 'invalid_input',
  invalid_scope: 'invalid_input',
  invalid_duration: 'invalid_input',
  invalid_rate_limit_policy: 'invalid_input',
  invalid_content: 'invalid_input',
  invalid_ruleset: 'invalid_input',
  invalid_doctrine: 'invalid_input',
  invalid_event: 'invalid_input',
  unsafe_regex: 'invalid_input',
  canonical_json_unsupported: 'invalid_input',
  template_invalid: 'invalid_file',
  containerlab_unsupported: 'invalid_file',
  policy_case_file_invalid: 'invalid_file',
  lab_spec_invalid: 'invalid_input',
  lab_exists: 'conflict',
  lab_not_found: 'not_found',
  device_not_found: 'not_found',
  lab_create_failed: 'lab_failed',
  lab_command_failed: 'lab_failed',
  lab_path_refused: 'lab_failed',
};

/** SQLSTATE classes a server answers with when a session cannot start: authentication (28), unknown database (3D). */
const CONNECTION_SQLSTATE = /^(28|3D)[0-9A-Z]{3}$/;

/** A failure the command raised itself, with a code from the closed set. */
export class CliError extends Error {
  constructor(
    readonly code: CliErrorCode,
    message: string,
    readonly fix?: string,
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Bad arguments: exit 2, and the command's help names the fix. */
export class UsageError extends Error {
  readonly code = 'usage';
}

/** Classifies anything a command threw into the closed set; unknown errors are `internal`. */
export function cliFailure(err: unknown, commandName?: string): CliFailure {
  if (err instanceof UsageError)
    return {
      code: 'usage',
      message: err.message,
      fix: commandName ? `see 'frostgate ${commandName} --help'` : "run 'frostgate --help' for the list of commands",
    };
  if (err instanceof CliError)
    return { code: err.code, message: err.message, ...(err.fix ? { fix: err.fix } : {}), ...(err.details ? { details: err.details } : {}) };
  if (err instanceof ConfigError)
    return {
      code: 'config_invalid',
      message: err.message,
      fix: "correct the variables above; 'frostgate config check' shows the full picture",
      details: { problems: err.problems },
    };
  if (err instanceof AppError) return { code: FROM_PROBLEM[err.code], message: err.detail };
  const e = err as (Error & { code?: unknown; problems?: unknown }) | undefined;
  const domainCode = typeof e?.code === 'string' ? FROM_DOMAIN_CODE[e.code] : undefined;
  if (domainCode && e?.message) {
    const fix = domainCode === 'database_locked' ? 'while the server runs on the embedded database, use its HTTP API, or stop it first' : undefined;
    return { code: domainCode, message: e.message, ...(fix ? { fix } : {}), ...(Array.isArray(e.problems) ? { details: { problems: e.problems } } : {}) };
  }
  if (e?.code === 'EADDRINUSE') return { code: 'port_in_use', message: e.message, fix: 'stop the process holding the port, or set FG_PORT to a free one' };
  if (isDependencyUnavailable(err) || (typeof e?.code === 'string' && CONNECTION_SQLSTATE.test(e.code))) {
    return { code: 'unavailable', message: e?.message ?? String(err), fix: 'check FG_DB_URL (host, port, user, database) and that the server is up' };
  }
  return { code: 'internal', message: e instanceof Error ? e.message : String(err) };
}

/** `--json` before any `--` (after it, arguments belong to a lab command). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/** The stderr text of a failure: one JSON line with --json, else `error:` and `fix:` lines. */
export function renderFailure(failure: CliFailure, json: boolean, stack?: string): string {
  if (json)
    return JSON.stringify({ error: { code: failure.code, message: failure.message, ...(failure.fix ? { fix: failure.fix } : {}), ...failure.details } });
  const message = failure.code === 'internal' && stack ? stack : failure.message;
  return `error: ${message}${failure.fix ? `\nfix: ${failure.fix}` : ''}`;
}
