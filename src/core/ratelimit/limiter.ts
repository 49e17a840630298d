import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config } from '../../config/config.js';
import type { Redis } from '../../platform/cache/redis.js';
import { AppError } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import type { Metrics } from '../../platform/metrics.js';
import type { RateLimitPolicy } from './policy.js';
import '../../platform/auth/principal.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Rate-limit class of the route; default: write for POST/PUT/PATCH/DELETE, read otherwise. */
    rateLimitClass?: string;
  }
}

export interface BypassAudit {
  /** Records one use of the bypass scope; called at most once per key per minute. */
  recordBypass(tenantId: string, keyId: string, route: string, minute: string): Promise<void>;
}

export interface RateLimitDeps {
  readonly config: Pick<Config, 'rateLimit'>;
  readonly redis: Redis | undefined;
  readonly metrics: Pick<Metrics, 'failOpenTriggered'> & { readonly rateLimit: { inc(labels: { result: string }): void } };
  readonly security: Logger;
  readonly audit?: BypassAudit;
  readonly keyPrefix?: string;
  /** Records fail-open passes in the audit ledger. */
  readonly onFailOpen?: (tenantId: string, detail: Record<string, unknown>) => void;
  /** The rate-limit policy a tenant deployed through governance, if any. */
  readonly policyFor?: (tenantId: string) => Promise<RateLimitPolicy | undefined>;
}

interface ClassLimiters {
  readonly perKey: RateLimiterAbstract;
  readonly perTenant: RateLimiterAbstract;
}

/** The store could not answer: the caller fails closed (503) unless fail-open is acknowledged. */
export class RateLimitStoreError extends Error {
  readonly code = 'rate_limit_store_unavailable';
}

/** Where one budget stands after this request: what its RateLimit-* headers would say. */
export interface BudgetState {
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the window frees its points (delta-seconds, as RateLimit-Reset). */
  readonly resetS: number;
  readonly windowS: number;
}

/**
 * The budget a client meets first: the fewest points left; on a tie, the one that stays spent
 * longer. A request passes both the per-key and the per-tenant budget, and advertising the other
 * one would tell a client it has room that the next requests do not have.
 */
export function closestToExhaustion(a: BudgetState, b: BudgetState): BudgetState {
  if (a.remaining !== b.remaining) return a.remaining < b.remaining ? a : b;
  return a.resetS >= b.resetS ? a : b;
}

/**
 * The fields of draft-ietf-httpapi-ratelimit-headers-06: RateLimit-Limit, -Remaining and -Reset
 * (delta seconds) of the binding budget, and RateLimit-Policy listing every budget that applied
 * (`points;w=seconds`, the binding one first).
 */
export function rateLimitHeaders(binding: BudgetState, others: readonly BudgetState[] = []): Record<string, string> {
  return {
    'ratelimit-limit': String(binding.limit),
    'ratelimit-remaining': String(binding.remaining),
    'ratelimit-reset': String(binding.resetS),
    'ratelimit-policy': [binding, ...others].map((b) => `${b.limit};w=${b.windowS}`).join(', '),
  };
}

interface LimiterSet {
  readonly policy: RateLimitPolicy;
  readonly classes: ReadonlyMap<string, ClassLimiters>;
  readonly invalidKeys: RateLimiterAbstract;
}

export class RateLimiter {
  private base!: LimiterSet;
  /** The limiters of each tenant whose deployed policy is not the base one, by tenant. */
  private readonly sets = new Map<string, { version: string; set: LimiterSet }>();
  private readonly bypassSeen = new Set<string>();
  private readonly failOpen: boolean;

  constructor(
    private readonly deps: RateLimitDeps,
    policy: RateLimitPolicy,
  ) {
    this.failOpen = deps.config.rateLimit.failOpen && deps.config.rateLimit.failOpenAcknowledged;
    if (deps.config.rateLimit.backend === 'redis' && !deps.redis) throw new Error('FG_RL_BACKEND=redis needs FG_REDIS_URL');
    this.apply(policy);
  }

  get version(): string {
    return this.base.policy.version;
  }

