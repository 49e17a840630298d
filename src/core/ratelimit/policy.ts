import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * The rate-limit policy is data (governance will version and deploy it): per route class, a
 * budget per key and per tenant over a window. Routes name their class in their config.
 */
const Budget = Type.Object(
  { points: Type.Integer({ minimum: 1 }), duration_s: Type.Integer({ minimum: 1, maximum: 86_400 }) },
  { additionalProperties: false },
);

export const RateLimitPolicySchema = Type.Object(
  {
    version: Type.String({ minLength: 1 }),
    classes: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]*$' }), Type.Object({ per_key: Budget, per_tenant: Budget }, { additionalProperties: false })),
    /** Invalid keys from one source address: slowed, then refused, without touching valid keys. */
    invalid_keys: Type.Object(
      { points: Type.Integer({ minimum: 1 }), duration_s: Type.Integer({ minimum: 1 }), block_s: Type.Integer({ minimum: 1 }) },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export type RateLimitPolicy = Static<typeof RateLimitPolicySchema>;

export const DEFAULT_RATE_LIMIT_POLICY: RateLimitPolicy = {
  version: 'default-2',
  classes: {
    // Sensors post events in bursts; tenants aggregate many sensors.
    write: { per_key: { points: 2_000, duration_s: 1 }, per_tenant: { points: 10_000, duration_s: 1 } },
    read: { per_key: { points: 1_000, duration_s: 1 }, per_tenant: { points: 5_000, duration_s: 1 } },
    admin: { per_key: { points: 60, duration_s: 60 }, per_tenant: { points: 300, duration_s: 60 } },
    // CrowdSec bouncers, sized for a fleet of 1,000 (docs/bouncers.md): lookups (GET /v1/decisions),
    // 20 a second from each in live mode; a busy bouncer alone may do 2,000.
    bouncer: { per_key: { points: 2_000, duration_s: 1 }, per_tenant: { points: 20_000, duration_s: 1 } },
    // Stream pulls: a poll every 10 s each (100/s), a fleet-wide restart of 1,000 startups within one
    // window; a key may poll every second with retries, and a leaked key cannot force more than 3
    // full startups (up to 10,000 decisions each) a second.
    bouncer_stream: { per_key: { points: 30, duration_s: 10 }, per_tenant: { points: 5_000, duration_s: 10 } },
  },
  invalid_keys: { points: 20, duration_s: 60, block_s: 300 },
};

export class InvalidRateLimitPolicyError extends Error {
  readonly code = 'invalid_rate_limit_policy';
  constructor(readonly issues: ReadonlyArray<{ path: string; message: string }>) {
    super(`invalid rate-limit policy: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  }
}

export function parseRateLimitPolicy(input: unknown): RateLimitPolicy {
  const issues = [...Value.Errors(RateLimitPolicySchema, input)].map((e) => ({ path: e.path || '/', message: e.message }));
  if (issues.length > 0) throw new InvalidRateLimitPolicyError(issues);
  const policy = input as RateLimitPolicy;
  if (!policy.classes.read || !policy.classes.write)
    throw new InvalidRateLimitPolicyError([{ path: '/classes', message: 'the read and write classes are required' }]);
  return policy;
}
