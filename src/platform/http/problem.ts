/**
 * The closed set of error codes FrostGate answers with, rendered once as RFC 9457
 * application/problem+json. A code's `type` URI is stable; docs/problems.md describes each.
 */
export const PROBLEMS = {
  validation_failed: { status: 400, title: 'Request does not match the schema' },
  malformed_json: { status: 400, title: 'Body is not valid JSON' },
  bad_request: { status: 400, title: 'Bad request' },
  api_key_in_query: { status: 400, title: 'API key in the query string' },
  invalid_tenant: { status: 400, title: 'Invalid tenant' },
  unauthorized: { status: 401, title: 'Authentication required' },
  forbidden: { status: 403, title: 'Forbidden' },
  missing_scope: { status: 403, title: 'Missing scope' },
  tenant_mismatch: { status: 403, title: 'Tenant mismatch' },
  two_person_rule: { status: 403, title: 'Two-person rule' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'Conflict' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  unprocessable: { status: 422, title: 'Unprocessable request' },
  rate_limited: { status: 429, title: 'Too many requests' },
  internal: { status: 500, title: 'Internal error' },
  integrity_failure: { status: 500, title: 'Integrity check failed' },
  unavailable: { status: 503, title: 'Service unavailable' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof PROBLEMS;

export const PROBLEM_TYPE_BASE = 'https://frostgate.dev/problems/';

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  request_id: string;
  instance?: string;
  [extension: string]: unknown;
}

/** A domain error that knows how it is answered. Services throw these; one handler renders them. */

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ProblemCode,
    readonly detail: string,
    readonly extensions: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'AppError';
    this.status = PROBLEMS[code].status;
  }
}

export function problemBody(code: ProblemCode, detail: string, requestId: string, extensions: Record<string, unknown> = {}): ProblemBody {
  const spec = PROBLEMS[code];
  return { ...extensions, type: PROBLEM_TYPE_BASE + code, title: spec.title, status: spec.status, detail, code, request_id: requestId };
}

/**
 * A problem body as CrowdSec's Local API clients also read it: they know only `message` (a
 * string; Debian's crowdsec-firewall-bouncer 0.0.25, built on CrowdSec 1.4.6, dereferences it
 * unchecked and panics without it) and `errors` (a string). The problem+json members stay.
 */
export function withCrowdSecMembers(body: ProblemBody): ProblemBody {
  const list = body.errors;
  const errors = Array.isArray(list) ? list.map((e: { path?: unknown; message?: unknown }) => `${String(e.path)}: ${String(e.message)}`).join('; ') : list;
  return { ...body, message: body.detail, ...(errors === undefined ? {} : { errors }) };
}

export const notFound = (what: string) => new AppError('not_found', `${what} not found`);
export const conflict = (detail: string, ext?: Record<string, unknown>) => new AppError('conflict', detail, ext);
export const unprocessable = (detail: string, ext?: Record<string, unknown>) => new AppError('unprocessable', detail, ext);
export const unavailable = (detail: string, ext?: Record<string, unknown>) => new AppError('unavailable', detail, ext);