  private build(policy: RateLimitPolicy, scope: string): LimiterSet {
    const make = (name: string, points: number, duration: number, blockDuration = 0): RateLimiterAbstract => {
      const keyPrefix = `${this.deps.keyPrefix ?? 'fg:rl'}:${scope}:${policy.version}:${name}`;
      if (this.deps.config.rateLimit.backend === 'redis') {
        return new RateLimiterRedis({ storeClient: this.deps.redis, keyPrefix, points, duration, blockDuration, rejectIfRedisNotReady: true });
      }
      return new RateLimiterMemory({ keyPrefix, points, duration, blockDuration });
    };
    const classes = new Map<string, ClassLimiters>();
    for (const [name, c] of Object.entries(policy.classes)) {
      classes.set(name, {
        perKey: make(`${name}:key`, c.per_key.points, c.per_key.duration_s),
        perTenant: make(`${name}:tenant`, c.per_tenant.points, c.per_tenant.duration_s),
      });
    }
    return { policy, classes, invalidKeys: make('invalid-keys', policy.invalid_keys.points, policy.invalid_keys.duration_s, policy.invalid_keys.block_s) };
  }

  /** Replaces the platform-wide policy (tenants without a deployed policy of their own use it). */
  apply(policy: RateLimitPolicy): void {
    this.base = this.build(policy, 'base');
  }

  /** The limiters of the policy governing this tenant: its deployed one, else the base. */
  private async setFor(tenantId: string | undefined): Promise<LimiterSet> {
    if (!tenantId || !this.deps.policyFor) return this.base;
    let governed: RateLimitPolicy | undefined;
    try {
      governed = await this.deps.policyFor(tenantId);
    } catch (err) {
      throw new RateLimitStoreError(`cannot read the tenant's rate-limit policy: ${(err as Error).message}`, { cause: err });
    }
    if (!governed) return this.base;
    const current = this.sets.get(tenantId);
    if (current?.version === governed.version) return current.set;
    // One set per tenant: a deploy replaces it, so the limiters of versions no longer deployed
    // do not pile up (one per deploy, for the life of the process).
    const set = this.build(governed, `t:${tenantId}`);
    this.sets.set(tenantId, { version: governed.version, set });
    return set;
  }

  private classOf(set: LimiterSet, request: FastifyRequest): ClassLimiters {
    const byMethod = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(request.method) ? 'write' : 'read';
    // A policy without the route's class (deployed before the class existed) limits it as its method's.
    return set.classes.get(request.routeOptions.config.rateLimitClass ?? byMethod) ?? set.classes.get(byMethod)!;
  }

