import pino, { type DestinationStream, type Logger } from 'pino';
import { currentContext } from './context.js';

export type { Logger } from 'pino';

/** Fields that never reach a log line, whatever a caller passes. */
const REDACT = [
  'req.headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers["x-api-key"]',
  'headers.authorization',
  'headers.cookie',
  '*.secret',
  '*.password',
  '*.token',
  '*.access_token',
  '*.sat',
  'secret',
  'password',
  'token',
  'api_key',
  'apiKey',
];

export interface LoggerOptions {
  readonly level: string;
  readonly destination?: DestinationStream;
}

/**
 * The process logger. request_id and tenant_id come from the request context on every line,
 * so code deep in a service logs with the root logger and still names the request.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'frostgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      mixin() {
        const ctx = currentContext();
        if (!ctx) return {};
        return ctx.tenant_id ? { request_id: ctx.request_id, tenant_id: ctx.tenant_id } : { request_id: ctx.request_id };
      },
    },
    options.destination,
  );
}

/** The `frostgate.security` logger: auth failures, tenant mismatches, fail-open triggers. */
export function securityLogger(root: Logger): Logger {
  return root.child({ logger: 'frostgate.security' });
}
