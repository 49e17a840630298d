import { Type, type Static } from '@sinclair/typebox';
import { EventValidationError, type ValidationIssue } from './errors.js';
import { parseIp } from './ip.js';
import { schemaIssues } from './schema-issues.js';

/**
 * A security event as sensors send it. Conventions for event_type and payload fields are in
 * docs/events.md; the fields below with known meaning are type-checked, others are kept.
 */
export const EVENT_LIMITS = {
  payloadKeys: 64,
  payloadDepth: 4,
  stringLength: 8192,
  arrayItems: 256,
} as const;

export const EventTypePattern = '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*){1,3}$';

export const SecurityEventSchema = Type.Object(
  {
    event_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:@/-]+$' })),
    tenant_id: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    source: Type.String({ minLength: 1, maxLength: 128 }),
    event_type: Type.String({ minLength: 3, maxLength: 64, pattern: EventTypePattern }),
    occurred_at: Type.String({ minLength: 20, maxLength: 40, description: 'RFC 3339 timestamp, e.g. 2025-03-01T12:00:00Z' }),
    payload: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown()),
  },
  { additionalProperties: false, $id: 'SecurityEvent' },
);

export type SecurityEvent = Static<typeof SecurityEventSchema>;

type FieldCheck = (value: unknown) => string | undefined;
const ip: FieldCheck = (v) => (typeof v === 'string' && parseIp(v) ? undefined : 'must be an IPv4 or IPv6 address');
const port: FieldCheck = (v) => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535 ? undefined : 'must be an integer port 0-65535');
const text =
  (max: number): FieldCheck =>
  (v) =>
    typeof v === 'string' && v.length <= max ? undefined : `must be a string of at most ${max} characters`;

/** Payload fields with a documented meaning (docs/events.md) and their type checks. */
export const KNOWN_PAYLOAD_FIELDS: Readonly<Record<string, FieldCheck>> = {
  src_ip: ip,
  dst_ip: ip,
  src_port: port,
  dst_port: port,
  protocol: text(16),
  username: text(256),
  service: text(64),
  user_agent: text(EVENT_LIMITS.stringLength),
  method: text(16),
  path: text(EVENT_LIMITS.stringLength),
  query: text(EVENT_LIMITS.stringLength),
  host: text(255),
  status: (v) => (Number.isInteger(v) && (v as number) >= 100 && (v as number) <= 599 ? undefined : 'must be an integer HTTP status 100-599'),
  key_id: text(128),
  category: text(64),
  signature: text(256),
  waf_rule_id: text(128),
};

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/;

/** Milliseconds since the epoch for an RFC 3339 timestamp; undefined when it is not one. */
export function parseOccurredAt(value: string): number | undefined {
  const m = RFC3339.exec(value);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return undefined;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return undefined;
  const fraction = m[7] ? m[7].slice(0, 4).padEnd(4, '0') : '.000';
  const ms = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${fraction}${m[8]!.toUpperCase()}`);
  return Number.isNaN(ms) ? undefined : ms;
}

function payloadIssues(payload: Record<string, unknown>): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const keys = Object.keys(payload);
  if (keys.length > EVENT_LIMITS.payloadKeys)
    issues.push({ path: 'payload', message: `has ${keys.length} fields, above the limit of ${EVENT_LIMITS.payloadKeys}` });
  for (const key of keys) {
    // Own properties only: a payload key such as `toString` or `hasOwnProperty` is an ordinary field.
    const check = Object.hasOwn(KNOWN_PAYLOAD_FIELDS, key) ? KNOWN_PAYLOAD_FIELDS[key] : undefined;
    const problem = check?.(payload[key]);
    if (problem) issues.push({ path: `payload.${key}`, message: problem });
  }
  const walk = (value: unknown, path: string, depth: number): void => {
    if (issues.length >= 20) return;
    if (typeof value === 'string' && value.length > EVENT_LIMITS.stringLength) {
      issues.push({ path, message: `is ${value.length} characters, above the limit of ${EVENT_LIMITS.stringLength}` });
    } else if (typeof value === 'number' && !Number.isFinite(value)) {
      issues.push({ path, message: 'must be a finite number' });
    } else if (value !== null && typeof value === 'object') {
      if (depth > EVENT_LIMITS.payloadDepth) {
        issues.push({ path, message: `nests deeper than ${EVENT_LIMITS.payloadDepth} levels` });
        return;
      }
      if (Array.isArray(value)) {
        if (value.length > EVENT_LIMITS.arrayItems) issues.push({ path, message: `has ${value.length} items, above the limit of ${EVENT_LIMITS.arrayItems}` });
        value.slice(0, EVENT_LIMITS.arrayItems).forEach((v, i) => walk(v, `${path}[${i}]`, depth + 1));
      } else {
        const entries = Object.entries(value);
        if (depth > 1 && entries.length > EVENT_LIMITS.payloadKeys)
          issues.push({ path, message: `has ${entries.length} fields, above the limit of ${EVENT_LIMITS.payloadKeys}` });
        for (const [k, v] of entries.slice(0, EVENT_LIMITS.payloadKeys)) walk(v, `${path}.${k}`, depth + 1);
      }
    }
  };
  walk(payload, 'payload', 1);
  return issues;
}

export interface EventCheckOptions {
  /** With nowMs, an occurred_at more than maxFutureSkewS (default 300) ahead of it is refused. */
  readonly nowMs?: number;
  readonly maxFutureSkewS?: number;
}

/** Every problem with an event candidate, each with its path; [] when it is a valid event. */
export function eventIssues(input: unknown, options: EventCheckOptions = {}): ValidationIssue[] {
  const structural = schemaIssues(SecurityEventSchema, input);
  if (structural.length > 0) return structural;
  const event = input as SecurityEvent;
  const issues: ValidationIssue[] = [];
  const at = parseOccurredAt(event.occurred_at);
  if (at === undefined) {
    issues.push({ path: 'occurred_at', message: `"${event.occurred_at}" is not an RFC 3339 timestamp (e.g. 2025-03-01T12:00:00Z)` });
  } else if (options.nowMs !== undefined) {
    const skew = options.maxFutureSkewS ?? 300;
    if (at > options.nowMs + skew * 1000) issues.push({ path: 'occurred_at', message: `is more than ${skew} s in the future` });
  }
  issues.push(...payloadIssues(event.payload));
  return issues;
}

/** The event, typed, or EventValidationError listing every problem. */
export function parseEvent(input: unknown, options: EventCheckOptions = {}): SecurityEvent {
  const issues = eventIssues(input, options);
  if (issues.length > 0) throw new EventValidationError(issues);
  return input as SecurityEvent;
}
