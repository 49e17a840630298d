import type { SecurityEvent } from './event.js';

/**
 * Rules and doctrine name event fields by dotted path: a top-level field (`event_type`,
 * `source`, `tenant_id`, `event_id`, `occurred_at`) or `payload.<name>[.<name>...]`.
 */
const TOP_LEVEL = new Set(['event_id', 'tenant_id', 'source', 'event_type', 'occurred_at']);
const PAYLOAD_PATH = /^payload(\.[A-Za-z0-9_-]{1,64}){1,4}$/;

export function fieldPathProblem(path: string): string | undefined {
  if (TOP_LEVEL.has(path) || PAYLOAD_PATH.test(path)) return undefined;
  return `"${path}" is not an event field: use one of ${[...TOP_LEVEL].join(', ')} or payload.<name> (up to 4 levels of [A-Za-z0-9_-])`;
}

/** Values a matcher can see. Objects and arrays are visible only to `exists`. */
export type FieldValue = string | number | boolean | null | readonly unknown[] | { readonly [k: string]: unknown };

/** The value at a dotted path, or undefined when any step is missing (own properties only). */
const segmentCache = new Map<string, readonly string[]>();

export function getField(event: SecurityEvent, path: string): FieldValue | undefined {
  let segments = segmentCache.get(path);
  if (!segments) {
    segments = path.split('.');
    // Paths come from validated rules (a bounded set); the cap guards against arbitrary callers.
    if (segmentCache.size < 10_000) segmentCache.set(path, segments);
  }
  let current: unknown = event;
  for (const segment of segments) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current as FieldValue | undefined;
}

/** A field as a key component: strings, finite numbers and booleans; anything else is absent. */
export function fieldAsKey(event: SecurityEvent, path: string): string | undefined {
  const v = getField(event, path);
  if (typeof v === 'string') return v.length > 0 ? v : undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'boolean') return String(v);
  return undefined;
}
