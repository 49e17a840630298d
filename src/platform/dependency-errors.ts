/**
 * Whether an error means a dependency (Postgres, Redis) could not be reached or went away in the
 * middle of a request, rather than a bug. Such a request is answered 503 with Retry-After, never
 * 500: no 2xx was given, so nothing is promised, and a retry is safe (a decision and its ledger
 * entry commit together, and an event_id is decided once). The typed errors of our own stores are recognised by their code; driver errors by
 * their network errno, their SQLSTATE (class 08 connection exception, 57P0x shutdown, 53300 too
 * many connections) or the messages pg, pg-pool and ioredis use for a lost connection.
 */
const OUR_CODES = new Set(['database_unavailable', 'window_store_unavailable', 'rate_limit_store_unavailable']);
const ERRNO_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN', 'ECONNABORTED']);
// 40001/40P01: a write that kept losing a race (e.g. a decision group whose tenant log other
// processes kept appending to) is as retryable as one whose database went away.
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '40001', '40P01']);
const MESSAGES = [
  /^Connection terminated/, // pg: the server closed the connection
  /^Client has encountered a connection error and is not queryable/, // pg: a query on a broken client
  /^timeout exceeded when trying to connect/, // pg-pool: connectionTimeoutMillis
  /^Client was closed and is not queryable/,
  /Stream isn't writeable and enableOfflineQueue options is false/, // ioredis while disconnected
  /^Connection is closed\.?$/, // ioredis
  /^Command timed out/, // ioredis commandTimeout
];

export function isDependencyUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (OUR_CODES.has(code) || ERRNO_CODES.has(code) || SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
    if (MESSAGES.some((re) => re.test(e instanceof Error ? e.message : ''))) return true;
  }
  return false;
}