  /** Consumes a point; throws AppError 429 (advertising the refusing budget) or a store error. */
  private async consume(limiter: RateLimiterAbstract, key: string, what: string): Promise<BudgetState> {
    let res: RateLimiterRes;
    try {
      res = await limiter.consume(key, 1);
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        const retry = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
        this.deps.metrics.rateLimit.inc({ result: 'limited' });
        throw new AppError(
          'rate_limited',
          `rate limit of ${limiter.points} requests per ${limiter.duration} s ${what} reached; retry in ${retry} s`,
          { limit: limiter.points, window_s: limiter.duration },
          {
            'retry-after': String(retry),
            ...rateLimitHeaders({ limit: limiter.points, remaining: 0, resetS: retry, windowS: limiter.duration }),
          },
        );
      }
      throw new RateLimitStoreError((err as Error).message ?? 'rate-limit store error', { cause: err });
    }
    return { limit: limiter.points, remaining: res.remainingPoints, resetS: Math.ceil(res.msBeforeNext / 1000), windowS: limiter.duration };
  }

  private storeFailure(err: RateLimitStoreError, request: FastifyRequest): void {
    if (this.failOpen) {
      this.deps.metrics.failOpenTriggered.inc({ component: 'ratelimit' });
      this.deps.metrics.rateLimit.inc({ result: 'fail_open' });
      const route = `${request.method} ${request.routeOptions.url ?? ''}`;
      this.deps.security.fatal(
        { type: 'fail_open', component: 'ratelimit', route, error: err.message },
        'CRITICAL: rate-limit store unavailable, letting the request through (FG_RL_FAIL_OPEN acknowledged)',
      );
      const tenantId = request.principal?.tenantId;
      if (tenantId) this.deps.onFailOpen?.(tenantId, { route, key_id: request.principal?.keyId ?? null, error: err.message });
      return;
    }
    this.deps.metrics.rateLimit.inc({ result: 'unavailable' });
    this.deps.security.error({ type: 'rate_limit', reason: 'store_unavailable', error: err.message }, 'rate-limit store unavailable, refusing (fail closed)');
    throw new AppError('unavailable', 'rate limiting is temporarily unavailable; retry shortly', {}, { 'retry-after': '2' });
  }

  /** onRequest hook after the auth gate: per key and per tenant, by route class. */
  readonly hook: onRequestAsyncHookHandler = async (request, reply) => {
    const principal = request.principal;
    if (!principal) return; // public and token routes
    const route = `${request.method} ${request.routeOptions.url ?? ''}`;
    // Only an explicit grant bypasses: admin keys are limited like any other.
    if (principal.scopes.includes('ratelimit:bypass')) {
      this.deps.metrics.rateLimit.inc({ result: 'bypass' });
      await this.auditBypass(principal.tenantId, principal.keyId ?? principal.subject, route);
      return;
    }
    try {
      const limiters = this.classOf(await this.setFor(principal.tenantId), request);
      const perKey = await this.consume(limiters.perKey, principal.keyId ?? principal.subject, 'for this key');
      const perTenant = principal.tenantId ? await this.consume(limiters.perTenant, principal.tenantId, 'for this tenant') : undefined;
      const binding = perTenant ? closestToExhaustion(perKey, perTenant) : perKey;
      const others = perTenant ? [binding === perKey ? perTenant : perKey] : [];
      for (const [name, value] of Object.entries(rateLimitHeaders(binding, others))) reply.header(name, value);
      this.deps.metrics.rateLimit.inc({ result: 'allowed' });
    } catch (err) {
      if (err instanceof RateLimitStoreError) return this.storeFailure(err, request);
      throw err;
    }
  };

  /**
   * Brute-force guard for the key check. Each invalid key from a source address costs a point.
   * Past half the budget its further failures are slowed (a growing delay, at most 1 s); out of
   * points, its invalid keys are refused with 429 for the block time. Valid keys spend nothing
   * and are never refused by this guard, so an attacker cannot lock a key's owner out.
   */
  async recordInvalidKey(source: string): Promise<{ blocked: boolean; delayMs: number; retryAfterS: number }> {
    const limiter = this.base.invalidKeys;
    try {
      const res = await limiter.consume(source, 1);
      const half = limiter.points / 2;
      const delayMs = res.consumedPoints > half ? Math.min(1000, (res.consumedPoints - half) * 100) : 0;
      return { blocked: false, delayMs, retryAfterS: 0 };
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        this.deps.metrics.rateLimit.inc({ result: 'invalid_key_blocked' });
        return { blocked: true, delayMs: 0, retryAfterS: Math.max(1, Math.ceil(err.msBeforeNext / 1000)) };
      }
      return { blocked: false, delayMs: 0, retryAfterS: 0 }; // store down: the 401 stands
    }
  }

  private async auditBypass(tenantId: string | undefined, keyId: string, route: string): Promise<void> {
    const minute = new Date().toISOString().slice(0, 16);
    const seen = `${keyId}@${minute}`;
    if (this.bypassSeen.has(seen) || !tenantId || !this.deps.audit) return;
    try {
      await this.deps.audit.recordBypass(tenantId, keyId, route, minute);
    } catch (err) {
      // An unaudited bypass is not allowed: refuse rather than let it through unrecorded.
      this.deps.security.error(
        { type: 'rate_limit', reason: 'bypass_audit_failed', key_id: keyId, error: (err as Error).message },
        'could not audit a rate-limit bypass, refusing',
      );
      throw new AppError('unavailable', 'the audit trail is unavailable, so the rate-limit bypass cannot be used; retry shortly', {}, { 'retry-after': '2' });
    }
    this.bypassSeen.add(seen);
    if (this.bypassSeen.size > 10_000) this.bypassSeen.clear();
  }
}
